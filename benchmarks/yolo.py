"""Training speed: the digit detector of ``strata detect train`` (strata/vision/detector.py:
a 4x4 stride-4 patch convolution of 32 channels, conv 3x3 64 + max-pool 2, two conv 3x3 128 at
the 16x16 grid, every convolution followed by batch norm and ReLU, then a 1x1 convolution to
3 anchors x (5 + 10 classes)) on 128x128x1 canvases, the YOLO loss of
strata/vision/yolo_loss.py, Adam, batch 32, float32. One full training step with strata and
with the same network, weights and loss written in PyTorch CPU, side by side in one run.

Target: strata's step time / PyTorch's <= 1.2. Run: ``python benchmarks/yolo.py``.
"""

from __future__ import annotations

import numpy as np
from sidebyside import run, training_step

import strata
from strata.optim import Adam
from strata.vision.datasets import shapes_dataset
from strata.vision.detector import detector_network, fit_anchors
from strata.vision.yolo import encode_targets
from strata.vision.yolo_loss import YoloLoss

BATCH, SIZE, CLASSES, ANCHORS = 32, 128, 10, 3


def data():
    """A batch of canvases with boxes (generated shapes, given digit classes) and the
    network's anchors and targets."""
    images, boxes, classes = shapes_dataset(BATCH, size=SIZE, shapes=(1, 5), scale=(11, 36))
    classes = [np.random.default_rng(i).integers(0, CLASSES, len(c)) for i, c in
               enumerate(classes)]
    anchors, _ = fit_anchors(boxes, ANCHORS, SIZE // 8, SIZE)
    targets = encode_targets(boxes, classes, SIZE // 8, anchors, CLASSES, SIZE)
    return images, targets, anchors


def strata_model(anchors):
    strata.seed(0)
    return detector_network(anchors, CLASSES, SIZE)


def make_strata_step():
    X, targets, anchors = data()
    model = strata_model(anchors)
    loss = YoloLoss(anchors)
    opt = Adam(model.parameters(), lr=1e-3)
    return training_step(opt, lambda: loss(model(X), targets))


def torch_copy(torch, model):
    """The same network and weights in PyTorch's NCHW layout (batch norm's epsilon 1e-3)."""
    nn = torch.nn
    layers, convs = [], []
    for layer in model.layers:
        kind = type(layer).__name__
        if kind == "Conv2D":
            W = layer.W.data
            f, c_in, c_out = W.shape[0], W.shape[2], W.shape[3]
            pad = (f - 1) // 2 if layer.padding == "same" else 0
            conv = nn.Conv2d(c_in, c_out, f, stride=layer.strides, padding=pad,
                             bias=layer.b is not None)
            with torch.no_grad():
                conv.weight.copy_(torch.from_numpy(np.ascontiguousarray(W.transpose(3, 2, 0, 1))))
                if layer.b is not None:
                    conv.bias.copy_(torch.from_numpy(layer.b.data))
            layers.append(conv)
            convs.append(conv)
        elif kind == "BatchNorm":
            layers.append(nn.BatchNorm2d(layers[-1].out_channels, eps=layer.epsilon))
        elif kind == "Activation":
            layers.append(nn.ReLU())
        elif kind == "MaxPool2D":
            layers.append(nn.MaxPool2d(layer.pool_size))
    return nn.Sequential(*layers)


def torch_yolo_loss(torch, out, y, anchors, lambda_coord=5.0, lambda_noobj=0.5):
    """strata's yolo_loss (strata/vision/yolo_loss.py) in PyTorch ops: out and y (m, S, S, A,
    5 + C)."""
    F = torch.nn.functional
    m, rows, cols = out.shape[:3]
    obj = y[..., 4]
    scale = torch.where(obj == 1, 1.0, lambda_noobj)
    bce = (scale * F.binary_cross_entropy_with_logits(out[..., 4], obj, reduction="none")).sum()
    held = obj == 1
    xo, yo = out[held], y[held]
    a = anchors.expand(m, rows, cols, -1, -1)[held]
    grid = torch.tensor([cols, rows], dtype=out.dtype)
    dxy = torch.sigmoid(xo[:, :2]) - yo[:, :2]
    dwh = xo[:, 2:4] - torch.log(yo[:, 2:4] * grid / a)
    coord = lambda_coord * ((dxy ** 2).sum() + (dwh ** 2).sum())
    classes = -(yo[:, 5:] * F.log_softmax(xo[:, 5:], dim=1)).sum()
    return (coord + bce + classes) / m


def make_torch_step(torch):
    X, targets, anchors = data()
    model = strata_model(anchors)
    net = torch_copy(torch, model)
    A, depth = ANCHORS, 5 + CLASSES
    tX = torch.from_numpy(X.transpose(0, 3, 1, 2).copy())
    tY, tA = torch.from_numpy(targets), torch.from_numpy(anchors.astype(np.float32))

    def loss():
        out = net(tX).permute(0, 2, 3, 1)
        return torch_yolo_loss(torch, out.reshape(*out.shape[:3], A, depth), tY, tA)

    with torch.no_grad():  # same workload: the same loss before any step
        expected = YoloLoss(anchors)(model(X), targets).item()
        got = loss().item()
    assert abs(expected - got) < 1e-3 * max(1.0, abs(expected)), (expected, got)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    return training_step(opt, loss)


if __name__ == "__main__":
    run(__file__, "YOLO digit detector 128x128x1 (grid 16, 3 anchors, 10 classes) + YOLO loss "
        "+ Adam, batch 32, float32, full training step", 1.2, make_strata_step,
        make_torch_step)
