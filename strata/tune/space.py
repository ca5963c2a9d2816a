"""Search spaces on the course's scales (course 2 week 3, "using an appropriate scale").

Each hyperparameter is sampled uniformly in a *raw* coordinate where uniform is right:

| kind            | hyperparameter                 | raw coordinate, sampled uniformly     |
|-----------------|--------------------------------|---------------------------------------|
| ``int``         | layers, hidden units           | the integer itself                    |
| ``uniform``     | keep_prob                      | the value itself                      |
| ``log``         | learning rate in [1e-4, 1]     | log10(value): as many per decade      |
| ``one_minus_log`` | beta in [0.9, 0.999]         | log10(1 - beta): dense near 0.999     |
| ``pow2``        | mini-batch size in [16, 512]   | log2(value), an integer               |
| ``choice``      | optimizer                      | one of the listed values              |

Optuna and Ray Tune both sample the raw coordinates (Optuna's ``log=True`` is uniform in log
space); ``decode`` turns them into hyperparameters. Coarse-to-fine narrowing works on them too.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace

KINDS = ("int", "uniform", "log", "one_minus_log", "pow2", "choice")
#: Hyperparameters valid only in a fixed range whatever the objective: name -> (test, range).
RANGES = {"keep_prob": (lambda v: 0 < v <= 1, "in (0, 1]")}


def range_problem(name: str, value) -> str | None:
    """What is wrong with ``value`` for a hyperparameter of ``RANGES`` (None: nothing), e.g.
    a keep_prob of 1.5: a dropout layer keeps a fraction of units, at most all of them."""
    if name not in RANGES:
        return None
    ok, expected = RANGES[name]
    if isinstance(value, (int, float)) and not isinstance(value, bool) and ok(value):
        return None
    return f"hyperparameter {name!r}: expected values {expected}, got {value!r}"


@dataclass(frozen=True)
class Dimension:
    """One hyperparameter: its name, kind (see ``KINDS``), range [low, high] or choices."""

    name: str
    kind: str
    low: float | None = None
    high: float | None = None
    choices: tuple = ()

    def __post_init__(self):
        check_dimension(self)

    @property
    def raw_name(self) -> str:
        """The name of the raw coordinate in the study ("1-beta", "log2(batch_size)")."""
        return {"one_minus_log": f"1-{self.name}", "pow2": f"log2({self.name})"}.get(
            self.kind, self.name)

    @property
    def raw_range(self) -> tuple:
        """(low, high) of the raw coordinate (log kinds: before taking logs)."""
        if self.kind == "one_minus_log":
            return 1 - self.high, 1 - self.low
        if self.kind == "pow2":
            return int(math.log2(self.low)), int(math.log2(self.high))
        return self.low, self.high

    @property
    def log_scale(self) -> bool:
        """Whether the raw coordinate is sampled uniformly in its logarithm."""
        return self.kind in ("log", "one_minus_log")

    def decode(self, raw):
        """The hyperparameter's value from its raw coordinate."""
        if self.kind == "one_minus_log":
            return 1 - raw
        if self.kind == "pow2":
            return 2 ** int(raw)
        if self.kind == "int":
            return int(raw)
        return raw if self.kind == "choice" else float(raw)

    def optuna_distribution(self):
        """The Optuna distribution of the raw coordinate."""
        from optuna.distributions import (
            CategoricalDistribution,
            FloatDistribution,
            IntDistribution,
        )

        if self.kind == "choice":
            return CategoricalDistribution(self.choices)
        low, high = self.raw_range
        if self.kind in ("int", "pow2"):
            return IntDistribution(int(low), int(high))
        return FloatDistribution(low, high, log=self.log_scale)

    def ray_distribution(self):
        """The same raw distribution in Ray Tune's terms."""
        from ray import tune

        if self.kind == "choice":
            return tune.choice(list(self.choices))
        low, high = self.raw_range
        if self.kind in ("int", "pow2"):
            return tune.randint(int(low), int(high) + 1)  # Ray's upper bound is exclusive
        return tune.loguniform(low, high) if self.log_scale else tune.uniform(low, high)

    def narrowed(self, raws: list, margin: float = 0.1) -> Dimension:
        """This dimension shrunk to the span of ``raws`` (raw values of the best trials), padded
        by ``margin`` of the original raw width (in log space for log kinds), within range."""
        if self.kind == "choice":
            kept = tuple(c for c in self.choices if c in set(raws))
            return replace(self, choices=kept or self.choices)
        to, back = ((math.log10, lambda v: 10 ** v) if self.log_scale
                    else (float, float))
        low, high = (to(v) for v in self.raw_range)
        pad = margin * (high - low)
        lo = max(low, min(to(r) for r in raws) - pad)
        hi = min(high, max(to(r) for r in raws) + pad)
        if self.kind in ("int", "pow2"):
            lo, hi = math.floor(lo), math.ceil(hi)
        lo, hi = back(lo), back(hi)
        if self.kind == "one_minus_log":
            return replace(self, low=1 - hi, high=1 - lo)
        if self.kind == "pow2":
            return replace(self, low=2 ** int(lo), high=2 ** int(hi))
        if self.kind == "int":
            return replace(self, low=int(lo), high=int(hi))
        return replace(self, low=lo, high=hi)


def check_dimension(d: Dimension) -> None:
    """Raise ValueError naming the hyperparameter when its kind or range is invalid."""
    where = f"hyperparameter {d.name!r}"
    if not (isinstance(d.name, str) and re.fullmatch(r"\w[\w.-]{0,99}", d.name)):
        raise ValueError(f"{where}: expected a name of letters, digits, '_', '-' and '.' (it "
                         f"names the plot score_vs_<name>.png), at most 100 characters")
    if d.kind not in KINDS:
        raise ValueError(f"{where}: unknown kind {d.kind!r}; expected one of {', '.join(KINDS)}")
    if d.kind == "choice":
        if not d.choices:
            raise ValueError(f"{where}: expected a non-empty list of choices")
        for value in d.choices:
            if problem := range_problem(d.name, value):
                raise ValueError(problem)
        return
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (d.low, d.high)):
        raise ValueError(f"{where}: expected a range [low, high] of numbers, got "
                         f"[{d.low!r}, {d.high!r}]")
    if not d.low < d.high:
        raise ValueError(f"{where}: expected low < high, got [{d.low}, {d.high}]")
    if d.kind == "log" and d.low <= 0:
        raise ValueError(f"{where}: a log scale needs low > 0, got {d.low}")
    if d.kind == "one_minus_log" and not 0 <= d.low < d.high < 1:
        raise ValueError(f"{where}: the 1 - beta log scale needs 0 <= low < high < 1, got "
                         f"[{d.low}, {d.high}]")
    if d.kind in ("int", "pow2") and not all(float(v).is_integer() for v in (d.low, d.high)):
        raise ValueError(f"{where}: expected integer bounds, got [{d.low}, {d.high}]")
    if d.kind == "pow2" and not all(v >= 1 and math.log2(v).is_integer()
                                    for v in (d.low, d.high)):
        raise ValueError(f"{where}: expected powers of two as bounds (16, 32, ...), got "
                         f"[{d.low}, {d.high}]")
    for value in (d.low, d.high):  # every kind samples values between low and high
        if problem := range_problem(d.name, value):
            raise ValueError(f"{problem} (range [{d.low}, {d.high}])")


@dataclass(frozen=True)
class Space:
    """A search space: an ordered tuple of Dimensions."""

    dimensions: tuple

    def __iter__(self):
        return iter(self.dimensions)

    def __getitem__(self, name: str) -> Dimension:
        for d in self.dimensions:
            if d.name == name:
                return d
        raise KeyError(f"no hyperparameter {name!r} in the space; it has "
                       f"{[d.name for d in self.dimensions]}")

    @property
    def names(self) -> list:
        """The hyperparameters' names, in order."""
        return [d.name for d in self.dimensions]

    def optuna_distributions(self) -> dict:
        """Raw name -> Optuna distribution."""
        return {d.raw_name: d.optuna_distribution() for d in self.dimensions}

    def suggest(self, trial) -> dict:
        """Sample every raw coordinate with an Optuna trial; returns the hyperparameters."""
        from optuna.distributions import CategoricalDistribution, FloatDistribution

        raws = {}
        for d in self.dimensions:
            dist = d.optuna_distribution()
            if isinstance(dist, CategoricalDistribution):
                raws[d.raw_name] = trial.suggest_categorical(d.raw_name, dist.choices)
            elif isinstance(dist, FloatDistribution):
                raws[d.raw_name] = trial.suggest_float(d.raw_name, dist.low, dist.high,
                                                       log=dist.log)
            else:
                raws[d.raw_name] = trial.suggest_int(d.raw_name, dist.low, dist.high)
        return self.decode(raws)

    def decode(self, raws: dict) -> dict:
        """Hyperparameters from raw coordinates (missing ones are left out)."""
        return {d.name: d.decode(raws[d.raw_name]) for d in self.dimensions
                if d.raw_name in raws}

    def ray_space(self) -> dict:
        """Raw name -> Ray Tune distribution, for ``tune.Tuner(param_space=...)``."""
        return {d.raw_name: d.ray_distribution() for d in self.dimensions}

    def narrowed(self, raw_rows: list, margin: float = 0.1) -> Space:
        """Every dimension shrunk around the raw parameter dicts of the best trials."""
        if not raw_rows:
            return self
        return Space(tuple(d.narrowed([r[d.raw_name] for r in raw_rows if d.raw_name in r]
                                      or [d.raw_range[0], d.raw_range[1]], margin)
                           for d in self.dimensions))

    def to_dict(self) -> dict:
        """A JSON-able description (kept in the study, so resumed rounds reuse it)."""
        return {d.name: ({"choice": list(d.choices)} if d.kind == "choice"
                         else {d.kind: [d.low, d.high]}) for d in self.dimensions}

    @classmethod
    def from_dict(cls, spec: dict) -> Space:
        """The inverse of ``to_dict``: ``{"lr": {"log": [1e-4, 1]}, ...}``."""
        return cls(tuple(make_dimension(name, value) for name, value in spec.items()))


def make_dimension(name: str, value) -> Dimension:
    """A Dimension from its file form: ``{log = [1e-4, 1]}`` or ``{choice = ["adam", "gd"]}``."""
    if not isinstance(value, dict) or len(value) != 1:
        raise ValueError(f"hyperparameter {name!r}: expected one kind and its range, such as "
                         f"{{ log = [1e-4, 1.0] }}, got {value!r}")
    (kind, bounds), = value.items()
    if kind not in KINDS:
        raise ValueError(f"hyperparameter {name!r}: unknown kind {kind!r}; expected one of "
                         f"{', '.join(KINDS)}")
    if kind == "choice":
        return Dimension(name, kind, choices=tuple(bounds) if isinstance(bounds, list) else ())
    if not isinstance(bounds, list) or len(bounds) != 2:
        raise ValueError(f"hyperparameter {name!r}: expected [low, high], got {bounds!r}")
    return Dimension(name, kind, bounds[0], bounds[1])
