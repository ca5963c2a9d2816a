"""``load``: an ONNX file as a strata model, weights included.

Layout. strata's layers compute on NHWC images, so an ONNX graph's NCHW image becomes an NHWC
strata value and Conv kernels (n_C, n_C_prev, f, f) become (f, f, n_C_prev, n_C). Each ONNX
value is tracked as a view of the strata value that holds it: ``axes[i]`` is the strata axis
behind ONNX axis i (None for a unit axis strata does not keep). A Transpose, Squeeze or
Unsqueeze then only changes the view and adds no layer, a Concat on ONNX's channel axis 1
concatenates strata's last axis, and a Flatten of NCHW features (C, H, W order) followed by
Gemm permutes the Gemm's weight rows to strata's (H, W, C) order. The loaded model therefore
takes NHWC images (and batch-first (m, T_x, n_x) sequences where the graph feeds time-major
[T_x, m, n_x] ones to an RNN op), and returns its outputs in strata's layout.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from strata.onnx._common import require_onnx

#: ONNX op type -> function(importer, node, attributes): adds layers or changes views.
IMPORTERS: dict[str, object] = {}
#: ONNX's NCHW image as a view of strata's NHWC value.
IMAGE = (0, 3, 1, 2)
_RECURRENT = ("RNN", "GRU", "LSTM")


def importer(*ops):
    """Decorator registering an op's import function under ONNX op types ``ops``."""
    def decorate(fn):
        for op in ops:
            IMPORTERS[op] = fn
        return fn
    return decorate


@dataclass
class Val:
    """An ONNX value held by strata value ``name`` (a (1, ...) stand-in ``x`` gives shapes):
    ``axes`` maps ONNX axes to strata's; ``perm`` (flattened features) says ONNX feature j is
    strata's feature perm[j]."""

    name: str
    axes: tuple
    x: object
    perm: np.ndarray | None = None

    @property
    def shape(self) -> tuple:
        """The strata value's shape, batch of 1."""
        return tuple(self.x.shape)

    @property
    def plain(self) -> bool:
        """True when ONNX's axes are strata's, in order."""
        return self.axes == tuple(range(len(self.x.shape))) and self.perm is None


class Importer:
    """Walks an ONNX graph in order, turning nodes into strata layers (run once on stand-in
    inputs of batch 1, to know each value's shape)."""

    def __init__(self, proto, where: str):
        from onnx import numpy_helper

        self.where, self.graph = where, proto.graph
        self.opset = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")),
                          1)
        self.consts = {i.name: numpy_helper.to_array(i) for i in self.graph.initializer}
        self.values: dict[str, Val] = {}
        self.nodes: list = []
        self.used = Counter(n for node in self.graph.node for n in node.input if n)
        self.used.update(o.name for o in self.graph.output)
        self.fused: dict[str, str] = {}
        self.dynamic = False

    def fail(self, node, message: str):
        """A ValueError naming the file and the node."""
        return ValueError(f"load: {self.where}: node {node.name or node.output[0]!r} "
                          f"({node.op_type}): {message}")

    def const(self, node, i: int, what: str, optional: bool = False):
        """Input ``i`` of ``node`` as an array: it must be an initializer or a Constant."""
        name = node.input[i] if i < len(node.input) else ""
        if not name:
            if optional:
                return None
            raise self.fail(node, f"expected {what} as input {i}")
        if name not in self.consts:
            raise self.fail(node, f"expected {what} ({name!r}) to be a constant (initializer), "
                            f"got a computed value")
        return self.consts[name]

    def value(self, node, i: int = 0) -> Val:
        """Input ``i`` of ``node`` as a computed value."""
        name = node.input[i]
        if name not in self.values:
            raise self.fail(node, f"expected input {name!r} to be a computed value, got "
                            f"{'a constant' if name in self.consts else 'an unknown name'}")
        return self.values[name]

    def add(self, layer, ins, outputs, axes, perm=None, node=None):
        """Record ``layer`` on values ``ins`` giving ONNX ``outputs`` (each with ``axes``)."""
        from strata.autograd import no_grad

        layer.eval()
        try:
            with no_grad():
                out = layer(*(v.x for v in ins))
        except (ValueError, TypeError) as e:
            raise self.fail(node, f"{type(layer).__name__} does not fit its input: {e}") \
                from None
        outs = out if isinstance(out, tuple) else (out,)
        names = [self._fresh(o) for o in outputs]
        self.nodes.append((layer, [v.name for v in ins], names))
        for onnx_name, name, x, ax in zip(outputs, names, outs, axes, strict=True):
            self.values[onnx_name] = Val(name, ax, x, perm)
        return self.values[outputs[0]]

    def _fresh(self, onnx_name: str) -> str:
        """A strata value name for ``onnx_name``: unique, and without commas (GraphModel
        saves a node's names comma-separated)."""
        taken = {v.name for v in self.values.values()}
        onnx_name = onnx_name.replace(",", "_") or "value"
        name, i = onnx_name, 1
        while name in taken:
            name, i = f"{onnx_name}_{i}", i + 1
        return name

    def alias(self, onnx_name: str, val: Val, **changes) -> None:
        """ONNX value ``onnx_name`` is ``val`` seen another way (no layer)."""
        self.values[onnx_name] = Val(**{**val.__dict__, **changes})

    def inputs(self, input_shape) -> list[Val]:
        """Stand-ins for the graph's inputs (the initializers excluded)."""
        first_use = {}
        for node in self.graph.node:
            for name in node.input:
                first_use.setdefault(name, node)
        vals = []
        real = [i for i in self.graph.input if i.name not in self.consts]
        if input_shape is not None and len(real) != 1:
            raise ValueError(f"load: input_shape applies to a one-input graph; {self.where} "
                             f"has {len(real)} inputs")
        for inp in real:
            vals.append(self._input(inp, first_use.get(inp.name), input_shape))
        return vals

    def _input(self, inp, consumer, input_shape) -> Val:
        from onnx import TensorProto

        t = inp.type.tensor_type
        dims = [d.dim_value if d.HasField("dim_value") else None for d in t.shape.dim]
        rank = len(dims)
        op = getattr(consumer, "op_type", None)
        nhwc = op == "Transpose" and [a.ints for a in consumer.attribute if a.name == "perm"
                                      ] == [list(IMAGE)]  # an NHWC input, as strata exports
        axes = (IMAGE if rank == 4 and not nhwc else (1, 0, 2) if rank == 3 and
                op in _RECURRENT else tuple(range(rank)))
        shape = [None] * rank
        for i, a in enumerate(axes):
            shape[a] = dims[i]
        if input_shape is not None:
            given = tuple(int(n) for n in input_shape)
            if len(given) != rank - 1:
                raise ValueError(f"load: input_shape {given} has {len(given)} axes; the graph's "
                                 f"input {inp.name!r} needs {rank - 1} (strata's layout, batch "
                                 f"axis left out)")
            shape[1:] = given
        shape[0] = 1
        for i, n in enumerate(shape):
            if n is None or n < 1:
                if rank == 3 and i == 1:  # sequence length: any works, the weights don't care
                    shape[i], self.dynamic = 1, True
                else:
                    raise ValueError(f"load: {self.where}: input {inp.name!r} has an unknown "
                                     f"size on axis {i} of strata's {tuple(shape)}; pass "
                                     f"input_shape=(one example's shape, NHWC for images)")
        ints = t.elem_type in (TensorProto.INT64, TensorProto.INT32)
        x = np.zeros(shape, np.int64 if ints else np.float32)
        val = Val(self._fresh(inp.name), axes, x)
        self.values[inp.name] = val
        return val

    def run(self) -> None:
        """Import every node, in the graph's (topological) order."""
        from onnx import helper

        for node in self.graph.node:
            attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
            attrs = {k: _text(v) for k, v in attrs.items()}
            IMPORTERS[node.op_type](self, node, attrs)


def _text(value):
    """Strings (and lists of them) of ONNX attributes as str."""
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, list) and value and isinstance(value[0], bytes):
        return [v.decode() for v in value]
    return value


def _check_ops(proto, where: str) -> None:
    from strata.onnx import (  # noqa: F401 -- fill IMPORTERS
        import_ops,
        import_recurrent,
        import_shape,
    )

    domains = sorted({n.domain for n in proto.graph.node if n.domain not in ("", "ai.onnx")})
    missing = sorted({n.op_type for n in proto.graph.node if n.op_type not in IMPORTERS})
    if domains or missing:
        raise ValueError(f"load: {where} uses ONNX ops strata cannot import: "
                         f"{', '.join(missing + [f'domain {d}' for d in domains])}; supported: "
                         f"{', '.join(sorted(IMPORTERS))}")


def _read(path: Path):
    onnx = require_onnx()
    if not path.is_file():
        raise FileNotFoundError(f"load: no ONNX file at {path}")
    try:
        proto = onnx.load_model_from_string(path.read_bytes())
        onnx.checker.check_model(proto)
    except Exception as e:  # protobuf's DecodeError and onnx's ValidationError
        raise ValueError(f"load: {path} is not a valid ONNX model: {e}") from None
    return proto


def load(path, input_shape=None, outputs=None):
    """Build a strata model, weights included, from the ONNX file ``path`` (see docs/ONNX.md
    for the ops it reads). A chain of layers becomes a ``Sequential``, any other graph a
    ``strata.onnx.GraphModel``; the model is returned in inference mode (``fit`` trains it).

    The model takes NHWC images where the graph takes NCHW ones (kernels are converted), and
    batch-first sequences. ``input_shape`` (one example's shape in strata's layout) fixes
    sizes the file leaves unknown; ``outputs`` names the ONNX values to return instead of the
    graph's outputs (an inner one makes a feature extractor). Every op the graph uses that
    strata cannot import is named in the error, before anything is built."""
    path = Path(path)
    proto = _read(path)
    _check_ops(proto, str(path))
    imp = Importer(proto, str(path))
    inputs = imp.inputs(input_shape)
    imp.run()
    wanted = [o.name for o in proto.graph.output] if outputs is None else (
        [outputs] if isinstance(outputs, str) else list(outputs))
    for name in wanted:
        if name not in imp.values:
            raise ValueError(f"load: {path} has no computed value {name!r} to return; "
                             f"values: {', '.join(sorted(imp.values))}")
    from strata.onnx.assemble import assemble

    return assemble(imp, inputs, [imp.values[n] for n in wanted])
