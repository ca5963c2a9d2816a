"""Training speed: a small ResNet on 32x32x3 (conv 3x3x32 + BN + ReLU, then four basic blocks:
32, 32, 64 with stride 2 and a 1x1 projection shortcut, 64; global average pool, Dense 10),
softmax cross-entropy, Adam, batch 64, float32 (27.6 GFLOPs per step). One full training step
with strata.nn and with PyTorch CPU, same weights, side by side in one run.

Target: strata's step time / PyTorch's <= 1.5. Run: ``python benchmarks/resnet.py``.
"""

from __future__ import annotations

import numpy as np
from sidebyside import run, training_step

import strata
import strata.nn as nn
from strata.optim import Adam

BATCH = 64
BLOCKS = ((32, 1), (32, 1), (64, 2), (64, 1))  # (channels, stride)


def data():
    rng = np.random.default_rng(0)
    return (rng.standard_normal((BATCH, 32, 32, 3)).astype(np.float32),
            rng.integers(0, 10, BATCH))


def _conv_bn(channels, f, stride=1):
    return [nn.Conv2D(channels, f, strides=stride, padding=(f - 1) // 2, use_bias=False,
                      kernel_initializer="he"), nn.BatchNorm(momentum=0.9, epsilon=1e-5)]


def basic_block(channels, stride, n_c_prev):
    main = [*_conv_bn(channels, 3, stride), nn.Activation("relu"), *_conv_bn(channels, 3)]
    shortcut = _conv_bn(channels, 1, stride) if stride != 1 or channels != n_c_prev else None
    return nn.Residual(main, shortcut)


def strata_model():
    strata.seed(0)
    layers, n_c = [*_conv_bn(32, 3), nn.Activation("relu")], 32
    for channels, stride in BLOCKS:
        layers.append(basic_block(channels, stride, n_c))
        n_c = channels
    model = nn.Sequential([*layers, nn.GlobalAveragePooling2D(), nn.Dense(10)])
    model.build((32, 32, 3))
    return model


def make_strata_step():
    model, (X, labels) = strata_model(), data()
    opt = Adam(model.parameters(), lr=1e-3)
    return training_step(opt, lambda: strata.softmax_cross_entropy(model(X), labels))


def torch_copy(torch, model):
    """The same network and weights in PyTorch's NCHW layout."""
    tnn = torch.nn

    def conv_bn(conv):
        W = conv.W.data
        t = tnn.Conv2d(W.shape[2], W.shape[3], W.shape[0], stride=conv.strides,
                       padding=conv.padding, bias=False)
        with torch.no_grad():
            t.weight.copy_(torch.from_numpy(W.transpose(3, 2, 0, 1).copy()))
        return tnn.Sequential(t, tnn.BatchNorm2d(W.shape[3], eps=1e-5, momentum=0.1))

    class Block(tnn.Module):
        def __init__(self, block):
            super().__init__()
            main = block.main.layers
            self.main = tnn.Sequential(conv_bn(main[0]), tnn.ReLU(), conv_bn(main[3]))
            self.shortcut = (tnn.Identity() if block.shortcut is None
                             else conv_bn(block.shortcut.layers[0]))

        def forward(self, x):
            return torch.relu(self.main(x) + self.shortcut(x))

    dense = model.layers[-1]
    head = tnn.Linear(*dense.W.shape)
    with torch.no_grad():
        head.weight.copy_(torch.from_numpy(dense.W.data.T.copy()))
        head.bias.copy_(torch.from_numpy(dense.b.data))
    blocks = [Block(layer) for layer in model.layers[3:-2]]
    return tnn.Sequential(conv_bn(model.layers[0]), tnn.ReLU(), *blocks,
                          tnn.AdaptiveAvgPool2d(1), tnn.Flatten(), head)


def make_torch_step(torch):
    model, (X, labels) = strata_model(), data()
    net = torch_copy(torch, model)
    tX, t_labels = torch.from_numpy(X.transpose(0, 3, 1, 2).copy()), torch.from_numpy(labels)
    expected = strata.softmax_cross_entropy(model(X), labels).item()  # training-mode BN
    got = torch.nn.functional.cross_entropy(net(tX), t_labels).item()
    assert abs(expected - got) < 1e-3 * max(1.0, abs(expected)), (expected, got)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    return training_step(opt, lambda: torch.nn.functional.cross_entropy(net(tX), t_labels))


if __name__ == "__main__":
    run(__file__, "ResNet, 4 basic blocks (32-64 channels, BN) on 32x32x3 + Adam, batch 64, "
        "float32, full training step", 1.5, make_strata_step, make_torch_step)
