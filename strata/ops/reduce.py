"""Reductions over axes: sum, mean, max, min, var (all with keepdims)."""

from __future__ import annotations

import math

from strata.autograd import Function
from strata.backend import array_module
from strata.ops.common import kept_shape, lift, normalize_axes


class _Reduction(Function):
    """Shared bookkeeping: remember the input shape and the kept-dims shape of the output."""

    def setup(self, a, axes):
        self.shape, self.axes, self.kept = a.shape, axes, kept_shape(a.shape, axes)

    def spread(self, g):
        """The output gradient reshaped with kept dims, ready to broadcast against the input."""
        return g.reshape(self.kept)


class Sum(_Reduction):
    def forward(self, a, axes, keepdims):
        self.setup(a, axes)
        return a.sum(axis=axes, keepdims=keepdims)

    def backward(self, g):
        return (array_module(g).broadcast_to(self.spread(g), self.shape),)


class Mean(_Reduction):
    def forward(self, a, axes, keepdims):
        self.setup(a, axes)
        self.n = math.prod(a.shape[i] for i in axes)
        return a.mean(axis=axes, keepdims=keepdims)

    def backward(self, g):
        return (array_module(g).broadcast_to(self.spread(g) / self.n, self.shape),)


class _Extreme(_Reduction):
    """max/min: the gradient goes to the extreme entries, split evenly among ties."""

    def forward(self, a, axes, keepdims):
        self.setup(a, axes)
        extreme = getattr(a, self.reduce)(axis=axes, keepdims=True)
        self.hit = a == extreme
        return extreme if keepdims else extreme.reshape([n for i, n in enumerate(a.shape)
                                                         if i not in axes])

    def backward(self, g):
        # Counted in g's dtype: dividing a float32 g by int64 counts would give float64.
        count = self.hit.sum(axis=self.axes, keepdims=True, dtype=g.dtype)
        return (self.hit * (self.spread(g) / count),)


class Max(_Extreme):
    reduce = "max"  # the array method


class Min(_Extreme):
    reduce = "min"


class Var(_Reduction):
    def forward(self, a, axes, keepdims, ddof):
        self.setup(a, axes)
        n = math.prod(a.shape[i] for i in axes)
        self.centered = a - a.mean(axis=axes, keepdims=True)
        self.scale = 2.0 / (n - ddof)
        return (self.centered * self.centered).sum(axis=axes, keepdims=keepdims) / (n - ddof)

    def backward(self, g):
        return (self.spread(g) * self.scale * self.centered,)


def _reduce(cls, a, axis, keepdims, name, **extra):
    a = lift(a)
    axes = normalize_axes(axis, a.ndim, name)
    if a.size == 0 and cls in (Max, Min):
        raise ValueError(f"{name}: cannot reduce an empty tensor of shape {a.shape}")
    return cls.apply(a, axes=axes, keepdims=bool(keepdims), **extra)


def sum(a, axis=None, keepdims: bool = False):  # noqa: A001 -- NumPy's name
    """Sum over ``axis`` (int, tuple or None for all)."""
    return _reduce(Sum, a, axis, keepdims, "sum")


def mean(a, axis=None, keepdims: bool = False):
    """Mean over ``axis`` (int, tuple or None for all)."""
    return _reduce(Mean, a, axis, keepdims, "mean")


def max(a, axis=None, keepdims: bool = False):  # noqa: A001 -- NumPy's name
    """Maximum over ``axis``; tied maxima share the gradient equally."""
    return _reduce(Max, a, axis, keepdims, "max")


def min(a, axis=None, keepdims: bool = False):  # noqa: A001 -- NumPy's name
    """Minimum over ``axis``; tied minima share the gradient equally."""
    return _reduce(Min, a, axis, keepdims, "min")


def var(a, axis=None, keepdims: bool = False, ddof: int = 0):
    """Variance over ``axis``: sum((a - mean)**2) / (n - ddof); ddof=0 as in batch norm."""
    a = lift(a)
    axes = normalize_axes(axis, a.ndim, "var")
    n = math.prod(a.shape[i] for i in axes)
    if not 0 <= ddof < n:
        raise ValueError(f"var: expected 0 <= ddof < {n} (elements reduced), got ddof={ddof}")
    return Var.apply(a, axes=axes, keepdims=bool(keepdims), ddof=ddof)
