"""Cheap objectives for the search tests, importable by worker processes (tests/ on
PYTHONPATH). Not a test module: pytest collects only test_*.py."""

from __future__ import annotations

import math
import os
import time
from pathlib import Path

CALLS = {"n": 0}


def sleepy(params: dict, report=None) -> float:
    """-(log10 lr + 2)^2 after a short sleep; in the process whose STRATA_TUNE_VICTIM is set,
    the second call leaves a mark file and hangs, waiting to be killed."""
    CALLS["n"] += 1
    marks = os.environ.get("STRATA_TUNE_VICTIM")
    if marks and CALLS["n"] == 2:
        Path(marks).write_text(repr(params))
        time.sleep(120)
    time.sleep(0.15)
    return -((math.log10(params["lr"]) + 2) ** 2)


sleepy.hyperparameters = ("lr", "beta")


_MOONS = {}


def _moons():
    if not _MOONS:
        import strata
        from strata.data import moons, train_dev_test_split

        strata.seed(0)
        X, Y = moons(m=400, noise=0.25)
        _MOONS["sets"] = train_dev_test_split(X, Y)[:2]
    return _MOONS["sets"]


def moons_net(params: dict, report=None) -> float:
    """Minus the dev cross-entropy of a 2-16-1 network on moons after a short training: Adam
    with mini-batches (lr, beta1), or full-batch momentum when ``beta`` is given."""
    import strata
    from strata import nn

    train, dev = _moons()
    strata.seed(1)
    model = nn.Sequential([nn.Dense(16, "relu", kernel_initializer="he"),
                           nn.Dense(1, "sigmoid")])
    if "beta" in params:
        model.compile(optimizer="momentum", lr=params["lr"], beta=params["beta"],
                      loss="binary_crossentropy")
        fit = {"epochs": 30, "batch_size": None}
    else:
        model.compile(optimizer="adam", lr=params["lr"], beta1=params.get("beta1", 0.9),
                      loss="binary_crossentropy")
        fit = {"epochs": 8, "batch_size": 32}
    model.fit(*train, verbose=0, **fit)
    return -model.evaluate(*dev)["loss"]


moons_net.hyperparameters = ("lr", "beta", "beta1")


def diverging(params: dict, report=None) -> float:
    """Every trial diverges, as training does with a far too large learning rate."""
    raise FloatingPointError("fit: the cost became nan at iteration 3; lower the learning rate")


diverging.hyperparameters = ("lr",)
