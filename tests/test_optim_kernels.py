"""The fused numba Adam gives the NumPy formula's result, and is used when it can be."""

from __future__ import annotations

import numpy as np
import pytest

import strata
from strata.optim import Adam, kernels


@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-12), (np.float32, 1e-6)])
def test_fused_adam_matches_the_numpy_path(dtype, rtol):
    rng = np.random.default_rng(0)
    w0 = rng.standard_normal((6, 5)).astype(dtype)
    fused = strata.tensor(w0.copy(), requires_grad=True)
    # A transposed view is not C-contiguous, so its update takes the NumPy formula.
    plain = strata.tensor(np.ascontiguousarray(w0.T).T, requires_grad=True)
    assert kernels.fusable(fused.data) and not kernels.fusable(plain.data)
    opt_f, opt_p = Adam([fused], lr=0.01), Adam([plain], lr=0.01)
    for _ in range(5):
        g = rng.standard_normal(w0.shape).astype(dtype)
        fused.grad, plain.grad = g.copy(), g.copy()
        opt_f.step()
        opt_p.step()
    np.testing.assert_allclose(fused.data, plain.data, rtol=rtol)
    assert fused.data.dtype == dtype and not np.array_equal(fused.data, w0)


def test_fusable_rejects_mixed_or_non_float_arrays():
    a = np.zeros(3, np.float32)
    assert not kernels.fusable(a, np.zeros(3, np.float64))
    assert not kernels.fusable(np.zeros(3, np.int64))
