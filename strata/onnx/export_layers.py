"""ONNX nodes for strata's feed-forward layers: Dense, Conv2D, pools, BatchNorm, activations,
Dropout, Flatten, padding, space-to-depth, L2 normalization, and the Sequential, Residual and
Parallel blocks."""

from __future__ import annotations

import numpy as np

from strata import nn, ops
from strata.nn.layers import linear
from strata.onnx.builder import Value, register_exporter
from strata.ops.conv import padding_amounts
from strata.vision.faces import L2Normalize

#: Activation functions -> (ONNX op, attributes).
ACTIVATION_OPS = {ops.relu: ("Relu", {}), ops.sigmoid: ("Sigmoid", {}), ops.tanh: ("Tanh", {}),
                  ops.softmax: ("Softmax", {}), ops.leaky_relu: ("LeakyRelu", {"alpha": 0.01})}


def activation(g, v: Value, fn, where: str, alpha=None) -> Value:
    """The nodes of activation ``fn`` on ``v`` (none for the identity)."""
    if fn is linear:
        return v
    if fn not in ACTIVATION_OPS:
        raise ValueError(f"export: {where} uses the activation {fn!r}, which has no ONNX "
                         f"mapping; use one of relu, sigmoid, tanh, softmax, leaky_relu, linear")
    op, attrs = ACTIVATION_OPS[fn]
    if alpha is not None:
        attrs = {"alpha": float(alpha)}
    if op == "Softmax":  # over strata's last axis: the channels, axis 1 of an NCHW image
        attrs = {"axis": 1 if v.layout == "nchw" else -1}
    return Value(g.node(op, [v.name], **attrs), v.layout)


def weights(t) -> np.ndarray:
    """A parameter's array in float32, the dtype of every exported initializer."""
    return np.asarray(t.data, np.float32)


@register_exporter(nn.Dense)
def _dense(layer, g, v, x):
    y = layer(x)
    v = g.plain(v)
    W = g.const(weights(layer.W), "W")
    if x.ndim == 2:
        ins = [v.name, W] + ([g.const(weights(layer.b), "b")] if layer.use_bias else [])
        out = Value(g.node("Gemm", ins, hint="dense"))
    else:  # Dense acts on the last axis of (m, T_x, n) and the like
        out = Value(g.node("MatMul", [v.name, W], hint="dense"))
        if layer.use_bias:
            out = Value(g.node("Add", [out.name, g.const(weights(layer.b), "b")], hint="bias"))
    return activation(g, out, layer.activation, f"Dense({layer.units})"), y


def _pads(padding, shape, f: int, s: int) -> list[int]:
    """ONNX pads [top, left, bottom, right] of strata's padding for an NHWC ``shape``."""
    (t, b), (left, r) = (padding_amounts(padding, n, f, s) for n in shape[1:3])
    return [t, left, b, r]


@register_exporter(nn.Conv2D)
def _conv(layer, g, v, x):
    y = layer(x)
    v = g.nchw(v, x)
    f, s = layer.kernel_size, layer.strides
    ins = [v.name, g.const(weights(layer.W).transpose(3, 2, 0, 1), "W")]
    if layer.use_bias:
        ins.append(g.const(weights(layer.b), "b"))
    out = Value(g.node("Conv", ins, kernel_shape=[f, f], strides=[s, s],
                       pads=_pads(layer.padding, x.shape, f, s), hint="conv"), "nchw")
    return activation(g, out, layer.activation, f"Conv2D({layer.filters})"), y


def _pool(op: str):
    def convert(layer, g, v, x):
        y = layer(x)
        f, s = layer.pool_size, layer.strides
        v = g.nchw(v, x)  # AveragePool's default count_include_pad=0 is strata's
        return Value(g.node(op, [v.name], kernel_shape=[f, f], strides=[s, s],
                            pads=_pads(layer.padding, x.shape, f, s)), "nchw"), y
    return convert


register_exporter(nn.MaxPool2D)(_pool("MaxPool"))
register_exporter(nn.AvgPool2D)(_pool("AveragePool"))


@register_exporter(nn.GlobalAveragePooling2D)
def _global_pool(layer, g, v, x):
    pooled = g.node("GlobalAveragePool", [g.nchw(v, x).name])
    return Value(g.node("Flatten", [pooled], axis=1)), layer(x)


@register_exporter(nn.ZeroPadding2D)
def _zero_padding(layer, g, v, x):
    (t, b), (left, r) = layer.pads
    pads = g.ints([0, 0, t, left, 0, 0, b, r], "pads")
    return Value(g.node("Pad", [g.nchw(v, x).name, pads], mode="constant"), "nchw"), layer(x)


@register_exporter(nn.BatchNorm)
def _batch_norm(layer, g, v, x):
    y = layer(x)
    params = [g.const(weights(t), name) for t, name in (
        (layer.gamma, "gamma"), (layer.beta, "beta"), (layer.running_mean, "mean"),
        (layer.running_var, "var"))]
    eps = float(layer.epsilon)
    if x.ndim in (2, 4):
        v = g.nchw(v, x) if x.ndim == 4 else v
        out = Value(g.node("BatchNormalization", [v.name, *params], epsilon=eps), v.layout)
    else:  # ONNX normalizes axis 1: move strata's last axis there and back
        perm = [0, x.ndim - 1, *range(1, x.ndim - 1)]
        moved = g.node("Transpose", [g.plain(v).name], perm=perm)
        out = g.node("BatchNormalization", [moved, *params], epsilon=eps)
        out = Value(g.node("Transpose", [out], perm=list(np.argsort(perm))))
    return activation(g, out, layer.activation, "BatchNorm"), y


@register_exporter(nn.Activation)
def _activation(layer, g, v, x):
    return activation(g, v, layer.fn, f"Activation({layer.name!r})"), layer(x)


@register_exporter(nn.LeakyReLU)
def _leaky(layer, g, v, x):
    return activation(g, v, ops.leaky_relu, "LeakyReLU", layer.alpha), layer(x)


@register_exporter(nn.Dropout)
def _dropout(layer, g, v, x):
    return v, layer(x)  # the identity at inference


@register_exporter(nn.Flatten)
def _flatten(layer, g, v, x):
    # Flattening strata's NHWC order (H, W, C), so that the next Dense's W applies as is.
    return Value(g.node("Flatten", [g.plain(v).name], axis=1)), layer(x)


@register_exporter(nn.SpaceToDepth)
def _space_to_depth(layer, g, v, x):
    b, (_, h, w, c) = layer.block, x.shape
    v = g.nchw(v, x)
    if layer.order == "tensorflow":  # ONNX's SpaceToDepth has tf.nn.space_to_depth's order
        return Value(g.node("SpaceToDepth", [v.name], blocksize=b), "nchw"), layer(x)
    # Darknet's reorg reads the NCHW buffer with other shapes around the same rearrangement.
    grown = g.node("Reshape", [v.name, g.ints([0, c // (b * b), h * b, w * b])])
    moved = g.node("SpaceToDepth", [grown], blocksize=b)
    out = g.node("Reshape", [moved, g.ints([0, c * b * b, h // b, w // b])])
    return Value(out, "nchw"), layer(x)


@register_exporter(nn.Sequential)
def _sequential(layer, g, v, x):
    for sub in layer.layers:
        v, x = g.convert(sub, v, x)
    return v, x


@register_exporter(nn.Residual)
def _residual(layer, g, v, x):
    main, y_main = g.convert(layer.main, v, x)
    skip, y_skip = (v, x) if layer.shortcut is None else g.convert(layer.shortcut, v, x)
    a, b = g.same([main, skip], [y_main, y_skip])
    out = Value(g.node("Add", [a.name, b.name], hint="residual"), a.layout)
    y = layer.activation(layer.add(y_main, y_skip))
    return activation(g, out, layer.activation, "Residual"), y


@register_exporter(nn.Parallel)
def _parallel(layer, g, v, x):
    outs = [g.convert(branch, v, x) for branch in layer.branches]
    values = g.same([o[0] for o in outs], [o[1] for o in outs])
    y = layer.concat(*(o[1] for o in outs))
    axis = layer.concat.axis % y.ndim
    if values[0].layout == "nchw":
        axis = (0, 2, 3, 1)[axis]  # NHWC axis -> its place in NCHW
    return Value(g.node("Concat", [o.name for o in values], axis=axis),
                 values[0].layout), y


@register_exporter(L2Normalize)
def _l2_normalize(layer, g, v, x):
    # LpNormalization divides by the norm alone; strata's epsilon (1e-12 under the root) only
    # differs on an all-zero encoding.
    return Value(g.node("LpNormalization", [g.plain(v).name], axis=-1, p=2)), layer(x)
