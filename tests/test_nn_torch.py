"""Layers against PyTorch: same weights, same inputs, same upstream gradient."""

from __future__ import annotations

import numpy as np
import pytest

import strata
import strata.nn as nn

torch = pytest.importorskip("torch", reason="torch not installed: PyTorch comparisons skipped "
                                            "(pip install torch==2.13.0)")


def _inputs(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def _compare(layer, torch_layer, x, torch_params):
    """Forward, input gradient and parameter gradients equal under one upstream gradient.
    Each side runs forward exactly once (batch norm's running averages move on every call)."""
    xt = torch.from_numpy(x).requires_grad_()
    out_t = torch_layer(xt)
    g = np.random.default_rng(9).standard_normal(tuple(out_t.shape))
    out_t.backward(torch.from_numpy(g))
    xs = strata.tensor(x, requires_grad=True)
    layer.zero_grad()
    out = layer(xs)
    out.backward(g)
    np.testing.assert_allclose(out.data, out_t.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(xs.grad, xt.grad.numpy(), rtol=1e-10, atol=1e-12)
    for ours, theirs in torch_params(layer):
        np.testing.assert_allclose(ours.grad, theirs().grad.numpy(), rtol=1e-10, atol=1e-12)


def test_dense_matches_torch_linear():
    x = _inputs((6, 4))
    with strata.default_dtype(np.float64):
        layer = nn.Dense(3, "tanh")
        layer.build(4)
    lin = torch.nn.Linear(4, 3).double()
    with torch.no_grad():  # torch keeps W as (out, in): the transpose of ours
        lin.weight.copy_(torch.from_numpy(layer.W.data.T))
        lin.bias.copy_(torch.from_numpy(layer.b.data))
    _compare(layer, lambda t: torch.tanh(lin(t)), x,
             lambda m: [(m.W, lambda: _T(lin.weight)), (m.b, lambda: lin.bias)])


class _T:
    """A torch weight viewed as ours: gradient transposed."""

    def __init__(self, p):
        self.p = p

    @property
    def grad(self):
        return self.p.grad.T


def test_batchnorm_matches_torch_batchnorm1d_in_training_and_eval():
    x = _inputs((16, 5), seed=3)
    with strata.default_dtype(np.float64):
        layer = nn.BatchNorm(momentum=0.9, epsilon=1e-3)
        layer.build(5)
    bn = torch.nn.BatchNorm1d(5, eps=1e-3, momentum=0.1).double()
    _compare(layer, bn, x, lambda m: [(m.gamma, lambda: bn.weight), (m.beta, lambda: bn.bias)])
    # torch's running mean follows the same average (its momentum is our 1 - momentum); its
    # running variance uses the unbiased batch variance, ours the population one, as Keras.
    np.testing.assert_allclose(layer.running_mean.data, bn.running_mean.numpy(), rtol=1e-10)
    n = x.shape[0]
    np.testing.assert_allclose(layer.running_var.data, 0.9 + 0.1 * x.var(axis=0), rtol=1e-10)
    expected_torch = 0.9 + 0.1 * x.var(axis=0) * n / (n - 1)
    np.testing.assert_allclose(bn.running_var.numpy(), expected_torch, rtol=1e-10)
    # Eval mode with the same statistics loaded gives the same outputs and gradients.
    with torch.no_grad():
        bn.running_var.copy_(torch.from_numpy(layer.running_var.data))
    layer.eval()
    bn.eval()
    bn.zero_grad()
    _compare(layer, bn, x, lambda m: [(m.gamma, lambda: bn.weight), (m.beta, lambda: bn.bias)])


def test_dropout_in_eval_mode_matches_torch():
    x = _inputs((4, 6))
    layer = nn.Dropout(0.5).eval()
    drop = torch.nn.Dropout(0.5).eval()
    _compare(layer, drop, x, lambda m: [])


def test_mlp_matches_torch_sequential():
    x = _inputs((8, 5), seed=4)
    with strata.default_dtype(np.float64):
        model = nn.Sequential([nn.Dense(6, "relu"), nn.Dense(4, "sigmoid"), nn.Dense(2)])
        model(x)  # builds the Dense layers
    linears = [torch.nn.Linear(d.W.shape[0], d.W.shape[1]).double() for d in model.layers]
    with torch.no_grad():
        for lin, d in zip(linears, model.layers, strict=True):
            lin.weight.copy_(torch.from_numpy(d.W.data.T))
            lin.bias.copy_(torch.from_numpy(d.b.data))
    net = torch.nn.Sequential(linears[0], torch.nn.ReLU(), linears[1], torch.nn.Sigmoid(),
                              linears[2])
    pairs = [(p, (lambda q=q: q)) for d, lin in zip(model.layers, linears, strict=True)
             for p, q in ((d.b, lin.bias),)]
    _compare(model, net, x, lambda m: pairs)
    for d, lin in zip(model.layers, linears, strict=True):
        np.testing.assert_allclose(d.W.grad, lin.weight.grad.numpy().T, rtol=1e-10, atol=1e-12)


class _NHWC:
    """A torch NCHW layer applied to our NHWC layout."""

    def __init__(self, layer):
        self.layer = layer

    def __call__(self, t):
        return self.layer(t.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)


class _Kernel:
    """A torch conv weight (n_C, n_C_prev, f, f) viewed as ours (f, f, n_C_prev, n_C)."""

    def __init__(self, p):
        self.p = p

    @property
    def grad(self):
        return self.p.grad.permute(2, 3, 1, 0)


@pytest.mark.parametrize("f, s, padding", [(3, 1, "same"), (5, 2, 2), (2, 2, "valid"),
                                           (1, 1, "valid")])
def test_conv2d_layer_matches_torch_conv2d(f, s, padding):
    x = _inputs((2, 9, 7, 3), seed=4)
    with strata.default_dtype(np.float64):
        layer = nn.Conv2D(4, f, strides=s, padding=padding, activation="relu")
        layer.build(3)
    torch_padding = (f - 1) // 2 if padding == "same" else (0 if padding == "valid" else padding)
    conv = torch.nn.Conv2d(3, 4, f, stride=s, padding=torch_padding).double()
    with torch.no_grad():
        conv.weight.copy_(torch.from_numpy(layer.W.data.transpose(3, 2, 0, 1)))
        conv.bias.copy_(torch.from_numpy(layer.b.data))
    _compare(layer, _NHWC(lambda t: torch.relu(conv(t))), x,
             lambda m: [(m.W, lambda: _Kernel(conv.weight)), (m.b, lambda: conv.bias)])


def test_batchnorm_over_channels_matches_torch_batchnorm2d():
    x = _inputs((4, 5, 3, 6), seed=5)
    with strata.default_dtype(np.float64):
        layer = nn.BatchNorm(momentum=0.9, epsilon=1e-3)
        layer.build(6)
    bn = torch.nn.BatchNorm2d(6, eps=1e-3, momentum=0.1).double()

    def params(m):
        return [(m.gamma, lambda: bn.weight), (m.beta, lambda: bn.bias)]

    _compare(layer, _NHWC(bn), x, params)
    np.testing.assert_allclose(layer.running_mean.data, bn.running_mean.numpy(), rtol=1e-10)
    with torch.no_grad():  # torch's running variance is unbiased; load ours to compare eval
        bn.running_var.copy_(torch.from_numpy(layer.running_var.data))
    layer.eval()
    bn.eval()
    bn.zero_grad()
    _compare(layer, _NHWC(bn), x, params)
