"""Activations: tanh, sigmoid (stable), relu, leaky_relu, softmax and log_softmax (stable).

sigmoid and softmax (over the last axis) remember their input for as long as their output lives,
as Keras caches ``_keras_logits``: a loss that takes probabilities then computes the fused,
stable cross-entropy from that pre-activation instead (see ``strata.losses``).
"""

from __future__ import annotations

import weakref

from strata.autograd import Function
from strata.backend import array_module
from strata.ops.common import lift, normalize_axes
from strata.ops.dispatch import kernels_for

#: id(output) -> (weak reference to the output, "sigmoid" or "softmax", the input Z). Tensors
#: have no __dict__ for a Keras-style attribute; an entry leaves with its output tensor.
_PRODUCED: dict = {}


def _remember(out, kind: str, z):
    key = id(out)
    _PRODUCED[key] = (weakref.ref(out, lambda _, k=key, d=_PRODUCED: d.pop(k, None)), kind, z)
    return out


def produced_by(t):
    """("sigmoid" or "softmax", Z) when the tensor ``t`` is sigmoid(Z), or softmax(Z) over its
    last axis, else None: what a loss on probabilities fuses with."""
    entry = _PRODUCED.get(id(t))
    if entry is None or entry[0]() is not t:
        return None
    return entry[1], entry[2]


class Tanh(Function):
    def forward(self, a):
        self.out = array_module(a).tanh(a)
        return self.out

    def backward(self, g):
        return (g * (1 - self.out * self.out),)


class Sigmoid(Function):
    def forward(self, a):
        # e = exp(-|a|) never overflows; 1/(1+e) for a >= 0 and e/(1+e) for a < 0 are both exact.
        xp = array_module(a)
        e = xp.exp(-xp.abs(a))
        self.out = xp.where(a >= 0, 1, e) / (1 + e)
        return self.out

    def backward(self, g):
        return (g * self.out * (1 - self.out),)


class ReLU(Function):
    # One pass each way: numba loops on NumPy arrays (cpu_kernels.py), chosen by dispatch.
    def forward(self, a):
        self.kernels = kernels_for(array_module(a))
        self.out = self.kernels.relu(a)
        return self.out

    def backward(self, g):
        return (self.kernels.relu_backward(g, self.out),)


class LeakyReLU(Function):
    def forward(self, a, alpha):
        self.positive, self.alpha = a > 0, alpha
        return array_module(a).where(self.positive, a, alpha * a)

    def backward(self, g):
        return (array_module(g).where(self.positive, g, self.alpha * g),)


class Softmax(Function):
    def forward(self, a, axis):
        shifted = a - a.max(axis=axis, keepdims=True)
        e = array_module(a).exp(shifted)
        self.out, self.axis = e / e.sum(axis=axis, keepdims=True), axis
        return self.out

    def backward(self, g):
        s = self.out
        return (s * (g - (g * s).sum(axis=self.axis, keepdims=True)),)


class LogSoftmax(Function):
    def forward(self, a, axis):
        xp = array_module(a)
        shifted = a - a.max(axis=axis, keepdims=True)
        self.out = shifted - xp.log(xp.exp(shifted).sum(axis=axis, keepdims=True))
        self.axis = axis
        return self.out

    def backward(self, g):
        return (g - array_module(g).exp(self.out) * g.sum(axis=self.axis, keepdims=True),)


def tanh(a):
    """Hyperbolic tangent; derivative 1 - tanh(a)**2."""
    return Tanh.apply(lift(a))


def sigmoid(a):
    """1 / (1 + e**-a), computed without overflow for large |a|; derivative s * (1 - s)."""
    a = lift(a)
    return _remember(Sigmoid.apply(a), "sigmoid", a)


def relu(a):
    """max(a, 0); the gradient at 0 is 0."""
    return ReLU.apply(lift(a))


def leaky_relu(a, alpha: float = 0.01):
    """a where a > 0, else alpha * a (the course uses alpha = 0.01)."""
    if not 0 <= alpha < 1:
        raise ValueError(f"leaky_relu: expected 0 <= alpha < 1, got {alpha}")
    return LeakyReLU.apply(lift(a), alpha=alpha)


def softmax(a, axis: int = -1):
    """exp(a) / sum(exp(a)) along ``axis`` (classes last by default), shifted by the max."""
    a = lift(a)
    axis = normalize_axes(axis, a.ndim, "softmax")
    out = Softmax.apply(a, axis=axis)
    return _remember(out, "softmax", a) if axis == (a.ndim - 1,) else out


def log_softmax(a, axis: int = -1):
    """log(softmax(a)) by log-sum-exp, exact even where softmax underflows to 0."""
    a = lift(a)
    return LogSoftmax.apply(a, axis=normalize_axes(axis, a.ndim, "log_softmax"))
