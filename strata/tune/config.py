"""Search files: a TOML file with a [study] table (settings), [fixed] (hyperparameters held
constant) and [space] (one line per searched hyperparameter). Every mistake is reported with the
file's line, e.g. ``space.toml, line 12: hyperparameter 'lr': a log scale needs low > 0``.

The whole file is checked before the objective ("module:function") is imported: importing it
runs that module's code, the one place where a search file can run code (the trust boundary).

    [study]
    name = "digits-mlp"
    trials = 24
    rounds = 2

    [fixed]
    dataset = "digits"
    epochs = 15

    [space]
    lr = { log = [1e-4, 1.0] }
    beta1 = { one_minus_log = [0.9, 0.999] }
    batch_size = { pow2 = [16, 256] }
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field, fields
from pathlib import Path

from strata.tune.space import Space, make_dimension, range_problem

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

DEFAULT_OBJECTIVE = "strata.tune.objective:train_mlp"
SAMPLERS = ("random", "tpe")
PRUNERS = ("median", "none")
#: A study name is a plain file name (its default output folder is runs/tune/<name>).
NAME = re.compile(r"\w[\w.-]{0,99}")
#: "package.module:function", nothing else.
OBJECTIVE = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*")


class SpaceFileError(ValueError):
    """A search file that cannot be used; the message names the file and line."""


@dataclass
class SearchConfig:
    """A search: its space, fixed hyperparameters and study settings (the [study] table)."""

    space: Space
    fixed: dict = field(default_factory=dict)
    name: str = "strata-search"
    trials: int = 20
    rounds: int = 1
    objective: str = DEFAULT_OBJECTIVE
    direction: str = "maximize"
    sampler: str = "random"
    pruner: str = "median"
    seed: int = 0
    storage: str | None = None
    top: float = 0.25
    heartbeat: int = 5
    grace: int = 20

    def __post_init__(self):
        checks = [
            (isinstance(self.trials, int) and self.trials >= 1, "trials", "an integer >= 1"),
            (isinstance(self.rounds, int) and 1 <= self.rounds <= self.trials, "rounds",
             f"an integer in [1, trials={self.trials}]"),
            (self.direction in ("maximize", "minimize"), "direction", "maximize or minimize"),
            (self.sampler in SAMPLERS, "sampler", " or ".join(SAMPLERS)),
            (self.pruner in PRUNERS, "pruner", " or ".join(PRUNERS)),
            (isinstance(self.top, (int, float)) and 0 < self.top <= 1, "top",
             "a fraction in (0, 1]"),
            (isinstance(self.heartbeat, int) and self.heartbeat >= 1, "heartbeat",
             "whole seconds >= 1"),
            (isinstance(self.grace, int) and self.grace > self.heartbeat, "grace",
             f"whole seconds > heartbeat ({self.heartbeat})"),
            (isinstance(self.objective, str) and OBJECTIVE.fullmatch(self.objective),
             "objective", "'module:function' such as 'mypackage.objectives:train'"),
            (isinstance(self.name, str) and NAME.fullmatch(self.name), "name",
             "a plain file name of letters, digits, '_', '-' and '.' (not first), at most 100 "
             "characters"),
        ]
        for ok, key, expected in checks:
            if not ok:
                raise ValueError(f"study setting {key!r}: expected {expected}, got "
                                 f"{getattr(self, key)!r}")
        overlap = set(self.fixed) & set(self.space.names)
        if overlap:
            raise ValueError(f"hyperparameter {sorted(overlap)[0]!r} is both fixed and searched")
        for name, value in self.fixed.items():
            if problem := range_problem(name, value):
                raise ValueError(problem)

    @property
    def round_sizes(self) -> list:
        """Trials per coarse-to-fine round (the first rounds take the remainder)."""
        base, extra = divmod(self.trials, self.rounds)
        return [base + (r < extra) for r in range(self.rounds)]


SETTINGS = tuple(f.name for f in fields(SearchConfig) if f.name not in ("space", "fixed"))


def line_of(text: str, table: str, key: str | None = None) -> int | None:
    """The 1-based line of ``key`` inside ``[table]`` (or of the table header when no key)."""
    current = None
    for number, line in enumerate(text.splitlines(), start=1):
        header = re.match(r"\s*\[\s*([^\]]+?)\s*\]", line)
        if header:
            current = header.group(1).strip('"')
            if key is None and current == table:
                return number
            continue
        if current == table and key is not None and re.match(
                rf"\s*[\"']?{re.escape(key)}[\"']?\s*=", line):
            return number
    return None


def _fail(path, text, message, table=None, key=None):
    line = line_of(text, table, key) if table else None
    where = f"{path}, line {line}" if line else str(path)
    raise SpaceFileError(f"{where}: {message}")


def _parse(path: Path, text: str) -> dict:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:  # its message ends with "(at line N, column M)"
        raise SpaceFileError(f"{path}: not valid TOML: {e}") from None
    for table in data:
        if table not in ("study", "fixed", "space"):
            _fail(path, text, f"unknown table [{table}]; expected [study], [fixed] and [space]",
                  table)
        if not isinstance(data[table], dict):
            raise SpaceFileError(f"{path}: expected [{table}] to be a table")
    if not data.get("space"):
        _fail(path, text, "expected a [space] table with at least one hyperparameter", "space")
    return data


def _space(path, text, data) -> tuple[Space, dict]:
    dims = []
    for name, value in data["space"].items():
        try:
            dims.append(make_dimension(name, value))
        except ValueError as e:
            _fail(path, text, str(e), "space", name)
    fixed = dict(data.get("fixed", {}))
    for name, value in fixed.items():
        if problem := range_problem(name, value):
            _fail(path, text, problem, "fixed", name)
    return Space(tuple(dims)), fixed


def _check_names(path, text, data, accepts) -> None:
    """Every searched and fixed hyperparameter is one the objective accepts."""
    for table in ("space", "fixed"):
        for name in data.get(table, {}):
            if accepts is not None and name not in accepts:
                _fail(path, text, f"unknown hyperparameter {name!r}; the objective accepts "
                      f"{', '.join(sorted(accepts))}", table, name)


def load_search(path, accepts=None, **overrides) -> SearchConfig:
    """Read a search file; ``accepts``: the objective's hyperparameter names (None: those the
    objective declares); ``overrides``: study settings that replace the file's (e.g. from the
    command line). The objective's module is imported only once the whole file is valid."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"search file {path} not found")
    text = path.read_text(encoding="utf-8")
    data = _parse(path, text)
    study = dict(data.get("study", {}))
    for key in study:
        if key not in SETTINGS:
            _fail(path, text, f"unknown study setting {key!r}; expected one of "
                  f"{', '.join(SETTINGS)}", "study", key)
    space, fixed = _space(path, text, data)
    study.setdefault("name", path.stem)
    study.update({k: v for k, v in overrides.items() if v is not None})
    try:
        config = SearchConfig(space=space, fixed=fixed, **study)
    except ValueError as e:
        key = re.search(r"'(\w+)'", str(e))
        table = "study" if str(e).startswith("study") else "space"
        _fail(path, text, str(e), table, key.group(1) if key else None)
    if accepts is None:  # only now, with the whole file valid, run the objective's module
        try:
            accepts = objective_hyperparameters(config.objective)
        except ValueError as e:
            _fail(path, text, str(e), "study", "objective")
    _check_names(path, text, data, accepts)
    return config


def load_objective(spec: str):
    """The function named by 'module:function'. Importing the module runs its code: name only
    modules you trust (search files are checked in full before this is called)."""
    import importlib

    module, _, name = spec.partition(":")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as e:
        raise ValueError(f"objective {spec!r} cannot be loaded: {e}") from None


def objective_hyperparameters(spec: str):
    """The names the objective declares in its ``hyperparameters`` attribute (None: any)."""
    names = getattr(load_objective(spec), "hyperparameters", None)
    return None if names is None else set(names)


def config_to_dict(config: SearchConfig) -> dict:
    """The config as JSON-able values (the space as ``Space.to_dict``)."""
    out = {name: getattr(config, name) for name in SETTINGS}
    return {**out, "fixed": dict(config.fixed), "space": config.space.to_dict()}


def config_from_dict(data: dict) -> SearchConfig:
    """The inverse of ``config_to_dict``."""
    data = dict(data)
    return SearchConfig(space=Space.from_dict(data.pop("space")), **data)
