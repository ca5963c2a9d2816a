"""Train/dev/test splits (course 2 week 1, course 3): sizes by the course's guidance, and a
train-dev set carved from the training distribution."""

from __future__ import annotations

import numpy as np

from strata import backend

#: Dev and test sets need only be big enough for confident decisions: about 10,000 examples.
ENOUGH_FOR_DEV = 10_000


def suggested_ratios(m: int) -> tuple[float, float, float]:
    """(train, dev, test) shares: 60/20/20 for small data (up to 50,000 examples); beyond, dev and
    test keep about 10,000 examples each (80/10/10 at 100,000), never below 1 % each (98/1/1 at
    a million and beyond), as the course recommends."""
    if m < 3:
        raise ValueError(f"suggested_ratios: expected at least 3 examples, got {m}")
    share = min(0.2, max(0.01, ENOUGH_FOR_DEV / m))  # dev and test of ~10,000 once m is large
    return 1 - 2 * share, share, share


def _sizes(m: int, ratios) -> tuple[int, int, int]:
    ratios = tuple(float(r) for r in ratios)
    if len(ratios) != 3 or min(ratios) < 0 or abs(sum(ratios) - 1) > 1e-9:
        raise ValueError(f"train_dev_test_split: expected three non-negative ratios summing to "
                         f"1, got {ratios}")
    n_dev, n_test = round(m * ratios[1]), round(m * ratios[2])
    return m - n_dev - n_test, n_dev, n_test


def train_dev_test_split(X, Y, ratios=None, shuffle: bool = True, rng=None):
    """Split (X, Y) into ((X_train, Y_train), (X_dev, Y_dev), (X_test, Y_test)).

    ``ratios`` defaults to ``suggested_ratios(m)``. Dev and test come from one shuffled pool, so
    they share a distribution, as they must.
    """
    m = len(X)
    if len(Y) != m:
        raise ValueError(f"train_dev_test_split: X has {m} examples but Y has {len(Y)}")
    n_train, n_dev, _ = _sizes(m, suggested_ratios(m) if ratios is None else ratios)
    order = (backend.rng() if rng is None else rng).permutation(m) if shuffle else np.arange(m)
    parts = np.split(order, [n_train, n_train + n_dev])
    return tuple((X[p], Y[p]) for p in parts)


def carve_train_dev(X_train, Y_train, size, rng=None):
    """Set aside a train-dev set: same distribution as training, but not trained on.

    ``size`` is a count or a fraction of the training set. Returns ((X_train, Y_train),
    (X_train_dev, Y_train_dev)). Comparing train-dev error with dev error separates variance
    from data mismatch.
    """
    m = len(X_train)
    n = round(size * m) if isinstance(size, float) else int(size)
    if not 0 < n < m:
        raise ValueError(f"carve_train_dev: expected a size between 1 and {m - 1} examples (or a "
                         f"fraction in (0, 1)), got {size!r}")
    order = (backend.rng() if rng is None else rng).permutation(m)
    keep, held = order[n:], order[:n]
    return (X_train[keep], Y_train[keep]), (X_train[held], Y_train[held])
