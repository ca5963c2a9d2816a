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
