"""SIGNS (course 4): the week-1 ConvNet trained end to end, and ResNet-50 learning on a few
images. The data comes from ../shared/datasets (STRATA_DATA); the tests skip without it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import strata
import strata.models
from strata.data.datasets import load_signs
from strata.models.signs import signs_convnet

SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"
SIGNS = ("signs/signs_cs230_64x64_jpg.tar", "signs/test_signs.h5")


@pytest.fixture
def signs(monkeypatch):
    """The SIGNS training and test sets, read from the shared data folder (no network)."""
    missing = [rel for rel in SIGNS if not (SHARED / rel).is_file()]
    if missing:
        pytest.skip(f"{', '.join(missing)} not in {SHARED} (see ../shared/datasets/SOURCES.md)")
    monkeypatch.setenv("STRATA_DATA", str(SHARED))
    return load_signs()


def test_signs_convnet_has_the_course_layers():
    model = signs_convnet()
    shapes = [layer.W.shape for layer in model.layers if getattr(layer, "W", None) is not None]
    assert shapes == [(4, 4, 3, 8), (2, 2, 8, 16), (64, 6)]  # 2x2x16 after the two poolings
    assert model.summary(print_fn=lambda *_: None) == (392 + 528 + 390)
    out = model.predict(np.zeros((2, 64, 64, 3), np.float32))
    assert out.shape == (2, 6)  # logits
    assert signs_convnet(10, filters=(16, 32)).summary(print_fn=lambda *_: None) == (
        784 + 2080 + 1290)
    lazy = signs_convnet(input_shape=None)
    assert lazy.parameters() == []


@pytest.mark.skipif(not hasattr(strata.models, "resnet50"),
                    reason="strata.models.resnet50 does not exist yet (model zoo)")
def test_resnet50_learns_on_a_few_signs_images(signs):
    from strata.losses import sparse_categorical_crossentropy
    from strata.optim import get_optimizer

    (X, Y), _, _ = signs
    pick = np.concatenate([np.flatnonzero(Y == c)[:3] for c in range(6)])[:16]
    xb, yb = X[pick], Y[pick]
    strata.seed(0)
    model = strata.models.resnet50(input_shape=(64, 64, 3), classes=6)
    model.build((64, 64, 3))
    params = dict(model.named_parameters())
    assert sum(p.size for p in params.values()) == 23_546_886  # the course's trainable count
    optimizer = get_optimizer("adam", list(params.values()), lr=1e-3)
    model.train()
    costs = []
    for step in range(4):
        optimizer.zero_grad()
        cost = sparse_categorical_crossentropy(model(xb), yb)
        costs.append(cost.item())
        if step == 3:
            break
        cost.backward()
        no_grad = [name for name, p in params.items()
                   if p.grad is None or not np.isfinite(p.grad).all() or not np.any(p.grad)]
        assert no_grad == [], f"parameters without a gradient: {no_grad[:5]}"
        optimizer.step()
    assert costs[3] < costs[0], costs  # three Adam steps lower the cost on these images
