"""Recurrent ops of course 5 on whole sequences: the simple RNN, the LSTM, the GRU, their
one-step cells, and the embedding lookup.

Sequences are batch first: x (m, T_x, n_x), hidden states a (m, T_x, n_a). Weights take the
course's names in a ``parameters`` dict, rows in place of columns (CONVENTIONS.md): a gate's
W is the course's W = [W_a | W_x] transposed, shape (n_a + n_x, n_a), its first n_a rows
multiply a<t-1> and the rest x<t>, so [a<t-1>, x<t>] W + b is the course's W [a<t-1>; x<t>] + b.

- ``rnn``: a<t> = tanh(x<t> Wax + a<t-1> Waa + ba); Wax (n_x, n_a), Waa (n_a, n_a), ba (n_a,).
- ``lstm``: forget, update (the week-1 assignment's Wi, bi), candidate and output gates Wf, Wu,
  Wc, Wo with biases bf, bu, bc, bo: c<t> = Gf * c<t-1> + Gu * c~<t>, a<t> = Go * tanh(c<t>).
- ``gru``: the course's full GRU, update Wu, relevance Wr, candidate Wc:
  c~<t> = tanh([Gr * c<t-1>, x<t>] Wc + bc), c<t> = Gu * c~<t> + (1 - Gu) * c<t-1> = a<t>.
  ``reset_after=True`` is PyTorch's placement (needs a bias "bc_rec"):
  c~<t> = tanh(x<t> Wc_x + bc + Gr * (c<t-1> Wc_c + bc_rec)).

Masks: ``mask`` (m, T_x) of 0/1 marks real steps. A masked step keeps the previous state
(a<t> = a<t-1> and c<t> = c<t-1>, as Keras does) and passes gradients straight through, so
with padding at the end the last output is each sequence's state after its last real step.
``reverse=True`` runs from t = T_x down to 1 (the backward half of a bidirectional layer);
outputs stay aligned with the inputs, and the "last" state is the one after x<1>.
"""

from __future__ import annotations

import numpy as np

from strata import backend
from strata.autograd import ShapeError
from strata.ops import bptt
from strata.ops.common import lift
from strata.ops.shape import reshape
from strata.tensor import Tensor

RNN_PARAMETERS = ("Wax", "Waa", "ba")
LSTM_PARAMETERS = ("Wf", "bf", "Wu", "bu", "Wc", "bc", "Wo", "bo")
GRU_PARAMETERS = ("Wu", "bu", "Wr", "br", "Wc", "bc")


def _sequence(op: str, x) -> Tensor:
    x = lift(x)
    if x.ndim != 3 or 0 in x.shape:
        raise ShapeError(f"{op}: expected x of shape (m, T_x, n_x) with m, T_x >= 1, got "
                         f"{x.shape}")
    if not backend.is_float(x.dtype):
        raise TypeError(f"{op}: expected floating x, got dtype {x.dtype} (token ids go through "
                        f"an embedding or a one-hot encoding first)")
    return x


def _weights(op: str, parameters, names, x: Tensor) -> tuple[list[Tensor], int]:
    """The parameters in ``names`` order, checked against x; returns them and n_a."""
    missing = [k for k in names if k not in parameters]
    if missing:
        raise KeyError(f"{op}: parameters lack {missing}; expected {list(names)}")
    ws = [lift(parameters[k]) for k in names]
    bias = ws[2] if op.startswith("rnn") else ws[1]
    n_a, n_x = (bias.shape[0] if bias.ndim == 1 else -1), x.shape[2]
    for name, w in zip(names, ws, strict=True):
        expected = _expected_shape(name, n_a, n_x)
        if w.shape != expected:
            raise ShapeError(f"{op}: expected {name} of shape {expected} for x {x.shape} and "
                             f"n_a = {n_a}, got {w.shape}")
        if w.dtype != x.dtype:
            raise TypeError(f"{op}: {name} is {w.dtype} but x is {x.dtype}; use one dtype")
    return ws, n_a


def _expected_shape(name: str, n_a: int, n_x: int) -> tuple:
    if name.startswith("b"):
        return (n_a,)
    return {"Wax": (n_x, n_a), "Waa": (n_a, n_a)}.get(name, (n_a + n_x, n_a))


def _state(op: str, name: str, a, x: Tensor, n_a: int) -> Tensor:
    shape = (x.shape[0], n_a)
    if a is None:
        return Tensor._wrap(backend.array_module(x.data).zeros(shape, x.dtype), False)
    a = lift(a)
    if a.shape != shape:
        raise ShapeError(f"{op}: expected {name} of shape (m, n_a) = {shape}, got {a.shape}")
    if a.dtype != x.dtype:
        raise TypeError(f"{op}: {name} is {a.dtype} but x is {x.dtype}; use one dtype")
    return a


def check_mask(op: str, mask, m: int, T: int, like=None) -> np.ndarray | None:
    """A (m, T_x) mask of 0/1 (or booleans) as a boolean array, on the device of the array
    ``like`` (the sequences') when given; None stays None."""
    if mask is None:
        return None
    xp = backend.array_module(like)
    mask = xp.asarray(mask.data if isinstance(mask, Tensor) else mask)
    if mask.shape != (m, T):
        raise ShapeError(f"{op}: expected a mask of shape (m, T_x) = {(m, T)}, got {mask.shape}")
    if mask.dtype != bool and not ((mask == 0) | (mask == 1)).all():
        raise ValueError(f"{op}: a mask holds 0 (padding) or 1 (a real step), got values "
                         f"{np.unique(backend.to_numpy(mask))[:5]}")
    return mask.astype(bool)


def rnn(x, a0, parameters, mask=None, activation: str = "tanh", reverse: bool = False):
    """The course's rnn_forward: every hidden state a (m, T_x, n_a) of
    a<t> = g(x<t> Wax + a<t-1> Waa + ba), g = tanh (or "relu"); a0 None means zeros."""
    x = _sequence("rnn", x)
    if activation not in ("tanh", "relu"):
        raise ValueError(f"rnn: expected activation 'tanh' or 'relu', got {activation!r}")
    ws, n_a = _weights("rnn", parameters, RNN_PARAMETERS, x)
    a0 = _state("rnn", "a0", a0, x, n_a)
    mask = check_mask("rnn", mask, *x.shape[:2], like=x.data)
    return bptt.RNN.apply(x, a0, *ws, mask=mask, reverse=reverse, relu=activation == "relu")


def lstm(x, a0, parameters, c0=None, mask=None, reverse: bool = False):
    """The course's lstm_forward: (a, c_last), every hidden state a (m, T_x, n_a) and the last
    memory cell c<T_x> (m, n_a); a0 and c0 None mean zeros. Gradients reach both outputs."""
    x = _sequence("lstm", x)
    ws, n_a = _weights("lstm", parameters, LSTM_PARAMETERS, x)
    a0, c0 = _state("lstm", "a0", a0, x, n_a), _state("lstm", "c0", c0, x, n_a)
    mask = check_mask("lstm", mask, *x.shape[:2], like=x.data)
    sink: list = []  # receives the LSTM Function, recorded in the graph or not
    a = bptt.LSTM.apply(x, a0, c0, *ws, mask=mask, reverse=reverse, sink=sink)
    return a, bptt.FinalCell.apply(a, owner=sink[0])


def gru(x, a0, parameters, mask=None, reset_after: bool = False, reverse: bool = False):
    """The course's full GRU over a sequence: every state c<t> = a<t>, shape (m, T_x, n_a);
    ``reset_after=True``: PyTorch's placement of the relevance gate (needs "bc_rec")."""
    x = _sequence("gru", x)
    names = GRU_PARAMETERS + (("bc_rec",) if reset_after else ())
    ws, n_a = _weights("gru", parameters, names, x)
    a0 = _state("gru", "a0", a0, x, n_a)
    mask = check_mask("gru", mask, *x.shape[:2], like=x.data)
    fn = bptt.GRUResetAfter if reset_after else bptt.GRU
    return fn.apply(x, a0, *ws, mask=mask, reverse=reverse)


def _step_input(op: str, xt) -> Tensor:
    xt = lift(xt)
    if xt.ndim != 2:
        raise ShapeError(f"{op}: expected xt of shape (m, n_x), got {xt.shape}")
    return reshape(xt, (xt.shape[0], 1, xt.shape[1]))


def rnn_cell(xt, a_prev, parameters, activation: str = "tanh"):
    """The course's rnn_cell_forward without the output: a_next (m, n_a) from xt (m, n_x)."""
    a = rnn(_step_input("rnn_cell", xt), a_prev, parameters, activation=activation)
    return reshape(a, (a.shape[0], a.shape[2]))


def lstm_cell(xt, a_prev, c_prev, parameters):
    """The course's lstm_cell_forward without the output: (a_next, c_next), each (m, n_a)."""
    a, c_next = lstm(_step_input("lstm_cell", xt), a_prev, parameters, c0=c_prev)
    return reshape(a, (a.shape[0], a.shape[2])), c_next


def gru_cell(xt, c_prev, parameters, reset_after: bool = False):
    """One step of the course's full GRU: c_next (m, n_a) from xt (m, n_x) and c_prev."""
    c = gru(_step_input("gru_cell", xt), c_prev, parameters, reset_after=reset_after)
    return reshape(c, (c.shape[0], c.shape[2]))


def embedding(ids, E):
    """Rows of the embedding matrix E (vocab_size, n_e) for integer ids of any shape: the
    course's E o_j as a lookup, e.g. ids (m, T_x) -> (m, T_x, n_e)."""
    E = lift(E)
    # Ids given as NumPy arrays or lists go to E's device.
    ids = backend.array_module(E.data).asarray(ids.data if isinstance(ids, Tensor) else ids)
    if E.ndim != 2:
        raise ShapeError(f"embedding: expected E of shape (vocab_size, n_e), got {E.shape}")
    if ids.dtype.kind not in "iu":
        raise TypeError(f"embedding: expected integer token ids, got dtype {ids.dtype}")
    if ids.size and (ids.min() < 0 or ids.max() >= E.shape[0]):
        bad = ids[(ids < 0) | (ids >= E.shape[0])]
        raise ValueError(f"embedding: token ids must lie in [0, {E.shape[0]}) for a vocabulary "
                         f"of {E.shape[0]}, got {bad.size} outside (e.g. "
                         f"{bad.reshape(-1)[0].item()})")
    return bptt.Embedding.apply(E, ids=ids.astype(np.intp, copy=False))
