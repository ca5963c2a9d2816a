"""The course's ready-made networks, and regularization in compile."""

from __future__ import annotations

import numpy as np
import pytest

import strata
from strata.data import moons, planar_flower
from strata.losses import l2_penalty
from strata.models import deep_network, logistic_regression, shallow_network


def test_deep_network_has_the_course_shapes_and_count(capsys):
    model = deep_network([12288, 20, 7, 5, 1])
    assert [layer.W.shape for layer in model.layers] == [(12288, 20), (20, 7), (7, 5), (5, 1)]
    assert model.summary() == 245_973
    std = model.layers[0].W.data.std()
    assert abs(std * np.sqrt(12288) - 1) < 0.05  # randn / sqrt(n_prev)
    assert deep_network([4, 3, 1]).layers[-1].activation.__name__ == "sigmoid"
    assert deep_network([4, 3, 3]).layers[-1].activation.__name__ == "softmax"
    with pytest.raises(ValueError, match="at least two positive layer sizes"):
        deep_network([5])


def test_logistic_regression_cannot_fit_the_flower_but_the_shallow_net_can():
    strata.seed(1)
    X, Y = planar_flower()
    lr = logistic_regression(2).compile(optimizer="gd", lr=1.0, loss="binary_crossentropy",
                                        metrics=["accuracy"])
    lr.fit(X, Y, epochs=500, batch_size=None, verbose=0)
    assert lr.evaluate(X, Y)["accuracy"] < 0.6  # the course: 47 %
    net = shallow_network(2).compile(optimizer="gd", lr=1.2, loss="binary_crossentropy",
                                     metrics=["accuracy"])
    net.fit(X, Y, epochs=2000, batch_size=None, verbose=0)
    assert net.evaluate(X, Y)["accuracy"] >= 0.88  # the course: about 90 %


def test_l2_regularization_is_in_the_reported_cost():
    strata.seed(0)
    X, Y = moons(64)
    model = deep_network([2, 5, 1])
    model.compile(optimizer="gd", lr=0.1, loss="binary_crossentropy", l2=0.7)
    plain = strata.losses.binary_crossentropy(strata.tensor(model.predict(X)), Y).item()
    weights = [layer.W for layer in model.layers]
    expected = plain + l2_penalty(weights, 0.7, 64).item()
    assert model.evaluate(X, Y)["loss"] == pytest.approx(expected, rel=1e-5)
    # weight decay: with the penalty alone (lr on a zero-gradient loss), W shrinks by lr*lambd/m
    before = model.layers[0].W.data.copy()
    model.compile(optimizer="gd", lr=0.1, loss=lambda out, y: (out * 0).sum(), l2=0.7)
    model.fit(X, Y, epochs=1, batch_size=None, verbose=0)
    np.testing.assert_allclose(model.layers[0].W.data, before * (1 - 0.1 * 0.7 / 64), rtol=1e-5)
    with pytest.raises(ValueError, match="l2 >= 0"):
        model.compile(l2=-1)


def test_per_layer_regularization_overrides_the_model():
    strata.seed(0)
    X, Y = moons(64)
    model = strata.nn.Sequential([strata.nn.Dense(5, "relu", l2=0.3), strata.nn.Dense(4, l1=0.2),
                                  strata.nn.Dense(1, "sigmoid", l2=0)])
    model.compile(optimizer="gd", lr=0.1, loss="binary_crossentropy", l2=0.7)
    model.build(X.shape[1:])
    W1, W2, W3 = (layer.W for layer in model.layers)
    plain = strata.losses.binary_crossentropy(strata.tensor(model.predict(X)), Y).item()
    # layer 1: its own l2; layer 2: its own l1 and the model's l2; layer 3: l2 switched off
    expected = (plain + l2_penalty([W1], 0.3, 64).item() + l2_penalty([W2], 0.7, 64).item()
                + strata.losses.l1_penalty([W2], 0.2, 64).item())
    assert model.evaluate(X, Y)["loss"] == pytest.approx(expected, rel=1e-5)
    restored = strata.nn.Sequential.from_config(model.get_config())
    assert [(layer.l2, layer.l1) for layer in restored.layers] == [(0.3, None), (None, 0.2),
                                                                   (0, None)]
    with pytest.raises(ValueError, match=r"Dense\(3\): expected l1 >= 0"):
        strata.nn.Dense(3, l1=-0.1)


def test_metrics_see_probabilities_when_training_on_logits():
    strata.seed(0)
    X, Y = moons(200, noise=0.1)
    model = deep_network([2, 8, 1])
    model.layers[-1].activation = strata.nn.get_activation("linear")
    model.compile(optimizer="adam", lr=0.05, loss="binary_crossentropy_from_logits",
                  metrics=["accuracy"])
    history = model.fit(X, Y, epochs=30, batch_size=32, verbose=0)
    assert history["accuracy"][-1] > 0.8
    assert model.evaluate(X, Y)["accuracy"] > 0.8


def _moons_accuracy(optimizer, epochs=3000, **kwargs):
    # Seed 3 (the course's) draws a He init whose 2-unit layer is dead on these moons
    # (scikit-learn's make_moons, as in the course): every optimizer stays at 50 %.
    strata.seed(0)
    X, Y = moons(300, noise=0.2)
    model = deep_network([2, 5, 2, 1], initializer="he")
    model.compile(optimizer=optimizer, lr=0.0007, loss="binary_crossentropy",
                  metrics=["accuracy"], **kwargs)
    model.fit(X, Y, epochs=epochs, batch_size=64, verbose=0)
    return model.evaluate(X, Y)["accuracy"]


def test_adam_beats_gd_and_momentum_on_moons_at_the_course_settings():
    """Course 2 week 2: lr 0.0007, mini-batches of 64, [2, 5, 2, 1] with He init."""
    gd, momentum = _moons_accuracy("gd"), _moons_accuracy("momentum", beta=0.9)
    adam = _moons_accuracy("adam")
    assert adam >= 0.9 and adam > max(gd, momentum) + 0.05, (gd, momentum, adam)
