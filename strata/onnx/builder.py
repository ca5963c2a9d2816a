"""The ONNX graph an export builds: nodes, initializers, and where each value's channels are.

Layout: strata's images are NHWC, ONNX's Conv and pools NCHW. A value is kept in one of two
layouts, "plain" (strata's own axis order) or "nchw" (a 4-D image transposed to NCHW); a layer
asks for the layout it needs and a Transpose is added only where it changes. So a ConvNet has
one Transpose after the input, and one before Flatten (which must flatten in strata's H, W, C
order) or before the output, and the graph's input and output are strata's NHWC arrays.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: ONNX operator set the export writes (and the import reads, along with others it knows).
OPSET = 17

#: Exact layer class -> function(layer, graph, value, x) -> (value, y): writes the layer's
#: nodes for ``value`` and returns the output value and strata's own output y = layer(x).
EXPORTERS: dict[type, object] = {}

TO_NCHW, TO_NHWC = (0, 3, 1, 2), (0, 2, 3, 1)


def register_exporter(cls):
    """Decorator: ``@register_exporter(MyModel)`` on ``fn(layer, graph, value, x)`` teaches
    ``export`` a layer or Model subclass of yours. ``fn`` writes nodes with ``graph.node`` (or
    converts sub-layers with ``graph.convert(sub, value, x)``) and returns (output value, the
    strata output ``layer(x)``)."""
    def decorate(fn):
        EXPORTERS[cls] = fn
        return fn
    return decorate


def exporter_of(cls):
    """The export function of layer class ``cls``: its own, or that of the nearest base class
    it inherits ``forward`` from unchanged (a registered Sequential subclass, say)."""
    if cls in EXPORTERS:
        return EXPORTERS[cls]
    for base in cls.__mro__[1:]:
        if base in EXPORTERS and getattr(cls, "forward", None) is base.forward:
            return EXPORTERS[base]
    return None


@dataclass(frozen=True)
class Value:
    """A value of the graph being written: its name and layout ("plain" or "nchw")."""

    name: str
    layout: str = "plain"


class Graph:
    """Collects the nodes and initializers (all float32) of one export."""

    def __init__(self, helper, numpy_helper):
        self.helper, self.numpy_helper = helper, numpy_helper
        self.nodes, self.initializers, self._count = [], [], {}

    def fresh(self, hint: str) -> str:
        """A new value name from ``hint`` (conv_1, conv_2...)."""
        n = self._count[hint] = self._count.get(hint, 0) + 1
        return f"{hint}_{n}"

    def const(self, array, hint: str = "const", dtype=np.float32) -> str:
        """An initializer holding ``array`` (float32 unless ``dtype`` says otherwise)."""
        name = self.fresh(hint)
        self.initializers.append(self.numpy_helper.from_array(
            np.ascontiguousarray(np.asarray(array, dtype=dtype)), name))
        return name

    def ints(self, values, hint: str = "shape") -> str:
        """An int64 initializer (axes, shapes, pads)."""
        return self.const(np.asarray(values, np.int64), hint, np.int64)

    def node(self, op: str, inputs, outputs: int = 1, hint: str | None = None, **attrs):
        """Add an ``op`` node; returns its output name (or the list of them)."""
        names = [self.fresh(hint or op.lower()) for _ in range(outputs)]
        self.nodes.append(self.helper.make_node(op, list(inputs), names, **attrs))
        return names[0] if outputs == 1 else names

    def plain(self, v: Value) -> Value:
        """``v`` in strata's axis order (an NCHW image transposed back to NHWC)."""
        if v.layout == "plain":
            return v
        return Value(self.node("Transpose", [v.name], perm=list(TO_NHWC), hint="to_nhwc"))

    def nchw(self, v: Value, x) -> Value:
        """``v`` (the 4-D image x) as NCHW, for Conv, pools, Pad and the like."""
        if v.layout == "nchw":
            return v
        if x.ndim != 4:
            raise ValueError(f"export: expected a 4-D NHWC image here, got shape {x.shape}")
        return Value(self.node("Transpose", [v.name], perm=list(TO_NCHW), hint="to_nchw"),
                     "nchw")

    def same(self, values, xs) -> list[Value]:
        """``values`` in one layout (the first's), to add or concatenate them."""
        if values[0].layout == "nchw":
            return [self.nchw(v, x) for v, x in zip(values, xs, strict=True)]
        return [self.plain(v) for v in values]

    def convert(self, layer, v: Value, x):
        """Write ``layer`` applied to ``v`` (whose strata value is x): (value, layer(x))."""
        fn = exporter_of(type(layer))
        if fn is None:
            raise ValueError(f"export: no ONNX mapping for {type(layer).__name__} "
                             f"({layer!r}); see strata.onnx.register_exporter")
        return fn(layer, self, v, x)
