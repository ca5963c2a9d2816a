"""The examples run as documented: the encoder-decoder trains on two inputs, saves whole, and
reloads compiled to decode reversed sequences."""

from __future__ import annotations

import runpy
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def test_seq2seq_example_trains_saves_reloads_and_decodes(tmp_path, capsys):
    example = runpy.run_path(str(EXAMPLES / "seq2seq.py"), run_name="example")
    accuracy = example["main"](tmp_path, examples=1200, epochs=8, units=32)
    assert (tmp_path / "seq2seq.safetensors").is_file()
    assert "Total params" in capsys.readouterr().out
    assert accuracy > 0.6  # whole reversed sequences, decoded by the reloaded model
