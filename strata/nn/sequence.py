"""Layers around recurrent ones: Embedding and OneHot (token ids -> vectors x<t>) and
TimeDistributed (the same layer at every time step, e.g. the output y<t> = softmax(a<t> Wya
+ by) of a many-to-many network)."""

from __future__ import annotations

import numpy as np

from strata import backend, ops
from strata.autograd import ShapeError
from strata.nn.initializers import get_initializer
from strata.nn.layers import _as_tensor
from strata.nn.module import Module
from strata.nn.recurrent import as_batch
from strata.nn.sequential import layer_from_spec, layer_spec
from strata.tensor import Tensor


def token_ids(x, where: str, vocab_size: int) -> np.ndarray:
    """Integer token ids in [0, vocab_size) from a Tensor, array or (equal-length) lists;
    whole-number floats (such as the zeros ``build`` feeds) are accepted."""
    ids = as_batch(x, where).data
    if ids.dtype.kind == "f" and bool((ids == ids.round()).all()):
        ids = ids.astype(np.intp)
    if ids.dtype.kind not in "iu":
        raise TypeError(f"{where}: expected integer token ids, got dtype {ids.dtype}")
    if ids.size and (ids.min() < 0 or ids.max() >= vocab_size):
        bad = ids[(ids < 0) | (ids >= vocab_size)]
        raise ValueError(f"{where}: token ids must lie in [0, {vocab_size}) (the vocabulary "
                         f"size), got {bad.size} outside, e.g. {bad.reshape(-1)[0].item()}; "
                         f"map unknown "
                         f"tokens to <UNK> when encoding (strata.text.Vocabulary)")
    return ids


class Embedding(Module):
    """Word embeddings: token ids (m, T_x) -> vectors (m, T_x, output_dim), rows of E.

    E has shape (input_dim, output_dim), the vocabulary size by the embedding size: the
    course's E (n_e, vocab) transposed, so e_j = E o_j is row j. Its gradient adds the
    gradients of every position where a token occurs.
    """

    supports_masking = True

    def __init__(self, input_dim: int, output_dim: int, embeddings_initializer="glorot"):
        for name, value in (("input_dim", input_dim), ("output_dim", output_dim)):
            if not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"Embedding: expected a positive {name}, got {value!r}")
        self.input_dim, self.output_dim = int(input_dim), int(output_dim)
        self.config = {"input_dim": self.input_dim, "output_dim": self.output_dim,
                       "embeddings_initializer": embeddings_initializer}
        self.initializer = get_initializer(embeddings_initializer)
        self.E = None

    def build(self) -> None:
        """Create E (input_dim, output_dim); done on the first call, like the other layers
        (a model without parameters yet is one that ``fit`` still has to build)."""
        self.E = Tensor(self.initializer((self.input_dim, self.output_dim)), requires_grad=True)

    def forward(self, x, mask=None):
        name = f"Embedding({self.input_dim}, {self.output_dim})"
        ids = token_ids(x, name, self.input_dim)
        if self.E is None:
            self.build()
        return ops.embedding(ids, self.E)

    def extra_repr(self) -> str:
        return f"{self.input_dim}, {self.output_dim}"


class OneHot(Module):
    """Token ids (m, T_x) -> one-hot vectors (m, T_x, depth): the course's x<t> for the
    character models (its Wax then acts as an embedding). No parameters, no gradient."""

    supports_masking = True

    def __init__(self, depth: int):
        if not isinstance(depth, (int, np.integer)) or depth < 1:
            raise ValueError(f"OneHot: expected a positive depth, got {depth!r}")
        self.depth = int(depth)
        self.config = {"depth": self.depth}

    def forward(self, x, mask=None):
        ids = token_ids(x, f"OneHot({self.depth})", self.depth)
        xp = backend.array_module(ids)
        out = xp.zeros(ids.shape + (self.depth,), backend.get_default_dtype())
        xp.put_along_axis(out, ids[..., None], 1, axis=-1)
        return Tensor._wrap(out, False)

    def extra_repr(self) -> str:
        return str(self.depth)


class TimeDistributed(Module):
    """Applies ``layer`` at every time step: (m, T_x, ...) is seen as (m * T_x, ...), the
    layer applied once (one GEMM for a Dense), and the result reshaped to (m, T_x, ...)."""

    supports_masking = True

    def __init__(self, layer: Module):
        if not isinstance(layer, Module):
            raise TypeError(f"TimeDistributed: expected a layer, got {type(layer).__name__}")
        self.layer = layer

    def forward(self, x, mask=None):
        x = _as_tensor(x)
        if x.ndim < 3:
            raise ShapeError(f"TimeDistributed: expected input of shape (m, T_x, ...), got "
                             f"{x.shape}")
        m, T = x.shape[:2]
        out = self.layer(ops.reshape(x, (m * T, *x.shape[2:])))
        return ops.reshape(out, (m, T, *out.shape[1:]))

    def get_config(self) -> dict:
        return {"layer": layer_spec(self.layer)}

    @classmethod
    def from_config(cls, config: dict) -> TimeDistributed:
        return cls(layer_from_spec(config["layer"]))

    def extra_repr(self) -> str:
        return repr(self.layer)

