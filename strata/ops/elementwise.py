"""Elementwise arithmetic and math: add, sub, mul, div, neg, pow, exp, log, sqrt, abs,
maximum, minimum, where, clip, astype. Binary ops broadcast like NumPy; their backward sums the
gradient back to each input's shape (``unbroadcast``)."""

from __future__ import annotations

import numpy as np

from strata.autograd import Function, unbroadcast
from strata.backend import array_module
from strata.ops.common import lift, lift_pair
from strata.tensor import Tensor


class Add(Function):
    def forward(self, a, b):
        self.shapes = a.shape, b.shape
        return a + b

    def backward(self, g):
        need_a, need_b = self.needs_input_grad
        return (unbroadcast(g, self.shapes[0]) if need_a else None,
                unbroadcast(g, self.shapes[1]) if need_b else None)


class Sub(Function):
    def forward(self, a, b):
        self.shapes = a.shape, b.shape
        return a - b

    def backward(self, g):
        need_a, need_b = self.needs_input_grad
        return (unbroadcast(g, self.shapes[0]) if need_a else None,
                unbroadcast(-g, self.shapes[1]) if need_b else None)


class Mul(Function):
    def forward(self, a, b):
        self.a, self.b = a, b
        return a * b

    def backward(self, g):
        need_a, need_b = self.needs_input_grad
        return (unbroadcast(g * self.b, self.a.shape) if need_a else None,
                unbroadcast(g * self.a, self.b.shape) if need_b else None)


class Div(Function):
    def forward(self, a, b):
        self.a_shape, self.b = a.shape, b
        self.out = a / b
        return self.out

    def backward(self, g):
        ga = g / self.b
        gb = unbroadcast(-ga * self.out, self.b.shape) if self.needs_input_grad[1] else None
        return unbroadcast(ga, self.a_shape) if self.needs_input_grad[0] else None, gb


class Neg(Function):
    def forward(self, a):
        return -a

    def backward(self, g):
        return (-g,)


class Pow(Function):
    def forward(self, a, b):
        self.a, self.b = a, b
        self.out = a**b
        return self.out

    def backward(self, g):
        need_a, need_b = self.needs_input_grad
        a, b = self.a, self.b
        ga = unbroadcast(g * b * a ** (b - 1), a.shape) if need_a else None
        gb = None
        if need_b:
            with np.errstate(divide="ignore", invalid="ignore"):
                gb = unbroadcast(g * self.out * array_module(a).log(a), b.shape)
        return ga, gb


class Exp(Function):
    def forward(self, a):
        self.out = array_module(a).exp(a)
        return self.out

    def backward(self, g):
        return (g * self.out,)


class Log(Function):
    def forward(self, a):
        self.a = a
        return array_module(a).log(a)

    def backward(self, g):
        return (g / self.a,)


class Sqrt(Function):
    def forward(self, a):
        self.out = array_module(a).sqrt(a)
        return self.out

    def backward(self, g):
        return (g / (2 * self.out),)


class Abs(Function):
    def forward(self, a):
        self.a = a
        return array_module(a).abs(a)

    def backward(self, g):
        return (g * array_module(g).sign(self.a),)


class _Extremum(Function):
    """maximum/minimum: the gradient goes to the winning input; ties split it evenly."""

    pick, wins = "maximum", "greater"  # functions of the array module

    def forward(self, a, b):
        self.a, self.b = a, b
        self.out = getattr(array_module(a, b), self.pick)(a, b)
        return self.out

    def backward(self, g):
        a, b = self.a, self.b
        xp = array_module(g)
        weight = getattr(xp, self.wins)(a, b).astype(g.dtype)
        weight += 0.5 * (a == b)
        if xp.isnan(self.out).any():  # NaN wins, as in NumPy (a's if both are NaN)
            weight = xp.where(xp.isnan(a), 1, xp.where(xp.isnan(b), 0, weight)).astype(g.dtype)
        need_a, need_b = self.needs_input_grad
        return (unbroadcast(g * weight, a.shape) if need_a else None,
                unbroadcast(g * (1 - weight), b.shape) if need_b else None)


class Maximum(_Extremum):
    pass


class Minimum(_Extremum):
    pick, wins = "minimum", "less"


class Where(Function):
    def forward(self, a, b, condition):
        self.shapes, self.condition = (a.shape, b.shape), condition
        return array_module(a, b).where(condition, a, b)

    def backward(self, g):
        need_a, need_b = self.needs_input_grad
        where = array_module(g).where
        return (unbroadcast(where(self.condition, g, 0), self.shapes[0]) if need_a else None,
                unbroadcast(where(self.condition, 0, g), self.shapes[1]) if need_b else None)


class Clip(Function):
    def forward(self, a, low, high):
        xp = array_module(a)
        self.inside = xp.ones_like(a, dtype=bool)
        if low is not None:
            self.inside &= a >= low
        if high is not None:
            self.inside &= a <= high
        return xp.clip(a, low, high)

    def backward(self, g):
        return (g * self.inside,)


class AsType(Function):
    def forward(self, a, dtype):
        self.dtype = a.dtype
        return a.astype(dtype)

    def backward(self, g):
        return (g.astype(self.dtype),)


def add(a, b):
    """a + b, broadcasting like NumPy."""
    return Add.apply(*lift_pair(a, b))


def sub(a, b):
    """a - b, broadcasting like NumPy."""
    return Sub.apply(*lift_pair(a, b))


def mul(a, b):
    """Elementwise a * b, broadcasting like NumPy (not matrix product: see matmul)."""
    return Mul.apply(*lift_pair(a, b))


def div(a, b):
    """Elementwise a / b, broadcasting like NumPy."""
    return Div.apply(*lift_pair(a, b))


def neg(a):
    """-a."""
    return Neg.apply(lift(a))


def pow(a, b):  # noqa: A001 -- mirrors the ** operator
    """a ** b; both the base and the exponent may require grad."""
    return Pow.apply(*lift_pair(a, b))


def exp(a):
    """e ** a."""
    return Exp.apply(lift(a))


def log(a):
    """Natural logarithm."""
    return Log.apply(lift(a))


def sqrt(a):
    """Square root."""
    return Sqrt.apply(lift(a))


def abs(a):  # noqa: A001 -- mirrors the builtin
    """|a|; the gradient at 0 is 0."""
    return Abs.apply(lift(a))


def maximum(a, b):
    """Elementwise larger of a and b; at ties each input gets half the gradient."""
    return Maximum.apply(*lift_pair(a, b))


def minimum(a, b):
    """Elementwise smaller of a and b; at ties each input gets half the gradient."""
    return Minimum.apply(*lift_pair(a, b))


def where(condition, a, b):
    """Pick a where ``condition`` holds, else b; ``condition`` gets no gradient."""
    a, b = lift_pair(a, b)
    # A NumPy or list condition goes to the operands' device.
    xp = array_module(a.data, b.data)
    cond = xp.asarray(condition.data if isinstance(condition, Tensor) else condition)
    if cond.dtype != bool:
        raise TypeError(f"where: expected a boolean condition, got dtype {cond.dtype}")
    return Where.apply(a, b, condition=cond)


def clip(a, low=None, high=None):
    """Clamp a into [low, high] (either may be None); gradient 1 inside, 0 where clamped."""
    if low is None and high is None:
        raise ValueError("clip: expected at least one of low and high, got both None")
    if low is not None and high is not None and low > high:
        raise ValueError(f"clip: expected low <= high, got low={low}, high={high}")
    return Clip.apply(lift(a), low=low, high=high)


def astype(a, dtype):
    """Cast to another dtype; the gradient is cast back."""
    return AsType.apply(lift(a), dtype=np.dtype(dtype))
