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
