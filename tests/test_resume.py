"""fit's checkpoints: a run stopped at an epoch boundary or in the middle of an epoch (Ctrl-C)
and resumed ends with weights bit-identical to an uninterrupted run of the same seed, with
shuffling, dropout, augmentation and stateful callbacks; callbacks always get on_train_end."""

from __future__ import annotations

import os
import signal

import numpy as np
import pytest

import strata
from strata import nn
from strata.data import Compose, Pipeline, RandomCrop, RandomFlip


def _data(dtype):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((90, 8, 8, 1)).astype(dtype)
    Y = (X.mean(axis=(1, 2, 3)) > 0).astype(np.int64) + (X[:, 0, 0, 0] > 0)
    return X, Y


def _model(kind: str):
    strata.seed(7)
    if kind == "mlp":
        layers = [nn.Flatten(), nn.Dense(16, "relu"), nn.Dropout(0.7), nn.BatchNorm(),
                  nn.Dense(3, "softmax")]
    else:
        layers = [nn.Conv2D(4, 3, padding="same", activation="relu"), nn.MaxPool2D(2),
                  nn.Dropout(0.8), nn.Flatten(), nn.Dense(3, "softmax")]
    model = nn.Sequential(layers)
    model.compile(optimizer="adam", lr=0.01, loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


def _callbacks(tmp_path):
    return [nn.EarlyStopping("loss", patience=5, restore_best_weights=True),
            nn.CSVLogger(tmp_path / "log.csv")]


def _fit(model, X, Y, kind, epochs, tmp_path, **kwargs):
    if kind == "conv":  # augmentation through the background pipeline
        data = Pipeline(X, Y, batch_size=16, transform=Compose([RandomFlip(),
                                                                RandomCrop((8, 8), padding=1)]))
        return model.fit(data, epochs=epochs, verbose=0, callbacks=_callbacks(tmp_path),
                         **kwargs)
    return model.fit(X, Y, epochs=epochs, batch_size=16, verbose=0,
                     callbacks=_callbacks(tmp_path), validation_data=(X[:20], Y[:20]), **kwargs)


def _same_weights(a, b):
    for (name, t), (_, u) in zip(a._named_tensors(), b._named_tensors(), strict=True):
        assert t.dtype == u.dtype
        np.testing.assert_array_equal(t.data, u.data, err_msg=name)


class _InterruptAt(nn.Callback):
    """Sends this process a SIGINT (Ctrl-C) after a given iteration."""

    def __init__(self, iteration):
        self.iteration = iteration

    def on_batch_end(self, iteration, logs):
        if iteration == self.iteration:
            os.kill(os.getpid(), signal.SIGINT)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind", ["mlp", "conv"])
def test_resume_at_an_epoch_boundary_is_bit_identical(tmp_path, kind, dtype):
    X, Y = _data(dtype)
    with strata.default_dtype(dtype):
        reference = _model(kind)
        expected = _fit(reference, X, Y, kind, 5, tmp_path / "a")
        first = _model(kind)
        _fit(first, X, Y, kind, 2, tmp_path / "b", checkpoint=tmp_path / "c.safetensors")
        strata.seed(12345)  # whatever happened since: the checkpoint's state wins
        resumed = _model(kind)
        history = _fit(resumed, X, Y, kind, 5, tmp_path / "b",
                       checkpoint=tmp_path / "c.safetensors", resume=True)
    _same_weights(reference, resumed)
    assert history.history == expected.history and history.costs == expected.costs
    assert (tmp_path / "a" / "log.csv").read_text() == (tmp_path / "b" / "log.csv").read_text()


@pytest.mark.parametrize("kind", ["mlp", "conv"])
def test_ctrl_c_mid_epoch_checkpoints_and_resumes_bit_identical(tmp_path, kind):
    X, Y = _data(np.float32)
    reference = _model(kind)
    expected = _fit(reference, X, Y, kind, 3, tmp_path / "a")
    interrupted = _model(kind)
    path = tmp_path / "c.safetensors"
    with pytest.raises(nn.TrainingInterrupted) as stopped:
        interrupted.fit(*((Pipeline(X, Y, batch_size=16, transform=Compose(
            [RandomFlip(), RandomCrop((8, 8), padding=1)])),) if kind == "conv" else (X, Y)),
            epochs=3, batch_size=16, verbose=0, checkpoint=path,
            validation_data=None if kind == "conv" else (X[:20], Y[:20]),
            callbacks=[*_callbacks(tmp_path / "b"), _InterruptAt(8)])
    assert (stopped.value.epoch, stopped.value.batch) == (1, 3)  # 6 batches per epoch
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # put back
    resumed = _model(kind)
    history = _fit(resumed, X, Y, kind, 3, tmp_path / "b", checkpoint=path, resume=True)
    _same_weights(reference, resumed)
    assert history.history == expected.history


def test_a_finished_checkpoint_resumes_to_more_epochs(tmp_path):
    X, Y = _data(np.float32)
    reference = _model("mlp")
    _fit(reference, X, Y, "mlp", 4, tmp_path / "a")
    first = _model("mlp")
    _fit(first, X, Y, "mlp", 2, tmp_path / "b", checkpoint=tmp_path / "c.safetensors")
    again = _model("mlp")
    _fit(again, X, Y, "mlp", 4, tmp_path / "b", checkpoint=tmp_path / "c.safetensors",
         resume=True)
    _same_weights(reference, again)


def test_resume_refuses_other_callbacks_and_needs_a_path(tmp_path):
    X, Y = _data(np.float32)
    model = _model("mlp")
    model.fit(X, Y, epochs=1, verbose=0, checkpoint=tmp_path / "c.safetensors")
    with pytest.raises(ValueError, match="stateful callbacks"):
        model.fit(X, Y, epochs=2, verbose=0, checkpoint=tmp_path / "c.safetensors",
                  resume=True, callbacks=[nn.EarlyStopping("loss")])
    with pytest.raises(ValueError, match="resume=True needs checkpoint"):
        model.fit(X, Y, epochs=2, verbose=0, resume=True)
    (tmp_path / "bad.safetensors").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="bad.safetensors"):
        model.fit(X, Y, epochs=2, verbose=0, checkpoint=tmp_path / "bad.safetensors",
                  resume=True)


class _Boom(nn.Callback):
    def on_epoch_end(self, epoch, logs):
        if epoch == 2:
            raise RuntimeError("boom")


def test_callbacks_get_on_train_end_on_any_error(tmp_path):
    X, Y = _data(np.float32)
    model = _model("mlp")
    stopper = nn.EarlyStopping("loss", patience=10, restore_best_weights=True)
    with pytest.raises(RuntimeError, match="boom"):
        model.fit(X, Y, epochs=5, verbose=0, callbacks=[stopper, _Boom()])
    # the best epoch's weights are back, not the last epoch's
    best = stopper.best_state
    assert best is not None
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(value, best[name])
    assert not model.training
