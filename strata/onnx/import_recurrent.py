"""Import of ONNX's RNN, GRU and LSTM ops as strata's SimpleRNN, GRU and LSTM (one direction,
layout 0, default activations); the gate mapping is the inverse of strata/onnx/
export_recurrent.py's. The op's time-major X [T_x, m, n_x] is strata's batch-first (m, T_x,
n_x); its Y [T_x, 1, m, n_a] and Y_h/Y_c [1, m, n_a] are views of strata's sequence and final
states."""

from __future__ import annotations

import numpy as np

from strata import nn
from strata.onnx.import_ops import set_weights
from strata.onnx.importer import importer

#: Each op's default activations, the only ones strata's layers compute.
DEFAULT_ACTIVATIONS = {"LSTM": ["Sigmoid", "Tanh", "Tanh"], "GRU": ["Sigmoid", "Tanh"]}
GATES = {"LSTM": "iofc", "GRU": "zrh", "RNN": "h"}


def _check(imp, node, a):
    extra = [i for i in (4, 5, 6, 7) if i < len(node.input) and node.input[i]]
    if extra:
        raise imp.fail(node, "sequence_lens, initial states and peepholes are not supported "
                       "(run with zero initial states, no masks)")
    if a.get("direction", "forward") not in ("forward", "reverse"):
        raise imp.fail(node, f"direction {a['direction']!r} is not supported; a bidirectional "
                       f"network imports as two one-direction ops")
    if a.get("layout", 0) or a.get("clip") is not None or a.get("input_forget", 0):
        raise imp.fail(node, "layout=1, clip and input_forget are not supported")
    acts = a.get("activations")
    if node.op_type == "RNN":
        acts = acts or ["Tanh"]
        if len(acts) != 1 or acts[0] not in ("Tanh", "Relu"):
            raise imp.fail(node, f"expected the activation Tanh or Relu, got {acts}")
        return acts[0].lower()
    if acts is not None and list(acts) != DEFAULT_ACTIVATIONS[node.op_type]:
        raise imp.fail(node, f"expected the default activations "
                       f"{DEFAULT_ACTIVATIONS[node.op_type]}, got {acts}")
    return None


def _weights(imp, node, n: int) -> dict:
    """Gate name -> (W_gate (n_a + n_x, n_a) in strata's layout, Wb, Rb)."""
    W = imp.const(node, 1, "the input weights W")[0]
    R = imp.const(node, 2, "the recurrent weights R")[0]
    gates = GATES[node.op_type]
    B = imp.const(node, 3, "the biases B", optional=True)
    B = np.zeros(2 * len(gates) * n, W.dtype) if B is None else B[0]
    out = {}
    for k, gate in enumerate(gates):
        rows = slice(k * n, (k + 1) * n)
        out[gate] = (np.concatenate([R[rows].T, W[rows].T]), B[rows],
                     B[len(gates) * n:][rows])
    return out


def _parameters(node, w: dict, n: int, a) -> dict:
    if node.op_type == "RNN":
        g, wb, rb = w["h"]
        return {"Waa": g[:n], "Wax": g[n:], "ba": wb + rb}
    if node.op_type == "LSTM":  # strata's update gate Gu is ONNX's input gate i
        return {f"{p}{s}": (g if p == "W" else wb + rb) for s, (g, wb, rb) in zip(
            "uofc", (w[k] for k in "iofc"), strict=True) for p in "Wb"}
    (gz, zb, zr), (gr, rb_, rr), (gh, hb, hr) = w["z"], w["r"], w["h"]
    params = {"Wu": -gz, "bu": -(zb + zr), "Wr": gr, "br": rb_ + rr, "Wc": gh}
    if a.get("linear_before_reset", 0):
        params.update(bc=hb, bc_rec=hr)
    else:
        params["bc"] = hb + hr
    return params


@importer("RNN", "GRU", "LSTM")
def _recurrent(imp, node, a):
    v = imp.value(node)
    if v.axes != (1, 0, 2) or v.perm is not None:
        raise imp.fail(node, f"expected time-major X [T_x, m, n_x] viewing strata's (m, T_x, "
                       f"n_x), got axes {v.axes}")
    activation = _check(imp, node, a)
    n = int(a["hidden_size"])
    outs = list(node.output) + [""] * 3
    used = [bool(o) and imp.used[o] > 0 for o in outs[:3]]
    sequences, states = used[0], used[2] or (used[0] and used[1])
    options = {"return_sequences": sequences or states, "return_state": states,
               "reverse": a.get("direction", "forward") == "reverse"}
    if node.op_type == "RNN":
        layer = nn.SimpleRNN(n, activation, **options)
    elif node.op_type == "LSTM":
        layer = nn.LSTM(n, unit_forget_bias=False, **options)
    else:
        layer = nn.GRU(n, reset_after=bool(a.get("linear_before_reset", 0)), **options)
    layer.build(v.shape[2])
    set_weights(layer, **_parameters(node, _weights(imp, node, n), n, a))
    seq_axes, state_axes = (1, None, 0, 2), (None, 0, 1)
    if states:  # (sequence, a<T_x>[, c<T_x>]); unused outputs get placeholder names
        n_states = 2 if node.op_type == "LSTM" else 1
        base = next(o for o in outs if o)
        names = [o or f"{base}__{i}" for i, o in enumerate(outs[:1 + n_states])]
        axes = [seq_axes] + [state_axes] * n_states
    else:
        names, axes = [outs[0] if sequences else outs[1]], [seq_axes if sequences else
                                                             state_axes]
    imp.add(layer, [v], names, axes, node=node)
