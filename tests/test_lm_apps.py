"""The language-model applications through the ``strata lm`` command: the course's dinosaur
names and Shakespeare (skipped when ../shared/datasets is absent), and a text file of one's
own."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

import strata
from strata import cli
from strata.text import load_dinos, sample_ids
from strata.text.runs import load_run

DATA = Path(__file__).resolve().parents[2] / "shared" / "datasets"
needs_data = pytest.mark.skipif(not (DATA / "dinos" / "dinos.txt").is_file(),
                                reason=f"course text data not found under {DATA}")


@pytest.fixture
def shared_data(monkeypatch):
    monkeypatch.setenv("STRATA_DATA", str(DATA))


@needs_data
def test_dinosaur_names_model_learns_and_samples_names(shared_data, tmp_path, capsys):
    """The course's model (one-hot characters, an RNN of 50 units): 300 steps of 32 names cut
    the loss per name from about 43 (log 27 per character) to about 21.5 (24.5 allowed)."""
    out = tmp_path / "dinos"
    assert cli.main(["lm", "train", "--steps", "300", "--quiet", "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["vocab_size"] == 27 and metrics["unit"] == "per name"
    assert 40 < metrics["train_loss_before"] < 46
    assert metrics["train_loss_after"] < 24.5 and metrics["dev_loss"] < 26
    losses = np.loadtxt(out / "loss.csv", delimiter=",", skiprows=1)[:, 1]
    assert losses[:5].mean() - losses[-20:].mean() > 15
    printed = capsys.readouterr().out
    assert "before training" in printed
    assert ("Data: dinos: train 1460 / dev 76 lines (a seeded 95/5 split of the course's "
            "dinos.txt, 1536 lines)") in printed
    config, vocab, model = load_run(out)
    assert config.cell == "rnn" and config.units == 50 and len(load_dinos()) == 1536
    strata.seed(0)
    samples = sample_ids(model, vocab, n=30, max_length=50)
    ended = [ids for ids in samples if ids[-1] == vocab.eos_id]
    assert len(ended) >= 28  # names end with <EOS> (the course's "\n"), not the length cap
    names = [vocab.decode(ids) for ids in samples]
    assert all(re.fullmatch(r"[a-z]*", name) for name in names)
    assert np.mean([len(n) for n in names]) > 4  # name-like lengths, not empty strings


@needs_data
def test_shakespeare_character_model_and_sampling_command(shared_data, tmp_path, capsys):
    out = tmp_path / "shakespeare"
    assert cli.main(["lm", "train", "--dataset", "shakespeare", "--units", "32", "--steps",
                     "40", "--seq-length", "32", "--lr", "0.02", "--quiet", "--out",
                     str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["unit"] == "per character"
    assert metrics["train_loss_before"] > 4.0 and metrics["train_loss_after"] < 3.4
    capsys.readouterr()
    assert cli.main(["lm", "sample", str(out), "--n", "2", "--max-length", "40",
                     "--temperature", "0.5", "--seed", "1"]) == 0
    first = capsys.readouterr().out
    assert cli.main(["lm", "sample", str(out), "--n", "2", "--max-length", "40",
                     "--temperature", "0.5", "--seed", "1"]) == 0
    assert capsys.readouterr().out == first and len(first.strip()) > 0


def test_train_sample_and_score_a_text_file(tmp_path, capsys):
    corpus = tmp_path / "names.txt"
    corpus.write_text("anna\nbob\nanna\nbob\nhannah\n" * 20)
    out = tmp_path / "run"
    assert cli.main(["lm", "train", "--dataset", str(corpus), "--cell", "gru", "--units",
                     "16", "--steps", "60", "--lr", "0.05", "--embedding", "8", "--quiet",
                     "--out", str(out)]) == 0
    names = {p.name for p in out.iterdir()}
    assert {"model.safetensors", "vocab.json", "config.json", "loss.csv", "loss.png",
            "metrics.json", "samples.txt", "report.md"} <= names
    assert "cross-entropy per name" in (out / "report.md").read_text()
    capsys.readouterr()
    assert cli.main(["lm", "sample", str(out), "--n", "5", "--temperature", "0"]) == 0
    assert set(capsys.readouterr().out.split()) <= {"anna", "bob", "hannah"}
    assert cli.main(["lm", "score", str(out), "anna", "nnaa"]) == 0
    scores = [float(line.split("log P = ")[1].split()[0])
              for line in capsys.readouterr().out.strip().splitlines()]
    assert scores[0] > scores[1] + 3  # a seen name is far likelier than a scramble


def test_lm_command_errors(tmp_path, capsys):
    assert cli.main(["lm", "sample", str(tmp_path)]) == 2
    assert "not a strata language-model run folder" in capsys.readouterr().err
    assert cli.main(["lm", "train", "--dataset", str(tmp_path / "missing.txt"), "--quiet",
                     "--out", str(tmp_path / "x")]) == 2
    assert "no text file" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["lm", "train", "--units", "0"])
    assert "expected a positive number" in capsys.readouterr().err


def test_lm_help_has_examples(capsys):
    with pytest.raises(SystemExit):
        cli.main(["lm", "train", "--help"])
    text = capsys.readouterr().out
    assert "examples:" in text and "--dataset" in text and "shakespeare" in text
