"""Weight initializers of course 2 week 1, by name or as callables ``(shape) -> array``.

fan_in (the course's n^[l-1]) is the number of inputs to a unit: shape[0] for a Dense kernel
(n_prev, n), f * f * n_C_prev for a conv kernel (f, f, n_C_prev, n_C).
"""

from __future__ import annotations

import math

import numpy as np

from strata import backend
from strata.naming import lookup


def _fans(shape) -> tuple[int, int]:
    if len(shape) < 2:
        raise ValueError(f"initializer: expected a kernel shape with at least 2 dims, got {shape}")
    receptive = math.prod(shape[:-2])
    return shape[-2] * receptive, shape[-1] * receptive


def _normal(shape, std):
    return (backend.rng().standard_normal(shape) * std).astype(backend.get_default_dtype())


def zeros(shape) -> np.ndarray:
    """All zeros: fine for biases, fails to break symmetry for weights (every unit learns alike)."""
    return np.zeros(shape, dtype=backend.get_default_dtype())


class RandomNormal:
    """np.random.randn(shape) * scale; the course's "random" initialization uses scale 0.01
    (its week-1 assignment also tries 10, to show what large weights do)."""

    def __init__(self, scale: float = 0.01):
        if not scale > 0:
            raise ValueError(f"RandomNormal: expected scale > 0, got {scale}")
        self.scale = scale

    def __call__(self, shape) -> np.ndarray:
        return _normal(shape, self.scale)

    @property
    def name(self) -> str:
        """How a saved config names it: "random:<scale>" (get_initializer reads it back)."""
        return f"random:{self.scale!r}"


def xavier(shape) -> np.ndarray:
    """randn * sqrt(1 / n_prev): Xavier initialization, as the course writes it (for tanh)."""
    return _normal(shape, math.sqrt(1 / _fans(shape)[0]))


def glorot(shape) -> np.ndarray:
    """randn * sqrt(2 / (n_prev + n)): Glorot and Bengio's variant."""
    fan_in, fan_out = _fans(shape)
    return _normal(shape, math.sqrt(2 / (fan_in + fan_out)))


def he(shape) -> np.ndarray:
    """randn * sqrt(2 / n_prev): He initialization, for ReLU layers."""
    return _normal(shape, math.sqrt(2 / _fans(shape)[0]))


def orthogonal(shape) -> np.ndarray:
    """A random matrix with orthonormal columns (or rows, whichever are fewer): the default for
    recurrent weights, whose repeated products then neither explode nor vanish at first."""
    if len(shape) != 2:
        raise ValueError(f"orthogonal: expected a matrix shape (n_in, n_out), got {shape}")
    rows, cols = shape
    q, r = np.linalg.qr(backend.rng().standard_normal((max(rows, cols), min(rows, cols))))
    q *= np.sign(np.diag(r))  # a uniform draw over orthogonal matrices (Mezzadri 2007)
    return (q if rows >= cols else q.T).astype(backend.get_default_dtype())


INITIALIZERS = {"zeros": zeros, "random": RandomNormal(), "xavier": xavier, "glorot": glorot,
                "bengio": glorot, "he": he, "orthogonal": orthogonal}


def get_initializer(init):
    """An initializer from its name ("zeros", "random", "xavier", "glorot", "bengio", "he",
    "orthogonal", or "random:0.5" for RandomNormal(0.5)) or a callable ``shape -> array``,
    returned as is."""
    if isinstance(init, str) and init.lower().startswith("random:"):
        try:
            return RandomNormal(float(init.split(":", 1)[1]))
        except ValueError:
            raise ValueError(f"unknown initializer {init!r}: expected random:<scale> with a "
                             f"scale > 0, such as random:0.01") from None
    return lookup(INITIALIZERS, init, "initializer")
