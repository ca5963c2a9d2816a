"""Binary, categorical and sparse categorical cross-entropy: the fused ops, from logits or
probabilities, with Keras's per-example weights (``sample_weight``)."""

from __future__ import annotations

import math

import numpy as np

from strata.autograd import Function, ShapeError, is_grad_enabled
from strata.backend import array_module
from strata.losses.checks import (
    EPSILON,
    _as_array,
    _check_classes,
    _check_unit_interval,
    _checked,
    _fused_logits,
    _label_array,
    _per_example,
    _prediction,
    _sample_weights,
)
from strata.ops.nn import softmax_cross_entropy
from strata.tensor import Tensor


class BinaryCrossEntropyOp(Function):
    """Fused binary cross-entropy, from logits or (clipped) probabilities, with optional mask
    and per-example ``weight`` (broadcast over the entries of each example)."""

    def forward(self, x, y, mask, from_logits, eps, need_grad, weight=None):
        xp = array_module(x)
        self.dx = None
        if from_logits:
            # -[y log s(z) + (1-y) log(1-s(z))] = max(z, 0) - z y + log(1 + e^-|z|): e^-|z| never
            # overflows and log1p keeps it exact where it is tiny (|z| up to 1e4 and beyond).
            e = xp.exp(-xp.abs(x))
            losses = xp.maximum(x, 0) - x * y + xp.log1p(e)
            if need_grad:  # not in evaluation: skip the gradient's pass
                self.dx = xp.where(x >= 0, 1, e) / (1 + e) - y  # sigmoid(z) - y
        else:
            a = xp.clip(x, eps, 1 - eps)
            losses = -(y * xp.log(a) + (1 - y) * xp.log1p(-a))
            if need_grad:  # not in evaluation: skip the gradient's pass
                self.dx = (a - y) / (a * (1 - a))
                self.dx *= (x >= eps) & (x <= 1 - eps)
        if weight is not None:  # J = (1/m) sum_i w_i l_i, so dJ/dx_i carries w_i too
            losses = losses * weight
            if self.dx is not None:
                self.dx *= weight
        if mask is None:
            self.n = x.size
            return xp.asarray(losses.sum() / self.n, dtype=x.dtype)
        # where, not multiply: predictions at missing entries may be anything, even inf or NaN.
        self.n = int(mask.sum())
        if self.dx is not None:
            self.dx = xp.where(mask, self.dx, 0)
        return xp.asarray(xp.where(mask, losses, 0).sum() / self.n, dtype=x.dtype)

    def backward(self, g):
        return (self.dx * (g / self.n),)


class WeightedSoftmaxCrossEntropyOp(Function):
    """-sum(weight * sum_k y_k log softmax(z)_k) / denominator, softmax over the last axis:
    labels are class indices or one-hot (soft) rows, ``weight`` one number per row (broadcast);
    the gradient is dZ = weight * (A - Y) / denominator."""

    def forward(self, z, labels, weight, denominator):
        xp = array_module(z)
        shifted = z - z.max(axis=-1, keepdims=True)
        self.log_probs = shifted - xp.log(xp.exp(shifted).sum(axis=-1, keepdims=True))
        self.labels, self.weight, self.denominator = labels, weight, denominator
        if labels.dtype.kind in "iu":
            picked = xp.take_along_axis(self.log_probs, labels[..., None], axis=-1)[..., 0]
            return xp.asarray(-(picked * weight).sum() / denominator, dtype=z.dtype)
        # weight the labels, not the row sums: weights of 1 then give softmax_cross_entropy's
        # value to the last bit (the same products, summed in the same order).
        weighted = labels * weight[..., None]
        return xp.asarray(-(weighted * self.log_probs).sum() / denominator, dtype=z.dtype)

    def backward(self, g):
        xp = array_module(g)
        dz = xp.exp(self.log_probs)  # softmax: dZ = (y_hat - y) at every weighted row
        if self.labels.dtype.kind in "iu":
            index = self.labels[..., None]
            xp.put_along_axis(dz, index, xp.take_along_axis(dz, index, axis=-1) - 1, axis=-1)
        else:
            dz -= self.labels
        dz *= (self.weight * (g / self.denominator))[..., None]
        return (dz,)


def _bce(X: Tensor, y, mask, from_logits: bool, name: str, sample_weight=None) -> Tensor:
    weight = None
    if sample_weight is not None:
        w = _sample_weights(sample_weight, X.shape, X.dtype, name, array_module(X.data))
        weight = _per_example(w, X.ndim)
    z = _fused_logits(X, "sigmoid", from_logits, name, mask)
    x = X if z is None else z
    need_grad = x.requires_grad and is_grad_enabled()
    loss = BinaryCrossEntropyOp.apply(x, y=y, mask=mask, from_logits=from_logits or z is not None,
                                      eps=EPSILON, need_grad=need_grad, weight=weight)
    return _checked(loss, X, name)


def binary_crossentropy(A, Y, from_logits: bool = False, *, sample_weight=None) -> Tensor:
    """J = -(1/m) sum(y log a + (1-y) log(1-a)) from probabilities A (clipped to [eps, 1-eps];
    fused with a final sigmoid), or from logits Z with ``from_logits=True``:
    (1/m) sum(max(z,0) - z y + log(1 + e^-|z|)), whose gradient is dZ = (A - Y) / m.
    ``sample_weight`` (m,): J = (1/m) sum_i w_i l_i, l_i example i's mean over its outputs."""
    name = "binary_crossentropy"
    A = _prediction(A, name)
    y = _label_array(Y, A, name)
    _check_unit_interval(y, name)
    return _bce(A, y, None, bool(from_logits), name, sample_weight)


def binary_crossentropy_from_logits(Z, Y, *, sample_weight=None) -> Tensor:
    """``binary_crossentropy(Z, Y, from_logits=True)``: the stable BCE of sigmoid(Z); dZ = A - Y.
    Kept under this name for the course's from-scratch networks (``strata demo``)."""
    name = "binary_crossentropy_from_logits"
    Z = _prediction(Z, name)
    y = _label_array(Y, Z, name)
    _check_unit_interval(y, name)
    return _bce(Z, y, None, True, name, sample_weight)


def masked_binary_crossentropy(A, Y, from_logits: bool = False, *,
                               sample_weight=None) -> Tensor:
    """J = sum of BCE over labelled entries / number of labelled entries; NaN or -1 = missing.

    The course's multi-task loss with "?" labels: entries whose label is NaN or -1 count for
    nothing (their gradient is exactly 0 and their predictions do not change J). strata divides
    by the number of labelled entries, so J equals ``binary_crossentropy`` when nothing is
    missing; the course's (1/m) sum_i sum_{j labelled} differs by the factor labelled / m.
    Probabilities by default (fused with a final sigmoid); logits with ``from_logits=True``.
    ``sample_weight`` (m,) multiplies each labelled entry of example i by w_i (same divisor).
    """
    name = "masked_binary_crossentropy"
    X = _prediction(A, name)
    y = _label_array(Y, X, name)
    xp = array_module(y)
    mask = (y != -1) & ~xp.isnan(y)
    y = xp.where(mask, y, 0).astype(X.dtype, copy=False)
    _check_unit_interval(y, name, allowed=" (or NaN / -1 for a missing label)")
    if not mask.any():
        raise ValueError(f"{name}: all {y.size} labels are missing (NaN or -1); at least one "
                         f"labelled entry is needed")
    return _bce(X, y, mask, bool(from_logits), name, sample_weight)


def _log_probabilities(A: Tensor) -> Tensor:
    """Keras's log of probabilities: rows renormalized to sum 1, clipped to [eps, 1 - eps]."""
    return (A / A.sum(axis=-1, keepdims=True)).clip(EPSILON, 1 - EPSILON).log()


def _softmax_loss(A: Tensor, y, from_logits: bool, name: str, sample_weight=None) -> Tensor:
    """Softmax cross-entropy of ``y`` (one-hot rows or class indices, on A's device) fused, or
    Keras's formula on probabilities that no softmax made; weighted per example when
    ``sample_weight`` is."""
    xp = array_module(A.data)
    w = None
    if sample_weight is not None:
        w = _sample_weights(sample_weight, A.shape[:-1], A.dtype, name, xp)
    z = _fused_logits(A, "softmax", from_logits, name)
    if from_logits or z is not None:
        x = A if z is None else z
        if w is None:
            return _checked(softmax_cross_entropy(x, y), A, name)
        loss = WeightedSoftmaxCrossEntropyOp.apply(x, labels=y, weight=_per_example(w, A.ndim - 1),
                                                   denominator=math.prod(A.shape[:-1]))
        return _checked(loss, A, name)
    if y.dtype.kind in "iu":
        y = xp.eye(A.shape[-1], dtype=A.dtype)[y]
    if w is not None:  # weight the constant labels: the gradient follows through the formula
        y = y * _per_example(w, A.ndim)
    loss = -(_log_probabilities(A) * Tensor._wrap(y, False)).sum() / math.prod(A.shape[:-1])
    return _checked(loss, A, name)


def categorical_crossentropy(A, Y, from_logits: bool = False, *, sample_weight=None) -> Tensor:
    """J = -(1/m) sum_i sum_k y_k log a_k with one-hot (or soft) labels Y (m, C): A are
    probabilities (fused with a final softmax), or logits Z with ``from_logits=True``
    (A = softmax(Z), dZ = (A - Y) / m). ``sample_weight`` (m,): J = (1/m) sum_i w_i l_i."""
    name = "categorical_crossentropy"
    A = _prediction(A, name)
    if A.ndim < 1:
        raise ShapeError(f"{name}: expected predictions (m, C), got a scalar")
    y_raw = _as_array(Y, array_module(A.data))
    if y_raw.dtype.kind in "iu" and y_raw.shape == A.shape[:-1]:
        raise ValueError(f"{name}: got integer class labels of shape {y_raw.shape}; use "
                         f"sparse_categorical_crossentropy for class indices, or one-hot "
                         f"labels of shape {A.shape}")
    y = _label_array(y_raw, A, name)
    _check_unit_interval(y, name)
    _check_classes(A, name)
    return _softmax_loss(A, y, bool(from_logits), name, sample_weight)


def sparse_categorical_crossentropy(A, labels, from_logits: bool = False, *,
                                    sample_weight=None) -> Tensor:
    """J = -(1/m) sum_i log a_i[label_i], labels integer classes of shape (m,) (or (m, 1)): A
    are probabilities (fused with a final softmax), or logits with ``from_logits=True``.
    ``sample_weight`` (m,): J = -(1/m) sum_i w_i log a_i[label_i]."""
    name = "sparse_categorical_crossentropy"
    A = _prediction(A, name)
    if A.ndim < 1:
        raise ShapeError(f"{name}: expected predictions (m, C), got a scalar")
    y = _as_array(labels, array_module(A.data))
    if y.shape == A.shape[:-1] + (1,):  # Keras accepts (m, 1) labels: unambiguous, so do we
        y = y.reshape(A.shape[:-1])
    if y.shape != A.shape[:-1]:
        raise ShapeError(f"{name}: predictions have shape {A.shape}, so labels must have shape "
                         f"{A.shape[:-1]} (one class index per example), got {y.shape}")
    if y.dtype.kind == "f" and (y == y.round()).all():
        y = y.astype(np.int64)  # whole-number float labels, as loaded from files
    if y.dtype.kind not in "iu":
        raise TypeError(f"{name}: expected integer class labels, got dtype {y.dtype} with "
                        f"non-integer values")
    n_classes = A.shape[-1]
    if y.size and (y.min() < 0 or y.max() >= n_classes):
        bad = y[(y < 0) | (y >= n_classes)]
        raise ValueError(f"{name}: labels must be class indices in [0, {n_classes - 1}] for "
                         f"{n_classes} classes, got {bad.size} out of range (e.g. "
                         f"{int(bad[0])})")
    _check_classes(A, name)
    return _softmax_loss(A, y, bool(from_logits), name, sample_weight)
