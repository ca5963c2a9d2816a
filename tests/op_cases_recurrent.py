"""Registry cases of the recurrent ops: rnn, lstm, gru (both relevance-gate placements), their
cells and the embedding lookup, with masks, given initial states and reversed time.

The torch side is the course's equations written step by step with torch ops (an independent
implementation, differentiated by torch's autograd); tests/test_recurrent_torch.py compares the
layers with torch's own nn.RNN, nn.GRU and nn.LSTM. Outputs that come in pairs (the LSTM's a and
c<T>) are compared as one array: a (m, T, n) with c<T> appended as step T + 1.
"""

from __future__ import annotations

import numpy as np
from op_cases_common import Case, normal

import strata

M, T, NX, NA = 2, 4, 3, 5
#: Right padding: the second sequence has 2 real steps.
MASK = np.array([[1, 1, 1, 1], [1, 1, 0, 0]], dtype=bool)
IDS = np.array([[0, 3, 3, 1], [5, 0, 2, 3]])


def _weights(names, n_x=NX, n_a=NA, scale=0.6):
    """Sampled W (n_a + n_x, n_a) and b (n_a,) per name (Wax, Waa as the simple RNN has them)."""
    shapes = {"Wax": (n_x, n_a), "Waa": (n_a, n_a)}
    return tuple(normal(*shapes.get(k, (n_a + n_x, n_a) if k[0] == "W" else (n_a,))) * scale
                 for k in names)


def _torch_loop(step, x, states, mask, reverse):
    """Run ``step(x_t, *states) -> states`` over time like the ops: masked steps keep the
    state, reversed runs go from the last step, outputs stay aligned with the inputs."""
    import torch

    outs = [None] * x.shape[1]
    order = range(x.shape[1] - 1, -1, -1) if reverse else range(x.shape[1])
    for t in order:
        new = step(x[:, t], *states)
        if mask is not None:
            keep = torch.from_numpy(mask[:, t, None])
            new = tuple(torch.where(keep, n, s) for n, s in zip(new, states, strict=True))
        states = new
        outs[t] = states[0]
    return torch.stack(outs, dim=1), states


def _split(W, n_a=NA):
    return W[:n_a], W[n_a:]


def _gate(x, a, W, b):
    Wa, Wx = _split(W)
    return x @ Wx + a @ Wa + b


def _torch_rnn(x, a0, Wax, Waa, ba, mask=None, relu=False, reverse=False):
    import torch

    g = torch.relu if relu else torch.tanh
    return _torch_loop(lambda xt, a: (g(xt @ Wax + a @ Waa + ba),), x, (a0,), mask, reverse)[0]


def _torch_lstm(x, a0, c0, Wf, bf, Wu, bu, Wc, bc, Wo, bo, mask=None, reverse=False):
    import torch

    def step(xt, a, c):
        f, u = torch.sigmoid(_gate(xt, a, Wf, bf)), torch.sigmoid(_gate(xt, a, Wu, bu))
        cc, o = torch.tanh(_gate(xt, a, Wc, bc)), torch.sigmoid(_gate(xt, a, Wo, bo))
        c = f * c + u * cc
        return o * torch.tanh(c), c

    a, (_, c_last) = _torch_loop(step, x, (a0, c0), mask, reverse)
    return torch.cat([a, c_last[:, None]], dim=1)


def _torch_gru(x, a0, Wu, bu, Wr, br, Wc, bc, bc_rec=None, mask=None, reverse=False):
    import torch

    def step(xt, c):
        u, r = torch.sigmoid(_gate(xt, c, Wu, bu)), torch.sigmoid(_gate(xt, c, Wr, br))
        Wc_c, Wc_x = _split(Wc)
        if bc_rec is None:  # the course's: r applied to c<t-1> before the matmul
            cc = torch.tanh(xt @ Wc_x + (r * c) @ Wc_c + bc)
        else:  # PyTorch's: r applied after it
            cc = torch.tanh(xt @ Wc_x + bc + r * (c @ Wc_c + bc_rec))
        return (u * cc + (1 - u) * c,)

    return _torch_loop(step, x, (a0,), mask, reverse)[0]


def _params(names, tensors):
    return dict(zip(names, tensors, strict=True))


def _lstm_pair(a, c):
    return strata.concatenate([a, strata.reshape(c, (c.shape[0], 1, c.shape[1]))], axis=1)


def _rnn_cases() -> list[Case]:
    names = strata.ops.recurrent.RNN_PARAMETERS

    def case(name, mask=None, relu=False, reverse=False):
        act = "relu" if relu else "tanh"
        return Case("rnn", name,
                    lambda x, a0, *w: strata.rnn(x, a0, _params(names, w), mask=mask,
                                                 activation=act, reverse=reverse),
                    lambda x, a0, *w: _torch_rnn(x, a0, *w, mask=mask, relu=relu,
                                                 reverse=reverse),
                    (normal(M, T, NX), normal(M, NA), *_weights(names)))

    return [case("tanh"), case("masked", mask=MASK), case("relu_reversed", relu=True,
                                                          reverse=True),
            Case("rnn_cell", "step",
                 lambda x, a, *w: strata.rnn_cell(x, a, _params(names, w)),
                 lambda x, a, *w: _torch_rnn(x[:, None], a, *w)[:, 0],
                 (normal(M, NX), normal(M, NA), *_weights(names)))]


def _lstm_cases() -> list[Case]:
    names = strata.ops.recurrent.LSTM_PARAMETERS

    def case(name, mask=None, reverse=False):
        return Case("lstm", name,
                    lambda x, a0, c0, *w: _lstm_pair(*strata.lstm(
                        x, a0, _params(names, w), c0=c0, mask=mask, reverse=reverse)),
                    lambda x, a0, c0, *w: _torch_lstm(x, a0, c0, *w, mask=mask,
                                                      reverse=reverse),
                    (normal(M, T, NX), normal(M, NA), normal(M, NA), *_weights(names)))

    def cell(x, a, c, *w):
        return strata.concatenate(strata.lstm_cell(x, a, c, _params(names, w)), axis=1)

    def torch_cell(x, a, c, *w):
        import torch

        out = _torch_lstm(x[:, None], a, c, *w)
        return torch.cat([out[:, 0], out[:, 1]], dim=1)

    return [case("sequence"), case("masked", mask=MASK), case("reversed", reverse=True),
            Case("lstm_cell", "step", cell, torch_cell,
                 (normal(M, NX), normal(M, NA), normal(M, NA), *_weights(names)))]


def _gru_cases() -> list[Case]:
    names = strata.ops.recurrent.GRU_PARAMETERS

    def case(name, reset_after=False, mask=None, reverse=False):
        keys = names + (("bc_rec",) if reset_after else ())
        return Case("gru", name,
                    lambda x, a0, *w: strata.gru(x, a0, _params(keys, w), mask=mask,
                                                 reset_after=reset_after, reverse=reverse),
                    lambda x, a0, *w: _torch_gru(x, a0, *w, mask=mask, reverse=reverse)
                    if not reset_after else _torch_gru(x, a0, *w[:6], bc_rec=w[6], mask=mask,
                                                       reverse=reverse),
                    (normal(M, T, NX), normal(M, NA), *_weights(keys)))

    return [case("course"), case("course_masked_reversed", mask=MASK, reverse=True),
            case("reset_after", reset_after=True),
            case("reset_after_masked", reset_after=True, mask=MASK),
            Case("gru_cell", "step",
                 lambda x, c, *w: strata.gru_cell(x, c, _params(names, w)),
                 lambda x, c, *w: _torch_gru(x[:, None], c, *w)[:, 0],
                 (normal(M, NX), normal(M, NA), *_weights(names)))]


def _torch_embedding(E):
    import torch

    return torch.nn.functional.embedding(torch.from_numpy(IDS), E)


def recurrent_cases() -> list[Case]:
    """All cases of this module."""
    return _rnn_cases() + _lstm_cases() + _gru_cases() + [
        Case("embedding", "repeated_ids", lambda E: strata.embedding(IDS, E), _torch_embedding,
             (normal(6, 4),)),
    ]
