"""Speed of one neural style transfer iteration (strata/vision/style.py): VGG-19 up to conv5_1
(random He weights, frozen; the timing does not depend on the values) on a 300x400 image, the
course's content cost (conv4_2) and style cost (conv1_1 ... conv5_1, 0.2 each), backward to
the pixels and an Adam step on them, float32. Side by side with the same network, weights and
costs in PyTorch CPU, in one run.

Target: strata's iteration time / PyTorch's <= 1.3. Run: ``python benchmarks/style.py``.
"""

from __future__ import annotations

import numpy as np
from sidebyside import run, training_step

import strata
from strata.optim import Adam
from strata.vision.style import (
    CONTENT_LAYER,
    STYLE_LAYERS,
    content_cost,
    gram_matrix,
    style_cost,
    style_cost_from_grams,
    total_cost,
)
from strata.vision.texture import VGGFeatures

HEIGHT, WIDTH = 300, 400
LAYERS = [CONTENT_LAYER, *(name for name, _ in STYLE_LAYERS)]


def setup():
    """The frozen VGG-19 extractor, its targets a_C and a_S, and the initial G."""
    from strata.models.vgg import vgg19

    strata.seed(0)
    extractor = VGGFeatures(vgg19(input_shape=None, include_top=False))
    rng = np.random.default_rng(0)
    C, S, G = (rng.uniform(-120, 120, (1, HEIGHT, WIDTH, 3)).astype(np.float32)
               for _ in range(3))
    with strata.no_grad():
        a_C = extractor(C, [CONTENT_LAYER])[CONTENT_LAYER]
        a_S = extractor(S, [n for n, _ in STYLE_LAYERS])
    return extractor, a_C, a_S, G


def make_strata_step():
    extractor, a_C, a_S, G0 = setup()
    G = strata.tensor(G0, requires_grad=True)
    with strata.no_grad():  # as transfer_style: the style's Gram matrices once
        G_S = {name: gram_matrix(a) for name, a in a_S.items()}

    def cost():
        a_G = extractor(G, LAYERS)
        return total_cost(content_cost(a_C, a_G[CONTENT_LAYER]),
                          style_cost_from_grams(G_S, a_G))

    return training_step(Adam([G], lr=2.0), cost)


def torch_copy(torch, model):
    """VGG-19's layers up to conv5_1 in PyTorch (NCHW), with the same weights, and the index
    of each named layer's output."""
    nn, layers, where = torch.nn, [], {}
    for name, layer in model.named_layers():
        if name.startswith("conv"):
            W = layer.W.data
            conv = nn.Conv2d(W.shape[2], W.shape[3], 3, padding=1)
            with torch.no_grad():
                conv.weight.copy_(torch.from_numpy(np.ascontiguousarray(W.transpose(3, 2, 0, 1))))
                conv.bias.copy_(torch.from_numpy(layer.b.data))
            layers += [conv, nn.ReLU()]
        else:
            layers.append(nn.MaxPool2d(2))
        where[name] = len(layers) - 1
        if name == "conv5_1":
            break
    net = nn.Sequential(*layers)
    for p in net.parameters():
        p.requires_grad_(False)
    return net, where


def make_torch_step(torch):
    extractor, a_C, a_S, G0 = setup()
    net, where = torch_copy(torch, extractor.model)
    def gram(a):  # a (1, n_C, n_H, n_W) unrolled to (n_C, n_H n_W)
        A = a.reshape(a.shape[1], -1)
        return A @ A.T

    nchw = {n: torch.from_numpy(np.ascontiguousarray(a.data.transpose(0, 3, 1, 2)))
            for n, a in {**a_S, CONTENT_LAYER: a_C}.items()}
    grams = {n: gram(nchw[n]) for n, _ in STYLE_LAYERS}  # the style's, once
    G = torch.nn.Parameter(torch.from_numpy(np.ascontiguousarray(G0.transpose(0, 3, 1, 2))))

    def cost():
        acts, x = {}, G
        for i, layer in enumerate(net):
            x = layer(x)
            acts[i] = x
        a = {n: acts[where[n]] for n in LAYERS}
        _, n_C, n_H, n_W = a[CONTENT_LAYER].shape
        J_content = ((nchw[CONTENT_LAYER] - a[CONTENT_LAYER]) ** 2).sum() / (4 * n_H * n_W * n_C)
        J_style = 0
        for n, w in STYLE_LAYERS:
            _, n_C, n_H, n_W = a[n].shape
            J_style = J_style + w * ((grams[n] - gram(a[n])) ** 2).sum() / (
                4 * n_C ** 2 * (n_H * n_W) ** 2)
        return 10 * J_content + 40 * J_style

    with torch.no_grad():  # same workload: the same cost before any step
        a_G = extractor(G0, LAYERS)
        expected = total_cost(content_cost(a_C, a_G[CONTENT_LAYER]), style_cost(a_S, a_G)).item()
        got = cost().item()
    assert abs(expected - got) < 1e-3 * abs(expected), (expected, got)
    return training_step(torch.optim.Adam([G], lr=2.0), cost)


if __name__ == "__main__":
    run(__file__, f"Style transfer iteration: VGG-19 to conv5_1 on {HEIGHT}x{WIDTH}x3, content "
        f"+ style costs, backward to the pixels, Adam, float32", 1.3, make_strata_step,
        make_torch_step)
