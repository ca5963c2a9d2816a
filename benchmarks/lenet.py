"""Training speed: LeNet-5 on 28x28x1 (conv 5x5x6 pad 2, max-pool 2, conv 5x5x16, max-pool 2,
Dense 120, 84, 10; ReLU), softmax cross-entropy, Adam, batch 128, float32. One full training
step with strata.nn and with PyTorch CPU, same weights, side by side in one run.

Target: strata's step time / PyTorch's <= 1.2. Run: ``python benchmarks/lenet.py``.
"""

from __future__ import annotations

import numpy as np
from sidebyside import run, training_step

import strata
import strata.nn as nn
from strata.optim import Adam

BATCH = 128


def data():
    rng = np.random.default_rng(0)
    return (rng.standard_normal((BATCH, 28, 28, 1)).astype(np.float32),
            rng.integers(0, 10, BATCH))


def strata_model():
    strata.seed(0)
    model = nn.Sequential([
        nn.Conv2D(6, 5, padding=2, activation="relu", kernel_initializer="he"), nn.MaxPool2D(2),
        nn.Conv2D(16, 5, activation="relu", kernel_initializer="he"), nn.MaxPool2D(2),
        nn.Flatten(), nn.Dense(120, "relu", kernel_initializer="he"),
        nn.Dense(84, "relu", kernel_initializer="he"), nn.Dense(10, kernel_initializer="he")])
    model.build((28, 28, 1))
    return model


def make_strata_step():
    model, (X, labels) = strata_model(), data()
    opt = Adam(model.parameters(), lr=1e-3)
    return training_step(opt, lambda: strata.softmax_cross_entropy(model(X), labels))


def torch_copy(torch, model):
    """The same network and weights in PyTorch's NCHW layout."""
    c1, _, c2, _, _, d1, d2, d3 = model.layers
    net = torch.nn.Sequential(
        torch.nn.Conv2d(1, 6, 5, padding=2), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(6, 16, 5), torch.nn.ReLU(), torch.nn.MaxPool2d(2), torch.nn.Flatten(),
        torch.nn.Linear(400, 120), torch.nn.ReLU(), torch.nn.Linear(120, 84), torch.nn.ReLU(),
        torch.nn.Linear(84, 10))
    # torch flattens (c, h, w), we flatten (h, w, c): reorder the first dense layer's rows.
    d1_rows = d1.W.data.reshape(5, 5, 16, 120).transpose(2, 0, 1, 3).reshape(400, 120)
    weights = [(c1.W.data.transpose(3, 2, 0, 1), c1.b.data),
               (c2.W.data.transpose(3, 2, 0, 1), c2.b.data), (d1_rows.T, d1.b.data),
               (d2.W.data.T, d2.b.data), (d3.W.data.T, d3.b.data)]
    layers = [m for m in net if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    with torch.no_grad():
        for layer, (W, b) in zip(layers, weights, strict=True):
            layer.weight.copy_(torch.from_numpy(np.ascontiguousarray(W)))
            layer.bias.copy_(torch.from_numpy(b))
    return net


def make_torch_step(torch):
    model, (X, labels) = strata_model(), data()
    net = torch_copy(torch, model)
    tX, t_labels = torch.from_numpy(X.transpose(0, 3, 1, 2).copy()), torch.from_numpy(labels)
    with torch.no_grad():  # same workload: the same loss before any step
        expected = strata.softmax_cross_entropy(model(X), labels).item()
        got = torch.nn.functional.cross_entropy(net(tX), t_labels).item()
    assert abs(expected - got) < 1e-4 * max(1.0, abs(expected)), (expected, got)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    return training_step(opt, lambda: torch.nn.functional.cross_entropy(net(tX), t_labels))


if __name__ == "__main__":
    run(__file__, "LeNet-5 28x28x1 + Adam, batch 128, float32, full training step", 1.2,
        make_strata_step, make_torch_step)
