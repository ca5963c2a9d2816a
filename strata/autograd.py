"""Reverse-mode automatic differentiation: the Function base class and the backward pass.

A Function computes its forward on raw arrays and remembers, on itself, what its backward
needs. ``Function.apply`` wraps the result in a Tensor that points back at the Function; the
chain of these pointers is the graph that ``backward`` walks in reverse topological order.

Rules every Function follows (the engine relies on them for speed):
- ``backward(grad)`` returns one gradient per input (``None`` where not needed), each with the
  input's shape; ``self.needs_input_grad[i]`` says which ones are needed.
- ``backward`` never writes into ``grad`` or into arrays it saved: gradients may be shared.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from strata import backend

_grad_enabled = True


class ShapeError(ValueError):
    """Raised when an op receives inputs whose shapes do not fit together."""


class no_grad:  # noqa: N801 -- used like a function, as in the course and in PyTorch
    """Context manager (or decorator) that turns graph recording off: for inference and updates."""

    def __enter__(self):
        global _grad_enabled
        self._previous = _grad_enabled
        _grad_enabled = False

    def __exit__(self, *exc):
        global _grad_enabled
        _grad_enabled = self._previous

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with no_grad():
                return fn(*args, **kwargs)

        return wrapper


#: None, or while detect_anomaly is on, the stack of layer names being called (innermost last).
_anomaly: list | None = None


#: While detect_anomaly(model) is on: id of each layer and tensor of the model -> its name.
_names: dict = {}


class detect_anomaly:  # noqa: N801 -- a context manager named like PyTorch's
    """Context manager for finding where NaN or inf first appear (like PyTorch's anomaly mode):
    every op's output and every gradient is checked, and the first non-finite one raises a
    FloatingPointError naming the op and the layer that called it (and, given ``model``, the
    layer's path and the parameter that was already non-finite). Slow: for debugging."""

    def __init__(self, model=None):
        self.model = model

    def __enter__(self):
        global _anomaly, _names
        self._previous = _anomaly, _names
        _anomaly, _names = [], {}
        if self.model is not None:
            for path, m in self.model.named_modules():
                _names[id(m)] = f"layer {path.rstrip('.') or 'model'} ({type(m).__name__})"
            _names.update({id(t): f"the {name}" for name, t in self.model._named_tensors()})
        return self

    def __exit__(self, *exc):
        global _anomaly, _names
        _anomaly, _names = self._previous


def _layer() -> str:
    return f" in {_anomaly[-1]}" if _anomaly else ""


def _finite(a) -> bool:
    return (a is None or not np.issubdtype(a.dtype, np.inexact)
            or bool(backend.array_module(a).isfinite(a).all()))


def _check_output(name: str, out, inputs) -> None:
    if _finite(out):
        return
    bad = [i for i, t in enumerate(inputs) if not _finite(t.data)]
    if bad:
        named = _names.get(id(inputs[bad[0]]), f"its input {bad[0]}")
        cause = f"{named} (shape {inputs[bad[0]].shape}) already held NaN or inf"
    else:
        cause = "its inputs were finite"
    raise FloatingPointError(f"detect_anomaly: {name}{_layer()} produced NaN or inf; {cause}")


def is_grad_enabled() -> bool:
    """True unless inside a ``no_grad()`` block."""
    return _grad_enabled


def unbroadcast(grad, shape: tuple) -> np.ndarray:
    """Sum ``grad`` over the axes that broadcasting added or stretched, giving ``shape`` back."""
    if grad.shape == shape:
        return grad
    lead = grad.ndim - len(shape)
    stretched = [lead + i for i, n in enumerate(shape) if n == 1 and grad.shape[lead + i] != 1]
    if stretched == list(range(lead, lead + len(stretched))):
        # Only leading axes are reduced (the bias-gradient case): a GEMV with a ones vector is
        # much faster than ndarray.sum on tall, skinny arrays.
        # An explicit row count: reshape(-1, n) is ambiguous when grad has no elements.
        rows = grad.reshape(math.prod(grad.shape[:lead + len(stretched)]), math.prod(shape))
        out = backend.array_module(grad).ones(rows.shape[0], grad.dtype) @ rows
        return out if out.shape == shape else out.reshape(shape)
    return grad.sum(axis=tuple(range(lead)) + tuple(stretched), keepdims=True).reshape(shape)


class Function:
    """Base class of differentiable primitives: subclass, then define forward and backward."""

    parents: tuple = ()
    needs_input_grad: tuple = ()

    def forward(self, *arrays, **params):
        """Compute the output array from input arrays; save on ``self`` what backward needs."""
        raise NotImplementedError

    def backward(self, grad):
        """Return the gradient of the loss with respect to each input, given the output's."""
        raise NotImplementedError

    @classmethod
    def apply(cls, *inputs, **params):
        """Run forward on the inputs' arrays and record the step in the graph if needed."""
        fn = cls()
        try:
            out = fn.forward(*[t.data for t in inputs], **params)
        except ShapeError:
            raise
        except ValueError as e:
            shapes = ", ".join(str(t.shape) for t in inputs)
            raise ShapeError(f"{cls.__name__.lower()}: inputs of shapes {shapes} do not fit: "
                             f"{e}") from None
        if _anomaly is not None:
            _check_output(cls.__name__.lower(), out, inputs)
            fn.layer = _layer()
        if _grad_enabled:
            needs = tuple([t.requires_grad for t in inputs])
            if True in needs:
                fn.parents, fn.needs_input_grad = inputs, needs
                result = Tensor._wrap(out, True)
                result._ctx = fn
                return result
        return Tensor._wrap(out, False)


class _Freed(Function):
    """Stands in for a Function whose saved arrays were released after backward."""

    @property
    def parents(self):
        raise RuntimeError("backward through a graph a second time: its saved arrays were "
                           "released after the first backward; call backward(retain_graph=True) "
                           "the first time to keep them")


_FREED = _Freed()


def _topological_order(root) -> list:
    """Nodes that need gradients, each after every node that uses it (root first)."""
    # Tensors hash by identity, so they serve as set and dict keys directly.
    order, visited = [], {root}
    stack = [(root, iter(root._ctx.parents))]
    while stack:
        node, pending = stack[-1]
        for parent in pending:
            if parent.requires_grad and parent not in visited:
                visited.add(parent)
                if parent._ctx is None:  # a leaf: nothing to visit behind it
                    order.append(parent)
                    continue
                stack.append((parent, iter(parent._ctx.parents)))
                break
        else:
            stack.pop()
            order.append(node)
    order.reverse()
    return order


def _store(tensor, grad, shared: set) -> None:
    """Accumulate ``grad`` into ``tensor.grad`` without aliasing arrays used elsewhere."""
    if tensor.grad is not None:
        tensor.grad = (tensor.grad + grad).astype(tensor.data.dtype, copy=False)
        return
    if grad.dtype != tensor.data.dtype:  # e.g. a float32 leaf used with a float64 array
        grad = grad.astype(tensor.data.dtype)
    elif grad.base is not None or id(grad) in shared:  # a view, or handed to another tensor
        grad = grad.copy()
    shared.add(id(grad))
    tensor.grad = grad


def backward(root, grad, retain_graph: bool = False) -> None:
    """Propagate ``grad`` (d loss / d root) to every tensor in root's graph that requires grad."""
    if root._ctx is None:
        _store(root, grad, {id(grad)})  # never keep the caller's array as .grad
        return
    grads = {root: grad}
    shared = {id(grad)}
    for node in _topological_order(root):
        g = grads.pop(node, None)
        if g is None:
            continue
        fn = node._ctx
        if fn is None or node._retain:
            _store(node, g, shared)
            if fn is None:
                continue
        for parent, need, pg in zip(fn.parents, fn.needs_input_grad, fn.backward(g), strict=True):
            if not need or pg is None:
                continue
            if _anomaly is not None and not _finite(pg) and _finite(g):
                raise FloatingPointError(f"detect_anomaly: the backward pass of "
                                         f"{type(fn).__name__.lower()}"
                                         f"{getattr(fn, 'layer', '')} produced a NaN or inf "
                                         f"gradient from a finite one")
            if pg.shape != parent.data.shape:
                raise ShapeError(f"{type(fn).__name__.lower()}.backward returned a gradient of "
                                 f"shape {pg.shape} for an input of shape {parent.shape}")
            previous = grads.get(parent)
            grads[parent] = pg if previous is None else previous + pg
        if not retain_graph:
            node._ctx = _FREED


from strata.tensor import Tensor  # noqa: E402 -- tensor.py builds on this module
