"""SIGNS (course 4): the week-1 ConvNet, a small ConvNet trained with `strata train` to over 90 %
on the course's test set, and ResNet-50 learning on a few images. The data comes from
../shared/datasets (STRATA_DATA); the tests skip without it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import strata
import strata.models
from strata import cli
from strata.data.datasets import load_signs
from strata.models.signs import signs_convnet, small_convnet

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
    assert out.shape == (2, 6)  # softmax probabilities, as the course's model
    np.testing.assert_allclose(out.sum(axis=1), 1, rtol=1e-5)
    assert signs_convnet(classifier_activation=None).layers[-1].activation.__name__ == "linear"
    assert signs_convnet(10, filters=(16, 32)).summary(print_fn=lambda *_: None) == (
        784 + 2080 + 1290)
    lazy = signs_convnet(input_shape=None)
    assert lazy.parameters() == []


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


def test_small_convnet_scores_over_90_percent_on_the_course_test_set(signs, tmp_path):
    """The application: `strata train` on SIGNS, judged on the course's own 120 test images."""
    out = tmp_path / "signs"
    assert cli.main(["train", "--dataset", "signs", "--arch", "small_convnet", "--lr", "0.002",
                     "--lr-decay", "0.93", "--batch-size", "32", "--epochs", "15", "--quiet",
                     "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["test"]["accuracy"] >= 0.90, metrics  # the course's week-1 net: about 0.78
    assert metrics["dev"]["accuracy"] >= 0.90, metrics
    assert "lr 0.002 x 0.93^epoch" in (out / "report.md").read_text()
    model = small_convnet()
    assert [layer.W.shape for layer in model.layers if getattr(layer, "W", None) is not None] \
        == [(3, 3, 3, 16), (3, 3, 16, 32), (3, 3, 32, 64), (1024, 6)]
    with pytest.raises(ValueError, match="one pool size per conv block"):
        small_convnet(filters=(8, 16), pools=(2,))
