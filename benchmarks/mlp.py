"""Training speed: a 784-512-256-10 ReLU MLP, softmax cross-entropy, Adam, batch 128, float32.
One training step (zero_grad, forward, loss, backward, Adam update) with strata.nn and with
PyTorch CPU, timed side by side in one run (benchmarks/sidebyside.py).

Target: strata's step time / PyTorch's <= 1.0. Run: ``python benchmarks/mlp.py``.
"""

from __future__ import annotations

import numpy as np
from sidebyside import run, training_step

import strata
import strata.nn as nn
from strata.optim import Adam

SIZES = (784, 512, 256, 10)
BATCH = 128


def strata_model(seed: int = 0):
    strata.seed(seed)
    model = nn.Sequential([nn.Dense(n, "relu", kernel_initializer="he") for n in SIZES[1:-1]]
                          + [nn.Dense(SIZES[-1], kernel_initializer="he")])
    model.build((SIZES[0],))
    return model, Adam(model.parameters(), lr=1e-3)


def torch_model(torch, model):
    """The same weights in a torch Sequential (torch keeps W transposed)."""
    layers = []
    for i, dense in enumerate(model.layers):
        lin = torch.nn.Linear(*dense.W.shape)
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(dense.W.data.T))
            lin.bias.copy_(torch.from_numpy(dense.b.data))
        layers += [lin] + ([torch.nn.ReLU()] if i < len(model.layers) - 1 else [])
    net = torch.nn.Sequential(*layers)
    return net, torch.optim.Adam(net.parameters(), lr=1e-3)


def data():
    rng = np.random.default_rng(0)
    return (rng.standard_normal((BATCH, SIZES[0])).astype(np.float32),
            rng.integers(0, SIZES[-1], BATCH))


def make_strata_step():
    (model, opt), (X, labels) = strata_model(), data()
    return training_step(opt, lambda: strata.softmax_cross_entropy(model(X), labels))


def make_torch_step(torch):
    net, opt = torch_model(torch, strata_model()[0])
    X, labels = (torch.from_numpy(a) for a in data())
    return training_step(opt, lambda: torch.nn.functional.cross_entropy(net(X), labels))


if __name__ == "__main__":
    run(__file__, f"MLP {'-'.join(map(str, SIZES))} + Adam, batch {BATCH}, float32, full "
        "training step", 1.0, make_strata_step, make_torch_step)
