"""Recurrent layers of course 5: SimpleRNN, GRU, LSTM and the Bidirectional wrapper.

Inputs are batch first, (m, T_x, n_x). Each layer runs one fused op over the whole sequence
(strata/ops/recurrent.py) and carries the course's parameter names, rows in place of columns:

- SimpleRNN: Wax (n_x, n_a), Waa (n_a, n_a), ba (n_a,).
- LSTM: Wf, Wu (the assignment's Wi), Wc, Wo of shape (n_a + n_x, n_a) and bf, bu, bc, bo;
  a gate's first n_a rows multiply a<t-1>, the others x<t> (the course's W [a<t-1>; x<t>]).
- GRU: Wu, Wr, Wc (n_a + n_x, n_a) and bu, br, bc; with ``reset_after=True`` (PyTorch's
  relevance-gate placement) also bc_rec, the bias of the recurrent part of the candidate.

The a<t-1> rows start orthogonal (``recurrent_initializer``), the x<t> rows from
``kernel_initializer``. Options, as in Keras: ``return_sequences`` (every a<t>, for
many-to-many and stacked layers, else only the last: many-to-one), ``return_state`` (also the
final states, for an encoder), and per call ``initial_state`` (a decoder's a<0>, or (a<0>,
c<0>) for an LSTM) and ``mask`` (m, T_x) of 0/1: a masked step keeps the previous state.
"""

from __future__ import annotations

import numpy as np

from strata import ops
from strata.autograd import ShapeError
from strata.nn.initializers import get_initializer
from strata.nn.layers import _as_tensor
from strata.nn.module import Module
from strata.nn.sequential import layer_from_spec, layer_spec
from strata.ops.recurrent import check_mask
from strata.tensor import Tensor


def as_batch(x, where: str):
    """x as a Tensor; a list of sequences of different lengths is refused with a hint."""
    if isinstance(x, Tensor):
        return x
    if isinstance(x, (list, tuple)) and x and all(hasattr(s, "__len__") for s in x):
        lengths = [len(s) for s in x]
        if len(set(lengths)) > 1:
            raise ValueError(f"{where}: got {len(x)} sequences of different lengths "
                             f"{tuple(lengths[:6])}{'...' if len(x) > 6 else ''}; pad them to "
                             f"one length (strata.text.pad_sequences) and pass mask=")
    return Tensor(x if hasattr(x, "dtype") and hasattr(x, "shape") else np.asarray(x))


class Recurrent(Module):
    """Base of SimpleRNN, GRU and LSTM: options, input checks, initial and final states."""

    supports_masking = True
    #: Number of states: 1 (a) or 2 for the LSTM (a, c).
    n_states = 1

    def __init__(self, units: int, return_sequences: bool = False, return_state: bool = False,
                 reverse: bool = False, kernel_initializer="glorot",
                 recurrent_initializer="orthogonal", bias_initializer="zeros"):
        if not isinstance(units, (int, np.integer)) or isinstance(units, bool) or units < 1:
            raise ValueError(f"{type(self).__name__}: expected a positive number of units, "
                             f"got {units!r}")
        self.units = int(units)
        self.return_sequences, self.return_state = bool(return_sequences), bool(return_state)
        self.reverse = bool(reverse)
        self.config = {"units": self.units, "return_sequences": self.return_sequences,
                       "return_state": self.return_state, "reverse": self.reverse,
                       "kernel_initializer": kernel_initializer,
                       "recurrent_initializer": recurrent_initializer,
                       "bias_initializer": bias_initializer}
        self.kernel_initializer = get_initializer(kernel_initializer)
        self.recurrent_initializer = get_initializer(recurrent_initializer)
        self.bias_initializer = get_initializer(bias_initializer)
        self.n_x = None

    @property
    def name(self) -> str:
        """The layer as named in error messages, e.g. LSTM(64)."""
        return f"{type(self).__name__}({self.units})"

    def _built(self, n_x) -> int:
        """Check and record n_x, marking the layer built: the first call then keeps the weights
        that ``build`` made (and any loaded into them since) instead of drawing new ones."""
        if not isinstance(n_x, (int, np.integer)) or isinstance(n_x, bool) or n_x < 1:
            raise ValueError(f"{self.name}.build: expected the number of input features n_x "
                             f"(a positive int), got {n_x!r}")
        self.n_x = int(n_x)
        return self.n_x

    def _param(self, array) -> Tensor:
        return Tensor(array, requires_grad=True)

    def _gate_weight(self, n_x: int) -> Tensor:
        """A gate's W (n_a + n_x, n_a): recurrent rows first, then input rows."""
        n = self.units
        return self._param(np.concatenate([self.recurrent_initializer((n, n)),
                                           self.kernel_initializer((n_x, n))]))

    def _bias(self) -> Tensor:
        return self._param(self.bias_initializer((self.units,)))

    def forward(self, x, mask=None, initial_state=None):
        seq, states = self.run(x, mask, initial_state)
        out = seq if self.return_sequences else states[0]
        return (out, *states) if self.return_state else out

    def run(self, x, mask=None, initial_state=None):
        """(every a<t> (m, T_x, n_a), final states): whatever the output options say."""
        x = self._input(x)
        mask = check_mask(self.name, mask, x.shape[0], x.shape[1])
        seq, extra = self._sequence(x, self._initial(initial_state), mask)
        return seq, (seq[:, 0] if self.reverse else seq[:, -1], *extra)

    def _input(self, x) -> Tensor:
        x = as_batch(x, self.name)
        if x.ndim != 3:
            raise ShapeError(f"{self.name}: expected input of shape (m, T_x, n_x), got "
                             f"{x.shape}")
        if x.dtype.kind in "iub":
            raise TypeError(f"{self.name}: got integer input {x.shape}; token ids go through "
                            f"an Embedding or OneHot layer first")
        if self.n_x is None:
            self.build(x.shape[2])
        elif x.shape[2] != self.n_x:
            raise ShapeError(f"{self.name}: expected input of shape (m, T_x, {self.n_x}), got "
                             f"{x.shape}")
        dtype = self.parameters()[0].dtype
        return x if x.dtype == dtype else ops.astype(x, dtype)

    def _initial(self, initial_state) -> tuple:
        if initial_state is None:
            return (None,) * self.n_states
        states = (initial_state,) if self.n_states == 1 and not isinstance(
            initial_state, (list, tuple)) else tuple(initial_state)
        if len(states) != self.n_states:
            raise ValueError(f"{self.name}: expected initial_state "
                             f"{'(a0, c0)' if self.n_states == 2 else 'a0'}, got {len(states)} "
                             f"arrays")
        dtype = self.parameters()[0].dtype
        return tuple(_as_tensor(s) if _as_tensor(s).dtype == dtype else
                     ops.astype(_as_tensor(s), dtype) for s in states)

    def _dict(self) -> dict:
        return {name: getattr(self, name) for name in self.parameter_names}

    def extra_repr(self) -> str:
        flags = [k for k in ("return_sequences", "return_state", "reverse") if getattr(self, k)]
        return ", ".join([str(self.units)] + [f"{k}=True" for k in flags])


class SimpleRNN(Recurrent):
    """The course's basic RNN: a<t> = g(x<t> Wax + a<t-1> Waa + ba), g = tanh (or relu)."""

    parameter_names = ("Wax", "Waa", "ba")

    def __init__(self, units: int, activation: str = "tanh", **options):
        if activation not in ("tanh", "relu"):
            raise ValueError(f"SimpleRNN: expected activation 'tanh' or 'relu', got "
                             f"{activation!r}")
        super().__init__(units, **options)
        self.activation = activation
        self.config["activation"] = activation
        self.Wax = self.Waa = self.ba = None

    def build(self, n_x: int) -> None:
        """Create Wax (n_x, n_a), Waa (n_a, n_a) and ba (n_a,)."""
        n_x = self._built(n_x)
        self.Wax = self._param(self.kernel_initializer((n_x, self.units)))
        self.Waa = self._param(self.recurrent_initializer((self.units, self.units)))
        self.ba = self._bias()

    def _sequence(self, x, states, mask):
        return ops.rnn(x, states[0], self._dict(), mask=mask, activation=self.activation,
                       reverse=self.reverse), ()


class LSTM(Recurrent):
    """Long short-term memory: forget, update and output gates and the memory cell c<t>.
    ``unit_forget_bias`` starts bf at 1 (Keras's default), so the cell remembers at first."""

    parameter_names = ("Wf", "bf", "Wu", "bu", "Wc", "bc", "Wo", "bo")
    n_states = 2

    def __init__(self, units: int, unit_forget_bias: bool = True, **options):
        super().__init__(units, **options)
        self.unit_forget_bias = bool(unit_forget_bias)
        self.config["unit_forget_bias"] = self.unit_forget_bias
        for name in self.parameter_names:
            setattr(self, name, None)

    def build(self, n_x: int) -> None:
        """Create each gate's W (n_a + n_x, n_a) and b (n_a,)."""
        n_x = self._built(n_x)
        for gate in "fuco":
            setattr(self, "W" + gate, self._gate_weight(n_x))
            setattr(self, "b" + gate, self._bias())
        if self.unit_forget_bias:
            self.bf.data += 1

    def _sequence(self, x, states, mask):
        a, c_last = ops.lstm(x, states[0], self._dict(), c0=states[1], mask=mask,
                             reverse=self.reverse)
        return a, (c_last,)


class GRU(Recurrent):
    """The course's full GRU (update gate Gu, relevance gate Gr applied to c<t-1> before the
    matmul); ``reset_after=True`` applies Gr after it, as PyTorch and cuDNN do."""

    def __init__(self, units: int, reset_after: bool = False, **options):
        super().__init__(units, **options)
        self.reset_after = bool(reset_after)
        self.config["reset_after"] = self.reset_after
        self.parameter_names = ("Wu", "bu", "Wr", "br", "Wc", "bc") + (
            ("bc_rec",) if reset_after else ())
        for name in self.parameter_names:
            setattr(self, name, None)

    def build(self, n_x: int) -> None:
        """Create each gate's W (n_a + n_x, n_a) and b (n_a,) (and bc_rec if reset_after)."""
        n_x = self._built(n_x)
        for gate in "urc":
            setattr(self, "W" + gate, self._gate_weight(n_x))
            setattr(self, "b" + gate, self._bias())
        if self.reset_after:
            self.bc_rec = self._bias()

    def _sequence(self, x, states, mask):
        return ops.gru(x, states[0], self._dict(), mask=mask, reset_after=self.reset_after,
                       reverse=self.reverse), ()


MERGE_MODES = ("concat", "sum", "mul", "ave")


class Bidirectional(Module):
    """Runs a recurrent layer forward and a copy of it backward in time and merges their
    outputs at each step (``merge_mode`` concat, sum, mul or ave): a<t> = [a->, a<-]. With
    ``return_state`` the forward layer's final states come first, then the backward's."""

    supports_masking = True

    def __init__(self, layer: Recurrent, merge_mode: str = "concat"):
        if not isinstance(layer, Recurrent):
            raise TypeError(f"Bidirectional: expected a SimpleRNN, GRU or LSTM layer, got "
                            f"{type(layer).__name__}")
        if merge_mode not in MERGE_MODES:
            raise ValueError(f"Bidirectional: expected merge_mode among {MERGE_MODES}, got "
                             f"{merge_mode!r}")
        self.merge_mode = merge_mode
        spec = layer_spec(layer)
        self.forward_layer = layer_from_spec({**spec, "config": {**spec["config"],
                                                                 "reverse": False}})
        self.backward_layer = layer_from_spec({**spec, "config": {**spec["config"],
                                                                  "reverse": True}})

    def forward(self, x, mask=None, initial_state=None):
        fwd, bwd = self.forward_layer, self.backward_layer
        states = (None, None) if initial_state is None else tuple(initial_state)
        if len(states) != 2:
            raise ValueError("Bidirectional: expected initial_state (forward's, backward's)")
        seq_f, states_f = fwd.run(x, mask, states[0])
        seq_b, states_b = bwd.run(x, mask, states[1])
        out = (self._merge(seq_f, seq_b) if fwd.return_sequences
               else self._merge(states_f[0], states_b[0]))
        return (out, *states_f, *states_b) if fwd.return_state else out

    def _merge(self, a, b):
        if self.merge_mode == "concat":
            return ops.concatenate([a, b], axis=-1)
        if self.merge_mode == "sum":
            return a + b
        return a * b if self.merge_mode == "mul" else (a + b) * 0.5

    def get_config(self) -> dict:
        spec = layer_spec(self.forward_layer)
        return {"layer": spec, "merge_mode": self.merge_mode}

    @classmethod
    def from_config(cls, config: dict) -> Bidirectional:
        return cls(layer_from_spec(config["layer"]), config["merge_mode"])
