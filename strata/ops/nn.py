"""Fused neural-network ops whose combined backward is simpler and faster than the chain of
primitives: softmax cross-entropy (the course's dZ = A - Y)."""

from __future__ import annotations

import math

import numpy as np

from strata.autograd import Function, ShapeError
from strata.ops.common import lift
from strata.tensor import Tensor


class SoftmaxCrossEntropy(Function):
    def forward(self, z, labels):
        shifted = z - z.max(axis=-1, keepdims=True)
        log_probs = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
        self.m = math.prod(z.shape[:-1])
        self.log_probs, self.labels = log_probs, labels
        if labels.dtype.kind in "iu":  # class indices
            picked = np.take_along_axis(log_probs, labels[..., None], axis=-1)
            return np.asarray(-picked.sum() / self.m, dtype=z.dtype)
        return np.asarray(-(labels * log_probs).sum() / self.m, dtype=z.dtype)

    def backward(self, g):
        dz = np.exp(self.log_probs)  # A = softmax(Z)
        if self.labels.dtype.kind in "iu":
            np.put_along_axis(dz, self.labels[..., None],
                              np.take_along_axis(dz, self.labels[..., None], axis=-1) - 1,
                              axis=-1)
        else:
            dz -= self.labels
        dz *= g / self.m
        return dz, None


def softmax_cross_entropy(logits, labels):
    """Mean over examples of -sum(Y * log(softmax(Z))), classes on the last axis.

    ``labels`` are one-hot (or probability) rows of the logits' shape, or integer class indices
    of the logits' shape without the last axis. The gradient is the course's dZ = (A - Y) / m.
    """
    logits = lift(logits)
    y = labels.data if isinstance(labels, Tensor) else np.asarray(labels)
    if y.dtype.kind in "iu":
        if y.shape != logits.shape[:-1]:
            raise ShapeError(f"softmax_cross_entropy: expected class indices of shape "
                             f"{logits.shape[:-1]} for logits {logits.shape}, got {y.shape}")
        if y.size and (y.min() < 0 or y.max() >= logits.shape[-1]):
            raise ValueError(f"softmax_cross_entropy: class indices must lie in "
                             f"[0, {logits.shape[-1]}), got [{y.min()}, {y.max()}]")
    elif y.shape != logits.shape:
        raise ShapeError(f"softmax_cross_entropy: expected one-hot labels of shape "
                         f"{logits.shape} (or integer classes of shape {logits.shape[:-1]}), "
                         f"got {y.shape}")
    return SoftmaxCrossEntropy.apply(logits, Tensor._wrap(y, False))
