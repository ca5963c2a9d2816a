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


def _noisy(X, noise, rng):
    if noise < 0:
        raise ValueError(f"expected noise >= 0, got {noise}")
    return (X + rng.standard_normal(X.shape) * noise).astype(backend.get_default_dtype())


def _split_counts(m: int, name: str) -> tuple[int, int]:
    if m < 2:
        raise ValueError(f"{name}: expected at least 2 examples, got m={m}")
    return m - m // 2, m // 2


def moons(m: int = 300, noise: float = 0.2, rng=None):
    """Two interleaving half circles (course 2 week 2's optimization data): X (m, 2), Y (m, 1)."""
    rng = backend.rng() if rng is None else rng
    n_out, n_in = _split_counts(m, "moons")
    t_out, t_in = np.linspace(0, np.pi, n_out), np.linspace(0, np.pi, n_in)
    X = np.concatenate([np.c_[np.cos(t_out), np.sin(t_out)],
                        np.c_[1 - np.cos(t_in), 1 - np.sin(t_in) - 0.5]])
    Y = np.r_[np.zeros(n_out), np.ones(n_in)].reshape(-1, 1).astype(backend.get_default_dtype())
    order = rng.permutation(m)
    return _noisy(X, noise, rng)[order], Y[order]


def circles(m: int = 300, noise: float = 0.05, factor: float = 0.8, rng=None):
    """A circle inside a circle (course 2 week 1's initialization data): X (m, 2), Y (m, 1);
    the inner circle (label 1) has radius ``factor``."""
    if not 0 < factor < 1:
        raise ValueError(f"circles: expected 0 < factor < 1, got {factor}")
    rng = backend.rng() if rng is None else rng
    n_out, n_in = _split_counts(m, "circles")
    t_out = np.linspace(0, 2 * np.pi, n_out, endpoint=False)
    t_in = np.linspace(0, 2 * np.pi, n_in, endpoint=False)
    X = np.concatenate([np.c_[np.cos(t_out), np.sin(t_out)],
                        factor * np.c_[np.cos(t_in), np.sin(t_in)]])
    Y = np.r_[np.zeros(n_out), np.ones(n_in)].reshape(-1, 1).astype(backend.get_default_dtype())
    order = rng.permutation(m)
    return _noisy(X, noise, rng)[order], Y[order]
