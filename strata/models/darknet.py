"""Darknet's ``.weights`` files (YOLOv2's and other networks of convolutions): read them into a
strata model, and write them.

The format (Darknet's parser.c, load_weights and save_weights), little-endian throughout:

- a header: major, minor, revision (int32), then ``seen``, the number of images trained on:
  int64 when major * 10 + minor >= 2, else int32 (20 or 16 bytes; yolov2.weights has 16);
- then float32 values for each convolutional layer, in the cfg's order: with
  ``batch_normalize=1``, the biases (batch norm's beta), scales (gamma), rolling mean and
  rolling variance, n_C values each; without, the n_C biases; then the weights, in Darknet's
  (n_C, n_C_prev, f, f) layout (strata's (f, f, n_C_prev, n_C) is its transpose (2, 3, 1, 0)).

The file holds no shapes: they come from the model, so the file's size must match what the
model needs exactly, and it is checked before anything is assigned. Nothing is unpickled; the
file is read with explicit little-endian dtypes.

The cfg's order is strata's order of layers, except that a ``Parallel`` block's branches are
read last to first: YOLOv2's route concatenates [passthrough, deep path], and its cfg lists
the deep path's convolutions (layers 18-24) before the passthrough's (layer 26).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

import numpy as np

from strata.autograd import ShapeError
from strata.files import atomic_write
from strata.nn import (
    Activation,
    BatchNorm,
    Conv2D,
    Dropout,
    MaxPool2D,
    Parallel,
    Sequential,
    SpaceToDepth,
    ZeroPadding2D,
)
from strata.nn.module import Module

INT32, INT64, FLOAT32 = np.dtype("<i4"), np.dtype("<i8"), np.dtype("<f4")
#: Layers with no weights that keep the number of channels.
_PASSING = (Activation, MaxPool2D, ZeroPadding2D, Dropout)


class DarknetHeader(NamedTuple):
    """The header of a .weights file: Darknet's version and the images it had trained on."""

    major: int
    minor: int
    revision: int
    seen: int

    @property
    def size(self) -> int:
        """Bytes: 20 with a 64-bit ``seen`` (version 0.2 and later), else 16."""
        return 20 if self.major * 10 + self.minor >= 2 else 16


class DarknetLayer(NamedTuple):
    """One Darknet convolutional layer: a Conv2D, the BatchNorm after it (None without
    ``batch_normalize``), its input channels, its number among the model's Darknet layers
    (from 1) and its place in the model (``layers.3``)."""

    conv: Conv2D
    bn: BatchNorm | None
    n_c_prev: int
    number: int
    where: str

    @property
    def size(self) -> int:
        """float32 values it takes in the file."""
        f, n = self.conv.kernel_size, self.conv.filters
        return n * (4 if self.bn is not None else 1) + f * f * self.n_c_prev * n

    def describe(self) -> str:
        f, c = self.conv.kernel_size, self.conv
        kind = "batch-normalized" if self.bn is not None else "with biases"
        return (f"convolutional layer {self.number} ({self.where}: Conv2D({c.filters}) {f}x{f}, "
                f"{self.n_c_prev} -> {c.filters} channels, {kind})")


def darknet_layers(model: Module) -> list[DarknetLayer]:
    """``model``'s convolutional layers in the order of Darknet's cfg and .weights file
    (Parallel branches last to first), with their input channels worked out from the model's
    input shape: nothing needs to be built."""
    channels = _input_channels(model)
    found: list = []
    _walk(model, channels, "model", found)
    return [DarknetLayer(conv, bn, c, i + 1, where)
            for i, (conv, bn, c, where) in enumerate(found)]


def _input_channels(model) -> int:
    shape = getattr(model, "input_shape", None)
    if shape is not None:
        return int(shape[-1])
    first = next((m for m in _modules(model) if isinstance(m, Conv2D)), None)
    if first is None or first.W is None:
        raise ValueError("darknet: the model has no input shape and is not built; build it "
                         "(model.build(input_shape)) or give it input_shape")
    return int(first.W.shape[2])


def _modules(module):
    yield module
    for child in getattr(module, "layers", None) or getattr(module, "branches", None) or ():
        yield from _modules(child)


def _walk(module, channels: int, where: str, found: list) -> int:
    """Append (conv, bn, n_c_prev, where) of ``module``'s Darknet layers to ``found``;
    returns the channels of its output."""
    if isinstance(module, Sequential):
        layers, i = module.layers, 0
        while i < len(layers):
            bn = layers[i + 1] if i + 1 < len(layers) and isinstance(layers[i + 1],
                                                                     BatchNorm) else None
            channels = _walk_layer(layers[i], bn, channels, f"{where}.layers.{i}", found)
            i += 2 if bn is not None and isinstance(layers[i], Conv2D) else 1
        return channels
    return _walk_layer(module, None, channels, where, found)


def _walk_layer(layer, bn, channels: int, where: str, found: list) -> int:
    if isinstance(layer, Conv2D):
        _check_conv(layer, bn, channels, where)
        found.append((layer, bn, channels, where))
        return layer.filters
    if isinstance(layer, Parallel):
        if layer.concat.axis not in (-1, 3):
            raise ValueError(f"darknet: {where} concatenates along axis {layer.concat.axis}; "
                             f"a Darknet route joins channels (axis -1)")
        outputs = [0] * len(layer.branches)
        for k in reversed(range(len(layer.branches))):  # the cfg lists the last branch first
            outputs[k] = _walk(layer.branches[k], channels, f"{where}.branches.{k}", found)
        return sum(outputs)
    if isinstance(layer, Sequential):
        return _walk(layer, channels, where, found)
    if isinstance(layer, SpaceToDepth):
        return channels * layer.block ** 2
    if isinstance(layer, _PASSING):
        return channels
    raise TypeError(f"darknet: {where} is a {type(layer).__name__}, which has no Darknet "
                    f"convolutional-network equivalent here (expected Conv2D, BatchNorm after "
                    f"a Conv2D, activations, MaxPool2D, SpaceToDepth, Parallel, Sequential)")


def _check_conv(conv: Conv2D, bn, channels: int, where: str) -> None:
    name = f"darknet: {where} (Conv2D({conv.filters}))"
    if bn is not None and conv.use_bias:
        raise ValueError(f"{name} has a bias and a BatchNorm after it; a batch-normalized "
                         f"Darknet convolution has none (use_bias=False: beta replaces it)")
    if bn is None and not conv.use_bias:
        raise ValueError(f"{name} has no bias and no BatchNorm after it; a Darknet "
                         f"convolution without batch_normalize has biases (use_bias=True)")
    if conv.W is not None and conv.W.shape[2] != channels:
        raise ShapeError(f"{name}: built for {conv.W.shape[2]} input channels, but the layers "
                         f"before it give {channels}")
    if bn is not None and bn.gamma is not None and bn.gamma.shape[0] != conv.filters:
        raise ShapeError(f"{name}: the BatchNorm after it has {bn.gamma.shape[0]} channels, "
                         f"expected {conv.filters}")


def read_darknet_header(data: bytes, path) -> DarknetHeader:
    """Parse the header at the start of ``data`` (the file's first 20 bytes or more)."""
    if len(data) < 16:
        raise ValueError(f"darknet weights {path}: expected a header of at least 16 bytes, "
                         f"the file has {len(data)}")
    major, minor, revision = (int(v) for v in np.frombuffer(data, INT32, 3))
    if min(major, minor, revision) < 0 or max(major, minor, revision) >= 1000:
        raise ValueError(f"darknet weights {path}: bad header: expected a version major.minor."
                         f"revision of numbers in [0, 1000), got {major}.{minor}.{revision}: "
                         f"not a Darknet .weights file")
    wide = major * 10 + minor >= 2
    if wide and len(data) < 20:
        raise ValueError(f"darknet weights {path}: version {major}.{minor} expects a 20-byte "
                         f"header, the file has {len(data)} bytes")
    seen = int(np.frombuffer(data, INT64 if wide else INT32, 1, offset=12)[0])
    if seen < 0:
        raise ValueError(f"darknet weights {path}: bad header: expected seen >= 0, got {seen}")
    return DarknetHeader(major, minor, revision, seen)


def _check_size(layers, available: int, header: DarknetHeader, path) -> None:
    """Raise, naming the layer, unless the file's ``available`` bytes after the header are
    exactly the float32 values ``layers`` need."""
    needed = sum(layer.size for layer in layers)
    found = available // 4
    if available == 4 * needed:
        return
    head = (f"darknet weights {path}: the model's {len(layers)} convolutional layers need "
            f"{needed:,} float32 values ({4 * needed:,} bytes after the {header.size}-byte "
            f"header), the file holds {available:,} bytes ({found:,} values"
            + (f" and {available % 4} stray bytes)" if available % 4 else ")"))
    if available > 4 * needed:
        last = layers[-1].describe() if layers else "the header"
        raise ValueError(f"{head}: {found - needed:,} values are left after the last layer, "
                         f"{last}")
    start = 0
    for layer in layers:
        if start + layer.size > found:
            raise ValueError(f"{head}: it ends inside {layer.describe()}, which needs values "
                             f"{start:,} to {start + layer.size:,} and finds "
                             f"{found - start:,} of its {layer.size:,}")
        start += layer.size
    raise ValueError(f"{head}: the last value is incomplete")


def load_darknet_weights(model: Module, path) -> DarknetHeader:
    """Read a Darknet .weights file into ``model`` (strata.models.yolov2(), or any model of
    the layers darknet_layers accepts) and return its header. The file's size is checked
    against the model first; a mismatch names the layer where it ends and both counts, and
    leaves the model unchanged. Unbuilt layers are built from the model's input shape.

    pjreddie's yolov2.weights was trained with his Darknet's reorg order: build
    ``yolov2(reorg="darknet")`` to compute what Darknet computes with it, or the default
    ``yolov2()`` for the course's Keras model (YAD2K converted Darknet's YOLOv2 weights as
    they are and used tf.space_to_depth's order)."""
    path = Path(path)
    layers = darknet_layers(model)
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        header = read_darknet_header(f.read(20), path)
        _check_size(layers, size - header.size, header, path)
        f.seek(header.size)
        values = np.fromfile(f, dtype=FLOAT32, count=sum(layer.size for layer in layers))
    if values.size != sum(layer.size for layer in layers):
        raise ValueError(f"darknet weights {path}: the file changed while it was read")
    start = 0
    for layer in layers:
        _assign(layer, values[start:start + layer.size])
        start += layer.size
    return header


def _assign(layer: DarknetLayer, values: np.ndarray) -> None:
    conv, bn, c, n = layer.conv, layer.bn, layer.n_c_prev, layer.conv.filters
    f = conv.kernel_size
    if conv.W is None:
        conv.build(c)
    if bn is not None and bn.gamma is None:
        bn.build(n)
    vectors = _vectors(conv, bn)
    for k, tensor in enumerate(vectors):
        tensor.data = values[k * n:(k + 1) * n].astype(tensor.dtype)
    kernel = values[len(vectors) * n:].reshape(n, c, f, f).transpose(2, 3, 1, 0)
    conv.W.data = np.ascontiguousarray(kernel, dtype=conv.W.dtype)


def _vectors(conv: Conv2D, bn) -> tuple:
    """The per-filter tensors in the file's order."""
    if bn is None:
        return (conv.b,)
    return bn.beta, bn.gamma, bn.running_mean, bn.running_var


def write_darknet_weights(model: Module, path, version=(0, 2, 0), seen: int = 0) -> Path:
    """Write ``model``'s convolutional layers as a Darknet .weights file (atomically), in the
    order load_darknet_weights reads. ``version`` (major, minor, revision) sets the header:
    0.2 and later store ``seen`` as int64 (20 bytes), earlier ones as int32 (16 bytes)."""
    version = tuple(version)
    if len(version) != 3 or not all(isinstance(v, int) and 0 <= v < 1000 for v in version):
        raise ValueError(f"write_darknet_weights: expected version (major, minor, revision) "
                         f"of ints in [0, 1000), got {version!r}")
    if not isinstance(seen, int) or seen < 0:
        raise ValueError(f"write_darknet_weights: expected seen >= 0, got {seen!r}")
    header = DarknetHeader(*version, seen)
    chunks = [np.asarray(version, INT32).tobytes(),
              np.asarray([seen], INT64 if header.size == 20 else INT32).tobytes()]
    for layer in darknet_layers(model):
        conv, bn = layer.conv, layer.bn
        if conv.W is None or (bn is not None and bn.gamma is None):
            raise ValueError(f"write_darknet_weights: {layer.describe()} is not built; call "
                             f"the model (or model.build(input_shape)) first")
        chunks += [np.asarray(t.data).astype(FLOAT32).tobytes() for t in _vectors(conv, bn)]
        chunks.append(np.asarray(conv.W.data).transpose(3, 2, 0, 1).astype(FLOAT32).tobytes())
    return atomic_write(path, b"".join(chunks))
