"""NamedSequential: a Sequential whose layers have names (``conv1_1``, ``pool1``, ``fc6``), as
Keras's layers do, so that activations and weight files can refer to them."""

from __future__ import annotations

import re

from strata.nn.registry import register
from strata.nn.sequential import Sequential, layer_from_spec

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@register
class NamedSequential(Sequential):
    """A Sequential of ``(name, layer)`` pairs (or ``layers`` and ``names``): ``model["conv4_2"]``
    is a layer by name, ``model.layer_names`` the names in order and ``named_modules()``
    yields the names (state dict keys stay ``layers.<i>.W``, as a Sequential's).
    ``preprocessing`` records how loaded weights expect their pixels (a vgg_preprocess mode)."""

    def __init__(self, layers=(), names=None, preprocessing: str | None = None):
        pairs = list(layers) if names is None else _zip(list(layers), list(names))
        for i, pair in enumerate(pairs):
            if not (isinstance(pair, tuple) and len(pair) == 2 and isinstance(pair[0], str)
                    and _NAME.fullmatch(pair[0])):
                raise ValueError(f"NamedSequential: expected (name, layer) pairs with names "
                                 f"like 'conv1_1', got {pair!r:.80} at position {i}")
        names = [name for name, _ in pairs]
        if len(set(names)) != len(names):
            repeated = sorted({n for n in names if names.count(n) > 1})
            raise ValueError(f"NamedSequential: layer names must be unique, got {repeated} "
                             f"more than once")
        if preprocessing is not None and not isinstance(preprocessing, str):
            raise ValueError(f"NamedSequential: expected preprocessing to be a mode name or "
                             f"None, got {preprocessing!r:.80}")
        super().__init__([layer for _, layer in pairs])
        self.layer_names = names
        self.preprocessing = preprocessing

    def add(self, layer, name: str | None = None) -> None:
        """Append a layer, named ``name`` (default ``layer_<i>``)."""
        name = f"layer_{len(self.layers)}" if name is None else name
        if not _NAME.fullmatch(name) or name in self.layer_names:
            raise ValueError(f"NamedSequential.add: expected a new identifier name, got "
                             f"{name!r} (taken: {self.layer_names})")
        super().add(layer)
        self.layer_names.append(name)

    def index(self, name: str) -> int:
        """The position of the layer called ``name``; a KeyError listing the names otherwise."""
        try:
            return self.layer_names.index(name)
        except ValueError:
            raise KeyError(f"no layer named {name!r}; the layers are "
                           f"{', '.join(self.layer_names)}") from None

    def get_layer(self, name: str):
        """The layer called ``name`` (as Keras's ``model.get_layer``)."""
        return self.layers[self.index(name)]

    def __getitem__(self, key):
        return self.get_layer(key) if isinstance(key, str) else self.layers[key]

    def named_layers(self):
        """(name, layer) pairs in order."""
        return list(zip(self.layer_names, self.layers))

    def named_modules(self, prefix: str = ""):
        """(path, module) with the layers' names as paths (``conv1_1``, ``conv1_1.<sub>``)."""
        yield prefix, self
        for name, layer in zip(self.layer_names, self.layers):
            yield from layer.named_modules(f"{prefix}{name}.")

    def get_config(self) -> dict:
        config = super().get_config()
        config["names"] = list(self.layer_names)
        config["preprocessing"] = self.preprocessing
        return config

    @classmethod
    def from_config(cls, config: dict) -> NamedSequential:
        layers = [layer_from_spec(spec) for spec in config["layers"]]
        model = cls(layers, config["names"], config.get("preprocessing"))
        if config.get("input_shape") is not None:
            model.build(tuple(config["input_shape"]))
        return model

    def __repr__(self) -> str:
        body = "\n".join(f"  ({name}): " + repr(layer).replace("\n", "\n  ")
                         for name, layer in self.named_layers())
        return f"NamedSequential(\n{body}\n)"


def _zip(layers: list, names: list) -> list:
    if len(layers) != len(names):
        raise ValueError(f"NamedSequential: expected one name per layer, got {len(names)} "
                         f"names for {len(layers)} layers")
    return list(zip(names, layers))
