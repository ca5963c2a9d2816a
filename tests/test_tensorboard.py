"""nn.TensorBoard and strata train --tensorboard: the event files, read back with TensorBoard's
own reader, hold History's numbers, every parameter's histograms and the sample images."""

from __future__ import annotations

import csv
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import strata
from strata import cli, nn
from strata.extras import MissingExtra

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def read():
    """log_dir -> TensorBoard's EventAccumulator of it, everything loaded."""
    pytest.importorskip("tensorboardX")
    accumulator = pytest.importorskip(
        "tensorboard.backend.event_processing.event_accumulator").EventAccumulator

    def load(log_dir):
        events = accumulator(str(log_dir), size_guidance={"scalars": 0, "histograms": 0,
                                                          "images": 0})
        return events.Reload()

    return load


def _data(m=64):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((m, 3)).astype(np.float32)
    return X, (X[:, :1] + X[:, 1:2] > 0).astype(np.float32)


def _model():
    strata.seed(1)
    model = nn.Sequential([nn.Dense(4, "relu"), nn.BatchNorm(), nn.Dense(1, "sigmoid")])
    model.compile(optimizer="adam", lr=0.05, loss="binary_crossentropy", metrics=["accuracy"])
    return model


def _scalars(events, tag):
    return [(e.step, e.value) for e in events.Scalars(tag)]


def test_scalars_histograms_and_images_match_the_training(tmp_path, read):
    X, Y = _data()
    images = np.random.default_rng(1).random((3, 5, 7, 3))  # float64, clipped and scaled
    model = _model()
    board = nn.TensorBoard(tmp_path / "logs", histogram_freq=2, images=images)
    decay = nn.LearningRateScheduler(lambda epoch: 0.05 * 0.5 ** epoch)
    history = model.fit(X, Y, epochs=3, batch_size=16, validation_data=(X[:16], Y[:16]),
                        callbacks=[board, decay], verbose=0)
    assert board.writer is None  # closed by on_train_end
    events = read(tmp_path / "logs")
    for name in ("loss", "accuracy", "val_loss", "val_accuracy", "lr"):
        steps, values = zip(*_scalars(events, name))
        assert steps == (0, 1, 2), name
        np.testing.assert_allclose(values, history[name], rtol=1e-6, err_msg=name)
    assert history["lr"] == [0.05, 0.025, 0.0125]
    tags = set(events.Tags()["histograms"])
    for name, p in model.named_parameters():
        for kind in ("weights", "gradients"):
            series = events.Histograms(f"{kind}/{name}")
            assert [h.step for h in series] == [0, 2]  # histogram_freq=2 of 3 epochs
            assert all(h.histogram_value.num == p.data.size for h in series)
        tags -= {f"weights/{name}", f"gradients/{name}"}
    assert tags == set()
    last = events.Histograms("weights/layers.0.W")[-1].histogram_value
    assert np.isclose(last.sum, model.layers[0].W.data.sum(), rtol=1e-4)
    assert sorted(events.Tags()["images"]) == ["images/0", "images/1", "images/2"]
    shown = events.Images("images/1")
    assert [(i.step, i.width, i.height) for i in shown] == [(0, 7, 5)]


def test_gradients_are_the_last_steps_and_grayscale_images(tmp_path, read):
    X, Y = _data(32)
    model = _model()
    board = nn.TensorBoard(tmp_path, histogram_freq=1,
                           images=np.zeros((2, 4, 6, 1), dtype=np.uint8))
    model.fit(X, Y, epochs=1, batch_size=32, callbacks=[board], verbose=0)  # one step
    events = read(tmp_path)
    grad = model.layers[2].W.grad
    saved = events.Histograms("gradients/layers.2.W")[0].histogram_value
    assert saved.num == grad.size and np.isclose(saved.sum, grad.sum(), rtol=1e-4, atol=1e-7)
    assert (events.Images("images/0")[0].width, events.Images("images/0")[0].height) == (6, 4)
    assert _scalars(events, "lr") == [(0, pytest.approx(0.05))]  # no scheduler: the optimizer's


def test_histogram_freq_zero_writes_scalars_only(tmp_path, read):
    X, Y = _data(32)
    nn_board = nn.TensorBoard(tmp_path, histogram_freq=0)
    _model().fit(X, Y, epochs=2, callbacks=[nn_board], verbose=0)
    tags = read(tmp_path).Tags()
    assert tags["histograms"] == [] and tags["images"] == []
    assert {"loss", "accuracy", "lr"} <= set(tags["scalars"])


class _FailAt(nn.Callback):
    def on_epoch_end(self, epoch, logs):
        if epoch == 1:
            raise RuntimeError("boom")


def test_the_writer_is_closed_when_training_raises(tmp_path, read):
    X, Y = _data(32)
    board = nn.TensorBoard(tmp_path)
    history_model = _model()
    with pytest.raises(RuntimeError, match="boom"):
        history_model.fit(X, Y, epochs=4, callbacks=[board, _FailAt()], verbose=0)
    assert board.writer is None
    assert [s for s, _ in _scalars(read(tmp_path), "loss")] == [0, 1]  # epoch 1 written first


def test_a_fit_starting_later_replaces_the_epochs_it_repeats(tmp_path, read):
    X, Y = _data(32)
    _model().fit(X, Y, epochs=3, callbacks=[nn.TensorBoard(tmp_path)], verbose=0)
    model = _model()
    again = model.fit(X[::-1], Y[::-1], epochs=3, initial_epoch=1, batch_size=8,
                      callbacks=[nn.TensorBoard(tmp_path)], verbose=0)
    steps, values = zip(*_scalars(read(tmp_path), "loss"))
    assert steps == (0, 1, 2)  # epochs 1 and 2 of the first fit are purged
    np.testing.assert_allclose(values[1:], again["loss"], rtol=1e-6)


def test_bad_arguments_name_the_callback(tmp_path):
    pytest.importorskip("tensorboardX")
    for bad in (-1, 1.5, True):
        with pytest.raises(ValueError, match="TensorBoard: expected histogram_freq"):
            nn.TensorBoard(tmp_path, histogram_freq=bad)
    for images in (np.zeros((4, 4, 3)), np.zeros((1, 4, 4, 2)), np.zeros((0, 4, 4, 3)),
                   np.array([[[["a"]]]]), np.full((1, 2, 2, 3), 255)):
        with pytest.raises(ValueError, match="NHWC"):
            nn.TensorBoard(tmp_path, images=images)
    with pytest.raises(ValueError, match="NaN or inf"):
        nn.TensorBoard(tmp_path, images=np.full((1, 2, 2, 1), np.nan))
    assert not any(tmp_path.iterdir())  # nothing written before training


def test_missing_tensorboardx_names_the_extra(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "tensorboardX", None)
    with pytest.raises(MissingExtra, match=r"pip install 'strata\[tensorboard\]'"):
        nn.TensorBoard(tmp_path)
    out = tmp_path / "run"
    assert cli.main(["--dataset", "moons", "--epochs", "1", "--quiet", "--out", str(out),
                     "--tensorboard"]) == 2
    err = capsys.readouterr().err
    assert "TensorBoard logging needs tensorboardX" in err and "strata[tensorboard]" in err
    assert not any(tmp_path.iterdir())  # no run folder, no partial folder


def test_import_strata_works_without_tensorboardx():
    code = ("import sys; sys.modules['tensorboardX'] = None; import strata; "
            "assert strata.nn.TensorBoard.__doc__; print('ok')")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr


def test_train_command_writes_event_files_into_the_published_run(tmp_path, read, capsys):
    out = tmp_path / "run"
    assert cli.main(["--dataset", "moons", "--epochs", "2", "--hidden", "4", "--quiet",
                     "--out", str(out), "--tensorboard"]) == 0
    printed = capsys.readouterr().out
    assert f"tensorboard --logdir {out / 'tensorboard'}" in printed
    assert ".run.partial" in printed  # where to follow it while it trains
    assert not (tmp_path / ".run.partial").exists()  # published
    with open(out / "history.csv") as f:
        rows = list(csv.DictReader(f))
    events = read(out / "tensorboard")
    for name in ("loss", "accuracy", "val_loss", "val_f1"):
        steps, values = zip(*_scalars(events, name))
        assert steps == (0, 1)
        np.testing.assert_allclose(values, [float(r[name]) for r in rows], rtol=1e-6)
    assert {"weights/layers.0.W", "gradients/layers.1.b"} <= set(events.Tags()["histograms"])


def test_train_command_into_a_chosen_folder(tmp_path, read, capsys):
    logs = tmp_path / "logs" / "moons"
    assert cli.main(["--dataset", "moons", "--epochs", "1", "--hidden", "4", "--quiet",
                     "--out", str(tmp_path / "run"), "--tensorboard", str(logs)]) == 0
    assert f"tensorboard --logdir {logs}" in capsys.readouterr().out
    assert not (tmp_path / "run" / "tensorboard").exists()
    assert [s for s, _ in _scalars(read(logs), "loss")] == [0]


def test_the_docs_example_runs(tmp_path, monkeypatch, read):
    text = (ROOT / "docs" / "TENSORBOARD.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert blocks
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, "docs/TENSORBOARD.md", "exec"), namespace)
    events = read(tmp_path / "logs" / "digits")
    assert len(events.Scalars("val_accuracy")) == 6
    assert len(events.Tags()["images"]) == 8
