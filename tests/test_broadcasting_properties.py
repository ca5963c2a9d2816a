"""Property tests of broadcasting in the binary ops: for any pair of broadcast-compatible shapes,
the forward equals NumPy's and each input's gradient is the upstream gradient times the local
derivative, added up over every output position that input entry was copied to."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import mutually_broadcastable_shapes

import strata
from strata import Tensor

# op -> (NumPy forward, d out / d a, d out / d b), the derivatives taken on broadcast operands
REFERENCE = {
    "add": (np.add, lambda a, b: np.ones_like(a), lambda a, b: np.ones_like(b)),
    "sub": (np.subtract, lambda a, b: np.ones_like(a), lambda a, b: -np.ones_like(b)),
    "mul": (np.multiply, lambda a, b: b, lambda a, b: a),
    "div": (np.divide, lambda a, b: 1 / b, lambda a, b: -a / b**2),
    "maximum": (np.maximum, lambda a, b: 1.0 * (a > b), lambda a, b: 1.0 * (b > a)),
    "minimum": (np.minimum, lambda a, b: 1.0 * (a < b), lambda a, b: 1.0 * (b < a)),
    "pow": (np.power, lambda a, b: b * a ** (b - 1), lambda a, b: a**b * np.log(a)),
}

SHAPE_PAIRS = mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=4, max_side=4)


def _inputs(op, shape_a, shape_b, rng):
    """Continuous values (ties have probability 0), positive bases for pow, no zero divisors."""
    a, b = rng.standard_normal(shape_a), rng.standard_normal(shape_b)
    if op == "pow":
        a = rng.uniform(0.5, 2.0, shape_a)
    if op == "div":
        b = np.sign(b) * rng.uniform(0.5, 2.0, shape_b)
    return np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)


def _sum_to(full: np.ndarray, shape: tuple) -> np.ndarray:
    """Add each entry of ``full`` into the entry of a ``shape`` array it was broadcast from."""
    size = int(np.prod(shape, dtype=np.int64))
    source = np.broadcast_to(np.arange(size).reshape(shape), full.shape)
    summed = np.bincount(source.ravel(), weights=full.ravel(), minlength=size)
    return summed.reshape(shape)


def _check_against_numpy(op, a, b, rng):
    forward, d_da, d_db = REFERENCE[op]
    ta, tb = Tensor(a.copy(), requires_grad=True), Tensor(b.copy(), requires_grad=True)
    out = getattr(strata, op)(ta, tb)
    expected = forward(a, b)
    assert out.shape == expected.shape and out.dtype == np.float64
    np.testing.assert_allclose(out.data, expected, rtol=1e-12, atol=0)

    upstream = np.asarray(rng.standard_normal(expected.shape))
    out.backward(upstream)
    wide_a, wide_b = np.broadcast_arrays(a, b)
    for leaf, local, name in ((ta, d_da(wide_a, wide_b), "a"), (tb, d_db(wide_a, wide_b), "b")):
        assert leaf.grad.shape == leaf.shape, f"gradient of {name} has the wrong shape"
        np.testing.assert_allclose(leaf.grad, _sum_to(upstream * local, leaf.shape),
                                   rtol=1e-10, atol=1e-12, err_msg=f"gradient of {name}")


@pytest.mark.parametrize("op", sorted(REFERENCE))
@settings(max_examples=50, deadline=None)
@given(shapes=SHAPE_PAIRS, seed=st.integers(0, 2**32 - 1))
def test_binary_op_broadcasts_like_numpy(op, shapes, seed):
    rng = np.random.default_rng(seed)
    a, b = _inputs(op, *shapes.input_shapes, rng)
    _check_against_numpy(op, a, b, rng)


@pytest.mark.parametrize("op", sorted(REFERENCE))
@pytest.mark.parametrize("shape_a, shape_b", [((3, 0), (0,)), ((3, 0), (1, 0)),
                                              ((0, 1), (1, 4)), ((2, 0, 3), (0, 3)), ((0,), ())])
def test_binary_op_broadcasts_empty_shapes(op, shape_a, shape_b):
    """Zero-size operands broadcast too; their gradients are empty or zero, of the right shape."""
    rng = np.random.default_rng(0)
    a, b = _inputs(op, shape_a, shape_b, rng)
    _check_against_numpy(op, a, b, rng)
