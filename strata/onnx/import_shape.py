"""Import functions of ONNX's dense, merge and layout ops: Gemm and MatMul (+ Add) as Dense,
Add, Concat, Flatten and flattening Reshapes, Transpose/Squeeze/Unsqueeze (views only),
Gather on a constant table as Embedding, OneHot, and Constant."""

from __future__ import annotations

import math

import numpy as np

from strata import nn
from strata.onnx.import_ops import set_weights
from strata.onnx.importer import importer


def _axes_input(imp, node, a, rank: int) -> list[int]:
    axes = a.get("axes") if imp.opset < 13 else imp.const(node, 1, "the axes", optional=True)
    if axes is None:
        raise imp.fail(node, "expected explicit axes")
    return sorted(int(i) % rank for i in np.asarray(axes).ravel())


@importer("Constant")
def _constant(imp, node, a):
    from onnx import numpy_helper

    if "value" in a:
        imp.consts[node.output[0]] = numpy_helper.to_array(a["value"])
        return
    for key in ("value_float", "value_floats", "value_int", "value_ints"):
        if key in a:
            imp.consts[node.output[0]] = np.asarray(
                a[key], np.float32 if "float" in key else np.int64)
            return
    raise imp.fail(node, f"unsupported constant attributes {sorted(a)}")


def _flatten(imp, node, v, out: str) -> None:
    if v.axes[0] != 0:
        raise imp.fail(node, f"expected the batch on axis 0, got axes {v.axes}")
    if len(v.axes) == 2 or len(v.shape) == 2:  # already (m, n): a view at most
        imp.alias(out, v, axes=(0, 1))
        return
    if v.perm is not None:
        raise imp.fail(node, "flattening permuted features again is not supported")
    real = [a for a in v.axes[1:] if a is not None]
    perm = None
    if real != sorted(real):  # ONNX's order (C, H, W) differs from strata's (H, W, C)
        index = np.arange(math.prod(v.shape[1:])).reshape(v.shape[1:])
        perm = index.transpose([a - 1 for a in real]).ravel()
    imp.add(nn.Flatten(), [v], [out], [(0, 1)], perm, node=node)


@importer("Flatten")
def _flatten_op(imp, node, a):
    if a.get("axis", 1) != 1:
        raise imp.fail(node, f"only axis=1 (keep the batch) is supported, got {a['axis']}")
    _flatten(imp, node, imp.value(node), node.output[0])


@importer("Reshape")
def _reshape(imp, node, a):
    v = imp.value(node)
    shape = [int(n) for n in imp.const(node, 1, "the shape")]
    features = math.prod(v.shape[1:])
    if len(shape) == 2 and shape[0] in (0, -1, 1) and shape[1] in (-1, features):
        _flatten(imp, node, v, node.output[0])
        return
    raise imp.fail(node, f"only a flattening reshape to (batch, -1) is supported, got shape "
                   f"{shape} for an input of strata shape {v.shape}")


@importer("Transpose")
def _transpose(imp, node, a):
    v = imp.value(node)
    perm = a.get("perm", list(range(len(v.axes)))[::-1])
    if v.perm is not None:
        raise imp.fail(node, "transposing flattened, permuted features is not supported")
    imp.alias(node.output[0], v, axes=tuple(v.axes[p] for p in perm))


@importer("Squeeze")
def _squeeze(imp, node, a):
    v = imp.value(node)
    axes = _axes_input(imp, node, a, len(v.axes))
    if any(v.axes[i] is not None for i in axes):
        raise imp.fail(node, f"squeezing axes {axes} that strata keeps (axes {v.axes}) is not "
                       f"supported")
    imp.alias(node.output[0], v, axes=tuple(x for i, x in enumerate(v.axes) if i not in axes))


@importer("Unsqueeze")
def _unsqueeze(imp, node, a):
    v = imp.value(node)
    added = len(a.get("axes", [])) if imp.opset < 13 else np.size(imp.const(node, 1, "the axes"))
    axes, out = _axes_input(imp, node, a, len(v.axes) + added), list(v.axes)
    for i in axes:
        out.insert(i, None)
    imp.alias(node.output[0], v, axes=tuple(out))


def _dense(imp, node, v, W, bias):
    """A Dense layer of ONNX weight W (n_in, units), its rows put in strata's feature order."""
    if W.ndim != 2 or W.shape[0] != v.shape[-1]:
        raise imp.fail(node, f"expected weights of shape ({v.shape[-1]}, units) for inputs of "
                       f"strata shape {v.shape}, got {W.shape}")
    if v.perm is not None:
        W = W[np.argsort(v.perm)]  # strata feature perm[j] is ONNX feature j
    if not (v.plain or (v.perm is not None and v.axes == (0, 1))):
        raise imp.fail(node, f"expected features (m, n) or (m, T_x, n) in strata's order, got "
                       f"axes {v.axes}")
    layer = nn.Dense(int(W.shape[1]), use_bias=bias is not None)
    layer.build(int(W.shape[0]))
    set_weights(layer, W=W, **({} if bias is None else {"b": np.broadcast_to(
        np.asarray(bias).reshape(-1) if np.size(bias) > 1 else bias, (W.shape[1],))}))
    imp.add(layer, [v], [node.output[0]], [tuple(range(len(v.shape)))], node=node)


@importer("Gemm")
def _gemm(imp, node, a):
    v = imp.value(node)
    if a.get("transA", 0) or len(v.axes) != 2:
        raise imp.fail(node, "expected A as (m, n) features, not transposed")
    B = imp.const(node, 1, "the weights B")
    W = (B.T if a.get("transB", 0) else B) * np.float32(a.get("alpha", 1.0))
    C = imp.const(node, 2, "the bias C", optional=True)
    _dense(imp, node, v, W, None if C is None else C * np.float32(a.get("beta", 1.0)))


def _bias_add(imp, node):
    """The Add after MatMul ``node`` that only adds a constant bias vector, or None."""
    out = node.output[0]
    users = [n for n in imp.graph.node if out in n.input]
    if imp.used[out] != 1 or len(users) != 1 or users[0].op_type != "Add":
        return None
    other = [i for i in users[0].input if i != out]
    if len(other) == 1 and other[0] in imp.consts and imp.consts[other[0]].ndim <= 1:
        return users[0], imp.consts[other[0]]
    return None


@importer("MatMul")
def _matmul(imp, node, a):
    v = imp.value(node)
    W = imp.const(node, 1, "the weights (second input)")
    if W.ndim != 2:
        raise imp.fail(node, f"expected 2-D constant weights, got shape {W.shape}")
    fused = _bias_add(imp, node)
    bias = None
    if fused is not None:
        add, bias = fused
        imp.fused[add.output[0]] = node.output[0]
    _dense(imp, node, v, W, bias)


@importer("Add")
def _add(imp, node, a):
    if node.output[0] in imp.fused:  # the bias of a MatMul, already in its Dense
        imp.alias(node.output[0], imp.values[imp.fused[node.output[0]]])
        return
    x, y = imp.value(node, 0), imp.value(node, 1)
    if x.axes != y.axes or x.shape != y.shape or (x.perm is None) != (y.perm is None) or (
            x.perm is not None and not np.array_equal(x.perm, y.perm)):
        raise imp.fail(node, f"expected two values of one shape and layout, got strata shapes "
                       f"{x.shape}, {y.shape} (axes {x.axes}, {y.axes})")
    imp.add(nn.Add(), [x, y], [node.output[0]], [x.axes], x.perm, node=node)


@importer("Concat")
def _concat(imp, node, a):
    vs = [imp.value(node, i) for i in range(len(node.input))]
    if len({v.axes for v in vs}) != 1 or any(v.perm is not None for v in vs):
        raise imp.fail(node, "expected inputs of one layout")
    axis = vs[0].axes[int(a["axis"]) % len(vs[0].axes)]
    if axis is None or axis == 0:
        raise imp.fail(node, f"concatenating along axis {a['axis']} is not supported")
    axis = -1 if axis == len(vs[0].shape) - 1 else axis
    imp.add(nn.Concatenate(axis), vs, [node.output[0]], [vs[0].axes], node=node)


@importer("Gather")
def _gather(imp, node, a):
    E = imp.const(node, 0, "the embedding table")
    ids = imp.value(node, 1)
    if E.ndim != 2 or a.get("axis", 0) != 0 or not ids.plain:
        raise imp.fail(node, "only an embedding lookup (rows of a constant 2-D table by token "
                       "ids) is supported")
    layer = nn.Embedding(int(E.shape[0]), int(E.shape[1]))
    layer.build()
    set_weights(layer, E=E)
    imp.add(layer, [ids], [node.output[0]], [tuple(range(len(ids.shape) + 1))], node=node)


@importer("OneHot")
def _one_hot(imp, node, a):
    ids = imp.value(node)
    depth = int(np.asarray(imp.const(node, 1, "the depth")).ravel()[0])
    values = np.asarray(imp.const(node, 2, "the values")).ravel()
    if a.get("axis", -1) not in (-1, len(ids.axes)) or values.tolist() != [0, 1]:
        raise imp.fail(node, "only one-hot vectors on the last axis with values [0, 1] are "
                       "supported")
    imp.add(nn.OneHot(depth), [ids], [node.output[0]], [tuple(range(len(ids.shape) + 1))],
            node=node)
