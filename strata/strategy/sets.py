"""Train, train-dev, dev and test sets when the training data comes from another distribution
than the data you care about (course 3 week 2: 200,000 web images, 10,000 mobile-app images).

Dev and test sets come only from the target distribution (they set the target); what is left of
the target data may join the training set; the train-dev set is carved from the training set
after that, so it has the training distribution but is never trained on.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from strata import backend


class Sets(NamedTuple):
    """The four sets of the course, each an (X, Y) pair."""

    train: tuple
    train_dev: tuple
    dev: tuple
    test: tuple


def _count(size, m: int, name: str) -> int:
    n = round(size * m) if isinstance(size, float) else int(size)
    if not 0 <= n <= m:
        raise ValueError(f"build_sets: expected {name} as a count in [0, {m}] or a fraction in "
                         f"[0, 1], got {size!r}")
    return n


def _pair(data, name: str):
    if not isinstance(data, (tuple, list)) or len(data) != 2 or len(data[0]) != len(data[1]):
        raise ValueError(f"build_sets: expected {name}=(X, Y) with as many rows in X as in Y")
    return np.asarray(data[0]), np.asarray(data[1])


def build_sets(source, target, dev=0.25, test=0.25, target_in_train=1.0, train_dev=None,
               rng=None) -> Sets:
    """Split ``source`` (training distribution) and ``target`` (the distribution that matters).

    ``dev`` and ``test``: counts or fractions of the target data; ``target_in_train``: the
    fraction (or count) of the remaining target data added to training; ``train_dev``: a count or
    fraction of the training set, by default as many examples as the dev set. All sets are drawn
    with the shared seeded generator (``strata.seed``) unless ``rng`` is given.

    The course's example: ``build_sets(web, mobile, dev=2500, test=2500)`` with 200,000 web and
    10,000 mobile images gives dev and test of 2,500 mobile images each and trains on 205,000
    images (less the train-dev set).
    """
    rng = backend.rng() if rng is None else rng
    (X_s, Y_s), (X_t, Y_t) = _pair(source, "source"), _pair(target, "target")
    m_t = len(X_t)
    n_dev, n_test = _count(dev, m_t, "dev"), _count(test, m_t, "test")
    if n_dev < 1 or n_test < 1 or n_dev + n_test > m_t:
        raise ValueError(f"build_sets: dev ({n_dev}) and test ({n_test}) need at least one "
                         f"example each and at most the {m_t} target examples together")
    order = rng.permutation(m_t)
    dev_ids, test_ids = order[:n_dev], order[n_dev:n_dev + n_test]
    rest = order[n_dev + n_test:]
    rest = rest[:_count(target_in_train, len(rest), "target_in_train")]
    X_train = np.concatenate([X_s, X_t[rest]])
    Y_train = np.concatenate([Y_s, Y_t[rest]])
    m = len(X_train)
    n_td = _count(n_dev if train_dev is None else train_dev, m, "train_dev")
    if not 0 < n_td < m:
        raise ValueError(f"build_sets: the train-dev set needs between 1 and {m - 1} of the "
                         f"{m} training examples, got {n_td}")
    mixed = rng.permutation(m)
    held, keep = mixed[:n_td], mixed[n_td:]
    return Sets((X_train[keep], Y_train[keep]), (X_train[held], Y_train[held]),
                (X_t[dev_ids], Y_t[dev_ids]), (X_t[test_ids], Y_t[test_ids]))
