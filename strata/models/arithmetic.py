"""The arithmetic of convolutional networks (course 4 weeks 1-2): output shapes, parameter
counts and multiplication counts, worked from shapes alone.

``count_parameters(model, input_shape)`` walks a model's layers with these formulas, so it
counts VGG-16's 138 M parameters without allocating them or running anything.
"""

from __future__ import annotations

import math
from typing import NamedTuple

from strata import nn
from strata.autograd import ShapeError
from strata.ops.conv import output_size, padding_amounts


def _image_shape(shape, where: str) -> tuple[int, int, int]:
    shape = tuple(shape)
    if len(shape) != 3 or not all(isinstance(n, int) and n >= 1 for n in shape):
        raise ValueError(f"{where}: expected one image's shape (n_H, n_W, n_C) of positive "
                         f"ints, got {shape!r}")
    return shape


def conv_output_shape(input_shape, f: int, s: int = 1, p=0, n_C: int | None = None) -> tuple:
    """(n_H, n_W, n_C) after an f x f window with stride s and padding p (an int, "valid" or
    "same"): n = floor((n_prev + 2p - f) / s) + 1 per axis. ``n_C`` is the number of filters;
    None keeps the input's channels (pooling).

    >>> conv_output_shape((6, 6, 1), f=3)
    (4, 4, 1)
    >>> conv_output_shape((39, 39, 3), f=3, s=1, p=0, n_C=10)  # the course's example ConvNet
    (37, 37, 10)
    >>> conv_output_shape((37, 37, 10), f=5, s=2, n_C=20)
    (17, 17, 20)
    >>> conv_output_shape((28, 28, 192), f=5, p="same", n_C=32)
    (28, 28, 32)
    """
    n_h, n_w, n_c = _image_shape(input_shape, "conv_output_shape")
    sizes = []
    for n in (n_h, n_w):
        before, after = padding_amounts(p, n, f, s, "conv_output_shape")
        size = output_size(n + before + after, f, s)
        if size < 1:
            raise ValueError(f"conv_output_shape: a {f}x{f} window does not fit the input "
                             f"{tuple(input_shape)} padded by {p!r}")
        sizes.append(size)
    return (*sizes, n_c if n_C is None else n_C)


def conv_parameters(f: int, n_C_prev: int, n_C: int, bias: bool = True) -> int:
    """(f * f * n_C_prev + 1) * n_C: each of the n_C filters has f*f*n_C_prev weights and a bias.

    >>> conv_parameters(5, 3, 8)  # CONV1 of the course's LeNet-like example
    608
    >>> conv_parameters(3, 64, 64, bias=False)
    36864
    """
    return (f * f * n_C_prev + int(bool(bias))) * n_C


def conv_multiplications(input_shape, f: int, n_C: int, s: int = 1, padding="same") -> int:
    """Multiplications of one convolution: n_H * n_W * n_C outputs, each f * f * n_C_prev.

    >>> conv_multiplications((28, 28, 192), f=5, n_C=32)  # ~120 M
    120422400
    """
    n_h, n_w, _ = conv_output_shape(input_shape, f, s, padding, n_C)
    return n_h * n_w * n_C * f * f * input_shape[2]


class BottleneckCost(NamedTuple):
    """Multiplications of an f x f convolution, directly and through a 1x1 bottleneck."""

    direct: int
    reduce: int  # the 1x1 convolution down to the bottleneck's channels
    conv: int  # the f x f convolution from the bottleneck
    bottlenecked: int  # reduce + conv


def bottleneck_cost(input_shape=(28, 28, 192), f: int = 5, n_C: int = 32,
                    bottleneck: int = 16) -> BottleneckCost:
    """The course's inception example: a 5x5 "same" convolution of 28x28x192 to 28x28x32 costs
    ~120 M multiplications; a 1x1 bottleneck to 16 channels first cuts it to ~12.4 M.

    >>> cost = bottleneck_cost()
    >>> cost.direct, cost.reduce, cost.conv, cost.bottlenecked
    (120422400, 2408448, 10035200, 12443648)
    """
    reduce = conv_multiplications(input_shape, 1, bottleneck)
    reduced = conv_output_shape(input_shape, 1, n_C=bottleneck)
    conv = conv_multiplications(reduced, f, n_C)
    return BottleneckCost(conv_multiplications(input_shape, f, n_C), reduce, conv, reduce + conv)


class ParameterCount(NamedTuple):
    """What ``count_parameters`` finds: the output shape of one example and the counts
    (non-trainable: batch norm's running averages and frozen layers, as Keras counts them)."""

    output_shape: tuple
    trainable: int
    non_trainable: int

    @property
    def total(self) -> int:
        return self.trainable + self.non_trainable


def _conv(layer, shape):
    out = conv_output_shape(shape, layer.kernel_size, layer.strides, layer.padding,
                            layer.filters)
    return out, conv_parameters(layer.kernel_size, shape[2], layer.filters, layer.use_bias), 0


def _pool(layer, shape):
    return conv_output_shape(shape, layer.pool_size, layer.strides, layer.padding), 0, 0


def _zero_padding(layer, shape):
    (top, bottom), (left, right) = layer.pads
    n_h, n_w, n_c = _image_shape(shape, "ZeroPadding2D")
    return (n_h + top + bottom, n_w + left + right, n_c), 0, 0


def _dense(layer, shape):
    return (*shape[:-1], layer.units), (shape[-1] + int(bool(layer.use_bias))) * layer.units, 0


def _global_pool(layer, shape):
    return (_image_shape(shape, "GlobalAveragePooling2D")[2],), 0, 0


RULES = {nn.Conv2D: _conv, nn.MaxPool2D: _pool, nn.AvgPool2D: _pool,
         nn.ZeroPadding2D: _zero_padding, nn.Dense: _dense,
         nn.BatchNorm: lambda layer, shape: (shape, 2 * shape[-1], 2 * shape[-1]),
         nn.Flatten: lambda layer, shape: ((math.prod(shape),), 0, 0),
         nn.GlobalAveragePooling2D: _global_pool,
         nn.Dropout: lambda layer, shape: (shape, 0, 0),
         nn.Activation: lambda layer, shape: (shape, 0, 0)}


def _chain(layers, shape) -> ParameterCount:
    trainable = non_trainable = 0
    for layer in layers:
        shape, t, n = count_parameters(layer, shape)
        trainable, non_trainable = trainable + t, non_trainable + n
    return ParameterCount(shape, trainable, non_trainable)


def _composite(layer, shape) -> ParameterCount:
    if isinstance(layer, nn.Sequential):
        return _chain(layer.layers, shape)
    if isinstance(layer, nn.Residual):
        main = count_parameters(layer.main, shape)
        skip = ParameterCount(shape, 0, 0) if layer.shortcut is None else count_parameters(
            layer.shortcut, shape)
        if main.output_shape != skip.output_shape:
            raise ShapeError(f"Residual: the main path gives {main.output_shape} but the "
                             f"shortcut gives {skip.output_shape}")
        return ParameterCount(main.output_shape, main.trainable + skip.trainable,
                              main.non_trainable + skip.non_trainable)
    counts = [count_parameters(branch, shape) for branch in layer.branches]  # Parallel
    axis = layer.concat.axis - 1 if layer.concat.axis > 0 else layer.concat.axis
    out = list(counts[0].output_shape)
    out[axis] = sum(c.output_shape[axis] for c in counts)
    return ParameterCount(tuple(out), sum(c.trainable for c in counts),
                          sum(c.non_trainable for c in counts))


def count_parameters(model, input_shape) -> ParameterCount:
    """Output shape and parameter counts of ``model`` for one example of ``input_shape``,
    worked out from the layers' shapes: nothing is allocated or run. A model class of its own
    can take part by defining ``count_parameters(input_shape)``.

    >>> model = nn.Sequential([nn.Conv2D(8, 5), nn.MaxPool2D(2), nn.Flatten(), nn.Dense(10)])
    >>> count_parameters(model, (32, 32, 3))
    ParameterCount(output_shape=(10,), trainable=16298, non_trainable=0)
    """
    shape = tuple(int(n) for n in input_shape)
    if isinstance(layer := model, (nn.Sequential, nn.Residual, nn.Parallel)):
        return _composite(layer, shape)
    if not isinstance(layer, nn.Module):
        raise TypeError(f"count_parameters: expected a strata Module, got {type(layer).__name__}")
    if hasattr(layer, "count_parameters"):
        return layer.count_parameters(shape)
    rule = next((RULES[c] for c in type(layer).__mro__ if c in RULES), None)
    if rule is None:
        raise TypeError(f"count_parameters: no shape rule for {type(layer).__name__}; give it a "
                        f"count_parameters(input_shape) method")
    try:
        out, params, state = rule(layer, shape)
    except (ValueError, IndexError) as e:
        raise ShapeError(f"{type(layer).__name__}: input shape {shape} does not fit ({e})") \
            from None
    if not layer.trainable:
        return ParameterCount(tuple(out), 0, params + state)
    return ParameterCount(tuple(out), params, state)


def with_input_shape(model, input_shape):
    """Give a lazily-built Sequential its input shape (so ``summary()`` and ``fit`` need no
    other), after checking from shapes that every layer fits it: a too-small input fails here,
    naming the layer, rather than at the first call."""
    model.input_shape = _image_shape(input_shape, type(model).__name__)
    count_parameters(model, model.input_shape)
    return model


def classifier(classes: int, activation="softmax", where: str = "model", **options) -> nn.Dense:
    """The zoo's output layer, as Keras applications' ``classifier_activation``:
    Dense(``classes``) with a softmax (probabilities, for the default losses), None for logits
    (train with ``from_logits=True``), or "sigmoid" (one unit per binary label)."""
    if activation == "softmax" and classes == 1:
        raise ValueError(f"{where}: a softmax over classes=1 is always 1; pass "
                         f"classifier_activation='sigmoid' for one binary output (None for its "
                         f"logit)")
    return nn.Dense(classes, activation, **options)
