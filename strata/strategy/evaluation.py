"""Setting up the goal (course 3 week 1): a single-number evaluation metric, a weighted error
where some mistakes cost more, and one optimizing metric subject to satisficing constraints."""

from __future__ import annotations

import operator
import time
from dataclasses import dataclass, field

import numpy as np

from strata.metrics import _as_classes


def f1_from(precision: float, recall: float) -> float:
    """F1 = 2 / (1/P + 1/R), the harmonic mean: one number from precision and recall.

    >>> round(f1_from(0.95, 0.90), 4)
    0.9243
    """
    for name, value in (("precision", precision), ("recall", recall)):
        if not 0 <= value <= 1:
            raise ValueError(f"f1_from: expected {name} in [0, 1], got {value}")
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


def weighted_error(y_true, y_pred, weights, threshold: float = 0.5) -> float:
    """(1 / sum w) sum_i w(i) 1{y_hat(i) != y(i)}: mistakes on heavier examples cost more.

    ``weights`` holds one non-negative weight per example (the course: 10 where the image is
    pornographic, 1 elsewhere); predictions are read as ``strata.metrics`` reads them.
    """
    t = _as_classes(y_true, "y_true", "weighted_error", threshold)
    p = _as_classes(y_pred, "y_pred", "weighted_error", threshold)
    w = np.asarray(weights, dtype=np.float64).reshape(-1)
    if not len(t) == len(p) == len(w):
        raise ValueError(f"weighted_error: expected as many labels, predictions and weights, "
                         f"got {len(t)}, {len(p)} and {len(w)}")
    if (w < 0).any() or w.sum() <= 0:
        raise ValueError("weighted_error: expected non-negative weights with a positive sum")
    return float(np.sum(w * (t != p)) / w.sum())


def time_per_example(predict, X, repeats: int = 5, batch_size: int = 1,
                     max_examples: int = 100) -> float:
    """Measured running time of ``predict`` in milliseconds per example, median of ``repeats``
    passes over (at most ``max_examples`` of) X in batches of ``batch_size`` (1: the latency
    of classifying one example, as a user waits for it)."""
    X = np.asarray(X)[:max_examples]
    size = batch_size
    predict(X[:size])  # warm-up: first-call allocations and compilation are not steady state
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for i in range(0, len(X), size):
            predict(X[i:i + size])
        times.append(time.perf_counter() - start)
    return float(np.median(times)) * 1000 / len(X)


OPERATORS = {"<=": operator.le, "<": operator.lt, ">=": operator.ge, ">": operator.gt}


@dataclass
class Choice:
    """The result of ``choose``: the chosen candidate's name and every candidate's verdict."""

    best: str | None
    table: list = field(default_factory=list)

    def __str__(self) -> str:
        rows = [f"{r['name']:<16}" + "  ".join(f"{k} {v:g}" for k, v in r["metrics"].items())
                + ("" if r["feasible"] else f"   fails {', '.join(r['violated'])}")
                for r in self.table]
        return "\n".join(rows + [f"chosen: {self.best}"])


def choose(candidates: dict, optimizing: str, satisficing: dict | None = None,
           maximize: bool = True) -> Choice:
    """Pick the candidate with the best ``optimizing`` metric among those meeting every
    satisficing constraint, e.g. ``{"ms_per_example": ("<=", 100)}``.

    ``candidates`` maps a name to its metrics dict. The course's cat classifiers
    A (90 %, 80 ms), B (92 %, 95 ms), C (95 %, 1,500 ms) with running time <= 100 ms give B.
    """
    satisficing = satisficing or {}
    table = []
    for name, metrics in candidates.items():
        missing = [k for k in [optimizing, *satisficing] if k not in metrics]
        if missing:
            raise ValueError(f"choose: candidate {name!r} lacks metric(s) {missing}; it has "
                             f"{sorted(metrics)}")
        violated = []
        for key, (op, bound) in satisficing.items():
            if op not in OPERATORS:
                raise ValueError(f"choose: expected an operator among {list(OPERATORS)} for "
                                 f"{key!r}, got {op!r}")
            if not OPERATORS[op](metrics[key], bound):
                violated.append(f"{key} {op} {bound:g}")
        table.append({"name": name, "metrics": dict(metrics), "feasible": not violated,
                      "violated": violated})
    feasible = [r for r in table if r["feasible"]]
    sign = 1 if maximize else -1
    best = max(feasible, key=lambda r: sign * r["metrics"][optimizing])["name"] if feasible \
        else None
    return Choice(best, table)


def choose_model(models: dict, X, Y, max_ms_per_example: float = 100.0,
                 repeats: int = 3, batch_size: int = 1) -> Choice:
    """Measure each model's accuracy on (X, Y) and running time per example, then maximize
    accuracy subject to ``ms_per_example <= max_ms_per_example``."""
    from strata.strategy.diagnosis import classification_error

    candidates = {name: {"accuracy": 1 - classification_error(model, X, Y),
                         "ms_per_example": time_per_example(model.predict, X, repeats,
                                                            batch_size)}
                  for name, model in models.items()}
    return choose(candidates, "accuracy", {"ms_per_example": ("<=", max_ms_per_example)})
