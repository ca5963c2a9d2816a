"""The best trial of a search kept as a run folder, and the ``strata train`` command that
reproduces it (searches with the default objective, ``train_mlp``, which trains what
``strata train`` trains)."""

from __future__ import annotations

import shlex
from dataclasses import fields
from pathlib import Path

from strata.tune.config import DEFAULT_OBJECTIVE, SearchConfig


def train_arguments(run_config) -> list[str]:
    """The ``strata train`` options giving ``run_config`` (those that differ from defaults;
    numbers written in full, so that the command trains the same model).

    >>> from strata.runs import RunConfig
    >>> train_arguments(RunConfig(hidden=[32], lr=0.01, beta1=0.95))
    ['--hidden', '32', '--lr', '0.01', '--beta1', '0.95']
    """
    from strata.runs import RunConfig

    default, args = RunConfig(), []
    for f in fields(RunConfig):
        value = getattr(run_config, f.name)
        if value == getattr(default, f.name):
            continue
        flag = "--" + f.name.replace("_", "-")
        if isinstance(value, bool):
            args.append(flag)
        elif isinstance(value, list):
            args += [flag, ",".join(map(str, value))]
        else:
            args += [flag, repr(value) if isinstance(value, float) else str(value)]
    return args


def save_best_run(config: SearchConfig, best: dict, out_dir, verbose: int = 0):
    """Train the best trial ``best`` (a row of the results table) of a search with the default
    objective again with ``strata train`` into ``out_dir``/best; returns (run folder,
    command)."""
    from strata import runs
    from strata.tune.objective import mlp_config

    if config.objective != DEFAULT_OBJECTIVE:
        raise ValueError(f"save_best_run: expected a search of {DEFAULT_OBJECTIVE} (strata "
                         f"train's MLP), got objective {config.objective!r}")
    params = {**config.fixed, **{name: best[name] for name in config.space.names}}
    run_config = mlp_config(params)
    folder = Path(out_dir) / "best"
    runs.train(run_config, folder, verbose=verbose, overwrite=True)
    command = shlex.join(["strata", "train", *train_arguments(run_config), "--out",
                          str(folder)])
    return folder, command
