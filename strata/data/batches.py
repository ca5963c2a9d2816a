"""Mini-batches (course 2 week 2): shuffle once per epoch, then cut into batches of equal size
and one smaller final batch."""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np

from strata import backend


def _check_pair(X, Y, name: str) -> int:
    m = len(X)
    if Y is not None and len(Y) != m:
        raise ValueError(f"{name}: X has {m} examples but Y has {len(Y)}; the first axis of both "
                         f"counts examples")
    return m


def random_mini_batches(X, Y=None, mini_batch_size: int = 64, shuffle: bool = True,
                        rng=None) -> list[tuple]:
    """The course's random_mini_batches, batch first: a list of (X_batch, Y_batch).

    Examples are shuffled (X and Y alike) with the shared Generator, then cut into
    floor(m / mini_batch_size) full batches and, when m is not a multiple, a last batch of the
    remaining m - mini_batch_size * floor(m / mini_batch_size) examples. ``mini_batch_size=m`` is
    batch gradient descent, 1 is stochastic gradient descent.
    """
    return list(iterate_minibatches(X, Y, mini_batch_size, shuffle, rng))


def iterate_minibatches(X, Y=None, mini_batch_size: int = 64, shuffle: bool = True,
                        rng=None, start: int = 0) -> Iterator[tuple]:
    """Like random_mini_batches, yielding one batch at a time (no list of copies). The order
    is drawn at the call, not at the first batch; ``start`` skips the epoch's first batches
    (fit resuming an interrupted epoch)."""
    m = _check_pair(X, Y, "random_mini_batches")
    if not isinstance(mini_batch_size, (int, np.integer)) or mini_batch_size < 1:
        raise ValueError(f"random_mini_batches: expected a positive integer mini_batch_size, got "
                         f"{mini_batch_size!r}")
    order = (backend.rng() if rng is None else rng).permutation(m) if shuffle else None
    return _batches(X, Y, int(mini_batch_size), order, start)


def _batches(X, Y, size: int, order, start: int) -> Iterator[tuple]:
    for k in range(start, math.ceil(len(X) / size)):
        rows = slice(k * size, (k + 1) * size)
        picked = order[rows] if order is not None else rows
        yield X[picked], (None if Y is None else Y[picked])
