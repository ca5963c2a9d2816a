"""ONNX nodes for the sequence layers (SimpleRNN, GRU, LSTM as ONNX's RNN, GRU and LSTM ops;
Bidirectional, Embedding, OneHot, TimeDistributed) and GoogLeNet.

Gate layouts. strata keeps each gate's W as (n_a + n_x, n_a), recurrent rows first; ONNX keeps
W (gates * n_a, n_x) and R (gates * n_a, n_a) per direction, gates stacked in its own order,
and two biases Wb and Rb that it adds. So W = W_gate[n_a:].T and R = W_gate[:n_a].T.

- LSTM: ONNX's order is i, o, f, c; strata's update gate Gu is ONNX's input gate i.
- GRU: ONNX's order is z, r, h and its update is H = (1 - z) * h~ + z * H_prev, where the
  course's is c = Gu * c~ + (1 - Gu) * c_prev: z = 1 - Gu = sigmoid(-(...)), so z's weights and
  bias are Gu's negated. ``reset_after=True`` is linear_before_reset=1, with bc_rec as Rb_h.
"""

from __future__ import annotations

import numpy as np

from strata import nn, ops
from strata.models.inception import GoogLeNet
from strata.onnx.builder import Value, register_exporter
from strata.onnx.export_layers import weights


def _split(W, n: int):
    """ONNX's (W, R) rows of one strata gate weight (n_a + n_x, n_a)."""
    W = weights(W)
    return W[n:].T, W[:n].T


def _gates(layer):
    """(ONNX op, W, R, B, attributes) of a recurrent layer, one direction."""
    n = layer.units
    if isinstance(layer, nn.SimpleRNN):
        W, R = weights(layer.Wax).T, weights(layer.Waa).T
        B = np.concatenate([weights(layer.ba), np.zeros(n, np.float32)])
        return "RNN", W, R, B, {"activations": [layer.activation.capitalize()]}
    if isinstance(layer, nn.LSTM):
        pairs = [_split(getattr(layer, "W" + gate), n) for gate in "uofc"]
        wb = [weights(getattr(layer, "b" + gate)) for gate in "uofc"]
        rb = [np.zeros(n, np.float32)] * 4
        attrs = {}
    else:
        pairs = [tuple(-w for w in _split(layer.Wu, n)), _split(layer.Wr, n),
                 _split(layer.Wc, n)]
        wb = [-weights(layer.bu), weights(layer.br), weights(layer.bc)]
        rb = [np.zeros(n, np.float32)] * 2 + [
            weights(layer.bc_rec) if layer.reset_after else np.zeros(n, np.float32)]
        attrs = {"linear_before_reset": int(layer.reset_after)}
    W = np.concatenate([p[0] for p in pairs])
    R = np.concatenate([p[1] for p in pairs])
    return type(layer).__name__, W, R, np.concatenate(wb + rb), attrs


def _recurrent(layer, g, v, x):
    if layer.return_state:
        raise ValueError(f"export: {layer.name} has return_state=True; export the model that "
                         f"uses its outputs (only a layer's sequence or last state maps)")
    y = layer(x)
    op, W, R, B, attrs = _gates(layer)
    steps = g.node("Transpose", [g.plain(v).name], perm=[1, 0, 2], hint="time_major")
    ins = [steps] + [g.const(a[None], name) for a, name in ((W, "W"), (R, "R"), (B, "B"))]
    outs = g.node(op, ins, outputs=3 if op == "LSTM" else 2, hint=op.lower(),
                  hidden_size=layer.units,
                  direction="reverse" if layer.reverse else "forward", **attrs)
    if not layer.return_sequences:  # Y_h (1, m, n_a)
        return Value(g.node("Squeeze", [outs[1], g.ints([0], "axes")])), y
    seq = g.node("Squeeze", [outs[0], g.ints([1], "axes")])  # Y (T_x, 1, m, n_a)
    return Value(g.node("Transpose", [seq], perm=[1, 0, 2], hint="batch_major")), y


for _cls in (nn.SimpleRNN, nn.GRU, nn.LSTM):
    register_exporter(_cls)(_recurrent)


@register_exporter(nn.Bidirectional)
def _bidirectional(layer, g, v, x):
    fwd, y = g.convert(layer.forward_layer, v, x)
    bwd, _ = g.convert(layer.backward_layer, v, x)
    mode = layer.merge_mode
    if mode == "concat":
        out = g.node("Concat", [fwd.name, bwd.name], axis=-1)
    else:
        out = g.node("Mul" if mode == "mul" else "Add", [fwd.name, bwd.name])
        if mode == "ave":
            out = g.node("Mul", [out, g.const(np.float32(0.5), "half")])
    return Value(out), layer(x)


@register_exporter(nn.Embedding)
def _embedding(layer, g, v, x):
    return Value(g.node("Gather", [g.const(weights(layer.E), "E"), v.name], axis=0,
                        hint="embedding")), layer(x)


@register_exporter(nn.OneHot)
def _one_hot(layer, g, v, x):
    values = g.const(np.array([0, 1], np.float32), "off_on")
    return Value(g.node("OneHot", [v.name, g.ints([layer.depth], "depth"), values],
                        axis=-1)), layer(x)


#: Layers that act on the last axis alone: TimeDistributed(layer) is the layer itself.
_PER_STEP = (nn.Dense, nn.Activation, nn.LeakyReLU, nn.Dropout)


@register_exporter(nn.TimeDistributed)
def _time_distributed(layer, g, v, x):
    if type(layer.layer) in _PER_STEP:
        return g.convert(layer.layer, v, x)
    m, T = x.shape[:2]
    merged = Value(g.node("Reshape", [g.plain(v).name, g.ints([-1, *x.shape[2:]])]))
    out, y = g.convert(layer.layer, merged, ops.reshape(x, (m * T, *x.shape[2:])))
    split = g.node("Reshape", [g.plain(out).name, g.ints([-1, T, *y.shape[1:]])])
    return Value(split), ops.reshape(y, (m, T, *y.shape[1:]))


@register_exporter(GoogLeNet)
def _googlenet(layer, g, v, x):
    for part in (layer.stem, layer.middle, layer.head):  # the auxiliary heads train only
        v, x = g.convert(part, v, x)
    return v, x
