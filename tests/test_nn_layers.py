"""Layers: a registry of layer cases (gradient-checked in float64, compared with PyTorch) and
the behaviour of each layer."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

import strata
import strata.nn as nn

# name -> (factory, input shape). Every Module class exported by strata.nn needs one.
LAYER_CASES = {
    "Dense": (lambda: nn.Dense(4, "tanh"), (5, 3)),
    "Dense_no_bias": (lambda: nn.Dense(4, use_bias=False), (5, 3)),
    "Dense_sequence": (lambda: nn.Dense(2, "sigmoid"), (2, 3, 4)),
    "Activation": (lambda: nn.Activation("softmax"), (4, 3)),
    "Flatten": (lambda: nn.Sequential([nn.Flatten(), nn.Dense(2)]), (3, 2, 2, 2)),
    "Dropout": (lambda: nn.Sequential([nn.Dense(3), nn.Dropout(0.7)]), (6, 4)),
    "BatchNorm": (lambda: nn.Sequential([nn.Dense(3, use_bias=False), nn.BatchNorm()]), (6, 4)),
    "BatchNorm_eval": (lambda: nn.Sequential([nn.Dense(3), nn.BatchNorm()]), (6, 4)),
    "Sequential": (lambda: nn.Sequential([nn.Dense(5, "relu"), nn.Dense(2, "leaky_relu")]),
                   (4, 3)),
}


def _build(name, dtype=np.float64):
    factory, shape = LAYER_CASES[name]
    strata.seed(0)
    with strata.default_dtype(dtype):
        layer = factory()
        x = np.random.default_rng(1).standard_normal(shape).astype(dtype)
        layer(x)  # builds lazily-created parameters
    if name.endswith("_eval"):
        layer.train()(x)  # one training step moves the running averages off their defaults
        layer.eval()
    return layer, x


def test_every_exported_layer_has_a_case():
    classes = [n for n in nn.__all__ if inspect.isclass(getattr(nn, n))
               and issubclass(getattr(nn, n), nn.Module) and n not in ("Module", "Model")]
    covered = {name.split("_")[0] for name in LAYER_CASES}
    assert sorted(set(classes) - covered) == []


@pytest.mark.parametrize("name", sorted(LAYER_CASES))
def test_layer_gradients(name):
    layer, x = _build(name)
    # Parameters, through the whole-model checker...
    upstream = np.random.default_rng(2).standard_normal(layer(x).shape)
    if layer.parameters():
        report = strata.check_model_gradients(lambda: (layer(x) * upstream).sum(), layer)
        assert report.passed, str(report)
    # ...and the input.
    assert strata.gradcheck(layer, x)[0] < 1e-7


def test_dense_builds_lazily_with_the_course_shapes():
    layer = nn.Dense(20, "relu")
    assert layer.parameters() == []
    out = layer(np.ones((7, 12288), dtype=np.float32))
    assert out.shape == (7, 20) and out.dtype == np.float32
    assert layer.W.shape == (12288, 20) and layer.b.shape == (20,)
    with pytest.raises(strata.ShapeError, match=r"Dense\(20\).*12288.*\(7, 10\)"):
        layer(np.ones((7, 10), dtype=np.float32))


def test_dense_rejects_bad_arguments():
    with pytest.raises(ValueError, match="positive number of units"):
        nn.Dense(0)
    with pytest.raises(ValueError, match="unknown activation 'relux'"):
        nn.Dense(3, "relux")
    with pytest.raises(ValueError, match="unknown initializer 'hee'"):
        nn.Dense(3, kernel_initializer="hee")


def test_batchnorm_normalizes_and_tracks_running_averages():
    layer = nn.BatchNorm(momentum=0.9)
    x = np.random.default_rng(0).normal(3.0, 2.0, (256, 4)).astype(np.float32)
    out = layer(x).data
    np.testing.assert_allclose(out.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(out.var(axis=0), 1, atol=1e-3)
    np.testing.assert_allclose(layer.running_mean.data, 0.1 * x.mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(layer.running_var.data, 0.9 + 0.1 * x.var(axis=0), rtol=1e-5)
    layer.eval()
    expected = (x - layer.running_mean.data) / np.sqrt(layer.running_var.data + 1e-3)
    np.testing.assert_allclose(layer(x).data, expected, rtol=1e-4, atol=1e-5)
    with pytest.raises(strata.ShapeError, match="4 features"):
        layer(np.ones((2, 5), dtype=np.float32))


def test_batchnorm_works_on_nhwc_channels():
    x = np.random.default_rng(0).normal(1.0, 3.0, (4, 5, 5, 3))
    out = nn.BatchNorm()(x).data
    np.testing.assert_allclose(out.mean(axis=(0, 1, 2)), 0, atol=1e-7)


def test_dropout_keeps_the_expected_share_and_is_off_in_eval():
    strata.seed(0)
    layer = nn.Dropout(keep_prob=0.8)
    x = np.ones((200, 500), dtype=np.float32)
    out = layer(x).data
    assert abs((out > 0).mean() - 0.8) < 0.01
    np.testing.assert_allclose(np.unique(out), [0, 1 / 0.8], rtol=1e-6)
    assert abs(out.mean() - 1) < 0.02  # inverted dropout keeps the expected activation
    layer.eval()
    assert (layer(x).data == x).all()
    for bad in (0, 1.5, -0.1):
        with pytest.raises(ValueError, match="keep_prob"):
            nn.Dropout(bad)


def test_flatten_and_activation():
    assert nn.Flatten()(np.zeros((2, 64, 64, 3))).shape == (2, 12288)
    np.testing.assert_allclose(nn.Activation("sigmoid")(np.zeros(3)).data, 0.5)
    assert repr(nn.Activation("relu")) == "Activation('relu')"
