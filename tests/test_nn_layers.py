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
    "Conv2D": (lambda: nn.Conv2D(3, 3, padding="same", activation="tanh"), (2, 5, 6, 2)),
    "Conv2D_strided": (lambda: nn.Conv2D(2, 2, strides=2, use_bias=False), (2, 7, 7, 3)),
    "MaxPool2D": (lambda: nn.MaxPool2D(3, strides=2, padding="same"), (2, 7, 6, 2)),
    "AvgPool2D": (lambda: nn.AvgPool2D(2), (2, 6, 5, 3)),
    "ZeroPadding2D": (lambda: nn.ZeroPadding2D(((1, 2), (0, 1))), (2, 3, 4, 2)),
    "GlobalAveragePooling2D": (lambda: nn.GlobalAveragePooling2D(), (3, 4, 5, 2)),
    "LeakyReLU": (lambda: nn.Sequential([nn.Dense(3), nn.LeakyReLU(0.1)]), (4, 3)),
    "SpaceToDepth": (lambda: nn.SpaceToDepth(2), (2, 4, 6, 3)),
    "SpaceToDepth_darknet": (lambda: nn.Sequential([nn.Conv2D(4, 1, activation="tanh"),
                                                    nn.SpaceToDepth(2, "darknet")]),
                             (2, 4, 4, 2)),
    "BatchNorm_channels": (lambda: nn.Sequential([nn.Conv2D(3, 3, use_bias=False),
                                                  nn.BatchNorm()]), (4, 5, 5, 2)),
    "BatchNorm_relu": (lambda: nn.Sequential([nn.Conv2D(3, 3, use_bias=False),
                                              nn.BatchNorm(activation="relu")]), (4, 5, 5, 2)),
    "BatchNorm_tanh": (lambda: nn.Sequential([nn.Dense(3), nn.BatchNorm(activation="tanh")]),
                       (6, 4)),
    "Add": (lambda: _TwoInputs(nn.Add()), (3, 4)),
    "Concatenate": (lambda: _TwoInputs(nn.Concatenate()), (2, 3, 3, 2)),
    "Residual": (lambda: nn.Residual([nn.Conv2D(3, 3, padding="same"), nn.BatchNorm(),
                                      nn.Activation("tanh"), nn.Conv2D(3, 1)],
                                     [nn.Conv2D(3, 1)], activation="tanh"), (2, 4, 4, 2)),
    "Residual_identity": (lambda: nn.Residual([nn.Dense(4, "tanh"), nn.Dense(4)],
                                              activation="sigmoid"), (3, 4)),
    "Parallel": (lambda: nn.Parallel([[nn.Conv2D(2, 1, activation="tanh")],
                                      [nn.Conv2D(3, 3, padding="same")],
                                      [nn.AvgPool2D(3, 1, "same")]]), (2, 4, 5, 2)),
    # Sequences (m, T_x, n_x); tests/test_recurrent_*.py check them further.
    "SimpleRNN": (lambda: nn.SimpleRNN(4, return_sequences=True), (2, 5, 3)),
    "SimpleRNN_last": (lambda: nn.SimpleRNN(3, reverse=True), (3, 4, 2)),
    "GRU": (lambda: nn.GRU(4, return_sequences=True), (2, 5, 3)),
    "GRU_reset_after": (lambda: nn.GRU(3, reset_after=True), (2, 4, 3)),
    "LSTM": (lambda: nn.LSTM(4, return_sequences=True), (2, 5, 3)),
    "LSTM_reverse": (lambda: nn.LSTM(3, reverse=True), (3, 4, 2)),
    "Bidirectional": (lambda: nn.Bidirectional(nn.GRU(3, return_sequences=True)), (2, 4, 3)),
    "Bidirectional_ave": (lambda: nn.Bidirectional(nn.LSTM(2), "ave"), (2, 3, 3)),
    "TimeDistributed": (lambda: nn.TimeDistributed(nn.Dense(2, "tanh")), (2, 4, 3)),
    "Embedding": (lambda: _Tokens(nn.Embedding(6, 3), 6), (2, 5)),
    "OneHot": (lambda: _Tokens(nn.OneHot(4), 4), (2, 5)),
}


class _Tokens(nn.Module):
    """Token ids drawn from float inputs x (locally constant), the layer's vectors scaled by x
    so that the input gradient is not trivially zero."""

    def __init__(self, layer, vocab_size):
        self.layer, self.vocab_size = layer, vocab_size

    def forward(self, x):
        x = x if isinstance(x, strata.Tensor) else strata.tensor(x)
        ids = (np.abs(x.data) * 10).astype(np.int64) % self.vocab_size
        return self.layer(ids) * strata.reshape(x, (*x.shape, 1))


class _TwoInputs(nn.Module):
    """A merge layer fed with x and a fixed nonlinear function of x."""

    def __init__(self, merge):
        self.merge = merge

    def forward(self, x):
        x = x if isinstance(x, strata.Tensor) else strata.tensor(x)
        return self.merge(x, strata.tanh(x) * 2.0)


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


def test_batchnorm_with_relu_equals_batchnorm_then_relu():
    rng = np.random.default_rng(3)
    x = rng.normal(0.5, 2.0, (6, 4, 5, 3)).astype(np.float32)
    x[0, 1, 2, 1] = np.nan  # NaN passes through both, forward and backward
    upstream = rng.standard_normal(x.shape).astype(np.float32)
    fused, plain = nn.BatchNorm(activation="relu"), nn.BatchNorm()
    for layer in (fused, plain):
        layer(x[1:])  # builds, and moves the running averages off their defaults
        layer.gamma.data[...] = [1.5, -0.5, 2.0]
        layer.beta.data[...] = [0.1, 0.3, -0.2]
    for training in (True, False):
        results = []
        for layer, after in ((fused, lambda t: t), (plain, strata.relu)):
            layer.train(training)
            xt = strata.tensor(x, requires_grad=True)
            out = after(layer(xt))
            (out * upstream).sum().backward()
            results.append([out.data, xt.grad, layer.gamma.grad, layer.beta.grad])
            layer.zero_grad()
        for a, b in zip(*results):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
        assert np.isnan(results[0][0][0, 1, 2, 1])
        assert (results[0][0][~np.isnan(results[0][0])] >= 0).all()
    np.testing.assert_array_equal(fused.running_mean.data, plain.running_mean.data)
    assert "activation='relu'" in repr(fused)
    assert nn.BatchNorm(activation="relu").get_config()["activation"] == "relu"


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


def test_conv_layers_name_the_layer_and_shapes_in_errors():
    conv = nn.Conv2D(8, 3)
    conv(np.ones((1, 6, 6, 3), dtype=np.float32))
    with pytest.raises(strata.ShapeError, match=r"Conv2D\(8\): expected 3 input channels.*"
                                                r"\(1, 6, 6, 4\)"):
        conv(np.ones((1, 6, 6, 4), dtype=np.float32))
    with pytest.raises(strata.ShapeError, match=r"Conv2D\(8\): expected a 4-D NHWC input.*"
                                                r"\(6, 6, 3\)"):
        conv(np.ones((6, 6, 3), dtype=np.float32))
    with pytest.raises(strata.ShapeError, match=r"window 3x3 is larger than the padded input "
                                                r"2x2"):
        conv(np.ones((1, 2, 2, 3), dtype=np.float32))
    with pytest.raises(strata.ShapeError, match=r"MaxPool2D: expected a 4-D NHWC input"):
        nn.MaxPool2D()(np.ones((4, 4), dtype=np.float32))
    with pytest.raises(ValueError, match=r"Conv2D\(4\): expected padding 'valid', 'same'"):
        nn.Conv2D(4, 3, padding="full")
    with pytest.raises(ValueError, match=r"Conv2D\(4\): expected kernel_size to be a positive"):
        nn.Conv2D(4, 0)
    with pytest.raises(strata.ShapeError, match=r"Add: expected inputs of one shape"):
        nn.Add()(np.ones((2, 3)), np.ones((2, 4)))
    with pytest.raises(strata.ShapeError, match=r"Residual: the main path gives \(1, 4, 4, 5\) "
                                                r"but the shortcut gives \(1, 4, 4, 3\)"):
        nn.Residual([nn.Conv2D(5, 3, padding="same")])(np.ones((1, 4, 4, 3), np.float32))


def test_conv_shapes_follow_the_course_formula():
    x = np.ones((2, 11, 10, 3), dtype=np.float32)
    for f, s, p in [(3, 1, 0), (5, 2, 1), (4, 3, 2), (1, 1, 0)]:
        out = nn.Conv2D(2, f, strides=s, padding=p)(x)
        assert out.shape[1:3] == ((11 + 2 * p - f) // s + 1, (10 + 2 * p - f) // s + 1)
    for s in (1, 2, 3):  # "same": ceil(n / s)
        assert nn.Conv2D(2, 4, strides=s, padding="same")(x).shape[1:3] == (-(-11 // s),
                                                                            -(-10 // s))
        assert nn.MaxPool2D(3, s, "same")(x).shape[1:3] == (-(-11 // s), -(-10 // s))


def test_conv_network_saves_loads_and_freezes(tmp_path):
    strata.seed(0)
    model = nn.Sequential([
        nn.Conv2D(4, 3, padding="same", activation="relu"), nn.BatchNorm(), nn.MaxPool2D(2),
        nn.Residual([nn.Conv2D(4, 3, padding="same")]),
        nn.Parallel([[nn.Conv2D(2, 1)], [nn.AvgPool2D(3, 1, "same")]]),
        nn.ZeroPadding2D(1), nn.GlobalAveragePooling2D(), nn.Dense(3)])
    x = np.random.default_rng(0).standard_normal((2, 8, 8, 2)).astype(np.float32)
    model.train()(x)  # moves batch norm's running averages
    model.eval()
    path = strata.save_model(model, tmp_path / "cnn.safetensors")
    restored = strata.load_model(path)
    np.testing.assert_array_equal(restored.predict(x), model.predict(x))
    body, head = model.layers[:-1], model.layers[-1]
    for layer in body:
        layer.trainable = False
    assert model.parameters() == [head.W, head.b]
    assert not body[0].trainable and head.trainable
    assert not body[1].running_mean.requires_grad
    body[1].trainable = True
    assert body[1].gamma.requires_grad and not body[1].running_mean.requires_grad
