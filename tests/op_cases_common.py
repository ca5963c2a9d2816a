"""Building blocks of the op registry (tests/op_cases.py): the Case record and input samplers.

Every sampler draws float64 arrays from one fixed-seed Generator, so the registry is the same on
every run. Samplers keep inputs away from the places where an op has no derivative (kinks, ties,
zero denominators, non-positive logarithms), because gradient checks are meaningless there.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

try:
    import torch
except ImportError:  # the PyTorch comparisons skip; the registry and gradient checks still work
    torch = None

_rng = np.random.default_rng(20240917)


@dataclass(frozen=True)
class Case:
    """One way of calling an op.

    ``fn`` takes strata Tensors (one per array in ``inputs``) and returns a Tensor; ``torch_fn``
    computes the same with torch tensors (``torch`` is looked up only when it is called).
    ``out_dtype`` is the output dtype when the op fixes it (a cast); None means "the inputs'".
    ``gradcheck`` is False for cases whose float64 gradient cannot be checked numerically.
    """

    op: str
    name: str
    fn: Callable
    torch_fn: Callable
    inputs: tuple[np.ndarray, ...]
    out_dtype: type | None = None
    gradcheck: bool = True

    @property
    def id(self) -> str:
        return f"{self.op}-{self.name}"


def case_id(case: Case) -> str:
    """pytest id of a case."""
    return case.id


def _f64(x) -> np.ndarray:
    return np.asarray(x, dtype=np.float64)


def normal(*shape) -> np.ndarray:
    """Standard normal values (smooth ops)."""
    return _f64(_rng.standard_normal(shape))


def positive(*shape) -> np.ndarray:
    """Values in [0.5, 2]: bases of log, sqrt and pow."""
    return _f64(_rng.uniform(0.5, 2.0, shape))


def nonzero(*shape) -> np.ndarray:
    """Values with 0.5 <= |x| <= 2: denominators."""
    return _f64(_rng.choice([-1.0, 1.0], shape) * _rng.uniform(0.5, 2.0, shape))


def avoiding(*shape, points=(0.0,), gap: float = 0.1) -> np.ndarray:
    """Uniform on [-2, 2], every value at least ``gap`` away from each of ``points`` (kinks)."""
    x = _f64(_rng.uniform(-2.0, 2.0, shape))
    while True:
        bad = np.zeros(shape, dtype=bool)
        for p in points:
            bad |= np.abs(x - p) < gap
        if not bad.any():
            return x
        x[bad] = _rng.uniform(-2.0, 2.0, int(bad.sum()))


def distinct(*shape) -> np.ndarray:
    """Values at least 0.2 apart in random order: max/min reductions without ties."""
    n = int(np.prod(shape, dtype=np.int64))
    values = 0.2 * _rng.permutation(n) - 0.1 * n + _rng.uniform(0.0, 0.05, n)
    return _f64(values.reshape(shape))


def interleaved(shape_a, shape_b) -> tuple[np.ndarray, np.ndarray]:
    """A pair with |a - b| >= 0.15 wherever they meet after broadcasting, each of a and b
    larger somewhere (maximum/minimum send gradient to both).

    a lies within 0.05 of an odd multiple of 0.25, b within 0.05 of a multiple of 0.5.
    """
    while True:
        a = 0.5 * _rng.integers(-4, 4, shape_a) + 0.25 + _rng.uniform(-0.05, 0.05, shape_a)
        b = 0.5 * _rng.integers(-4, 4, shape_b) + _rng.uniform(-0.05, 0.05, shape_b)
        a_wins = np.greater(a, b)
        if a_wins.any() and not a_wins.all():
            return _f64(a), _f64(b)


def mask(*shape) -> np.ndarray:
    """A fixed boolean array with both values present (where conditions, boolean indexing)."""
    while True:
        m = _rng.random(shape) < 0.5
        if m.any() and not m.all():
            return m
