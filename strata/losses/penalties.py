"""The course's regularization terms added to the cost: L2 (weight decay) and L1."""

from __future__ import annotations

import numpy as np

from strata.autograd import Function
from strata.backend import array_module
from strata.ops.common import lift
from strata.tensor import Tensor


def _weight_list(weights, name: str) -> list[Tensor]:
    if isinstance(weights, Tensor):
        weights = [weights]
    elif isinstance(weights, dict):
        weights = list(weights.values())
    weights = [lift(w) for w in weights]
    if not weights:
        raise ValueError(f"{name}: expected at least one weight tensor, got none")
    return weights


def _check_scale(lambd, m, name: str) -> None:
    if not lambd >= 0:
        raise ValueError(f"{name}: expected lambd >= 0, got {lambd}")
    if isinstance(m, bool) or not isinstance(m, (int, np.integer)) or m <= 0:
        raise ValueError(f"{name}: expected m (the number of examples) to be a positive "
                         f"integer, got {m!r}")


class L2Penalty(Function):
    """(coef) * sum of squared entries of every W; gradient 2 coef W."""

    def forward(self, *ws, coef):
        xp = array_module(ws[0])
        self.ws, self.coef = ws, coef
        total = sum(xp.dot(w.reshape(-1), w.reshape(-1)) for w in ws)
        return xp.asarray(coef * total, dtype=ws[0].dtype)

    def backward(self, g):
        scale = g * (2 * self.coef)  # lambd/m
        return tuple(w * scale if need else None
                     for w, need in zip(self.ws, self.needs_input_grad))


class L1Penalty(Function):
    """(coef) * sum of absolute entries of every W; gradient coef sign(W)."""

    def forward(self, *ws, coef):
        xp = array_module(ws[0])
        self.ws, self.coef = ws, coef
        return xp.asarray(coef * sum(xp.abs(w).sum() for w in ws), dtype=ws[0].dtype)

    def backward(self, g):
        xp = array_module(g)
        scale = g * self.coef
        return tuple(xp.sign(w) * scale if need else None
                     for w, need in zip(self.ws, self.needs_input_grad))


def l2_penalty(weights, lambd: float, m: int) -> Tensor:
    """(lambd / (2m)) * sum_l ||W[l]||_F^2; its gradient is the course's lambd/m * W.

    ``weights`` is a Tensor, a list of Tensors or a dict of them: pass the W's only, not the
    biases, as the course does. Add it to the cross-entropy cost (compute_cost_with_regularization).
    """
    _check_scale(lambd, m, "l2_penalty")
    return L2Penalty.apply(*_weight_list(weights, "l2_penalty"), coef=lambd / (2 * m))


def l1_penalty(weights, lambd: float, m: int) -> Tensor:
    """(lambd / m) * sum_l sum |W[l]| (convention: lambd/m, not lambd/2m); gradient lambd/m sign(W).

    The gradient at W = 0 is 0, as for ``strata.abs``. ``weights`` as for ``l2_penalty``.
    """
    _check_scale(lambd, m, "l1_penalty")
    return L1Penalty.apply(*_weight_list(weights, "l1_penalty"), coef=lambd / m)
