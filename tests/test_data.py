"""Generated data sets, mini-batches, splits and normalization."""

from __future__ import annotations

import numpy as np
import pytest

import strata
from strata.data import (
    Normalizer,
    carve_train_dev,
    circles,
    iterate_minibatches,
    moons,
    random_mini_batches,
    suggested_ratios,
    train_dev_test_split,
)


def test_mini_batches_cover_every_example_once_with_a_partial_last_batch():
    X = np.arange(148 * 2).reshape(148, 2)
    Y = np.arange(148).reshape(148, 1)
    strata.seed(0)
    batches = random_mini_batches(X, Y, mini_batch_size=64)
    assert [len(b[0]) for b in batches] == [64, 64, 20]  # the course's m = 148 example
    seen = np.concatenate([y for _, y in batches]).ravel()
    assert sorted(seen) == list(range(148)) and list(seen) != list(range(148))
    for xb, yb in batches:  # X and Y are shuffled alike
        assert (xb[:, 0] == 2 * yb[:, 0]).all()


def test_mini_batch_extremes_and_errors():
    X = np.zeros((10, 3))
    assert len(random_mini_batches(X, None, 10)) == 1  # batch gradient descent
    assert len(list(iterate_minibatches(X, None, 1))) == 10  # stochastic gradient descent
    first = next(iterate_minibatches(np.arange(10), None, 4, shuffle=False))[0]
    assert list(first) == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="X has 10 examples but Y has 9"):
        random_mini_batches(X, np.zeros(9))
    with pytest.raises(ValueError, match="positive integer mini_batch_size, got 0"):
        random_mini_batches(X, None, 0)


def test_splits_follow_the_course_guidance():
    assert suggested_ratios(1_000) == (0.6, 0.2, 0.2)
    assert suggested_ratios(100_000) == pytest.approx((0.8, 0.1, 0.1))
    assert suggested_ratios(2_000_000) == pytest.approx((0.98, 0.01, 0.01))
    X, Y = np.arange(1000).reshape(-1, 1), np.arange(1000)
    strata.seed(0)
    (Xtr, Ytr), (Xd, Yd), (Xte, Yte) = train_dev_test_split(X, Y)
    assert (len(Xtr), len(Xd), len(Xte)) == (600, 200, 200)
    assert sorted(np.concatenate([Ytr, Yd, Yte])) == list(range(1000))
    assert (Xd[:, 0] == Yd).all()
    with pytest.raises(ValueError, match="summing to 1"):
        train_dev_test_split(X, Y, ratios=(0.5, 0.2, 0.2))


def test_train_dev_is_carved_from_training_data():
    X, Y = np.arange(100).reshape(-1, 1), np.arange(100)
    (Xtr, Ytr), (Xtd, Ytd) = carve_train_dev(X, Y, 0.1)
    assert len(Xtd) == 10 and len(Xtr) == 90
    assert not set(Ytr) & set(Ytd)
    with pytest.raises(ValueError, match="between 1 and 99"):
        carve_train_dev(X, Y, 100)


def test_normalizer_uses_training_statistics_everywhere():
    rng = np.random.default_rng(0)
    train = rng.normal(5, 3, (500, 4)).astype(np.float32)
    dev = rng.normal(5, 3, (100, 4)).astype(np.float32)
    norm = Normalizer().fit(train)
    out = norm.transform(train)
    np.testing.assert_allclose(out.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(out.std(axis=0), 1, atol=1e-4)
    expected = (dev - train.mean(axis=0)) / np.sqrt(train.var(axis=0) + 1e-8)
    np.testing.assert_allclose(norm.transform(dev), expected, rtol=1e-4)
    assert norm.transform(dev).dtype == np.float32
    with pytest.raises(ValueError, match=r"fitted on examples of shape \(4,\), got \(3,\)"):
        norm.transform(np.zeros((2, 3)))
    with pytest.raises(RuntimeError, match="fit"):
        Normalizer().transform(dev)
    with pytest.raises(ValueError, match="NaN"):
        Normalizer().fit(np.array([[np.nan], [1.0]]))


@pytest.mark.parametrize("make, radius_check", [(moons, False), (circles, True)])
def test_generated_two_class_data(make, radius_check):
    strata.seed(0)
    X, Y = make(m=300, noise=0.0)
    assert X.shape == (300, 2) and Y.shape == (300, 1) and Y.sum() == 150
    if radius_check:  # without noise: outer radius 1, inner radius 0.8
        r = np.linalg.norm(X, axis=1)
        np.testing.assert_allclose(r[Y[:, 0] == 0], 1, atol=1e-6)
        np.testing.assert_allclose(r[Y[:, 0] == 1], 0.8, atol=1e-6)
    with pytest.raises(ValueError, match="noise >= 0"):
        make(m=10, noise=-1)
