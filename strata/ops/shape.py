"""Ops that move data without arithmetic: reshape, transpose/permute, broadcast_to, expand_dims,
squeeze, getitem, concatenate, stack, pad."""

from __future__ import annotations

import itertools

import numpy as np

from strata.autograd import Function, ShapeError, unbroadcast
from strata.backend import array_module
from strata.ops.common import lift, normalize_axes
from strata.tensor import Tensor


class Reshape(Function):
    def forward(self, a, shape):
        self.shape = a.shape
        return a.reshape(shape)

    def backward(self, g):
        return (g.reshape(self.shape),)


class Transpose(Function):
    def forward(self, a, axes):
        self.inverse = tuple(sorted(range(len(axes)), key=axes.__getitem__))
        return a.transpose(axes)

    def backward(self, g):
        return (g.transpose(self.inverse),)


class BroadcastTo(Function):
    def forward(self, a, shape):
        self.shape = a.shape
        return array_module(a).broadcast_to(a, shape)

    def backward(self, g):
        return (unbroadcast(g, self.shape),)


def _is_basic(index) -> bool:
    """True when ``index`` selects each element at most once (ints, slices, None, ...)."""
    items = index if isinstance(index, tuple) else (index,)
    return all(isinstance(i, (int, np.integer, slice)) or i is None or i is Ellipsis
               for i in items)


class GetItem(Function):
    def forward(self, a, index):
        self.shape, self.index = a.shape, index
        return a[index]

    def backward(self, g):
        xp = array_module(g)
        full = xp.zeros(self.shape, g.dtype)
        if _is_basic(self.index):
            full[self.index] = g
        else:  # repeated indices must add up, which plain assignment would not do
            xp.add.at(full, self.index, g)
        return (full,)


class Concatenate(Function):
    def forward(self, *arrays, axis):
        self.axis = axis
        self.bounds = list(itertools.accumulate(a.shape[axis] for a in arrays))[:-1]
        return array_module(*arrays).concatenate(arrays, axis=axis)

    def backward(self, g):
        return tuple(array_module(g).split(g, self.bounds, axis=self.axis))


class Stack(Function):
    def forward(self, *arrays, axis):
        self.axis = axis
        return array_module(*arrays).stack(arrays, axis=axis)

    def backward(self, g):
        return tuple(array_module(g).moveaxis(g, self.axis, 0))


class Pad(Function):
    def forward(self, a, widths, value):
        self.crop = tuple(slice(before, before + n) for (before, _), n in zip(widths, a.shape))
        return array_module(a).pad(a, widths, constant_values=value)

    def backward(self, g):
        return (g[self.crop],)


def reshape(a, shape):
    """Same elements in a new shape; one dimension may be -1."""
    a = lift(a)
    shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
    return Reshape.apply(a, shape=shape)


def transpose(a, axes=None):
    """Permute axes (``axes`` lists the new order; reversed when None), like ndarray.transpose."""
    a = lift(a)
    if axes is None:
        return Transpose.apply(a, axes=tuple(reversed(range(a.ndim))))
    axes = tuple(axes)
    if len(axes) != a.ndim:
        raise ShapeError(f"transpose: expected a permutation of {a.ndim} axes, got {axes}")
    normalize_axes(axes, a.ndim, "transpose")  # rejects repeated or out-of-range axes
    return Transpose.apply(a, axes=tuple(int(x) % a.ndim for x in axes))


def permute(a, *axes):
    """PyTorch's name for transpose with an explicit order: permute(x, 0, 3, 1, 2)."""
    return transpose(a, axes[0] if len(axes) == 1 else axes)


def broadcast_to(a, shape):
    """Broadcast to ``shape`` (NumPy rules); the gradient is summed back."""
    a = lift(a)
    shape = tuple(shape)
    try:
        np.broadcast_shapes(a.shape, shape)
    except ValueError:
        raise ShapeError(f"broadcast_to: cannot broadcast shape {a.shape} to {shape}") from None
    if len(shape) < a.ndim or np.broadcast_shapes(a.shape, shape) != shape:
        raise ShapeError(f"broadcast_to: cannot broadcast shape {a.shape} to {shape}")
    return BroadcastTo.apply(a, shape=shape)


def expand_dims(a, axis):
    """Insert a size-1 axis at position ``axis`` (a reshape)."""
    a = lift(a)
    return reshape(a, np.expand_dims(np.empty(a.shape, dtype=bool), axis).shape)


def squeeze(a, axis=None):
    """Remove size-1 axes (all of them, or those in ``axis``) (a reshape)."""
    a = lift(a)
    axes = normalize_axes(axis, a.ndim, "squeeze")
    if axis is None:
        axes = tuple(i for i in axes if a.shape[i] == 1)
    wrong = [i for i in axes if a.shape[i] != 1]
    if wrong:
        raise ShapeError(f"squeeze: axis {wrong[0]} of shape {a.shape} has size "
                         f"{a.shape[wrong[0]]}, expected 1")
    return reshape(a, tuple(n for i, n in enumerate(a.shape) if i not in axes))


def _plain_index(index, xp):
    """Replace tensors by arrays, lists and arrays by arrays of the module ``xp`` (the indexed
    data's: a NumPy index goes to its device), boolean masks by their integer positions."""
    items = index if isinstance(index, tuple) else (index,)
    out = []
    for item in items:
        if isinstance(item, Tensor):
            item = item.data
        if isinstance(item, list) or (hasattr(item, "ndim") and not isinstance(item, np.generic)):
            item = xp.asarray(item)
            if item.dtype == bool:
                out.extend(xp.nonzero(item))
                continue
        out.append(item)
    return tuple(out) if isinstance(index, tuple) or len(out) > 1 else out[0]


def getitem(a, index):
    """a[index] with NumPy indexing (slices, ints, None, ..., integer arrays, boolean masks)."""
    a = lift(a)
    return GetItem.apply(a, index=_plain_index(index, array_module(a.data)))


def _same_rank(tensors, op):
    tensors = [lift(t) for t in tensors]
    if not tensors:
        raise ValueError(f"{op}: expected at least one tensor, got none")
    return tensors


def concatenate(tensors, axis: int = 0):
    """Join tensors along an existing axis; all other dimensions must match."""
    tensors = _same_rank(tensors, "concatenate")
    axis = normalize_axes(axis, tensors[0].ndim, "concatenate")[0]
    rest = {t.shape[:axis] + t.shape[axis + 1:] for t in tensors}
    if len(rest) != 1 or len({t.ndim for t in tensors}) != 1:
        raise ShapeError(f"concatenate: shapes {[t.shape for t in tensors]} differ outside "
                         f"axis {axis}")
    return Concatenate.apply(*tensors, axis=axis)


def stack(tensors, axis: int = 0):
    """Join same-shape tensors along a new axis."""
    tensors = _same_rank(tensors, "stack")
    if len({t.shape for t in tensors}) != 1:
        raise ShapeError(f"stack: expected tensors of one shape, got {[t.shape for t in tensors]}")
    axis = normalize_axes(axis, tensors[0].ndim + 1, "stack")[0]
    return Stack.apply(*tensors, axis=axis)


def pad(a, pad_width, value: float = 0.0):
    """Constant padding; ``pad_width`` as in np.pad: int, (before, after) or one pair per axis."""
    a = lift(a)
    try:
        widths = np.broadcast_to(np.asarray(pad_width, dtype=np.int64), (a.ndim, 2))
    except ValueError:
        raise ShapeError(f"pad: expected pad_width as an int, a (before, after) pair or "
                         f"{a.ndim} pairs, got {pad_width!r}") from None
    if (widths < 0).any():
        raise ValueError(f"pad: expected non-negative widths, got {pad_width!r}")
    return Pad.apply(a, widths=tuple(map(tuple, widths.tolist())), value=value)
