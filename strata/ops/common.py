"""Helpers shared by the op modules: turning numbers into tensors and checking axes."""

from __future__ import annotations

import numpy as np

from strata import backend
from strata.tensor import Tensor


def lift(x, like: Tensor | None = None) -> Tensor:
    """Return ``x`` as a Tensor; Python numbers take ``like``'s floating dtype (no upcasting)."""
    if isinstance(x, Tensor):
        return x
    if like is not None and isinstance(x, (int, float)) and backend.is_float(like.dtype):
        # On like's device: CuPy refuses to mix its arrays with NumPy's, even 0-d ones.
        return Tensor._wrap(backend.array_module(like.data).asarray(x, dtype=like.dtype), False)
    return Tensor(x)


def lift_pair(a, b) -> tuple[Tensor, Tensor]:
    """Lift both operands of a binary op, each number taking the other's dtype."""
    if not isinstance(a, Tensor):
        b = lift(b)
        return lift(a, b), b
    return a, lift(b, a)


def normalize_axes(axis, ndim: int, op: str) -> tuple[int, ...]:
    """Axis argument (None, int or tuple, negatives allowed) -> sorted tuple of axes."""
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    out = []
    for a in axes:
        if not -ndim <= a < ndim:
            raise ValueError(f"{op}: axis {a} is out of range for an input with {ndim} dims")
        out.append(int(a) % ndim if ndim else 0)
    if len(set(out)) != len(out):
        raise ValueError(f"{op}: repeated axis in {axis}")
    return tuple(sorted(out))


def kept_shape(shape: tuple, axes: tuple) -> tuple:
    """The shape after reducing ``axes`` with keepdims=True."""
    return tuple(1 if i in axes else n for i, n in enumerate(shape))
