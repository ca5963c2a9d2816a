"""Each optimizer, driven by strata's own backward pass, minimizes a quadratic bowl and reaches
the minimum (1, 1) of the Rosenbrock function from (-1, 1) in a bounded number of steps."""

from __future__ import annotations

import numpy as np
import pytest

import strata
from strata.optim import GD, Adam, Momentum, RMSprop


def _minimize(f, w, opt, steps, schedule=None):
    for step in range(steps):
        if schedule is not None:
            opt.lr = schedule(step)
        opt.zero_grad()
        f(w).backward()
        opt.step()
    return f(w).item()


def _quadratic(a, c):
    return lambda w: (strata.tensor(a) * (w - strata.tensor(c)) ** 2).sum()


QUADRATIC = [(GD, {"lr": 0.1}, 100, 1e-6), (Momentum, {"lr": 0.1, "beta": 0.9}, 400, 1e-6),
             (RMSprop, {"lr": 0.01, "beta2": 0.9}, 400, 2e-2),
             (Adam, {"lr": 0.05}, 400, 1e-3)]


@pytest.mark.parametrize("cls, kwargs, steps, tolerance", QUADRATIC,
                         ids=[q[0].__name__ for q in QUADRATIC])
def test_minimizes_a_quadratic(cls, kwargs, steps, tolerance):
    rng = np.random.default_rng(0)
    a, c = rng.uniform(1.0, 4.0, 10), rng.uniform(-2.0, 2.0, 10)
    w = strata.tensor(np.zeros(10), requires_grad=True)
    f = _quadratic(a, c)
    start = f(w).item()
    final = _minimize(f, w, cls([w], **kwargs), steps)
    assert final < 1e-3 * start
    np.testing.assert_allclose(w.data, c, atol=tolerance)


def test_quadratic_in_float32_stays_float32():
    w = strata.tensor(np.zeros(4, dtype=np.float32), requires_grad=True)
    c = np.array([1.0, -1.0, 2.0, 0.5], dtype=np.float32)
    f = _quadratic(np.ones(4, dtype=np.float32), c)
    _minimize(f, w, Adam([w], lr=0.05), 300)
    assert w.dtype == np.float32
    np.testing.assert_allclose(w.data, c, atol=1e-2)


def rosenbrock(w):
    """(1 - x)^2 + 100 (y - x^2)^2: a curved valley with its minimum 0 at (1, 1)."""
    x, y = w[0], w[1]
    return (1 - x) ** 2 + 100 * (y - x * x) ** 2


# Steps and tolerances measured with some margin; GD alone needs far more steps in the valley.
ROSENBROCK = [(Adam, {"lr": 0.01}, 1500, 1e-3),
              (Momentum, {"lr": 0.004, "beta": 0.95}, 3000, 2e-2),
              (RMSprop, {"lr": 0.003, "beta2": 0.999}, 3000, 6e-2)]


@pytest.mark.parametrize("cls, kwargs, steps, tolerance", ROSENBROCK,
                         ids=[r[0].__name__ for r in ROSENBROCK])
def test_reaches_the_rosenbrock_minimum(cls, kwargs, steps, tolerance):
    w = strata.tensor(np.array([-1.0, 1.0]), requires_grad=True)
    assert rosenbrock(w).item() == pytest.approx(4.0)
    final = _minimize(rosenbrock, w, cls([w], **kwargs), steps)
    np.testing.assert_allclose(w.data, [1.0, 1.0], atol=tolerance)
    assert final < 1e-3


def test_gd_descends_the_rosenbrock_valley_steadily():
    # With lr below 1 / (the curvature along its path) each GD step lowers the cost; reaching
    # (1, 1) along the flat valley floor takes it tens of thousands of steps, so only check
    # that it descends steadily and has turned the valley's bend.
    w = strata.tensor(np.array([-1.0, 1.0]), requires_grad=True)
    opt = GD([w], lr=0.001)
    costs = [_minimize(rosenbrock, w, opt, 100) for _ in range(10)]
    assert costs == sorted(costs, reverse=True) and costs[-1] < 0.5 and w.data[0] > 0
