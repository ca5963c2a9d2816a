"""The strata model of an imported graph: the layers the wanted outputs need, as a Sequential
when they form a chain, else as a GraphModel."""

from __future__ import annotations

from strata.nn import Sequential
from strata.onnx.graph import GraphModel


def _needed(nodes, outputs) -> list:
    """The nodes that the values ``outputs`` depend on, in order."""
    wanted, keep = set(outputs), []
    for layer, ins, outs in reversed(nodes):
        if wanted.intersection(outs):
            keep.append((layer, ins, outs))
            wanted.update(ins)
    return keep[::-1]


def _chain(nodes, inputs, outputs) -> bool:
    if len(inputs) != 1 or len(outputs) != 1 or not nodes:
        return False
    previous = inputs[0]
    for _, ins, outs in nodes:
        if ins != [previous] or len(outs) != 1:
            return False
        previous = outs[0]
    return previous == outputs[0]


def assemble(imp, inputs, outputs):
    """The model computing ``outputs`` (Vals) from ``inputs`` (Vals), in inference mode."""
    from strata.autograd import no_grad

    names = [v.name for v in outputs]
    nodes = _needed(imp.nodes, names)
    input_names = [v.name for v in inputs]
    if _chain(nodes, input_names, names):
        model = Sequential([layer for layer, _, _ in nodes])
        model.input_shape = None if imp.dynamic else tuple(inputs[0].shape[1:])
    else:
        used = {n for _, ins, _ in nodes for n in ins} | set(names)
        inputs = [v for v in inputs if v.name in used]
        if not inputs:
            raise ValueError(f"load: {imp.where}: the outputs {names} depend on no input")
        layers, ins, outs = zip(*nodes)
        model = GraphModel(layers, ins, outs, [v.name for v in inputs], names)
        model.eval()
        with no_grad():  # records the input shapes that save_model keeps
            model(*(v.x for v in inputs))
    return model.eval()
