"""Gradient clipping against exploding gradients (C5 W1's ``clip``), applied between
``loss.backward()`` and ``optimizer.step()``.

Both functions take what an optimizer takes (a Module, a list or dict of Tensors: their
``.grad`` is clipped) and also the course's ``gradients`` dict of arrays (clipped themselves).
They work in place and skip parameters that have no gradient.
"""

from __future__ import annotations

import math

import numpy as np

from strata import backend
from strata.optim.optimizer import POSITIVE, check_number, iter_parameters
from strata.tensor import Tensor


def _gradients(owner: str, params) -> list[np.ndarray]:
    """The gradient arrays to clip: each Tensor's ``.grad`` (when set), or the arrays given."""
    grads = []
    for i, p in enumerate(iter_parameters(params)):
        grad = p.grad if isinstance(p, Tensor) else p
        if grad is None:
            continue
        if not isinstance(grad, np.ndarray) or not backend.is_float(grad.dtype):
            raise TypeError(f"{owner}: expected Tensors or floating gradient arrays, got "
                            f"{type(grad).__name__} {getattr(grad, 'dtype', '')} at position {i}")
        grads.append(grad)
    return grads


def clip_grad_value(params, value: float) -> None:
    """Clip every gradient entry into [-value, value], in place (the course's ``clip``)."""
    value = check_number("clip_grad_value", "value", value, POSITIVE)
    for grad in _gradients("clip_grad_value", params):
        np.clip(grad, -value, value, out=grad)


def clip_grad_norm(params, max_norm: float) -> float:
    """Scale all gradients by max_norm / norm when their global L2 norm exceeds ``max_norm``;
    return the norm before clipping.

    The norm is taken over all gradients together, so their direction is kept. When it is not
    finite (a gradient holds inf or nan) nothing is scaled: check the returned norm and skip
    the step.
    """
    max_norm = check_number("clip_grad_norm", "max_norm", max_norm, POSITIVE)
    grads = _gradients("clip_grad_norm", params)
    squares = sum(float(np.vdot(g, g)) for g in grads)
    if not math.isfinite(squares):  # squares of float32 entries above ~1.8e19 overflow
        squares = sum(float(np.vdot(g, g)) for g in (g.astype(np.float64) for g in grads))
    norm = math.sqrt(squares)
    if max_norm < norm < math.inf:
        scale = max_norm / norm
        for grad in grads:
            grad *= scale
    return norm
