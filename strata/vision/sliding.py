"""Sliding-windows detection (course 4 week 3): the naive detector, which crops every window of
an image and classifies each crop, and its convolutional implementation (Sermanet et al.,
OverFeat, 2014), which turns a classifier's Dense layers into convolutions so that one forward
pass over the whole image scores every window at once.

For a classifier trained on windows of h x w pixels whose layers before ``Flatten`` have a total
stride S (the product of their strides, ``window_stride``), the convolutional network's output
at position (i, j) is the classifier's output for the window whose top-left pixel is
(row i S, column j S): the naive detector's score map at ``stride=S``. That holds exactly when
no layer pads (padding "valid"); the computation shared by overlapping windows is done once.
"""

from __future__ import annotations

import numpy as np

from strata.autograd import ShapeError, no_grad
from strata.nn.conv import AvgPool2D, Conv2D, MaxPool2D
from strata.nn.layers import ACTIVATIONS, Activation, BatchNorm, Dense, Dropout, Flatten
from strata.nn.sequential import Sequential, layer_from_spec, layer_spec
from strata.tensor import Tensor
from strata.vision.landmarks import LandmarkHead
from strata.vision.localization import LocalizationHead

#: Layers that work on every position alike, so they may come before Flatten.
_SPATIAL = (Conv2D, MaxPool2D, AvgPool2D, Activation, BatchNorm, Dropout)


def _pair(value, what: str, name: str) -> tuple[int, int]:
    pair = (value, value) if isinstance(value, (int, np.integer)) else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, (int, np.integer)) and v >= 1 for v in pair):
        raise ValueError(f"{name}: expected {what} to be a positive int or a pair (h, w) of "
                         f"them, got {value!r}")
    return int(pair[0]), int(pair[1])


def _output(model, x: np.ndarray) -> np.ndarray:
    out = model(x)
    return out.data if isinstance(out, Tensor) else np.asarray(out)


def sliding_windows(model, images, window, stride, batch_size: int = 256) -> np.ndarray:
    """The naive sliding-windows detector: crop every ``window`` (h, w) (or an int for a
    square) of ``images`` at ``stride``, classify the crops with ``model`` (in eval mode, by
    batches of ``batch_size`` crops) and return the score map: (n_rows, n_cols, *output) for one
    image (n_H, n_W, n_C), (m, n_rows, n_cols, *output) for a batch, where
    n_rows = (n_H - h) // s + 1 and entry (i, j) scores the crop at rows i s .. i s + h - 1,
    columns j s .. j s + w - 1 (see ``window_corners``)."""
    name = "sliding_windows"
    x = np.asarray(images.data if isinstance(images, Tensor) else images)
    single = x.ndim == 3
    x = x[None] if single else x
    (h, w), (sh, sw) = _pair(window, "window", name), _pair(stride, "stride", name)
    if x.ndim != 4 or x.dtype.kind != "f" or x.shape[1] < h or x.shape[2] < w:
        raise ShapeError(f"{name}: expected floating images (n_H, n_W, n_C) or (m, n_H, n_W, "
                         f"n_C) at least as large as the window {h}x{w}, got shape {x.shape} "
                         f"({x.dtype})")
    if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"{name}: expected a positive batch_size, got {batch_size!r}")
    # A view (m, n_rows, n_cols, n_C, h, w): each batch of crops is copied only when classified.
    view = np.lib.stride_tricks.sliding_window_view(x, (h, w), axis=(1, 2))[:, ::sh, ::sw]
    m, rows, cols = view.shape[:3]
    index = np.indices((m, rows, cols)).reshape(3, -1)
    scores = None
    was_training = getattr(model, "training", False)
    if hasattr(model, "eval"):
        model.eval()
    try:
        with no_grad():
            for start in range(0, index.shape[1], batch_size):
                i, r, c = index[:, start:start + batch_size]
                crops = np.ascontiguousarray(view[i, r, c].transpose(0, 2, 3, 1))
                out = _output(model, crops)
                if scores is None:
                    scores = np.empty((m, rows, cols, *out.shape[1:]), dtype=out.dtype)
                scores[i, r, c] = out
    finally:
        if hasattr(model, "train"):
            model.train(was_training)
    return scores[0] if single else scores


def window_corners(n_rows: int, n_cols: int, window, stride) -> np.ndarray:
    """Corners (x1, y1, x2, y2) in pixels of the windows behind a score map (n_rows, n_cols):
    shape (n_rows, n_cols, 4); window (i, j) spans x in [j s, j s + w), y in [i s, i s + h).

    >>> window_corners(1, 2, 64, 8)[0, 1].tolist()
    [8, 0, 72, 64]
    """
    (h, w), (sh, sw) = _pair(window, "window", "window_corners"), _pair(
        stride, "stride", "window_corners")
    y1, x1 = np.meshgrid(np.arange(n_rows) * sh, np.arange(n_cols) * sw, indexing="ij")
    return np.stack([x1, y1, x1 + w, y1 + h], axis=-1)


def _features(model: Sequential) -> int:
    """The index of the layer that flattens the feature map: a Flatten, or a localization or
    landmark head (which flatten their input)."""
    for i, layer in enumerate(model.layers):
        if isinstance(layer, (Flatten, LocalizationHead, LandmarkHead)):
            return i
        if not isinstance(layer, _SPATIAL):
            raise ValueError(f"convolutionalize: layer {i} ({type(layer).__name__}) comes before "
                             f"Flatten; expected only {', '.join(c.__name__ for c in _SPATIAL)} "
                             f"there (layers that treat every position alike)")
    raise ValueError("convolutionalize: the model has no Flatten layer (nor a localization or "
                     "landmark head); expected Conv2D/pooling layers, Flatten, then Dense layers")


def _pads(layer) -> bool:
    if not isinstance(layer, (Conv2D, MaxPool2D, AvgPool2D)):
        return False
    f = layer.kernel_size if isinstance(layer, Conv2D) else layer.pool_size
    no_padding = layer.padding in ("valid", 0) or (
        layer.padding == "same" and f == 1 and layer.strides == 1)
    return not no_padding


def window_stride(model: Sequential) -> int:
    """The total stride S of the layers before Flatten: the product of their strides, the step
    between the windows that ``convolutionalize(model)`` scores."""
    if not isinstance(model, Sequential):
        raise TypeError(f"window_stride: expected a Sequential classifier, got "
                        f"{type(model).__name__}")
    stride = 1
    for layer in model.layers[:_features(model)]:
        stride *= getattr(layer, "strides", 1)
    return stride


def _activation_name(layer: Dense):
    for name, fn in ACTIVATIONS.items():
        if layer.activation is fn:
            return name
    return layer.activation  # a custom callable, kept as is


def _as_conv(dense: Dense, kernel: np.ndarray) -> Conv2D:
    """A Conv2D computing ``dense`` at every position, with ``kernel`` (f, f, n_C_prev, units)."""
    conv = Conv2D(dense.units, kernel.shape[0], activation=_activation_name(dense),
                  use_bias=dense.use_bias, l2=dense.l2, l1=dense.l1)
    conv.W = Tensor(kernel.copy(), requires_grad=dense.W.requires_grad)
    if dense.use_bias:
        conv.b = Tensor(dense.b.data.copy(), requires_grad=dense.b.requires_grad)
    return conv


def _copy(layer, x: np.ndarray):
    """A new layer with ``layer``'s config and a copy of its weights and state (in eval mode),
    and its output on ``x``."""
    new = layer_from_spec(layer_spec(layer))
    new.eval()
    with no_grad():
        out = _output(new, x)  # creates the parameters at their sizes
    new.load_state_dict(layer.state_dict())
    new.trainable = layer.trainable
    return new, out


def convolutionalize(model: Sequential, input_shape=None, exact: bool = True) -> Sequential:
    """The all-convolutional equivalent of a trained Sequential classifier (layers before
    Flatten: Conv2D, pooling, Activation, BatchNorm, Dropout; after it: Dense layers, Dropout,
    Activation). The first Dense after Flatten becomes a Conv2D whose kernel covers the whole
    h x w x c feature map (W (h w c, units) reshaped to (h, w, c, units): Flatten's NHWC
    order), the later Dense layers 1x1 Conv2D with the same weights; activations are kept (a
    softmax acts over the last axis, the channels). Weights are copied, not shared.

    On an image larger than the classifier's ``input_shape`` (default: the model's), the
    output (m, n_rows, n_cols, units) scores every window at stride ``window_stride(model)``.
    ``exact=True`` refuses padded layers, with which scores near a window's border would differ
    from the naive detector's (the big image has pixels where the window had zeros)."""
    name = "convolutionalize"
    if not isinstance(model, Sequential):
        raise TypeError(f"{name}: expected a Sequential classifier, got {type(model).__name__}")
    shape = input_shape if input_shape is not None else model.input_shape
    if shape is None or len(tuple(shape)) != 3:
        raise ValueError(f"{name}: expected the classifier's input_shape (n_H, n_W, n_C); got "
                         f"{shape!r} (pass input_shape=, or call the model on data first)")
    cut = _features(model)
    if exact and (padded := [i for i, layer in enumerate(model.layers[:cut]) if _pads(layer)]):
        raise ValueError(f"{name}: layers {padded} pad their input, so the convolutional "
                         f"scores would differ from the naive detector's near each window's "
                         f"border; use padding='valid', or pass exact=False to accept that")
    dtype = model.parameters()[0].dtype if model.parameters() else np.float32
    x = np.zeros((1, *tuple(shape)), dtype=dtype)
    layers = []
    for layer in model.layers[:cut]:
        new, x = _copy(layer, x)
        layers.append(new)
    result = Sequential(layers + _dense_part(model.layers[cut:], x.shape[1:], cut, name))
    result.input_shape = tuple(shape)  # what rebuilds it (save_model); larger inputs work too
    return result.eval()  # for inference: Dropout off, BatchNorm's running averages


def _dense_part(layers, feature_shape, offset: int, name: str) -> list:
    h, w, c = feature_shape
    out, first, units = [], True, c
    for i, layer in enumerate(layers):
        if isinstance(layer, Flatten) and i == 0:
            continue
        if isinstance(layer, Dense):
            if layer.W is None:
                raise ValueError(f"{name}: {type(layer).__name__}({layer.units}) has no weights "
                                 f"yet; train or build the classifier first")
            W = layer.W.data
            if first and W.shape[0] != h * w * c:
                raise ShapeError(f"{name}: the feature map before the first Dense is "
                                 f"{h}x{w}x{c} = {h * w * c} features, but its W has shape "
                                 f"{W.shape}; pass the classifier's own input_shape")
            if first and h != w:
                raise ValueError(f"{name}: the feature map before the first Dense is {h}x{w}; "
                                 f"Conv2D kernels are square, so it must be too (use a square "
                                 f"input_shape)")
            kernel = W.reshape(h, w, c, layer.units) if first else W.reshape(1, 1, *W.shape)
            out.append(_as_conv(layer, kernel))
            first, units = False, layer.units
        elif isinstance(layer, BatchNorm) and not first:  # per unit = per channel
            out.append(_copy(layer, np.zeros((1, 1, 1, units), layer.gamma.dtype))[0])
        elif isinstance(layer, Dropout) or (isinstance(layer, Activation) and not (
                first and layer.name == "softmax")):
            out.append(layer_from_spec(layer_spec(layer)))
        else:
            raise ValueError(f"{name}: after Flatten, expected Dense, Dropout, Activation and "
                             f"BatchNorm (after a Dense; no softmax before one), got "
                             f"{type(layer).__name__} at position {offset + i}")
    return out
