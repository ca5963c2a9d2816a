"""A diverging run stops before the update that would make weights NaN, with an error naming
the epoch, the iteration and the first layer that produced NaN or inf; best weights come back
when asked. Recurrent, convolutional and batch-norm models."""

from __future__ import annotations

import numpy as np
import pytest

import strata
from strata import nn
from strata.nn.fitloop import _finite


def _recurrent():
    X = np.random.default_rng(0).standard_normal((40, 6, 3)).astype(np.float32)
    return nn.Sequential([nn.LSTM(8), nn.Dense(1)]), X, X[:, -1, :1] * 2


def _conv():
    X = np.random.default_rng(0).standard_normal((40, 8, 8, 2)).astype(np.float32)
    return (nn.Sequential([nn.Conv2D(4, 3, activation="relu"), nn.Flatten(), nn.Dense(1)]), X,
            X[:, :1, :1, 0].reshape(-1, 1))


def _batch_norm():
    X = np.random.default_rng(0).standard_normal((40, 5)).astype(np.float32)
    return nn.Sequential([nn.Dense(8), nn.BatchNorm(), nn.Activation("relu"), nn.Dense(1)]), X, \
        X[:, :1] ** 2


@pytest.mark.parametrize("make", [_recurrent, _conv, _batch_norm])
def test_divergence_stops_before_the_update_and_restores_the_best_weights(make):
    strata.seed(0)
    model, X, Y = make()
    model.compile(optimizer="gd", lr=0.01, loss="mse")
    stopper = nn.EarlyStopping("loss", patience=10, restore_best_weights=True)
    explode = nn.LearningRateScheduler(lambda epoch: 0.01 if epoch < 3 else 1e30)
    with pytest.raises(FloatingPointError) as error, np.errstate(all="ignore"):
        model.fit(X, Y, epochs=20, batch_size=10, verbose=0, callbacks=[stopper, explode])
    message = str(error.value)
    assert "at epoch 3" in message or "at epoch 4" in message
    assert "iteration" in message and "before the update" in message
    assert "layer" in message or "the cost" in message
    assert all(np.isfinite(t.data).all() for _, t in model._named_tensors())
    for name, value in stopper.best_state.items():  # the best epoch's weights, restored
        np.testing.assert_array_equal(dict(model._named_tensors())[name].data, value)


def test_a_non_finite_weight_is_named():
    strata.seed(0)
    model, X, Y = _batch_norm()
    model.compile(loss="mse")
    model(X)
    model.layers[3].W.data[0, 0] = np.inf
    with pytest.raises(FloatingPointError, match=r"layers.3 \(Dense\).*layers.3.W"), \
            np.errstate(invalid="ignore"):  # NumPy's own warning about inf * 0 in the matmul
        model.fit(X, Y, epochs=1, verbose=0)


def test_detect_anomaly_names_the_op_and_layer():
    strata.seed(0)
    model, X, _ = _conv()
    model(X)
    model.layers[0].b.data[1] = np.nan
    with strata.detect_anomaly(model), pytest.raises(
            FloatingPointError, match=r"in layer layers.0 \(Conv2D\).*layers.0.b"):
        model(X)
    model(X)  # outside the block, no checks: NaN flows as NumPy's would
    assert np.isnan(model(X).data).all()


def test_gradient_check_is_exact_about_huge_but_finite_values():
    big = np.full(1000, 1e30, np.float32)  # its dot product overflows; the values are finite
    assert _finite([big, None])
    for bad in (np.nan, np.inf, -np.inf):
        g = np.zeros((10, 10), np.float32)
        g[3, 4] = bad
        assert not _finite([big, g])
