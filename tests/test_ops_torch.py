"""Every registry case compared with PyTorch: forward values and gradients for one upstream
gradient. Skipped, with the reason shown, when torch is not installed."""

from __future__ import annotations

import numpy as np
import pytest
from op_cases import ALL_CASES, case_id

import strata
from strata import Tensor

torch = pytest.importorskip(
    "torch", reason="torch not installed: PyTorch comparisons skipped (pip install torch==2.13.0)")

TOLERANCE = {np.dtype(np.float64): {"rtol": 1e-10, "atol": 1e-12},
             np.dtype(np.float32): {"rtol": 1e-6, "atol": 1e-7}}


def _compare_with_torch(fn, torch_fn, inputs, upstream_seed=0):
    leaves = [Tensor(x.copy(), requires_grad=True) for x in inputs]
    torch_leaves = [torch.from_numpy(x.copy()).requires_grad_() for x in inputs]
    out = fn(*leaves)
    torch_out = torch_fn(*torch_leaves)
    expected = torch_out.detach().numpy()
    assert (out.shape, out.dtype) == (expected.shape, expected.dtype)
    np.testing.assert_allclose(out.data, expected, **TOLERANCE[out.dtype])

    upstream = np.asarray(np.random.default_rng(upstream_seed).standard_normal(out.shape),
                          dtype=out.dtype)
    out.backward(upstream)
    torch_out.backward(torch.from_numpy(upstream))
    for i, (leaf, torch_leaf) in enumerate(zip(leaves, torch_leaves, strict=True)):
        assert leaf.grad is not None, f"input {i} got no gradient"
        assert (leaf.grad.shape, leaf.grad.dtype) == (leaf.shape, leaf.dtype)
        np.testing.assert_allclose(leaf.grad, torch_leaf.grad.numpy(),
                                   **TOLERANCE[leaf.grad.dtype], err_msg=f"gradient of input {i}")


@pytest.mark.parametrize("case", ALL_CASES, ids=case_id)
def test_matches_torch(case):
    _compare_with_torch(case.fn, case.torch_fn, case.inputs)


# Inputs exactly at kinks and ties, where the derivative is a convention: strata's must be
# PyTorch's (relu/abs give 0 at 0, clip passes the gradient at its bounds, ties split evenly).
AT_KINKS = {
    "relu_at_zero": (strata.relu, torch.relu, [[-1.0, 0.0, 2.0]]),
    "leaky_relu_at_zero": (strata.leaky_relu, torch.nn.functional.leaky_relu, [[-1.0, 0.0, 2.0]]),
    "abs_at_zero": (strata.abs, torch.abs, [[-1.0, 0.0, 2.0]]),
    "clip_at_bounds": (lambda a: strata.clip(a, -1.0, 1.0), lambda t: torch.clamp(t, -1.0, 1.0),
                       [[-2.0, -1.0, 0.0, 1.0, 2.0]]),
    "maximum_ties": (strata.maximum, torch.maximum, [[1.0, 2.0, 3.0], [1.0, 0.0, 3.0]]),
    "minimum_ties": (strata.minimum, torch.minimum, [[1.0, 2.0, 3.0], [1.0, 0.0, 3.0]]),
    "maximum_ties_broadcast": (strata.maximum, torch.maximum, [[[1.0, 2.0, 3.0]], [[2.0], [3.0]]]),
    "max_ties_axis": (lambda a: strata.max(a, axis=1), lambda t: torch.amax(t, dim=1),
                      [[[1.0, 3.0, 3.0], [2.0, 2.0, 2.0], [0.0, 5.0, 1.0]]]),
    "min_ties_all": (strata.min, lambda t: torch.amin(t, dim=(0, 1)),
                     [[[1.0, 0.0, 3.0], [0.0, 2.0, 0.0]]]),
    "max_ties_keepdims": (lambda a: strata.max(a, axis=0, keepdims=True),
                          lambda t: torch.amax(t, dim=0, keepdim=True),
                          [[[4.0, 1.0], [4.0, 2.0], [4.0, 2.0]]]),
}


@pytest.mark.parametrize("name", sorted(AT_KINKS))
def test_conventions_at_kinks_and_ties_match_torch(name):
    fn, torch_fn, inputs = AT_KINKS[name]
    _compare_with_torch(fn, torch_fn, [np.array(x, dtype=np.float64) for x in inputs])
