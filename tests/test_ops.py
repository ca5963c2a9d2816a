"""Every op in strata.ops: registry coverage, float64 gradient checks and float32 dtype behaviour.

The cases come from tests/op_cases.py; the PyTorch comparisons of the same cases are in
tests/test_ops_torch.py.
"""

from __future__ import annotations

import numpy as np
import pytest
from op_cases import ALL_CASES, GRADCHECK_CASES, REGISTRY, case_id

import strata
from strata import Tensor
from strata.autograd import Function

#: A correct backward pass differs from central differences by about 1e-9 in float64.
GRADCHECK_TOLERANCE = 1e-7


def test_every_op_has_a_registry_case():
    missing = [name for name in strata.ops.__all__ if not REGISTRY.get(name)]
    assert not missing, f"ops without a case in tests/op_cases.py: {missing}"


def test_registry_names_only_real_ops():
    unknown = sorted(set(REGISTRY) - set(strata.ops.__all__))
    assert not unknown, f"registry cases for names not in strata.ops.__all__: {unknown}"
    ids = [case.id for case in ALL_CASES]
    assert len(ids) == len(set(ids)), "registry case ids must be unique"


def test_every_op_is_exported_at_top_level():
    not_exported = [name for name in strata.ops.__all__
                    if getattr(strata, name, None) is not getattr(strata.ops, name)]
    not_listed = [name for name in strata.ops.__all__ if name not in strata.__all__]
    assert not not_exported, f"strata.<name> is not strata.ops.<name> for: {not_exported}"
    assert not not_listed, f"missing from strata.__all__: {not_listed}"


class _Probe(Function):
    """Identity that records the dtype of the gradient the op under test sends back to it (the
    engine casts gradients stored on leaves, which would hide an op's upcasting)."""

    def forward(self, a):
        return a

    def backward(self, g):
        self.grad_dtype = g.dtype
        return (g,)


def _run(case, dtype, upstream_seed=0):
    """Forward and backward of ``case`` with inputs cast to ``dtype``.

    Returns the leaves, the output and the dtypes of the gradients the op returned.
    """
    leaves = [Tensor(x.astype(dtype), requires_grad=True) for x in case.inputs]
    probed = [_Probe.apply(leaf) for leaf in leaves]
    probes = [p._ctx for p in probed]
    out = case.fn(*probed)
    upstream = np.asarray(np.random.default_rng(upstream_seed).standard_normal(out.shape))
    out.backward(upstream.astype(out.dtype))
    return leaves, out, [getattr(p, "grad_dtype", None) for p in probes]


@pytest.mark.parametrize("case", ALL_CASES, ids=case_id)
def test_case_inputs_are_well_chosen(case):
    """Registry sanity: float64 inputs, a finite output, and a gradient reaching every input
    (a case whose gradient is identically zero would make its gradient check vacuous)."""
    assert all(x.dtype == np.float64 for x in case.inputs)
    leaves, out, _ = _run(case, np.float64)
    assert np.all(np.isfinite(out.data))
    for i, leaf in enumerate(leaves):
        assert leaf.grad is not None, f"input {i} got no gradient"
        assert np.any(leaf.grad != 0), f"input {i} got an all-zero gradient"


@pytest.mark.parametrize("case", GRADCHECK_CASES, ids=case_id)
def test_gradcheck(case):
    differences = strata.gradcheck(case.fn, *case.inputs)
    assert len(differences) == len(case.inputs)
    assert max(differences) < GRADCHECK_TOLERANCE, (
        f"{case.id}: relative difference per input {differences}")


@pytest.mark.parametrize("case", ALL_CASES, ids=case_id)
def test_float32_stays_float32(case):
    """float32 inputs give a float32 output (unless the op is a cast) and float32 gradients,
    close to the float64 results."""
    leaves32, out32, op_grad_dtypes = _run(case, np.float32)
    leaves64, out64, _ = _run(case, np.float64)
    assert out32.dtype == (case.out_dtype or np.float32)
    assert out32.shape == out64.shape
    np.testing.assert_allclose(out32.data, out64.data, rtol=1e-4, atol=1e-5)
    assert op_grad_dtypes == [np.float32] * len(leaves32), "the op upcast its gradients"
    for i, (leaf32, leaf64) in enumerate(zip(leaves32, leaves64, strict=True)):
        assert leaf32.grad.dtype == np.float32, f"input {i}: gradient dtype {leaf32.grad.dtype}"
        assert leaf32.grad.shape == leaf32.shape
        np.testing.assert_allclose(leaf32.grad, leaf64.grad, rtol=1e-4, atol=1e-4,
                                   err_msg=f"gradient of input {i}")


@pytest.mark.parametrize("source, target", [(np.float64, np.float32), (np.float32, np.float64),
                                            (np.float64, np.float16)])
def test_astype_casts_and_returns_the_gradient_in_the_input_dtype(source, target):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 4)).astype(source)
    leaf = Tensor(x, requires_grad=True)
    out = strata.astype(leaf, target)
    assert out.dtype == target
    np.testing.assert_array_equal(out.data, x.astype(target))
    upstream = rng.standard_normal((3, 4)).astype(target)
    out.backward(upstream)
    assert leaf.grad.dtype == source
    np.testing.assert_array_equal(leaf.grad, upstream.astype(source))
