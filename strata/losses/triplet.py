"""The triplet loss of course 4 week 4 (FaceNet, Schroff et al., 2015): an anchor A should be
closer to a positive P (the same person) than to a negative N (another person), by a margin:

    J = sum_i max(||f(A_i) - f(P_i)||^2 - ||f(A_i) - f(N_i)||^2 + alpha, 0)

``triplet_loss`` takes the three batches of encodings; ``TripletLoss`` takes a batch of
encodings and its labels, chooses the triplets inside the batch (semi-hard or batch-all mining,
strata.vision.faces) and is what ``Model.compile(loss=TripletLoss())`` uses.
"""

from __future__ import annotations

import numpy as np

from strata import ops
from strata.autograd import ShapeError
from strata.losses.checks import NonFiniteError, _prediction
from strata.tensor import Tensor

REDUCTIONS = ("sum", "mean", "none")
MINING = ("semi-hard", "batch-all")


def _check_alpha(alpha, name: str) -> float:
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float, np.floating)) \
            or not 0 <= alpha < np.inf:
        raise ValueError(f"{name}: expected a margin alpha >= 0, got {alpha!r}")
    return float(alpha)


def _check_reduction(reduction, name: str) -> str:
    if reduction not in REDUCTIONS:
        raise ValueError(f"{name}: expected reduction in {REDUCTIONS}, got {reduction!r}")
    return reduction


def triplet_loss(anchor, positive, negative, alpha: float = 0.2, reduction: str = "sum"):
    """The course's triplet loss on encodings f(A), f(P), f(N) of shape (m, d) (or (d,) for one
    triplet): the sum over the batch of max(||f(A) - f(P)||^2 - ||f(A) - f(N)||^2 + alpha, 0).
    ``reduction="mean"`` divides by m; ``"none"`` returns the m losses. Differentiable in all
    three inputs (composed of strata ops)."""
    name = "triplet_loss"
    alpha, reduction = _check_alpha(alpha, name), _check_reduction(reduction, name)
    A, P, N = (_prediction(x, name) for x in (anchor, positive, negative))
    if not A.shape == P.shape == N.shape or A.ndim not in (1, 2):
        raise ShapeError(f"{name}: expected anchor, positive and negative encodings of one "
                         f"shape (m, d), got {A.shape}, {P.shape} and {N.shape}")
    for x, part in ((A, "anchor"), (P, "positive"), (N, "negative")):
        if not np.all(np.isfinite(x.data)):
            raise NonFiniteError(f"{name}: the {part} encodings hold NaN or inf")
    pos_dist = ops.sum((A - P) * (A - P), axis=-1)  # ||f(A) - f(P)||^2 per triplet
    neg_dist = ops.sum((A - N) * (A - N), axis=-1)
    basic = pos_dist - neg_dist + alpha
    losses = ops.maximum(basic, Tensor._wrap(np.zeros((), A.dtype), False))
    if reduction == "none":
        return losses
    total = ops.sum(losses)
    return total / max(losses.size, 1) if reduction == "mean" else total


class TripletLoss:
    """The triplet loss for ``Model.compile``: called as ``loss(encodings, labels)`` on a batch
    of encodings (m, d) and integer labels (m,), it chooses the triplets inside the batch
    (``mining``: "semi-hard" or "batch-all", see strata.vision.faces) and returns
    ``triplet_loss`` over them with ``reduction`` ("mean" by default: the average over the
    chosen triplets; 0 when the batch holds none). Train on batches of P people x K images
    (strata.vision.PKSampler) so that every batch holds positives."""

    def __init__(self, alpha: float = 0.2, mining: str = "semi-hard", reduction: str = "mean"):
        self.alpha = _check_alpha(alpha, "TripletLoss")
        if mining not in MINING:
            raise ValueError(f"TripletLoss: expected mining in {MINING}, got {mining!r}")
        if reduction == "none":
            raise ValueError("TripletLoss: expected reduction 'sum' or 'mean', got 'none'")
        self.mining, self.reduction = mining, _check_reduction(reduction, "TripletLoss")
        self.__name__ = "triplet_loss"
        #: The number of triplets chosen in the last batch.
        self.last_triplets = 0

    def __call__(self, y_pred, y_true, sample_weight=None) -> Tensor:
        """The loss of the batch's mined triplets (no per-example weights)."""
        from strata.vision.faces import mine_triplets

        if sample_weight is not None:
            raise ValueError("TripletLoss: sample_weight is not supported (triplets, not "
                             "examples, make up the loss)")
        E = _prediction(y_pred, "TripletLoss")
        labels = np.asarray(y_true.data if isinstance(y_true, Tensor) else y_true).reshape(-1)
        if E.ndim != 2 or len(labels) != E.shape[0]:
            raise ShapeError(f"TripletLoss: expected encodings (m, d) and labels (m,), got "
                             f"{E.shape} and {labels.shape}")
        a, p, n = mine_triplets(E.data, labels, self.alpha, self.mining)
        self.last_triplets = len(a)
        if len(a) == 0:  # nothing to learn from this batch: a zero that keeps the graph
            return ops.sum(E) * 0.0
        return triplet_loss(E[a], E[p], E[n], self.alpha, self.reduction)

    def get_config(self) -> dict:
        """The constructor's arguments."""
        return {"alpha": self.alpha, "mining": self.mining, "reduction": self.reduction}

    def __repr__(self) -> str:
        return (f"TripletLoss(alpha={self.alpha}, mining={self.mining!r}, "
                f"reduction={self.reduction!r})")
