"""Sequential: layers applied one after another, with the Model training API."""

from __future__ import annotations

import numpy as np

from strata.nn.module import Module
from strata.nn.training import Model


def layer_spec(layer: Module) -> dict:
    """{"class": name, "config": ...}: what rebuilds ``layer`` (nested blocks included)."""
    return {"class": type(layer).__name__, "config": layer.get_config()}


def layer_from_spec(spec: dict) -> Module:
    """Rebuild a layer from ``layer_spec``'s output (classes from strata.nn.LAYERS)."""
    from strata.nn import LAYERS

    if spec["class"] not in LAYERS:
        raise ValueError(f"unknown layer class {spec['class']!r} in a saved architecture; "
                         f"known: {sorted(LAYERS)}")
    return LAYERS[spec["class"]].from_config(spec["config"])


class Sequential(Model):
    """Layers applied one after another: ``Sequential([Dense(20, "relu"), Dense(1)])``."""

    def __init__(self, layers=()):
        layers = list(layers)
        for i, layer in enumerate(layers):
            if not isinstance(layer, Module):
                raise TypeError(f"Sequential: layer {i} must be a Module, got "
                                f"{type(layer).__name__}")
        self.layers = layers
        self.input_shape = None

    def add(self, layer: Module) -> None:
        """Append a layer."""
        if not isinstance(layer, Module):
            raise TypeError(f"Sequential.add: expected a Module, got {type(layer).__name__}")
        self.layers.append(layer)

    def forward(self, x, mask=None):
        """Apply the layers in order; ``mask`` (m, T_x) goes to the layers that take one
        (recurrent layers and those around them)."""
        if self.input_shape is None and hasattr(x, "shape"):  # to rebuild a saved model
            self.input_shape = tuple(x.shape[1:])
        for layer in self.layers:
            x = layer(x, mask=mask) if mask is not None and getattr(
                layer, "supports_masking", False) else layer(x)
        return x

    def get_config(self) -> dict:
        """Each layer's class name and config, in order, plus the input shape once known."""
        return {"layers": [layer_spec(layer) for layer in self.layers],
                "input_shape": None if self.input_shape is None else list(self.input_shape)}

    @classmethod
    def from_config(cls, config: dict) -> Sequential:
        model = cls([layer_from_spec(spec) for spec in config["layers"]])
        if config.get("input_shape") is not None:
            model.build(tuple(config["input_shape"]))
        return model

    def build(self, input_shape: tuple) -> None:
        """Create every lazily-sized parameter by running one example of ``input_shape``."""
        from strata import backend
        from strata.autograd import no_grad

        was_training = self.training
        self.eval()
        with no_grad():
            self(np.zeros((1, *input_shape), dtype=backend.get_default_dtype()))
        self.train(was_training)

    def __getitem__(self, i):
        return self.layers[i]

    def __len__(self) -> int:
        return len(self.layers)

    def __repr__(self) -> str:
        body = "\n".join(f"  ({i}): " + repr(layer).replace("\n", "\n  ")
                         for i, layer in enumerate(self.layers))
        return f"Sequential(\n{body}\n)"

    def summary(self, input_shape=None, print_fn=print) -> int:
        """Print each layer's output shape and parameter count and the totals (running
        averages count as non-trainable, as in Keras); returns the total count."""
        from strata import backend
        from strata.autograd import no_grad

        shape = tuple(input_shape) if input_shape is not None else self.input_shape
        if shape is None:
            raise ValueError("summary: pass input_shape (one example's shape, e.g. (12288,)) "
                             "or call the model on data first")
        was_training = self.training
        self.eval()
        x = np.zeros((1, *shape), dtype=backend.get_default_dtype())
        rows, trainable, frozen = [], 0, 0
        with no_grad():
            for i, layer in enumerate(self.layers):
                x = layer(x)
                tensors = list(layer._named_tensors())
                n_train = sum(t.size for _, t in tensors if t.requires_grad)
                n_frozen = sum(t.size for _, t in tensors if not t.requires_grad)
                trainable, frozen = trainable + n_train, frozen + n_frozen
                rows.append((f"{i}: {type(layer).__name__}", str((None, *x.shape[1:])),
                             n_train + n_frozen))
        self.train(was_training)
        print_summary(rows, trainable + frozen, trainable, print_fn)
        return trainable + frozen


def print_summary(rows, total: int, trainable: int, print_fn=print) -> None:
    """The summary table: (layer name, output shape, parameter count) rows, then the totals."""
    line = "-" * 64
    print_fn(f"{'Layer':<28}{'Output shape':<22}{'Param #':>14}\n{line}")
    for name, out_shape, count in rows:
        print_fn(f"{name:<28}{out_shape:<22}{count:>14,}")
    print_fn(f"{line}\nTotal params: {total:,}\nTrainable params: {trainable:,}\n"
             f"Non-trainable params: {total - trainable:,}")
