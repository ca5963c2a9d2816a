"""Import functions of ONNX's feed-forward ops: each adds strata layers (or only changes how an
ONNX value is seen, for the layout ops) to the Importer; see strata/onnx/importer.py."""

from __future__ import annotations

import numpy as np

from strata import nn
from strata.onnx.importer import IMAGE, importer
from strata.ops.conv import padding_amounts
from strata.vision.faces import L2Normalize


def set_weights(layer, **arrays) -> None:
    """Copy ``arrays`` into the built ``layer``'s tensors of those names."""
    for name, array in arrays.items():
        tensor = getattr(layer, name)
        tensor.data = np.asarray(array).astype(tensor.dtype).reshape(tensor.shape)


def _image(imp, node, i: int = 0):
    v = imp.value(node, i)
    if v.axes != IMAGE:
        raise imp.fail(node, f"expected a 4-D NCHW image, got a value of strata shape "
                       f"{v.shape} seen as axes {v.axes}")
    return v


def _window(imp, node, a, n_dims: int = 2) -> tuple[int, int]:
    """(f, s) of a square window with equal strides and no dilation."""
    k = list(a.get("kernel_shape", []))
    s = list(a.get("strides", [1] * n_dims))
    if len(k) != 2 or k[0] != k[1] or s[0] != s[1]:
        raise imp.fail(node, f"expected a square 2-D window with equal strides, got "
                       f"kernel_shape {k}, strides {s}")
    if any(d != 1 for d in a.get("dilations", [1, 1])):
        raise imp.fail(node, f"dilations {a['dilations']} are not supported (only 1)")
    return int(k[0]), int(s[0])


def _padding(imp, node, a, v, f: int, s: int):
    """strata's padding for an ONNX window: 'valid', 'same', an int, or ((t, b), (l, r)) for
    asymmetric pads that only a ZeroPadding2D in front can give."""
    auto = a.get("auto_pad", "NOTSET")
    sizes = v.shape[1:3]
    same = [padding_amounts("same", n, f, s) for n in sizes]
    if auto == "VALID":
        return "valid"
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        if auto == "SAME_LOWER" and any(b != e for b, e in same):
            raise imp.fail(node, "auto_pad SAME_LOWER with an odd total padding is not "
                           "supported (strata's 'same' pads the extra row after)")
        return "same"
    t, left, b, r = (list(a.get("pads", [0, 0, 0, 0])) + [0] * 4)[:4]
    if a.get("ceil_mode", 0):
        for n, (p0, p1) in zip(sizes, ((t, b), (left, r)), strict=True):
            if (n + p0 + p1 - f) % s:
                raise imp.fail(node, "ceil_mode=1 gives a larger output here, which strata's "
                               "pools do not compute")
    if (t, b, left, r) == (0, 0, 0, 0):
        return "valid"
    if [(t, b), (left, r)] == same:
        return "same"
    if t == b == left == r:
        return int(t)
    return ((int(t), int(b)), (int(left), int(r)))


def _pad_first(imp, node, v, padding):
    """A ZeroPadding2D for explicit pads; returns (value, padding left for the layer)."""
    if isinstance(padding, tuple):
        pad = nn.ZeroPadding2D(padding)
        return imp.add(pad, [v], [node.output[0] + "_padded"], [IMAGE], node=node), "valid"
    return v, padding


@importer("Conv")
def _conv(imp, node, a):
    v = _image(imp, node)
    W = imp.const(node, 1, "the kernel W")
    B = imp.const(node, 2, "the bias B", optional=True)
    if a.get("group", 1) != 1:
        raise imp.fail(node, f"group={a['group']} (grouped or depthwise convolution) is not "
                       f"supported")
    f, s = _window(imp, node, {"kernel_shape": W.shape[2:], **a})
    v, padding = _pad_first(imp, node, v, _padding(imp, node, a, v, f, s))
    layer = nn.Conv2D(int(W.shape[0]), f, s, padding, use_bias=B is not None)
    layer.build(int(W.shape[1]))
    set_weights(layer, W=W.transpose(2, 3, 1, 0), **({} if B is None else {"b": B}))
    imp.add(layer, [v], [node.output[0]], [IMAGE], node=node)


@importer("MaxPool", "AveragePool")
def _pool(imp, node, a):
    v = _image(imp, node)
    if len([o for o in node.output if o]) > 1:
        raise imp.fail(node, "the Indices output is not supported")
    f, s = _window(imp, node, a)
    padding = _padding(imp, node, a, v, f, s)
    if node.op_type == "MaxPool":
        if isinstance(padding, tuple):
            raise imp.fail(node, f"asymmetric pads {a.get('pads')} other than 'same' are not "
                           f"supported for max pooling")
        layer = nn.MaxPool2D(f, s, padding)
    else:
        if a.get("count_include_pad", 0) and padding != "valid":
            # Padding zeros that count in the average: pad first, then a valid pool.
            if not isinstance(padding, tuple):
                padding = tuple(padding_amounts(padding, n, f, s) for n in v.shape[1:3])
        v, padding = _pad_first(imp, node, v, padding)
        layer = nn.AvgPool2D(f, s, padding)
    imp.add(layer, [v], [node.output[0]], [IMAGE], node=node)


@importer("GlobalAveragePool")
def _global_pool(imp, node, a):
    v = _image(imp, node)
    imp.add(nn.GlobalAveragePooling2D(), [v], [node.output[0]], [(0, 1, None, None)], node=node)


@importer("Pad")
def _pad(imp, node, a):
    v = _image(imp, node)
    pads = a.get("pads") if imp.opset < 11 else imp.const(node, 1, "the pads")
    value = a.get("value", 0.0) if imp.opset < 11 else imp.const(node, 2, "the constant value",
                                                                   optional=True)
    pads = [int(p) for p in np.asarray(pads).ravel()]
    if len(node.input) > 3 and node.input[3]:
        raise imp.fail(node, "the axes input is not supported")
    if a.get("mode", "constant") != "constant" or (value is not None and np.any(value != 0)):
        raise imp.fail(node, "only zero padding (mode constant, value 0) is supported")
    if len(pads) != 8 or any(pads[i] for i in (0, 1, 4, 5)) or min(pads) < 0:
        raise imp.fail(node, f"expected non-negative pads of H and W only, got {pads}")
    layer = nn.ZeroPadding2D(((pads[2], pads[6]), (pads[3], pads[7])))
    imp.add(layer, [v], [node.output[0]], [IMAGE], node=node)


@importer("SpaceToDepth")
def _space_to_depth(imp, node, a):
    v = _image(imp, node)  # ONNX's channel order is tf.nn.space_to_depth's
    imp.add(nn.SpaceToDepth(int(a["blocksize"]), "tensorflow"), [v], [node.output[0]], [IMAGE],
            node=node)


@importer("BatchNormalization")
def _batch_norm(imp, node, a):
    v = imp.value(node)
    if len(v.axes) < 2 or v.axes[1] != len(v.shape) - 1 or v.perm is not None:
        raise imp.fail(node, f"expected the channels (ONNX axis 1) on strata's last axis, got "
                       f"axes {v.axes} of strata shape {v.shape}")
    if a.get("training_mode", 0) or len([o for o in node.output if o]) > 1:
        raise imp.fail(node, "training mode (running statistics as outputs) is not supported")
    gamma, beta, mean, var = (imp.const(node, i, what) for i, what in enumerate(
        ("the scale", "the bias B", "the mean", "the variance"), start=1))
    layer = nn.BatchNorm(float(a.get("momentum", 0.9)), float(a.get("epsilon", 1e-5)))
    layer.build(v.shape[-1])
    set_weights(layer, gamma=gamma, beta=beta, running_mean=mean, running_var=var)
    imp.add(layer, [v], [node.output[0]], [v.axes], node=node)


@importer("Relu", "Sigmoid", "Tanh", "LeakyRelu", "Softmax")
def _activation(imp, node, a):
    v = imp.value(node)
    if node.op_type == "LeakyRelu":
        layer = nn.LeakyReLU(float(a.get("alpha", 0.01)))
    elif node.op_type == "Softmax":
        rank = len(v.axes)
        axis = a.get("axis", -1 if imp.opset >= 13 else 1) % rank
        if v.axes[axis] != len(v.shape) - 1 or (imp.opset < 13 and axis != rank - 1):
            raise imp.fail(node, f"softmax over ONNX axis {axis} is not over strata's last "
                           f"axis (axes {v.axes})")
        layer = nn.Activation("softmax")
    else:
        layer = nn.Activation(node.op_type.lower())
    imp.add(layer, [v], [node.output[0]], [v.axes], v.perm, node=node)


@importer("LpNormalization")
def _lp_normalization(imp, node, a):
    v = imp.value(node)
    if a.get("p", 2) != 2 or v.axes[a.get("axis", -1) % len(v.axes)] != len(v.shape) - 1:
        raise imp.fail(node, f"only p=2 over strata's last axis is supported (p={a.get('p', 2)}, "
                       f"axis {a.get('axis', -1)}, axes {v.axes})")
    imp.add(L2Normalize(), [v], [node.output[0]], [v.axes], v.perm, node=node)


@importer("Dropout", "Identity")
def _identity(imp, node, a):
    if len(node.output) > 1 and node.output[1] and imp.used[node.output[1]]:
        raise imp.fail(node, "the dropout mask output is not supported")
    training = imp.const(node, 2, "training_mode", optional=True)
    if training is not None and bool(training):
        raise imp.fail(node, "training_mode=True is not supported (inference graphs only)")
    imp.alias(node.output[0], imp.value(node))
