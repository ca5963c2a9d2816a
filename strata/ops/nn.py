"""Fused neural-network ops whose combined backward is simpler and faster than the chain of
primitives: softmax cross-entropy (the course's dZ = A - Y)."""

from __future__ import annotations

import math

from strata import backend
from strata.autograd import Function, ShapeError
from strata.backend import array_module
from strata.ops.common import lift
from strata.ops.dispatch import kernels_for
from strata.tensor import Tensor


class SoftmaxCrossEntropy(Function):
    def forward(self, z, labels):
        xp = array_module(z)
        shifted = z - z.max(axis=-1, keepdims=True)
        log_probs = shifted - xp.log(xp.exp(shifted).sum(axis=-1, keepdims=True))
        self.m = math.prod(z.shape[:-1])
        self.log_probs, self.labels = log_probs, labels
        if labels.dtype.kind in "iu":  # class indices
            picked = xp.take_along_axis(log_probs, labels[..., None], axis=-1)
            return xp.asarray(-picked.sum() / self.m, dtype=z.dtype)
        return xp.asarray(-(labels * log_probs).sum() / self.m, dtype=z.dtype)

    def backward(self, g):
        xp = array_module(g)
        dz = xp.exp(self.log_probs)  # A = softmax(Z)
        if self.labels.dtype.kind in "iu":
            xp.put_along_axis(dz, self.labels[..., None],
                              xp.take_along_axis(dz, self.labels[..., None], axis=-1) - 1,
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
    # Labels given as NumPy arrays or lists go to the logits' device.
    y = array_module(logits.data).asarray(labels.data if isinstance(labels, Tensor) else labels)
    if y.dtype.kind in "iu":
        if y.shape != logits.shape[:-1]:
            raise ShapeError(f"softmax_cross_entropy: expected class indices of shape "
                             f"{logits.shape[:-1]} for logits {logits.shape}, got {y.shape}")
        if y.size and (y.min() < 0 or y.max() >= logits.shape[-1]):
            raise ValueError(f"softmax_cross_entropy: class indices must lie in "
                             f"[0, {logits.shape[-1]}), got [{y.min().item()}, "
                             f"{y.max().item()}]")
    elif y.shape != logits.shape:
        raise ShapeError(f"softmax_cross_entropy: expected one-hot labels of shape "
                         f"{logits.shape} (or integer classes of shape {logits.shape[:-1]}), "
                         f"got {y.shape}")
    return SoftmaxCrossEntropy.apply(logits, Tensor._wrap(y, False))


class Dropout(Function):
    def forward(self, x, keep_prob):
        # Inverted dropout: scale the kept units by 1/keep_prob so expected activations match
        # test time, when no units are dropped. The mask is drawn on the host from the one
        # Generator (so runs repeat, and resume, on any device) and sent to x's device.
        scaled_mask = (backend.rng().random(x.shape) < keep_prob) * x.dtype.type(1 / keep_prob)
        self.scaled_mask = array_module(x).asarray(scaled_mask)
        return x * self.scaled_mask

    def backward(self, g):
        return (g * self.scaled_mask,)


def dropout(x, keep_prob: float, training: bool = True):
    """Inverted dropout: keep each unit with probability ``keep_prob``, scale kept ones by
    1/keep_prob (the course's D = rand < keep_prob; A = A * D / keep_prob). Identity when not
    training or when keep_prob is 1."""
    if not 0 < keep_prob <= 1:
        raise ValueError(f"dropout: expected 0 < keep_prob <= 1, got {keep_prob}")
    x = lift(x)
    if not training or keep_prob == 1:
        return x
    return Dropout.apply(x, keep_prob=keep_prob)


class BatchNorm(Function):
    # Fused loops on the (rows, features) view (cpu_kernels.py: one pass to normalize, one to
    # reduce and one to write dx, instead of NumPy's eight or so), chosen by dispatch. With
    # ``relu`` the ReLU after it is fused too: its forward and backward passes over the
    # activations (memory-bound, as long as the normalization's) disappear.
    def forward(self, x, gamma, beta, eps, stats, training, relu):
        mean, var = stats
        self.kernels = kernels_for(array_module(x))
        self.shape, self.training, self.gamma = x.shape, training, gamma
        self.inv_std = (1 / array_module(var).sqrt(var + eps)).astype(x.dtype)
        out, self.x_hat = self.kernels.normalize(_rows(x), mean, self.inv_std, gamma, beta,
                                                 relu)
        self.out = out if relu else None
        return out.reshape(x.shape)

    def backward(self, g):
        need_x, need_gamma, need_beta = self.needs_input_grad
        scale = (self.gamma * self.inv_std).astype(g.dtype)
        dx, dgamma, dbeta = self.kernels.normalize_backward(_rows(g), self.x_hat, scale,
                                                            self.training, self.out)
        dtype = g.dtype
        return (dx.reshape(self.shape) if need_x else None,
                dgamma.astype(dtype) if need_gamma else None,
                dbeta.astype(dtype) if need_beta else None)


def column_moments(x2):
    """Mean and population variance of each column of (rows, features) ``x2``, accumulated in
    float64 from values shifted by the first row (for accuracy)."""
    return kernels_for(array_module(x2)).column_moments(x2)


def _rows(x):
    """x as a C-contiguous (rows, features) matrix: features on the last axis."""
    return array_module(x).ascontiguousarray(x).reshape(-1, x.shape[-1])


def batch_norm(x, gamma, beta, eps: float = 1e-3, running=None, relu: bool = False):
    """Batch normalization over every axis but the last (features, or channels of NHWC images).

    Z_norm = (Z - mu) / sqrt(sigma^2 + eps), output gamma * Z_norm + beta. mu and sigma^2 are
    the mini-batch's (population variance), or the fixed ``running=(mean, var)`` at test time.
    ``relu=True`` returns relu(gamma * Z_norm + beta), equal to ``relu`` of the output but
    without its own pass over the activations, forward and backward. Returns
    ``(output, (mean, var))``: the statistics used, for running averages.
    """
    x = lift(x)
    gamma, beta = lift(gamma, x), lift(beta, x)
    features = x.shape[-1:] if x.ndim else ()
    if x.ndim < 2 or gamma.shape != features or beta.shape != features:
        raise ShapeError(f"batch_norm: expected x (m, ..., n) with gamma and beta of shape (n,), "
                         f"got x {x.shape}, gamma {gamma.shape}, beta {beta.shape}")
    if eps <= 0:
        raise ValueError(f"batch_norm: expected eps > 0, got {eps}")
    if running is None:
        stats = tuple(s.astype(x.dtype) for s in column_moments(_rows(x.data)))
    else:
        xp = array_module(x.data)
        stats = tuple(xp.asarray(s, dtype=x.dtype) for s in running)
    out = BatchNorm.apply(x, gamma, beta, eps=eps, stats=stats, training=running is None,
                          relu=bool(relu))
    return out, stats
