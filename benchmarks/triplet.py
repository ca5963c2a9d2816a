"""Training speed: the small face encoder of ``strata faces train`` (strata/models/facenet.py:
four 3x3 convolutions of 32, 64, 128, 128 channels, each with batch norm, ReLU and a 2x2 max
pool, flatten, Dense 128, L2 normalization) on 56x46x1 faces, batches of 10 people x 5 images,
batch-all triplet mining inside the batch and the triplet loss (alpha 0.5, mean over the
triplets), Adam, float32. One full training step (mining included) with strata and with the
same network, weights, triplets and loss written in PyTorch CPU, side by side in one run.

Target: strata's step time / PyTorch's <= 1.2. Run: ``python benchmarks/triplet.py``.
"""

from __future__ import annotations

import numpy as np
from sidebyside import run, training_step

import strata
from strata.losses import TripletLoss
from strata.models.facenet import face_encoder
from strata.optim import Adam
from strata.vision.faces import batch_all_triplets

P, K, SHAPE, ALPHA = 10, 5, (56, 46, 1), 0.5


def data():
    """A batch of P x K generated grey faces and their person labels."""
    rng = np.random.default_rng(0)
    X = rng.random((P * K, *SHAPE)).astype(np.float32)
    return X, np.repeat(np.arange(P), K)


def strata_model(X):
    strata.seed(0)
    model = face_encoder()
    model(X[:2])
    return model


def make_strata_step():
    X, labels = data()
    model = strata_model(X)
    loss = TripletLoss(ALPHA, "batch-all")
    opt = Adam(model.parameters(), lr=1e-3)
    return training_step(opt, lambda: loss(model(X), labels))


def torch_copy(torch, model):
    """The same encoder and weights in PyTorch's NCHW layout."""
    nn, layers = torch.nn, []
    for layer in model.layers:
        kind = type(layer).__name__
        if kind == "Conv2D":
            W = layer.W.data
            conv = nn.Conv2d(W.shape[2], W.shape[3], W.shape[0], padding=W.shape[0] // 2,
                             bias=False)
            with torch.no_grad():
                conv.weight.copy_(torch.from_numpy(np.ascontiguousarray(W.transpose(3, 2, 0, 1))))
            layers.append(conv)
        elif kind == "BatchNorm":
            layers.append(nn.BatchNorm2d(layers[-1].out_channels, eps=layer.epsilon))
            if layer.config["activation"] == "relu":
                layers.append(nn.ReLU())
        elif kind == "Activation":
            layers.append(nn.ReLU())
        elif kind == "MaxPool2D":
            layers.append(nn.MaxPool2d(2))
        elif kind == "Flatten":  # strata flattens NHWC: permute before flattening
            layers += [Permute(torch), nn.Flatten()]
        elif kind == "Dense":
            dense = nn.Linear(*layer.W.shape)
            with torch.no_grad():
                dense.weight.copy_(torch.from_numpy(layer.W.data.T.copy()))
                dense.bias.copy_(torch.from_numpy(layer.b.data))
            layers.append(dense)
    return nn.Sequential(*layers)


def Permute(torch):  # noqa: N802 -- a layer class, built where torch is imported
    class _Permute(torch.nn.Module):
        def forward(self, x):
            return x.permute(0, 2, 3, 1)
    return _Permute()


def torch_triplet_step_loss(torch, E, labels):
    """Batch-all mining (on the detached encodings, as strata) and the mean triplet loss."""
    a, p, n = batch_all_triplets(E.detach().numpy(), labels, ALPHA)
    a, p, n = (torch.from_numpy(i) for i in (a, p, n))
    losses = ((E[a] - E[p]) ** 2).sum(1) - ((E[a] - E[n]) ** 2).sum(1) + ALPHA
    return torch.clamp(losses, min=0).sum() / max(len(a), 1)


def make_torch_step(torch):
    X, labels = data()
    model = strata_model(X)
    net = torch_copy(torch, model)
    tX = torch.from_numpy(X.transpose(0, 3, 1, 2).copy())

    def loss():
        return torch_triplet_step_loss(torch, torch.nn.functional.normalize(net(tX), dim=1),
                                       labels)

    expected = TripletLoss(ALPHA, "batch-all")(model(X), labels).item()
    got = loss().item()  # both in training mode: batch statistics
    assert abs(expected - got) < 1e-3 * max(1.0, abs(expected)), (expected, got)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    return training_step(opt, loss)


if __name__ == "__main__":
    run(__file__, "Face encoder 56x46x1 (conv 32-64-128-128, Dense 128, L2) + batch-all "
        "triplet loss + Adam, batch 10 people x 5 images, float32, full training step", 1.2,
        make_strata_step, make_torch_step)
