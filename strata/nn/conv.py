"""Convolutional layers of course 4: Conv2D, MaxPool2D, AvgPool2D, ZeroPadding2D,
GlobalAveragePooling2D. Images are NHWC (m, n_H, n_W, n_C); see strata.ops.conv."""

from __future__ import annotations

import numpy as np

from strata import ops
from strata.autograd import ShapeError
from strata.nn.initializers import get_initializer
from strata.nn.layers import _as_tensor, check_regularization, get_activation
from strata.nn.module import Module
from strata.ops import conv
from strata.tensor import Tensor


def _check_nhwc(x, layer: str) -> Tensor:
    x = _as_tensor(x)
    if x.ndim != 4:
        raise ShapeError(f"{layer}: expected a 4-D NHWC input (m, n_H, n_W, n_C), got shape "
                         f"{x.shape}")
    return x


def _size(value, name: str, layer: str) -> int:
    if not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{layer}: expected {name} to be a positive int, got {value!r}")
    return int(value)


class Conv2D(Module):
    """A convolutional layer: n_C filters of size f x f x n_C_prev, stride s, padding
    ("valid", "same" or an int p), plus a bias per filter and an activation.

    W has shape (f, f, n_C_prev, n_C) and b (n_C,); both are created on the first call.
    """

    def __init__(self, filters: int, kernel_size: int, strides: int = 1, padding="valid",
                 activation=None, use_bias: bool = True, kernel_initializer="glorot",
                 bias_initializer="zeros", l2=None, l1=None):
        name = f"Conv2D({filters})"
        self.filters = _size(filters, "filters", name)
        self.kernel_size = _size(kernel_size, "kernel_size", name)
        self.strides = _size(strides, "strides", name)
        conv.padding_amounts(padding, 1, 1, 1, name)  # validates the value
        self.config = {"filters": self.filters, "kernel_size": self.kernel_size,
                       "strides": self.strides, "padding": padding, "activation": activation,
                       "use_bias": use_bias, "kernel_initializer": kernel_initializer,
                       "bias_initializer": bias_initializer, "l2": l2, "l1": l1}
        self.padding, self.use_bias = padding, use_bias
        self.l2, self.l1 = check_regularization(l2, l1, name)
        self.activation = get_activation(activation)
        self.kernel_initializer = get_initializer(kernel_initializer)
        self.bias_initializer = get_initializer(bias_initializer)
        self.W = self.b = None

    def build(self, n_c_prev: int) -> None:
        """Create W (f, f, n_C_prev, n_C) and b (n_C,)."""
        f = self.kernel_size
        self.W = Tensor(self.kernel_initializer((f, f, n_c_prev, self.filters)),
                        requires_grad=True)
        if self.use_bias:
            self.b = Tensor(self.bias_initializer((self.filters,)), requires_grad=True)

    def forward(self, x):
        x = _check_nhwc(x, f"Conv2D({self.filters})")
        if self.W is None:
            self.build(x.shape[3])
        elif x.shape[3] != self.W.shape[2]:
            raise ShapeError(f"Conv2D({self.filters}): expected {self.W.shape[2]} input channels "
                             f"(n_C_prev), got input of shape {x.shape}")
        return self.activation(conv.conv2d(x, self.W, self.b, self.strides, self.padding))

    def extra_repr(self) -> str:
        f = self.kernel_size
        return (f"{self.filters}, {f}x{f}, strides={self.strides}, padding={self.padding!r}, "
                f"activation={getattr(self.activation, '__name__', 'custom')!r}")


class _Pool(Module):
    op = None

    def __init__(self, pool_size: int = 2, strides: int | None = None, padding="valid"):
        name = type(self).__name__
        self.pool_size = _size(pool_size, "pool_size", name)
        self.strides = self.pool_size if strides is None else _size(strides, "strides", name)
        conv.padding_amounts(padding, 1, 1, 1, name)
        self.padding = padding
        self.config = {"pool_size": self.pool_size, "strides": self.strides, "padding": padding}

    def forward(self, x):
        x = _check_nhwc(x, type(self).__name__)
        return type(self).op(x, self.pool_size, self.strides, self.padding)

    def extra_repr(self) -> str:
        return f"{self.pool_size}, strides={self.strides}, padding={self.padding!r}"


class MaxPool2D(_Pool):
    """Max pooling: the largest value of each f x f window, per channel (no parameters)."""

    op = staticmethod(conv.max_pool2d)


class AvgPool2D(_Pool):
    """Average pooling: the mean of each f x f window, per channel (no parameters)."""

    op = staticmethod(conv.avg_pool2d)


class ZeroPadding2D(Module):
    """Pad the borders of n_H and n_W with zeros: p on every side, or ((top, bottom),
    (left, right))."""

    def __init__(self, padding=1):
        pads = ((padding, padding), (padding, padding)) if isinstance(
            padding, (int, np.integer)) else tuple(tuple(p) for p in padding)
        if len(pads) != 2 or any(len(p) != 2 or min(p) < 0 for p in pads):
            raise ValueError(f"ZeroPadding2D: expected an int >= 0 or ((top, bottom), "
                             f"(left, right)), got {padding!r}")
        self.pads = tuple((int(a), int(b)) for a, b in pads)
        self.config = {"padding": [list(p) for p in self.pads]}

    def forward(self, x):
        x = _check_nhwc(x, "ZeroPadding2D")
        return ops.pad(x, ((0, 0), *self.pads, (0, 0)))

    def extra_repr(self) -> str:
        return repr(self.pads)


class GlobalAveragePooling2D(Module):
    """The mean over n_H and n_W of each channel: (m, n_H, n_W, n_C) -> (m, n_C)."""

    def forward(self, x):
        return ops.mean(_check_nhwc(x, "GlobalAveragePooling2D"), axis=(1, 2))
