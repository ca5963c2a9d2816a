"""The fast kernels tested directly with NaN and inf, where the op registry's cases
(tests/test_nonfinite.py) do not reach them: the recurrent kernels' float32 tanh, both loops of
max pooling, relu, the batch statistics and the optimizers' update loops (fused and NumPy)."""

from __future__ import annotations

import numba
import numpy as np
import pytest
from optim_cases import CASES as OPTIMIZER_CASES
from test_nonfinite import VALUES, _assert_same_pattern

import strata
from strata.ops import kernels, parallel
from strata.ops import recurrent_kernels as rk
from strata.ops.nn import column_moments


@numba.njit
def _kernel_tanh(x):  # pragma: no cover - compiled
    out = np.empty_like(x)
    for i in range(x.size):  # a loop, as in the kernels: the vectorized form of the select
        out[i] = rk.tanh(x[i])
    return out


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_recurrent_tanh_is_numpys(dtype):
    """NaN, +-inf, +-0 and saturation (+-1) exactly as np.tanh; within 4 ulp elsewhere."""
    exact = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 20.0, -30.0, 1e30, -3e38], dtype)
    got = _kernel_tanh(exact)
    np.testing.assert_array_equal(got, np.tanh(exact))
    assert np.array_equal(np.signbit(got), np.signbit(np.tanh(exact)))
    x = np.linspace(-12, 12, 100001).astype(dtype)
    np.testing.assert_allclose(_kernel_tanh(x), np.tanh(x), rtol=4 * np.finfo(dtype).eps,
                               atol=np.finfo(dtype).tiny)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("channels", [3, 16])  # one window at a time; channels innermost
def test_max_pool_kernel_is_np_max_and_routes_to_the_nan(channels, dtype):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 6, 7, channels)).astype(dtype)
    for value in (np.nan, np.nan, np.inf, -np.inf):
        x.reshape(-1)[rng.choice(x.size, x.size // 10, replace=False)] = value
    out, arg = kernels.max_pool(x, 3, 2, 1, 4, 6)  # overlapping 3x2 windows, stride 1
    windows = np.lib.stride_tricks.sliding_window_view(x, (3, 2), axis=(1, 2))
    np.testing.assert_array_equal(out, windows.max(axis=(-2, -1)))
    expected_arg = np.empty_like(arg)
    for n, h, w, c in np.ndindex(arg.shape):
        window = windows[n, h, w, c].reshape(-1)
        nan = np.flatnonzero(np.isnan(window))  # the last NaN (PyTorch's), else the first max
        i = nan[-1] if nan.size else int(np.argmax(window))
        expected_arg[n, h, w, c] = (h + i // 2) * x.shape[2] + w + i % 2
    np.testing.assert_array_equal(arg, expected_arg)
    g = rng.standard_normal(out.shape).astype(dtype)
    dx = kernels.max_pool_backward(g, arg, x.shape)
    expected = np.zeros_like(x)
    n, _, _, c = np.indices(arg.shape)
    np.add.at(expected, (n, arg // x.shape[2], arg % x.shape[2], c), g)
    np.testing.assert_allclose(dx, expected, rtol=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_relu_and_batch_statistics_kernels_are_numpys(dtype):
    a = np.array([np.nan, np.inf, -np.inf, -1.0, 0.0, 2.0], dtype)
    out, dx = np.empty_like(a), np.empty_like(a)
    kernels.relu(a, out, 0, a.size)
    np.testing.assert_array_equal(out, np.maximum(a, 0))
    # The gradient passes where relu passed its input on: NaN included, as in PyTorch.
    kernels.relu_backward(np.ones_like(a), out, dx, 0, a.size)
    np.testing.assert_array_equal(dx, [1, 1, 0, 0, 0, 1])
    x = np.random.default_rng(0).standard_normal((5, 5)).astype(dtype)
    x[0, 0], x[2, 1], x[0, 2], x[3, 2], x[1, 3] = np.inf, np.nan, -np.inf, np.inf, -np.inf
    with np.errstate(invalid="ignore"):
        for got, expected in zip(column_moments(x), (x.mean(0), x.var(0)), strict=True):
            _assert_same_pattern(got, expected, "column moments")
            np.testing.assert_allclose(got[4], expected[4], rtol=1e-6)


def test_batch_norm_and_relu_split_across_threads_equal_one_part(monkeypatch):
    """Batches large enough to be split by rows (parallel.over_rows) give the same outputs,
    statistics and gradients as one part, NaN included."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((37, 5, 3, 4))
    x[3, 1, 2, 0] = np.nan
    g = rng.standard_normal(x.shape)
    gamma, beta = rng.standard_normal(4), rng.standard_normal(4)

    def run():
        xt = strata.tensor(x, requires_grad=True)
        gt, bt = strata.tensor(gamma, requires_grad=True), strata.tensor(beta, requires_grad=True)
        out, stats = strata.ops.batch_norm(xt, gt, bt)
        y = strata.relu(out)
        y.backward(g)
        return [y.data, *stats, xt.grad, gt.grad, bt.grad]

    one = run()
    monkeypatch.setattr(parallel, "MIN_ELEMENTS", 1)
    monkeypatch.setattr(parallel, "threads", lambda: 3)
    for got, expected in zip(run(), one, strict=True):
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("value", VALUES)
@pytest.mark.parametrize("case", OPTIMIZER_CASES, ids=lambda c: c.name)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_nonfinite_gradient_reaches_the_parameter(case, value, dtype):
    """A NaN or inf gradient element poisons its parameter element as the course's formula
    does (the fused numba Adam and the NumPy path alike), and no other element."""
    rng = np.random.default_rng(0)
    w0 = rng.standard_normal((4, 5)).astype(dtype)
    grads = [rng.standard_normal(w0.shape).astype(dtype) for _ in range(3)]
    grads[1][1, 2] = VALUES[value]  # after a finite step: the state holds real values
    expected, state = w0.astype(np.float64), {}
    with np.errstate(invalid="ignore"):
        for g in grads:
            expected = case.reference_step(expected, g.astype(np.float64), state)
        for contiguous in (True, False):  # a transposed view is not fusable: NumPy's formula
            w = strata.tensor(w0.copy() if contiguous else np.ascontiguousarray(w0.T).T,
                              requires_grad=True)
            assert strata.optim.kernels.fusable(w.data) == contiguous
            opt = case.make([w])
            for g in grads:
                w.grad = g.copy()
                opt.step()
            _assert_same_pattern(w.data, expected, f"contiguous={contiguous}")
            assert not np.isfinite(w.data[1, 2]) and np.isfinite(np.delete(w.data, 7)).all()
