"""Datasets generated on the fly, as in the course's notebooks."""

from __future__ import annotations

import numpy as np

from strata import backend


def planar_flower(m: int = 400, petals: int = 4, noise: float = 0.2, rng=None):
    """The course's 2-class "flower" of course 1 week 3, batch first: X (m, 2), Y (m, 1).

    Each class fills alternate petals of r = petals * sin(4 t); points are jittered by ``noise``.
    Not linearly separable: logistic regression gets about 47 %, a 4-unit tanh network about 90 %.

    >>> X, Y = planar_flower(m=400)
    >>> X.shape, Y.shape
    ((400, 2), (400, 1))
    """
    if m < 2 or m % 2:
        raise ValueError(f"planar_flower: expected an even number of examples m >= 2, got {m}")
    if noise < 0:
        raise ValueError(f"planar_flower: expected noise >= 0, got {noise}")
    rng = backend.rng() if rng is None else rng
    half = m // 2
    X = np.zeros((m, 2), dtype=backend.get_default_dtype())
    Y = np.zeros((m, 1), dtype=backend.get_default_dtype())
    for j in range(2):
        rows = slice(half * j, half * (j + 1))
        t = np.linspace(j * 3.12, (j + 1) * 3.12, half) + rng.standard_normal(half) * noise
        r = petals * np.sin(4 * t) + rng.standard_normal(half) * noise
        X[rows] = np.c_[r * np.sin(t), r * np.cos(t)]
        Y[rows] = j
    return X, Y


def _two_class(make, name: str, m: int, noise: float, rng, **kwargs):
    """X (m, 2), Y (m, 1) from scikit-learn's generator ``make``: the first class (label 0) gets
    the extra example when m is odd; the seed is an int drawn from ``rng`` (strata's Generator
    when None), so ``strata.seed`` makes the data repeatable."""
    if m < 2:
        raise ValueError(f"{name}: expected at least 2 examples, got m={m}")
    if not noise >= 0:
        raise ValueError(f"{name}: expected noise >= 0, got {noise}")
    seed = int((backend.rng() if rng is None else rng).integers(2 ** 32))
    X, y = make(n_samples=(m - m // 2, m // 2), noise=noise, random_state=seed, **kwargs)
    dtype = backend.get_default_dtype()
    return X.astype(dtype), y.reshape(-1, 1).astype(dtype)


def moons(m: int = 300, noise: float = 0.2, rng=None):
    """Two interleaving half circles (course 2 week 2's optimization data, scikit-learn's
    ``make_moons`` as in the course): X (m, 2), Y (m, 1), shuffled."""
    from sklearn.datasets import make_moons  # noqa: PLC0415 -- slow import

    return _two_class(make_moons, "moons", m, noise, rng)


def circles(m: int = 300, noise: float = 0.05, factor: float = 0.8, rng=None):
    """A circle inside a circle (course 2 week 1's initialization data, scikit-learn's
    ``make_circles`` as in the course): X (m, 2), Y (m, 1), shuffled; the inner circle
    (label 1) has radius ``factor``."""
    if not 0 < factor < 1:
        raise ValueError(f"circles: expected 0 < factor < 1, got {factor}")
    from sklearn.datasets import make_circles  # noqa: PLC0415 -- slow import

    return _two_class(make_circles, "circles", m, noise, rng, factor=factor)
