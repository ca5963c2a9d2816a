"""Training speed: a 2-layer character LSTM (vocabulary 65, embedding 64, hidden 256,
T_x = 64, batch 32), cross-entropy at every step, Adam, float32. One full training step with
strata.nn and with PyTorch CPU's nn.LSTM (oneDNN's fused LSTM), same weights, side by side.

Target: strata's step time / PyTorch's <= 1.3. Run: ``python benchmarks/lstm.py``.
"""

from __future__ import annotations

import numpy as np
from sidebyside import run, training_step

import strata
import strata.nn as nn
from strata.losses import sequence_crossentropy
from strata.optim import Adam

VOCAB, EMBED, HIDDEN, T, BATCH = 65, 64, 256, 64, 32


def data():
    rng = np.random.default_rng(0)
    return rng.integers(0, VOCAB, (BATCH, T)), rng.integers(0, VOCAB, (BATCH, T))


def strata_model():
    strata.seed(0)
    model = nn.Sequential([nn.Embedding(VOCAB, EMBED),
                           nn.LSTM(HIDDEN, return_sequences=True),
                           nn.LSTM(HIDDEN, return_sequences=True),
                           nn.TimeDistributed(nn.Dense(VOCAB))])
    model.build((T,))
    return model


def make_strata_step():
    model, (ids, labels) = strata_model(), data()
    opt = Adam(model.parameters(), lr=1e-3)
    return training_step(opt, lambda: sequence_crossentropy(model(ids), labels))


def torch_copy(torch, model):
    """The same network and weights in PyTorch: gates i, f, g, o are the course's u, f, c, o;
    W_ih and W_hh are the x and a rows of each gate's W, transposed (see
    tests/test_recurrent_torch.py); torch's two biases hold our b and zero."""
    emb, lstm1, lstm2, head = model.layers

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = torch.nn.Embedding(VOCAB, EMBED)
            self.lstm = torch.nn.LSTM(EMBED, HIDDEN, num_layers=2, batch_first=True)
            self.head = torch.nn.Linear(HIDDEN, VOCAB)

        def forward(self, x):
            return self.head(self.lstm(self.emb(x))[0])

    net = Net()
    with torch.no_grad():
        net.emb.weight.copy_(torch.from_numpy(emb.E.data))
        for i, layer in enumerate((lstm1, lstm2)):
            gates = [getattr(layer, "W" + g).data for g in "ufco"]
            biases = [getattr(layer, "b" + g).data for g in "ufco"]
            w_hh = np.concatenate([W[:HIDDEN].T for W in gates])
            w_ih = np.concatenate([W[HIDDEN:].T for W in gates])
            getattr(net.lstm, f"weight_ih_l{i}").copy_(torch.from_numpy(w_ih))
            getattr(net.lstm, f"weight_hh_l{i}").copy_(torch.from_numpy(w_hh))
            getattr(net.lstm, f"bias_ih_l{i}").copy_(torch.from_numpy(np.concatenate(biases)))
            getattr(net.lstm, f"bias_hh_l{i}").zero_()
        net.head.weight.copy_(torch.from_numpy(head.layer.W.data.T))
        net.head.bias.copy_(torch.from_numpy(head.layer.b.data))
    return net


def make_torch_step(torch):
    model, (ids, labels) = strata_model(), data()
    net = torch_copy(torch, model)
    t_ids, t_labels = torch.from_numpy(ids), torch.from_numpy(labels).reshape(-1)

    def loss():
        return torch.nn.functional.cross_entropy(net(t_ids).reshape(-1, VOCAB), t_labels)

    with torch.no_grad():  # same workload: the same loss before any step
        expected = sequence_crossentropy(model(ids), labels).item()
        got = loss().item()
    assert abs(expected - got) < 1e-4 * max(1.0, abs(expected)), (expected, got)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    return training_step(opt, loss)


if __name__ == "__main__":
    run(__file__, "2-layer char LSTM (vocab 65, emb 64, hidden 256, T 64) + Adam, batch 32, "
        "float32, full training step", 1.3, make_strata_step, make_torch_step)
