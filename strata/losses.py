"""Loss functions J(y_pred, y_true) -> scalar Tensor, and the course's regularization terms.

Predictions come first and are batch first: (m, n_y), or (m, C) logits with class indices (m,)
for the sparse loss. Labels are constants: no gradient flows into them (except in
``mean_squared_error``, where both sides may be learned). Every loss averages over the batch,
so its gradient carries the course's 1/m: from logits, dZ = (A - Y) / m.

Binary cross-entropy with several outputs (multi-label, n_y > 1) averages over all m * n_y
entries, as Keras and PyTorch do; with one output that is the course's mean over m examples.
"""

from __future__ import annotations

import math

import numpy as np

from strata.autograd import Function, ShapeError, is_grad_enabled
from strata.naming import lookup
from strata.ops.common import lift
from strata.ops.nn import softmax_cross_entropy
from strata.tensor import Tensor

#: Probabilities are clipped to [EPSILON, 1 - EPSILON] before log (Keras's epsilon), so log(0)
#: never happens; clipped entries get zero gradient, like any clip.
EPSILON = 1e-7


class BinaryCrossEntropy(Function):
    """Fused binary cross-entropy, from logits or (clipped) probabilities, with optional mask."""

    def forward(self, x, y, mask, from_logits, eps, need_grad):
        self.dx = None
        if from_logits:
            # -[y log s(z) + (1-y) log(1-s(z))] = max(z, 0) - z y + log(1 + e^-|z|): e^-|z| never
            # overflows and log1p keeps it exact where it is tiny (|z| up to 1e4 and beyond).
            e = np.exp(-np.abs(x))
            losses = np.maximum(x, 0) - x * y + np.log1p(e)
            if need_grad:  # not in evaluation: skip the gradient's pass
                self.dx = np.where(x >= 0, 1, e) / (1 + e) - y  # sigmoid(z) - y
        else:
            a = np.clip(x, eps, 1 - eps)
            losses = -(y * np.log(a) + (1 - y) * np.log1p(-a))
            if need_grad:  # not in evaluation: skip the gradient's pass
                self.dx = (a - y) / (a * (1 - a))
                self.dx *= (x >= eps) & (x <= 1 - eps)
        if mask is None:
            self.n = x.size
            return np.asarray(losses.sum() / self.n, dtype=x.dtype)
        # where, not multiply: predictions at missing entries may be anything, even inf or NaN.
        self.n = int(mask.sum())
        if self.dx is not None:
            self.dx = np.where(mask, self.dx, 0)
        return np.asarray(np.where(mask, losses, 0).sum() / self.n, dtype=x.dtype)

    def backward(self, g):
        return (self.dx * (g / self.n),)


def _prediction(y_pred, name: str) -> Tensor:
    y_pred = lift(y_pred)
    if not np.issubdtype(y_pred.dtype, np.floating):
        raise TypeError(f"{name}: expected floating predictions, got dtype {y_pred.dtype}")
    if y_pred.size == 0:
        raise ValueError(f"{name}: got an empty batch of predictions, shape {y_pred.shape}")
    return y_pred


def _label_array(y_true, y_pred: Tensor, name: str, dtype=None) -> np.ndarray:
    """Labels as a raw array of the predictions' shape (and dtype, unless ``dtype`` is given)."""
    y = np.asarray(y_true.data if isinstance(y_true, Tensor) else y_true)
    if y.shape != y_pred.shape:
        hint = "; reshape the labels to (m, 1)" if y_pred.shape == y.shape + (1,) else ""
        raise ShapeError(f"{name}: predictions have shape {y_pred.shape} but labels have shape "
                         f"{y.shape}; expected equal shapes{hint}")
    return y.astype(dtype or y_pred.dtype, copy=False)


def _check_unit_interval(y: np.ndarray, name: str, allowed: str = "") -> None:
    if y.size and not (y.min() >= 0 and y.max() <= 1):  # NaN fails both comparisons
        found = "NaN" if np.isnan(y).any() else f"values in [{y.min():g}, {y.max():g}]"
        sentinel = "NaN" in found or (y == -1).any()
        hint = ("; mark missing labels with NaN or -1 and use masked_binary_crossentropy"
                if sentinel and not allowed else "")
        raise ValueError(f"{name}: labels must lie in [0, 1]{allowed}, got {found}{hint}")


class NonFiniteError(ValueError, FloatingPointError):
    """NaN predictions or labels: a ValueError, and a FloatingPointError like a diverged cost."""


def _checked(loss: Tensor, y_pred: Tensor, name: str, y_true: Tensor | None = None) -> Tensor:
    """Raise when the loss is NaN because the predictions (or labels) are: checked after the
    forward pass so that valid batches pay no extra pass over the predictions."""
    if not np.isnan(loss.data):
        return loss
    if np.isnan(y_pred.data).any():
        count = int(np.isnan(y_pred.data).sum())
        raise NonFiniteError(f"{name}: predictions contain {count} NaN value(s) out of "
                         f"{y_pred.size}; training has probably diverged (lower the learning "
                         f"rate, or check the inputs)")
    if y_true is not None and np.isnan(y_true.data).any():
        raise NonFiniteError(f"{name}: labels contain {int(np.isnan(y_true.data).sum())} NaN "
                         f"value(s) out of {y_true.size}")
    return loss


def _apply_bce(X: Tensor, y, mask, from_logits: bool, name: str) -> Tensor:
    need_grad = X.requires_grad and is_grad_enabled()
    loss = BinaryCrossEntropy.apply(X, y=y, mask=mask, from_logits=from_logits, eps=EPSILON,
                                    need_grad=need_grad)
    return _checked(loss, X, name)


def binary_crossentropy(A, Y) -> Tensor:
    """J = -(1/m) sum(y log a + (1-y) log(1-a)) from probabilities A, clipped to [eps, 1-eps]."""
    name = "binary_crossentropy"
    A = _prediction(A, name)
    y = _label_array(Y, A, name)
    _check_unit_interval(y, name)
    return _apply_bce(A, y, None, False, name)


def binary_crossentropy_from_logits(Z, Y) -> Tensor:
    """J = (1/m) sum(max(z,0) - z y + log(1 + e^-|z|)): stable BCE of sigmoid(Z); dZ = A - Y."""
    name = "binary_crossentropy_from_logits"
    Z = _prediction(Z, name)
    y = _label_array(Y, Z, name)
    _check_unit_interval(y, name)
    return _apply_bce(Z, y, None, True, name)


def masked_binary_crossentropy(Z_or_A, Y, from_logits: bool = True) -> Tensor:
    """J = sum of BCE over labelled entries / number of labelled entries; NaN or -1 = missing.

    The course's multi-task loss with "?" labels: entries whose label is NaN or -1 count for
    nothing (their gradient is exactly 0 and their predictions do not change J). strata divides
    by the number of labelled entries, so J equals ``binary_crossentropy`` when nothing is
    missing; the course's (1/m) sum_i sum_{j labelled} differs by the factor labelled / m.
    """
    name = "masked_binary_crossentropy"
    X = _prediction(Z_or_A, name)
    y = _label_array(Y, X, name)
    mask = (y != -1) & ~np.isnan(y)
    y = np.where(mask, y, 0).astype(X.dtype, copy=False)
    _check_unit_interval(y, name, allowed=" (or NaN / -1 for a missing label)")
    if not mask.any():
        raise ValueError(f"{name}: all {y.size} labels are missing (NaN or -1); at least one "
                         f"labelled entry is needed")
    return _apply_bce(X, y, mask, bool(from_logits), name)


def categorical_crossentropy(Z, Y, from_logits: bool = True) -> Tensor:
    """J = -(1/m) sum_i sum_k y_k log a_k, A = softmax(Z) (or A itself, clipped, if not logits)."""
    name = "categorical_crossentropy"
    Z = _prediction(Z, name)
    if Z.ndim < 1:
        raise ShapeError(f"{name}: expected predictions (m, C), got a scalar")
    y_raw = np.asarray(Y.data if isinstance(Y, Tensor) else Y)
    if y_raw.dtype.kind in "iu" and y_raw.shape == Z.shape[:-1]:
        raise ValueError(f"{name}: got integer class labels of shape {y_raw.shape}; use "
                         f"sparse_categorical_crossentropy for class indices, or one-hot "
                         f"labels of shape {Z.shape}")
    y = _label_array(y_raw, Z, name)
    _check_unit_interval(y, name)
    if from_logits:
        return _checked(softmax_cross_entropy(Z, y), Z, name)
    log_a = Z.clip(EPSILON, 1 - EPSILON).log()
    return _checked(-(log_a * Tensor._wrap(y, False)).sum() / math.prod(Z.shape[:-1]), Z, name)


def sparse_categorical_crossentropy(Z, labels) -> Tensor:
    """J = -(1/m) sum_i log softmax(z_i)[label_i], labels integer classes of shape (m,)."""
    name = "sparse_categorical_crossentropy"
    Z = _prediction(Z, name)
    y = np.asarray(labels.data if isinstance(labels, Tensor) else labels)
    if Z.ndim < 1:
        raise ShapeError(f"{name}: expected logits (m, C), got a scalar")
    if y.shape == Z.shape[:-1] + (1,):  # Keras accepts (m, 1) labels: unambiguous, so do we
        y = y.reshape(Z.shape[:-1])
    if y.shape != Z.shape[:-1]:
        raise ShapeError(f"{name}: logits have shape {Z.shape}, so labels must have shape "
                         f"{Z.shape[:-1]} (one class index per example), got {y.shape}")
    if y.dtype.kind == "f" and np.array_equal(y, np.round(y)):
        y = y.astype(np.int64)  # whole-number float labels, as loaded from files
    if y.dtype.kind not in "iu":
        raise TypeError(f"{name}: expected integer class labels, got dtype {y.dtype} with "
                        f"non-integer values")
    n_classes = Z.shape[-1]
    if y.size and (y.min() < 0 or y.max() >= n_classes):
        bad = y[(y < 0) | (y >= n_classes)]
        raise ValueError(f"{name}: labels must be class indices in [0, {n_classes - 1}] for "
                         f"{n_classes} classes, got {bad.size} out of range (e.g. {bad[0]})")
    return _checked(softmax_cross_entropy(Z, y), Z, name)


class SequenceCrossEntropy(Function):
    """Log-softmax over the vocabulary, the label's entry picked, padding weighted 0."""

    def forward(self, z, labels, keep, denominator):
        shifted = z - z.max(axis=-1, keepdims=True)
        self.log_probs = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
        self.labels, self.keep, self.denominator = labels, keep, denominator
        picked = np.take_along_axis(self.log_probs, labels[..., None], axis=-1)[..., 0]
        return np.asarray(-(picked * keep).sum() / denominator, dtype=z.dtype)

    def backward(self, g):
        dz = np.exp(self.log_probs)  # softmax: dZ = (y_hat - y) at every real step
        index = self.labels[..., None]
        np.put_along_axis(dz, index, np.take_along_axis(dz, index, axis=-1) - 1, axis=-1)
        dz *= (self.keep * (g / self.denominator))[..., None]
        return (dz,)


def sequence_crossentropy(Z, labels, mask=None, reduction: str = "token") -> Tensor:
    """Softmax cross-entropy at every time step of (m, T_y, V) logits, labels (m, T_y) class
    indices; padding (label -1, or mask 0) counts for nothing.

    ``reduction="token"``: the mean over real steps. ``"sequence"``: each sequence's sum over
    its steps, averaged over the m sequences: the course's loss of a whole name,
    -sum_t log y_hat<t>[y<t>].
    """
    name = "sequence_crossentropy"
    Z = _prediction(Z, name)
    y = np.asarray(labels.data if isinstance(labels, Tensor) else labels)
    if Z.ndim != 3 or y.shape != Z.shape[:2]:
        raise ShapeError(f"{name}: expected logits (m, T_y, V) and labels (m, T_y), got "
                         f"{Z.shape} and {y.shape}")
    if y.dtype.kind not in "iu":
        raise TypeError(f"{name}: expected integer class labels, got dtype {y.dtype}")
    keep = y != -1 if mask is None else np.asarray(mask).astype(bool) & (y != -1)
    if keep.shape != y.shape:
        raise ShapeError(f"{name}: expected a mask of shape {y.shape}, got {keep.shape}")
    bad = keep & ((y < 0) | (y >= Z.shape[-1]))
    if bad.any():
        raise ValueError(f"{name}: labels must be class indices in [0, {Z.shape[-1]}) or -1 "
                         f"(padding), got {y[bad][0]}")
    if reduction not in ("token", "sequence"):
        raise ValueError(f"{name}: expected reduction 'token' or 'sequence', got {reduction!r}")
    count = int(keep.sum()) if reduction == "token" else y.shape[0]
    if count == 0:
        raise ValueError(f"{name}: every step is padding; nothing to average")
    loss = SequenceCrossEntropy.apply(Z, labels=np.where(keep, y, 0), keep=keep.astype(Z.dtype),
                                      denominator=count)
    return _checked(loss, Z, name)


def mean_squared_error(A, Y) -> Tensor:
    """J = mean over all m * n_y entries of (a - y)^2 (Keras's and PyTorch's normalization)."""
    name = "mean_squared_error"
    A = _prediction(A, name)
    if isinstance(Y, Tensor) and Y.requires_grad:  # a learned target: keep it in the graph
        _label_array(Y.detach(), A, name)  # only to check the shape
        Y = Y if Y.dtype == A.dtype else Y.astype(A.dtype)
    else:
        Y = Tensor._wrap(_label_array(Y, A, name), False)
    diff = A - Y
    return _checked((diff * diff).mean(), A, name, Y)


mse = mean_squared_error


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
    def forward(self, *ws, coef):
        self.ws, self.coef = ws, coef
        total = sum(np.dot(w.reshape(-1), w.reshape(-1)) for w in ws)
        return np.asarray(coef * total, dtype=ws[0].dtype)

    def backward(self, g):
        scale = g * (2 * self.coef)  # lambd/m
        return tuple(w * scale if need else None
                     for w, need in zip(self.ws, self.needs_input_grad))


class L1Penalty(Function):
    def forward(self, *ws, coef):
        self.ws, self.coef = ws, coef
        return np.asarray(coef * sum(np.abs(w).sum() for w in ws), dtype=ws[0].dtype)

    def backward(self, g):
        scale = g * self.coef
        return tuple(np.sign(w) * scale if need else None
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


LOSSES = {
    "binary_crossentropy": binary_crossentropy,
    "binary_crossentropy_from_logits": binary_crossentropy_from_logits,
    "categorical_crossentropy": categorical_crossentropy,
    "sparse_categorical_crossentropy": sparse_categorical_crossentropy,
    "mse": mean_squared_error,
    "mean_squared_error": mean_squared_error,
    "masked_binary_crossentropy": masked_binary_crossentropy,
    "sequence_crossentropy": sequence_crossentropy,
}


def get_loss(name):
    """The loss function called ``name`` (see ``LOSSES``); a callable is returned unchanged."""
    return lookup(LOSSES, name, "loss")
