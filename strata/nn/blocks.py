"""Building blocks for non-sequential graphs: merges (Add, Concatenate) and the two patterns of
course 4 week 2 built from them, the residual block and parallel branches (inception)."""

from __future__ import annotations

from strata import ops
from strata.autograd import ShapeError
from strata.nn.layers import _as_tensor, get_activation
from strata.nn.module import Module
from strata.nn.sequential import Sequential, layer_from_spec, layer_spec


class Add(Module):
    """Element-wise sum of its inputs (equal shapes): ``Add()(a, b)``, the skip connection."""

    def forward(self, *inputs):
        if len(inputs) < 2:
            raise ValueError(f"Add: expected at least 2 inputs, got {len(inputs)}")
        xs = [_as_tensor(x) for x in inputs]
        if len({x.shape for x in xs}) != 1:
            raise ShapeError(f"Add: expected inputs of one shape, got "
                             f"{', '.join(str(x.shape) for x in xs)}")
        out = xs[0]
        for x in xs[1:]:
            out = out + x
        return out


class Concatenate(Module):
    """Join inputs along ``axis`` (default the last: channels of NHWC images)."""

    def __init__(self, axis: int = -1):
        self.axis = axis
        self.config = {"axis": axis}

    def forward(self, *inputs):
        xs = [_as_tensor(x) for x in inputs]
        others = {tuple(s for i, s in enumerate(x.shape) if i != self.axis % x.ndim) for x in xs}
        if len(others) != 1:
            raise ShapeError(f"Concatenate(axis={self.axis}): inputs must agree on every other "
                             f"axis, got {', '.join(str(x.shape) for x in xs)}")
        return ops.concatenate(xs, axis=self.axis)

    def extra_repr(self) -> str:
        return f"axis={self.axis}"


def _sequential(layers) -> Module:
    return layers if isinstance(layers, Module) else Sequential(list(layers))


class Residual(Module):
    """A residual block: a[l+2] = g(main(a[l]) + shortcut(a[l])).

    ``main`` is the layers of the block's main path (a Module or a list of layers);
    ``shortcut`` is None for the identity (the course's identity block) or the layers that
    resize a[l] to match (a 1x1 convolution and batch norm in its convolutional block).
    """

    def __init__(self, main, shortcut=None, activation="relu"):
        self.main = _sequential(main)
        self.shortcut = None if shortcut is None else _sequential(shortcut)
        self.activation_name = activation
        self.activation = get_activation(activation)
        self.add = Add()

    def forward(self, x):
        x = _as_tensor(x)
        skip = x if self.shortcut is None else self.shortcut(x)
        main = self.main(x)
        if main.shape != skip.shape:
            raise ShapeError(f"Residual: the main path gives {main.shape} but the shortcut "
                             f"gives {skip.shape}; give a shortcut that resizes the input")
        return self.activation(self.add(main, skip))

    def get_config(self) -> dict:
        return {"main": layer_spec(self.main), "activation": self.activation_name,
                "shortcut": None if self.shortcut is None else layer_spec(self.shortcut)}

    @classmethod
    def from_config(cls, config: dict) -> Residual:
        shortcut = config["shortcut"]
        return cls(layer_from_spec(config["main"]),
                   None if shortcut is None else layer_from_spec(shortcut), config["activation"])


class Parallel(Module):
    """Branches applied to the same input, outputs concatenated along channels (``axis``):
    the inception module, whose branches are 1x1, 3x3 and 5x5 convolutions and a pool."""

    def __init__(self, branches, axis: int = -1):
        self.branches = [_sequential(b) for b in branches]
        if len(self.branches) < 2:
            raise ValueError(f"Parallel: expected at least 2 branches, got {len(self.branches)}")
        self.concat = Concatenate(axis)

    def forward(self, x):
        return self.concat(*(branch(x) for branch in self.branches))

    def get_config(self) -> dict:
        return {"branches": [layer_spec(b) for b in self.branches], "axis": self.concat.axis}

    @classmethod
    def from_config(cls, config: dict) -> Parallel:
        return cls([layer_from_spec(b) for b in config["branches"]], config["axis"])
