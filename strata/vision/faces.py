"""Face encodings of course 4 week 4: the L2-normalized encoding f(x), distances between
encodings, triplet mining inside a batch and the P x K batch sampler.

Distances: the triplet loss and the mining use squared distances ||f(x_i) - f(x_j)||^2, as the
course's loss; verification and recognition (faces_verify) use the plain Euclidean distance
||f(x_i) - f(x_j)||, as the course's ``verify``/``who_is_it`` (threshold 0.7 there). On unit
encodings both lie in [0, 4] and [0, 2].
"""

from __future__ import annotations

import numpy as np

from strata import ops
from strata.autograd import ShapeError, no_grad
from strata.nn.layers import _as_tensor
from strata.nn.module import Module
from strata.nn.registry import register

MINING = ("semi-hard", "batch-all")


@register
class L2Normalize(Module):
    """f(x) = x / sqrt(sum(x^2) + epsilon) along the last axis: encodings on the unit sphere
    (Keras's ``K.l2_normalize`` of the course's FaceNet)."""

    def __init__(self, epsilon: float = 1e-12):
        if not (isinstance(epsilon, (int, float)) and epsilon > 0):
            raise ValueError(f"L2Normalize: expected epsilon > 0, got {epsilon!r}")
        self.epsilon = float(epsilon)

    def forward(self, x):
        x = _as_tensor(x)
        if x.ndim < 1:
            raise ShapeError("L2Normalize: expected encodings (m, d), got a scalar")
        return x / ops.sqrt(ops.sum(x * x, axis=-1, keepdims=True) + self.epsilon)

    def count_parameters(self, input_shape):
        """No parameters; the shape is kept (see strata.models.count_parameters)."""
        from strata.models.arithmetic import ParameterCount

        return ParameterCount(tuple(input_shape), 0, 0)

    def extra_repr(self) -> str:
        return f"epsilon={self.epsilon:g}"


def encode(model, X, batch_size: int = 256) -> np.ndarray:
    """The encodings f(X) (m, d) of images X (m, n_H, n_W, n_C), in eval mode, in batches."""
    X = np.asarray(X)
    if X.ndim != 4:
        raise ShapeError(f"encode: expected images (m, n_H, n_W, n_C), got shape {X.shape}")
    was_training = model.training
    model.eval()
    try:
        with no_grad():
            out = [np.asarray(model(X[i:i + batch_size]).data)
                   for i in range(0, len(X), batch_size)]
    finally:
        model.train(was_training)
    return np.concatenate(out) if out else np.zeros((0, 0), np.float32)


def _encodings(E, name: str) -> np.ndarray:
    E = np.asarray(E)
    if E.ndim != 2 or not np.issubdtype(E.dtype, np.floating):
        raise ShapeError(f"{name}: expected float encodings (m, d), got {E.dtype} {E.shape}")
    if not np.all(np.isfinite(E)):
        raise ValueError(f"{name}: the encodings hold NaN or inf")
    return E


def pairwise_distances(E1, E2=None, squared: bool = False) -> np.ndarray:
    """(m1, m2) Euclidean distances ||e1_i - e2_j|| between the rows of E1 and E2 (E2 = E1 when
    None); ``squared=True`` gives ||e1_i - e2_j||^2 (exactly 0 on the diagonal of E1 vs E1)."""
    E1 = _encodings(E1, "pairwise_distances")
    E2 = E1 if E2 is None else _encodings(E2, "pairwise_distances")
    if E1.shape[1] != E2.shape[1]:
        raise ShapeError(f"pairwise_distances: encodings of {E1.shape[1]} and {E2.shape[1]} "
                         f"dimensions")
    D = (E1 * E1).sum(1)[:, None] - 2 * E1 @ E2.T + (E2 * E2).sum(1)[None, :]
    D = np.maximum(D, 0)  # rounding can make a tiny negative
    if E2 is E1:
        np.fill_diagonal(D, 0)
    return D if squared else np.sqrt(D)


def _labels(labels, m: int, name: str) -> np.ndarray:
    labels = np.asarray(labels).reshape(-1)
    if len(labels) != m:
        raise ShapeError(f"{name}: expected {m} labels (one per encoding), got {len(labels)}")
    return labels


def batch_all_triplets(E, labels, alpha: float = 0.2):
    """Every valid triplet (a, p, n) of the batch with a positive loss: labels[a] == labels[p],
    a != p, labels[n] != labels[a], and d(a, p) - d(a, n) + alpha > 0 (squared distances).
    Returns three int arrays of indices."""
    E = _encodings(E, "batch_all_triplets")
    labels = _labels(labels, len(E), "batch_all_triplets")
    D = pairwise_distances(E, squared=True)
    same = labels[:, None] == labels[None, :]
    positive = same & ~np.eye(len(E), dtype=bool)
    valid = positive[:, :, None] & ~same[:, None, :]  # [a, p, n]
    loss = D[:, :, None] - D[:, None, :] + alpha
    a, p, n = np.nonzero(valid & (loss > 0))
    return a, p, n


def semi_hard_triplets(E, labels, alpha: float = 0.2):
    """FaceNet's semi-hard triplets: for each anchor-positive pair (a, p), the closest negative
    n with d(a, p) < d(a, n) < d(a, p) + alpha (squared distances). Without one, the farthest
    negative closer than the positive (d(a, n) <= d(a, p): the mildest hard negative, so that
    training does not collapse); without that either, every negative already satisfies the
    margin and the pair is skipped. Returns three int arrays of indices."""
    E = _encodings(E, "semi_hard_triplets")
    labels = _labels(labels, len(E), "semi_hard_triplets")
    D = pairwise_distances(E, squared=True)
    same = labels[:, None] == labels[None, :]
    a, p = np.nonzero(same & ~np.eye(len(E), dtype=bool))
    d_ap = D[a, p][:, None]
    d_an = np.where(same[a], np.nan, D[a])  # (pairs, m); NaN where not a negative
    with np.errstate(invalid="ignore"):
        band = (d_an > d_ap) & (d_an < d_ap + alpha)
        hard = d_an <= d_ap
    in_band = np.where(band, d_an, np.inf).argmin(1)
    mildest_hard = np.where(hard, d_an, -np.inf).argmax(1)
    n = np.where(band.any(1), in_band, mildest_hard)
    keep = band.any(1) | hard.any(1)
    return a[keep], p[keep], n[keep]


def mine_triplets(E, labels, alpha: float = 0.2, mining: str = "semi-hard"):
    """Triplet indices (a, p, n) chosen inside a batch: ``mining`` "semi-hard"
    (``semi_hard_triplets``) or "batch-all" (``batch_all_triplets``)."""
    if mining == "semi-hard":
        return semi_hard_triplets(E, labels, alpha)
    if mining == "batch-all":
        return batch_all_triplets(E, labels, alpha)
    raise ValueError(f"mine_triplets: expected mining in {MINING}, got {mining!r}")


class PKSampler:
    """Batches of P people x K images each, so that every batch holds positives for the
    triplet loss: each epoch shuffles the people, takes them P at a time, and K of each one's
    images (without replacement when the person has K or more, else with). Iterating gives
    index arrays of length P * K; ``len`` is the number of batches per epoch."""

    def __init__(self, labels, P: int, K: int, seed: int | None = 0):
        labels = np.asarray(labels).reshape(-1)
        for value, what in ((P, "P (people per batch)"), (K, "K (images per person)")):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) \
                    or value < 1:
                raise ValueError(f"PKSampler: expected {what} a positive int, got {value!r}")
        people = np.unique(labels)
        if len(people) < max(P, 2):
            raise ValueError(f"PKSampler: P={P} people per batch (and at least 2 for "
                             f"negatives) but the labels hold {len(people)} people")
        if K < 2:
            raise ValueError(f"PKSampler: expected K >= 2 images per person (anchor and "
                             f"positive), got {K}")
        self.P, self.K = int(P), int(K)
        self.groups = [np.flatnonzero(labels == person) for person in people]
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return len(self.groups) // self.P

    def __iter__(self):
        order = self.rng.permutation(len(self.groups))
        for start in range(0, len(self) * self.P, self.P):
            batch = [self.rng.choice(self.groups[i], self.K, replace=len(self.groups[i]) < self.K)
                     for i in order[start:start + self.P]]
            yield np.concatenate(batch)
