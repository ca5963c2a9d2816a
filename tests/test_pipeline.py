"""The background data pipeline: same batches as iterate_minibatches, repeatable under
strata.seed, worker errors reach the consumer, and no thread outlives its epoch."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

import strata
from strata.data import iterate_minibatches
from strata.data.augment import ColorShift, RandomFlip
from strata.data.pipeline import Pipeline

X = np.arange(50 * 3, dtype=np.float32).reshape(50, 3)
Y = np.arange(50)


def collect(pipeline):
    return [(xb.copy(), None if yb is None else yb.copy()) for xb, yb in pipeline]


@pytest.mark.parametrize("prefetch", [0, 1, 3])
def test_same_batches_as_iterate_minibatches(prefetch):
    strata.seed(4)
    expected = list(iterate_minibatches(X, Y, 16))
    after_expected = strata.rng().random()
    strata.seed(4)
    got = collect(Pipeline(X, Y, batch_size=16, prefetch=prefetch))
    assert [len(xb) for xb, _ in got] == [16, 16, 16, 2]
    for (xe, ye), (xg, yg) in zip(expected, got):
        assert np.array_equal(xe, xg) and np.array_equal(ye, yg)
    assert strata.rng().random() == after_expected  # the shared Generator advanced alike


def test_each_epoch_is_reshuffled_and_covers_every_example():
    strata.seed(0)
    p = Pipeline(X, Y, batch_size=8)
    first, second = [np.concatenate([yb for _, yb in p]) for _ in range(2)]
    assert sorted(first) == sorted(second) == list(range(50))
    assert list(first) != list(second)
    unshuffled = np.concatenate([yb for _, yb in Pipeline(X, Y, batch_size=8, shuffle=False)])
    assert list(unshuffled) == list(range(50))


def test_without_labels_yields_none():
    batches = list(Pipeline(X, batch_size=20))
    assert [len(xb) for xb, _ in batches] == [20, 20, 10]
    assert all(yb is None for _, yb in batches)


def slow_transform(xb, rng):
    time.sleep(rng.random() * 0.002)  # uneven timing must not change the results
    return xb + rng.normal(size=xb.shape).astype(xb.dtype)


@pytest.mark.parametrize("prefetch", [0, 2])
def test_reproducible_with_a_transform_under_strata_seed(prefetch):
    runs = []
    for _ in range(2):
        strata.seed(7)
        p = Pipeline(X, Y, batch_size=16, transform=slow_transform, prefetch=prefetch)
        runs.append(collect(p) + collect(p))  # two epochs
    for (xa, ya), (xb, yb) in zip(*runs):
        assert np.array_equal(xa, xb) and np.array_equal(ya, yb)
    assert not np.array_equal(runs[0][0][0], runs[0][4][0])  # epochs draw fresh noise


def test_synchronous_and_threaded_agree():
    images = np.random.default_rng(0).random((10, 4, 4, 3)).astype(np.float32)
    out = []
    for prefetch in (0, 2):
        strata.seed(1)
        t = RandomFlip(0.5)
        out.append(collect(Pipeline(images, batch_size=4, transform=t, prefetch=prefetch)))
    for (a, _), (b, _) in zip(*out):
        assert np.array_equal(a, b)


def test_transform_is_applied_to_x_only():
    images = np.zeros((6, 2, 2, 3), np.float32)
    labels = np.arange(6)
    p = Pipeline(images, labels, batch_size=4, transform=ColorShift(0.5), shuffle=False)
    for k, (xb, yb) in enumerate(p):
        assert 0 < np.abs(xb).max() <= 0.5
        assert np.array_equal(yb, labels[4 * k: 4 * k + 4])


def test_worker_exception_is_raised_in_the_consumer_with_its_traceback():
    def broken(xb, rng):
        if xb[0, 0] >= 0:
            raise ZeroDivisionError("bad batch")
        return xb

    before = threading.active_count()
    with pytest.raises(ZeroDivisionError, match="bad batch") as info:
        list(Pipeline(X, batch_size=8, transform=broken))
    frames = [entry.name for entry in info.traceback]
    assert "broken" in frames and "_fill" in frames  # the worker's frames are kept
    assert "background thread" in "".join(getattr(info.value, "__notes__", ["background thread"]))
    assert threading.active_count() == before


@pytest.mark.parametrize("prefetch", [1, 4])
def test_early_break_stops_the_worker(prefetch):
    before = threading.active_count()
    for k, _ in enumerate(Pipeline(X, batch_size=2, transform=slow_transform,
                                   prefetch=prefetch)):
        assert threading.active_count() == before + 1
        if k == 2:
            break
    assert threading.active_count() == before


def test_unstarted_iterator_starts_no_thread():
    before = threading.active_count()
    it = iter(Pipeline(X, batch_size=8))
    assert threading.active_count() == before
    next(it)
    it.close()
    assert threading.active_count() == before


def test_len_and_attributes():
    p = Pipeline(X, Y, batch_size=16)
    assert len(p) == 4 and p.num_examples == 50
    assert len(Pipeline(X, batch_size=50)) == 1 and len(Pipeline(X, batch_size=1)) == 50
    assert "Pipeline(num_examples=50, batch_size=16" in repr(p)


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(Y=np.zeros(49)), ValueError, "Pipeline: X has 50 examples but Y has 49"),
    (dict(batch_size=0), ValueError, "Pipeline: expected a positive integer batch_size, got 0"),
    (dict(prefetch=-1), ValueError, "Pipeline: expected a non-negative integer prefetch"),
    (dict(transform=3), TypeError, "Pipeline: expected transform to be None or a callable"),
])
def test_bad_arguments_are_rejected(kwargs, error, match):
    with pytest.raises(error, match=match):
        Pipeline(X, **kwargs)


def test_one_dimensional_x_is_rejected():
    with pytest.raises(ValueError, match=r"Pipeline: expected X with at least 2 dimensions .* "
                                         r"got shape \(50,\)"):
        Pipeline(Y)
