"""Cross-entropy over every time step of a sequence model, padding weighted 0 (course 5)."""

from __future__ import annotations

from strata.autograd import ShapeError
from strata.backend import array_module
from strata.losses.checks import _as_array, _checked, _fused_logits, _prediction, _sample_weights
from strata.losses.crossentropy import WeightedSoftmaxCrossEntropyOp, _log_probabilities
from strata.tensor import Tensor

#: The op behind sequence_crossentropy: log-softmax over the vocabulary, the label's entry
#: picked, each step weighted (0 at padding), divided by the number of steps or sequences.
SequenceCrossEntropyOp = WeightedSoftmaxCrossEntropyOp


def _sequence_labels(Z: Tensor, labels, mask, reduction: str, name: str):
    """(labels with padding set to 0, keep mask, denominator), checked, on Z's device."""
    xp = array_module(Z.data)
    y = _as_array(labels, xp)
    if Z.ndim != 3 or y.shape != Z.shape[:2]:
        raise ShapeError(f"{name}: expected predictions (m, T_y, V) and labels (m, T_y), got "
                         f"{Z.shape} and {y.shape}")
    if y.dtype.kind not in "iu":
        raise TypeError(f"{name}: expected integer class labels, got dtype {y.dtype}")
    keep = y != -1 if mask is None else _as_array(mask, xp).astype(bool) & (y != -1)
    if keep.shape != y.shape:
        raise ShapeError(f"{name}: expected a mask of shape {y.shape}, got {keep.shape}")
    bad = keep & ((y < 0) | (y >= Z.shape[-1]))
    if bad.any():
        raise ValueError(f"{name}: labels must be class indices in [0, {Z.shape[-1]}) or -1 "
                         f"(padding), got {int(y[bad][0])}")
    if reduction not in ("token", "sequence"):
        raise ValueError(f"{name}: expected reduction 'token' or 'sequence', got {reduction!r}")
    count = int(keep.sum()) if reduction == "token" else y.shape[0]
    if count == 0:
        raise ValueError(f"{name}: every step is padding; nothing to average")
    return xp.where(keep, y, 0), keep, count


def sequence_crossentropy(Z, labels, mask=None, reduction: str = "token",
                          from_logits: bool = True, *, sample_weight=None) -> Tensor:
    """Softmax cross-entropy at every time step of (m, T_y, V) predictions, labels (m, T_y)
    class indices; padding (label -1, or mask 0) counts for nothing.

    The exception to Keras's convention: strata's language models end in logits, so this loss
    takes logits by default. ``from_logits=False`` takes probabilities (fused with a softmax
    over the vocabulary, Keras's clipped formula otherwise). ``reduction="token"``: the mean
    over real steps. ``"sequence"``: each sequence's sum over its steps, averaged over the m
    sequences: the course's loss of a whole name, -sum_t log y_hat<t>[y<t>].
    ``sample_weight`` (m,) multiplies every step of sequence i by w_i; the divisor (real steps,
    or m) is unchanged.
    """
    name = "sequence_crossentropy"
    Z = _prediction(Z, name)
    y, keep, count = _sequence_labels(Z, labels, mask, reduction, name)
    keep = keep.astype(Z.dtype)
    if sample_weight is not None:
        keep *= _sample_weights(sample_weight, Z.shape[:1], Z.dtype, name,
                                array_module(Z.data))[:, None]
    z = _fused_logits(Z, "softmax", bool(from_logits), name)
    if from_logits or z is not None:
        loss = SequenceCrossEntropyOp.apply(Z if z is None else z, labels=y, weight=keep,
                                            denominator=count)
        return _checked(loss, Z, name)
    eye = array_module(Z.data).eye(Z.shape[-1], dtype=Z.dtype)
    weights = eye[y] * keep[..., None] / Z.dtype.type(count)
    return _checked(-(_log_probabilities(Z) * Tensor._wrap(weights, False)).sum(), Z, name)
