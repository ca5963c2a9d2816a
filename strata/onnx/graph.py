"""GraphModel: a network that is not a chain of layers (skip connections, branches, several
inputs or outputs), as ``strata.onnx.load`` builds it from an ONNX graph."""

from __future__ import annotations

from strata.nn.registry import register
from strata.nn.sequential import layer_from_spec, layer_spec
from strata.nn.training import Model


def _names(values, what: str) -> list[str]:
    names = values.split(",") if isinstance(values, str) else list(values)
    if not names or not all(isinstance(n, str) and n and "," not in n for n in names):
        raise ValueError(f"GraphModel: expected {what} as a non-empty list of names without "
                         f"commas, got {values!r:.80}")
    return names


@register(name="OnnxGraph")
class GraphModel(Model):
    """Layers applied in graph order, each to named values: layer i reads the values named in
    ``node_inputs[i]`` and defines those in ``node_outputs[i]`` (one per output: a recurrent
    layer with ``return_state`` has several); ``inputs`` names the model's arguments and
    ``outputs`` what it returns (one value, or a tuple). Names are strings without commas (a
    node's list may be given as one comma-separated string, as the saved config holds it).

    Its layers are ordinary strata layers (``model.nodes``), so the model compiles, fits,
    freezes (``layer.trainable = False``) and saves like any other; ``outputs`` may name an
    inner value, which makes the model a feature extractor."""

    def __init__(self, layers, node_inputs, node_outputs, inputs, outputs):
        self.input_names, self.output_names = _names(inputs, "inputs"), _names(outputs,
                                                                               "outputs")
        layers, node_inputs, node_outputs = list(layers), list(node_inputs), list(node_outputs)
        if not len(layers) == len(node_inputs) == len(node_outputs):
            raise ValueError(f"GraphModel: expected one input list and one output list per "
                             f"layer, got {len(layers)} layers, {len(node_inputs)} and "
                             f"{len(node_outputs)} lists")
        # Not named ``layers``: save_model takes a model with ``layers`` for a Sequential, which
        # rebuilds from its input_shape; a GraphModel rebuilds by one call on its inputs.
        self.nodes, self.node_inputs, self.node_outputs = [], [], []
        known = set(self.input_names)
        for i, (layer, ins, outs) in enumerate(zip(layers, node_inputs, node_outputs,
                                                   strict=True)):
            ins, outs = _names(ins, f"node {i}'s inputs"), _names(outs, f"node {i}'s outputs")
            missing = [n for n in ins if n not in known]
            if missing:
                raise ValueError(f"GraphModel: node {i} ({type(layer).__name__}) reads "
                                 f"{missing}, which no earlier node or input defines")
            known.update(outs)
            self.nodes.append(layer)
            self.node_inputs.append(ins)
            self.node_outputs.append(outs)
        missing = [n for n in self.output_names if n not in known]
        if missing:
            raise ValueError(f"GraphModel: outputs {missing} are not computed by any node")

    def forward(self, *inputs):
        if len(inputs) != len(self.input_names):
            raise ValueError(f"GraphModel: expected {len(self.input_names)} inputs "
                             f"({', '.join(self.input_names)}), got {len(inputs)}")
        env = dict(zip(self.input_names, inputs, strict=True))
        for layer, ins, outs in zip(self.nodes, self.node_inputs, self.node_outputs,
                                    strict=True):
            out = layer(*(env[n] for n in ins))
            if len(outs) == 1:
                env[outs[0]] = out
            else:
                env.update(zip(outs, out, strict=True))
        results = [env[n] for n in self.output_names]
        return results[0] if len(results) == 1 else tuple(results)

    def get_config(self) -> dict:
        return {"layers": [layer_spec(layer) for layer in self.nodes],
                "node_inputs": [",".join(ins) for ins in self.node_inputs],
                "node_outputs": [",".join(outs) for outs in self.node_outputs],
                "inputs": list(self.input_names), "outputs": list(self.output_names)}

    @classmethod
    def from_config(cls, config: dict) -> GraphModel:
        return cls([layer_from_spec(spec) for spec in config["layers"]], config["node_inputs"],
                   config["node_outputs"], config["inputs"], config["outputs"])

    def __repr__(self) -> str:
        body = "\n".join(f"  ({i}): {', '.join(outs)} = " + repr(layer).replace("\n", "\n  ")
                         + f"({', '.join(ins)})" for i, (layer, ins, outs) in enumerate(
                             zip(self.nodes, self.node_inputs, self.node_outputs,
                                 strict=True)))
        return f"GraphModel(\n{body}\n)"
