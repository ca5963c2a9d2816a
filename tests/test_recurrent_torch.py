"""Recurrent layers against PyTorch's nn.RNN, nn.GRU, nn.LSTM and their cells, in float64:
torch's weights mapped into ours, the same inputs and upstream gradients, equal outputs, final
states and gradients (inputs, weights, biases). Padded batches go to torch as packed sequences.

The mapping (torch keeps W as (out, in) blocks of gates; ours are (in, out), rows for a<t-1>
first, then x<t>):
- RNN: Wax = W_ih^T, Waa = W_hh^T, ba = b_ih + b_hh.
- LSTM, torch gate order i, f, g, o: Wu = [W_hi; W_ii]^T (torch's input gate is the course's
  update gate), Wf = [W_hf; W_if]^T, Wc = [W_hg; W_ig]^T, Wo = [W_ho; W_io]^T, each b the sum of
  torch's two biases.
- GRU, torch order r, z, n and h' = (1 - z) n + z h, the course's c = u c~ + (1 - u) c<t-1>, so
  u = 1 - z = sigmoid(-z's pre-activation): Wu = -[W_hz; W_iz]^T, bu = -(b_iz + b_hz);
  Wr = [W_hr; W_ir]^T, br = b_ir + b_hr; Wc = [W_hn; W_in]^T, bc = b_in and bc_rec = b_hn, with
  reset_after=True (torch applies r to W_hn h + b_hn, after the matmul).
"""

from __future__ import annotations

import numpy as np
import pytest

import strata
import strata.nn as nn

torch = pytest.importorskip("torch", reason="torch not installed: PyTorch comparisons skipped "
                                            "(pip install torch==2.13.0)")

TOL = {"rtol": 1e-9, "atol": 1e-11}
# Our gate -> (torch block index, sign), per cell kind.
GATES = {"lstm": {"u": (0, 1), "f": (1, 1), "c": (2, 1), "o": (3, 1)},
         "gru": {"r": (0, 1), "u": (1, -1), "c": (2, 1)}}


def _block(p, k, n):
    return p.detach().numpy()[k * n:(k + 1) * n]


def _mapped(kind, w_ih, w_hh, b_ih, b_hh, n, grad=False):
    """Our parameters (or their gradients) from torch's tensors of one layer and direction."""
    get = (lambda p: p.grad) if grad else (lambda p: p)
    w_ih, w_hh, b_ih, b_hh = (get(p) for p in (w_ih, w_hh, b_ih, b_hh))
    if kind == "rnn":
        bias = b_ih.detach().numpy() if grad else (b_ih + b_hh).detach().numpy()
        return {"Wax": w_ih.detach().numpy().T, "Waa": w_hh.detach().numpy().T, "ba": bias}
    out = {}
    for gate, (k, sign) in GATES[kind].items():
        W = np.concatenate([_block(w_hh, k, n).T, _block(w_ih, k, n).T])
        b = _block(b_ih, k, n) + (0 if grad or (kind == "gru" and gate == "c")
                                  else _block(b_hh, k, n))
        out["W" + gate], out["b" + gate] = sign * W, sign * b
    if kind == "gru":
        out["bc_rec"] = _block(b_hh, 2, n)
    return out


def _torch_params(module, layer, reverse=False):
    suffix = f"_l{layer}" + ("_reverse" if reverse else "")
    return [getattr(module, f"{name}{suffix}") for name in
            ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]


def _ours(kind, n, **options):
    extra = {"reset_after": True} if kind == "gru" else {}
    extra = {"unit_forget_bias": False} if kind == "lstm" else extra
    cls = {"rnn": nn.SimpleRNN, "gru": nn.GRU, "lstm": nn.LSTM}[kind]
    return cls(n, return_sequences=True, return_state=True, **extra, **options)


def _load(layer, kind, torch_params, n_x):
    layer.build(n_x)
    layer.n_x = n_x
    for name, value in _mapped(kind, *torch_params, layer.units).items():
        getattr(layer, name).data = np.array(value)


def _check_grads(layer, kind, torch_params):
    expected = _mapped(kind, *torch_params, layer.units, grad=True)
    for name, value in expected.items():
        np.testing.assert_allclose(getattr(layer, name).grad, value, **TOL, err_msg=name)


def _torch_run(module, x, lengths):
    xt = torch.from_numpy(x).requires_grad_()
    if lengths is None:
        out, state = module(xt)
        return xt, out, state
    packed = torch.nn.utils.rnn.pack_padded_sequence(xt, lengths, batch_first=True,
                                                     enforce_sorted=False)
    out, state = module(packed)
    out, _ = torch.nn.utils.rnn.pad_packed_sequence(out, batch_first=True,
                                                    total_length=x.shape[1])
    return xt, out, state


def _lengths_and_mask(m, T, masked, seed):
    if not masked:
        return None, None
    lengths = np.random.default_rng(seed).integers(1, T + 1, m)
    lengths[0] = T  # pad_packed_sequence needs one full-length sequence for total_length
    return lengths, np.arange(T)[None, :] < lengths[:, None]


def _run_and_compare(kind, sizes, masked, layers=1, bidirectional=False, seed=0):
    m, T, n_x, n = sizes
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((m, T, n_x))
    lengths, mask = _lengths_and_mask(m, T, masked, seed)
    module = {"rnn": torch.nn.RNN, "gru": torch.nn.GRU, "lstm": torch.nn.LSTM}[kind](
        n_x, n, num_layers=layers, batch_first=True, bidirectional=bidirectional).double()
    xt, out_t, state_t = _torch_run(module, x, lengths)
    h_t = state_t[0] if kind == "lstm" else state_t
    dirs = 2 if bidirectional else 1
    ours, inp = [], n_x
    with strata.default_dtype(np.float64):
        for layer in range(layers):
            pair = []
            for reverse in (False, True)[:dirs]:
                ours_layer = _ours(kind, n, reverse=reverse)
                _load(ours_layer, kind, _torch_params(module, layer, reverse), inp)
                pair.append(ours_layer)
            ours.append(pair)
            inp = n * dirs
    xs = strata.tensor(x, requires_grad=True)
    seq, finals = xs, []
    for pair in ours:
        runs = [layer.run(seq, mask) for layer in pair]
        seq = runs[0][0] if dirs == 1 else strata.concatenate([r[0] for r in runs], axis=-1)
        finals += [r[1] for r in runs]
    valid = np.ones((m, T, 1)) if mask is None else mask[..., None]
    np.testing.assert_allclose(seq.data * valid, out_t.detach().numpy() * valid, **TOL)
    states_t = [h_t] + ([state_t[1]] if kind == "lstm" else [])
    for i, final in enumerate(finals):  # torch's h_n: (layers * directions, m, n)
        for ours_state, theirs in zip(final, states_t, strict=True):
            np.testing.assert_allclose(ours_state.data, theirs[i].detach().numpy(), **TOL)
    upstream = rng.standard_normal(seq.shape) * valid
    g_states = [rng.standard_normal(s.shape) for s in states_t]
    loss_t = (out_t * torch.from_numpy(upstream)).sum()
    loss_t = loss_t + sum((s * torch.from_numpy(g)).sum() for s, g in zip(states_t, g_states))
    loss_t.backward()
    loss = (seq * strata.tensor(upstream)).sum()
    for i, final in enumerate(finals):
        for ours_state, g in zip(final, g_states, strict=True):
            loss = loss + (ours_state * strata.tensor(g[i])).sum()
    loss.backward()
    np.testing.assert_allclose(xs.grad, xt.grad.numpy(), **TOL)
    for layer, pair in enumerate(ours):
        for reverse, ours_layer in zip((False, True), pair):
            _check_grads(ours_layer, kind, _torch_params(module, layer, reverse))


SIZES = [(3, 5, 4, 6), (1, 1, 2, 3), (5, 9, 7, 4)]


@pytest.mark.parametrize("kind", ["rnn", "gru", "lstm"])
@pytest.mark.parametrize("sizes", SIZES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("masked", [False, True], ids=["full", "padded"])
def test_layer_matches_torch(kind, sizes, masked):
    _run_and_compare(kind, sizes, masked)


@pytest.mark.parametrize("kind", ["rnn", "gru", "lstm"])
@pytest.mark.parametrize("masked", [False, True], ids=["full", "padded"])
def test_bidirectional_matches_torch(kind, masked):
    _run_and_compare(kind, (4, 6, 3, 5), masked, bidirectional=True, seed=1)


@pytest.mark.parametrize("kind", ["rnn", "gru", "lstm"])
@pytest.mark.parametrize("masked", [False, True], ids=["full", "padded"])
def test_two_layers_match_torch(kind, masked):
    _run_and_compare(kind, (3, 7, 4, 5), masked, layers=2, seed=2)


def test_two_layer_bidirectional_lstm_matches_torch():
    _run_and_compare("lstm", (3, 6, 4, 3), True, layers=2, bidirectional=True, seed=3)


@pytest.mark.parametrize("kind", ["rnn", "gru", "lstm"])
def test_cells_match_torch_cells(kind):
    m, n_x, n = 4, 3, 5
    rng = np.random.default_rng(4)
    cell = {"rnn": torch.nn.RNNCell, "gru": torch.nn.GRUCell,
            "lstm": torch.nn.LSTMCell}[kind](n_x, n).double()
    x, a, c = (rng.standard_normal(s) for s in ((m, n_x), (m, n), (m, n)))
    tx, ta, tc = (torch.from_numpy(v).requires_grad_() for v in (x, a, c))
    params = _mapped(kind, cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh, n)
    ps = {k: strata.tensor(v, requires_grad=True) for k, v in params.items()}
    sx, sa, sc = (strata.tensor(v, requires_grad=True) for v in (x, a, c))
    if kind == "lstm":
        outs_t, outs = cell(tx, (ta, tc)), strata.lstm_cell(sx, sa, sc, ps)
    elif kind == "gru":
        outs_t, outs = (cell(tx, ta),), (strata.gru_cell(sx, sa, ps, reset_after=True),)
    else:
        outs_t, outs = (cell(tx, ta),), (strata.rnn_cell(sx, sa, ps),)
    gs = [rng.standard_normal((m, n)) for _ in outs]
    sum((o * torch.from_numpy(g)).sum() for o, g in zip(outs_t, gs)).backward()
    sum((o * strata.tensor(g)).sum() for o, g in zip(outs, gs)).backward()
    for ours, theirs in zip(outs, outs_t, strict=True):
        np.testing.assert_allclose(ours.data, theirs.detach().numpy(), **TOL)
    pairs = [(sx, tx), (sa, ta)] + ([(sc, tc)] if kind == "lstm" else [])
    for ours, theirs in pairs:
        np.testing.assert_allclose(ours.grad, theirs.grad.numpy(), **TOL)
    expected = _mapped(kind, cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh, n,
                       grad=True)
    for name, value in expected.items():
        np.testing.assert_allclose(ps[name].grad, value, **TOL, err_msg=name)
