"""Keras's fit options: validation_split, initial_epoch, verbose 0/1/2, and the bad inputs fit
refuses before any work (with what it expected and what it got)."""

from __future__ import annotations

import numpy as np
import pytest

import strata
from strata import nn
from strata.nn.progress import ProgressBar


def _data(m=50):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((m, 4)).astype(np.float32)
    return X, (X[:, 0] > 0).astype(np.float32)[:, None]


def _model():
    strata.seed(0)
    model = nn.Sequential([nn.Dense(5, "relu"), nn.Dense(1, "sigmoid")])
    model.compile(optimizer="adam", lr=0.01, loss="binary_crossentropy", metrics=["accuracy"])
    return model


def _same(a, b):
    for (_, t), (_, u) in zip(a._named_tensors(), b._named_tensors(), strict=True):
        np.testing.assert_array_equal(t.data, u.data)


def test_validation_split_holds_out_the_last_examples():
    X, Y = _data()
    split = _model()
    h1 = split.fit(X, Y, epochs=3, batch_size=8, validation_split=0.2, verbose=0)
    manual = _model()
    h2 = manual.fit(X[:40], Y[:40], epochs=3, batch_size=8, validation_data=(X[40:], Y[40:]),
                    verbose=0)
    _same(split, manual)
    assert h1.history == h2.history and "val_accuracy" in h1.history


def test_initial_epoch_counts_epochs_from_it():
    X, Y = _data()
    seen = []

    class Epochs(nn.Callback):
        def on_epoch_begin(self, epoch, logs):
            seen.append(epoch)

    history = _model().fit(X, Y, epochs=5, initial_epoch=3, verbose=0, callbacks=[Epochs()])
    assert seen == [3, 4] and len(history["loss"]) == 2


def test_verbose_2_prints_one_line_per_epoch(capsys):
    X, Y = _data()
    _model().fit(X, Y, epochs=3, batch_size=16, verbose=2, validation_split=0.2)
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split(" - ")[0] for line in lines] == ["Epoch 1/3", "Epoch 2/3", "Epoch 3/3"]
    assert all("loss: " in line and "val_accuracy: " in line for line in lines)


def test_verbose_1_moves_the_bar_every_batch(monkeypatch):
    X, Y = _data()
    seen = []
    original = ProgressBar.on_batch_end

    def spy(self, iteration, logs):
        original(self, iteration, logs)
        seen.append(self.bar.n)

    monkeypatch.setattr(ProgressBar, "on_batch_end", spy)
    _model().fit(X, Y, epochs=2, batch_size=16, verbose=1)
    assert seen == list(range(1, 9))  # 4 batches a epoch, 2 epochs


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"epochs": 2.0}, r"epochs to be an integer >= 1, got 2.0 \(float\)"),
    ({"epochs": 0}, "epochs to be an integer >= 1, got 0"),
    ({"batch_size": 0}, "batch_size to be an integer >= 1"),
    ({"verbose": 3}, "verbose 0, 1 or 2, got 3"),
    ({"validation_split": 1.0}, r"validation_split in \[0, 1\), got 1.0"),
    ({"validation_data": ([1], [2], [3])}, r"validation_data=\(X_val, Y_val\), got a tuple of 3"),
    ({"validation_data": np.zeros(3)}, r"validation_data=\(X_val, Y_val\), got ndarray"),
    ({"initial_epoch": -1}, "initial_epoch to be an integer >= 0"),
    ({"checkpoint_every": 0}, "checkpoint_every to be an integer >= 1"),
])
def test_bad_fit_options_are_refused(kwargs, message):
    X, Y = _data()
    with pytest.raises(ValueError, match=message):
        _model().fit(X, Y, **{"verbose": 0, **kwargs})


def test_numpy_integers_are_accepted_and_none_callbacks_mean_none():
    X, Y = _data()
    history = _model().fit(X, Y, epochs=np.int64(2), batch_size=np.int32(16), callbacks=None,
                           verbose=0)
    assert len(history["loss"]) == 2


@pytest.mark.parametrize(("X", "Y", "message"), [
    (np.ones((4, 2), complex), np.ones((4, 1)), "got dtype complex128; complex numbers"),
    (np.ones((4, 2), bool), np.ones((4, 1)), "got dtype bool; convert booleans"),
    (np.ones((4, 0)), np.ones((4, 1)), r"at least one feature, got \(4, 0\)"),
    (np.ones((4, 2)), np.array(["cat", "dog", "cat", "dog"]), "labels Y of real numbers .*<U3"
     ".*np.unique"),
    (np.ones((4, 2)), np.array([1, None, 0, 1], dtype=object), "convert it to a numeric"),
])
def test_bad_data_is_refused_with_what_was_expected(X, Y, message):
    with pytest.raises((TypeError, ValueError), match=message):
        _model().fit(X, Y, verbose=0)


def test_class_weight_and_sample_weight_weight_the_loss():
    X, Y = _data()
    plain = _model().fit(X, Y, epochs=1, batch_size=50, verbose=0, shuffle=False)
    doubled = _model().fit(X, Y, epochs=1, batch_size=50, verbose=0, shuffle=False,
                           sample_weight=np.full(50, 2.0))
    assert np.isclose(doubled.costs[0], 2 * plain.costs[0], rtol=1e-6)
    weights = np.where(Y[:, 0] == 1, 3.0, 0.5)
    by_class = _model().fit(X, Y, epochs=2, batch_size=16, verbose=0, class_weight={0: 0.5, 1: 3})
    by_sample = _model().fit(X, Y, epochs=2, batch_size=16, verbose=0, sample_weight=weights)
    assert by_class.costs == by_sample.costs
    with pytest.raises(ValueError, match=r"sample_weight of shape \(50,\)"):
        _model().fit(X, Y, verbose=0, sample_weight=np.ones(49))
    with pytest.raises(ValueError, match=r"missing \[1\]"):
        _model().fit(X, Y, verbose=0, class_weight={0: 1.0})


def test_two_inputs_train_with_validation_split():
    @nn.register
    class Pair(nn.Model):
        def __init__(self):
            self.a, self.b, self.head = nn.Dense(3), nn.Dense(3), nn.Dense(1, "sigmoid")

        def forward(self, x1, x2):
            return self.head(self.a(x1) + self.b(x2))

    X, Y = _data()
    strata.seed(0)
    model = Pair()
    model.compile(loss="binary_crossentropy", metrics=["accuracy"])
    history = model.fit((X, X[:, :2]), Y, epochs=2, validation_split=0.2, verbose=0)
    assert len(history["val_accuracy"]) == 2 and model.predict((X, X[:, :2])).shape == (50, 1)
    with pytest.raises(ValueError, match=r"X\[0\] and X\[1\] have 50 and 49"):
        model.fit((X, X[:49, :2]), Y, verbose=0)
