"""``export``: a strata model as an ONNX file (opset 17), checked by onnx.checker, written
atomically. Its input and output are strata's arrays: NHWC images, (m, n_x) features,
(m, T_x, n_x) sequences or (m, T_x) int64 token ids, with a free batch axis "N"."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from strata import nn
from strata.files import atomic_write
from strata.onnx import export_layers, export_recurrent  # noqa: F401 -- fill EXPORTERS
from strata.onnx._common import require_onnx
from strata.onnx.builder import (
    EXPORTERS,
    OPSET,
    Graph,
    Value,
    exporter_of,
    register_exporter,
)

__all__ = ["export", "register_exporter", "EXPORTERS", "OPSET"]

#: Layers that only appear inside the blocks that export them (Residual's Add, Parallel's
#: Concatenate).
_INSIDE_BLOCKS = (nn.Add, nn.Concatenate)


def unsupported_layers(model) -> list[str]:
    """'path (Class)' of every layer of ``model`` that has no ONNX mapping (its sub-layers
    not listed again)."""
    bad = []
    for name, module in model.named_modules():
        if any(name.startswith(b + ".") for b, _ in bad):
            continue
        if exporter_of(type(module)) is None and not isinstance(module, _INSIDE_BLOCKS):
            bad.append((name.rstrip("."), type(module).__name__))
    return [f"{name or 'the model'} ({cls})" for name, cls in bad]


def _takes_ids(model) -> bool:
    leaves = [m for m in model.modules() if sum(1 for _ in m.modules()) == 1]
    return bool(leaves) and isinstance(leaves[0], (nn.Embedding, nn.OneHot))


def example_input(model, input_shape=None) -> np.ndarray:
    """A batch of one example for tracing ``model``: ``input_shape`` (one example's shape,
    without the batch axis), an example array (batch included), or the shape the model
    knows (Sequential.input_shape, or the inputs a Model subclass has seen)."""
    if isinstance(input_shape, np.ndarray):
        x = input_shape
        return x.astype(np.int64) if x.dtype.kind in "iub" else x.astype(np.float32)
    shape = input_shape if input_shape is not None else getattr(model, "input_shape", None)
    specs = vars(model).get("_input_specs")
    if shape is None and specs is not None:
        if len(specs) != 1:
            raise ValueError(f"export: the model takes {len(specs)} inputs; only one-input "
                             f"models export")
        shape = specs[0][0]
    if shape is None:
        raise ValueError("export: pass input_shape (one example's shape, e.g. (64, 64, 3)) or "
                         "an example batch; the model does not know its input shape")
    try:
        shape = tuple(int(n) for n in shape)
    except (TypeError, ValueError):
        raise ValueError(f"export: expected input_shape as a tuple of ints, got "
                         f"{input_shape!r}") from None
    if not shape or min(shape) < 1:
        raise ValueError(f"export: expected a non-empty input_shape of positive sizes, got "
                         f"{shape}")
    return np.zeros((1, *shape), np.int64 if _takes_ids(model) else np.float32)


def _check(model, path: Path, opset, onnx) -> None:
    from strata.nn.module import Module

    if not isinstance(model, Module):
        raise TypeError(f"export: expected a strata Module, got {type(model).__name__}")
    if path.suffix != ".onnx":
        raise ValueError(f"export: expected a path ending in .onnx, got {path}")
    newest = onnx.defs.onnx_opset_version()
    if isinstance(opset, bool) or not isinstance(opset, int) or not OPSET <= opset <= newest:
        raise ValueError(f"export: expected opset an int from {OPSET} to {newest} (this onnx "
                         f"package's newest), got {opset!r}")
    bad = unsupported_layers(model)
    if bad:
        raise ValueError(f"export: no ONNX mapping for {', '.join(bad)}; supported layers: "
                         f"{', '.join(sorted(c.__name__ for c in EXPORTERS))} (add one with "
                         f"strata.onnx.register_exporter)")
    if not model.state_dict():
        raise ValueError("export: the model has no weights yet; call it on a batch (or "
                         "build(input_shape)) first")


def to_onnx(model, input_shape=None, opset: int = OPSET):
    """The onnx.ModelProto of ``model`` in inference mode (see ``export``)."""
    from strata.autograd import no_grad
    from strata.tensor import Tensor

    onnx = require_onnx()
    from onnx import TensorProto, helper, numpy_helper

    x = example_input(model, input_shape)
    g, was_training = Graph(helper, numpy_helper), model.training
    model.eval()
    try:
        with no_grad():
            v, y = g.convert(model, Value("input"), Tensor(x))
    finally:
        model.train(was_training)
    if not hasattr(y, "shape"):
        raise ValueError(f"export: the model returns {type(y).__name__}; only one output "
                         f"exports")
    g.nodes.append(helper.make_node("Identity", [g.plain(v).name], ["output"]))
    elem = TensorProto.INT64 if x.dtype == np.int64 else TensorProto.FLOAT
    graph = helper.make_graph(
        g.nodes, "strata", [helper.make_tensor_value_info("input", elem, ["N", *x.shape[1:]])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", *y.shape[1:]])],
        g.initializers)
    opsets = [helper.make_opsetid("", opset)]
    from strata import __version__

    proto = helper.make_model(graph, opset_imports=opsets, producer_name="strata",
                              producer_version=__version__,
                              ir_version=helper.find_min_ir_version_for(opsets))
    onnx.checker.check_model(proto, full_check=True)
    return proto


def export(model, path, input_shape=None, opset: int = OPSET) -> Path:
    """Write ``model`` to ``path`` (.onnx) as ONNX opset 17 (or a newer ``opset``), checked
    with onnx.checker and written atomically; returns the path.

    The graph computes the model in inference mode (dropout the identity, batch norm with its
    running averages) in float32. Its input "input" and output "output" have strata's layout,
    so the same arrays go in: NHWC images, features, (m, T_x, n_x) sequences, or int64 token
    ids for a model that starts with an Embedding or OneHot. The batch axis is free ("N"),
    the others fixed to ``input_shape`` (one example's shape; an example batch also does; by
    default the model's own input_shape). Inside, convolutions run NCHW (docs/ONNX.md).
    A layer without an ONNX mapping raises a ValueError naming it and its class."""
    onnx = require_onnx()
    path = Path(path)
    _check(model, path, opset, onnx)
    proto = to_onnx(model, input_shape, opset)
    return atomic_write(path, proto.SerializeToString())
