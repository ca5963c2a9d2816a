"""Caviar on a Ray cluster: the same space, sampled by Ray Tune, results kept in the study.

``ray.init`` joins the cluster at ``address`` (or starts a local one with ``num_cpus``); each
coarse-to-fine round is one ``tune.Tuner`` run whose ``param_space`` is the round's space in Ray
Tune's distributions (``Space.ray_space``: ``tune.loguniform`` for log scales and 1 - beta,
``tune.randint`` for integers and powers of two). Each finished Ray trial is added to the Optuna
study, so the results table, the plots, resuming and the narrowed rounds work as for Optuna
workers.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import optuna
from optuna.trial import TrialState, create_trial

from strata.extras import require
from strata.tune.config import SearchConfig, load_objective
from strata.tune.space import Space
from strata.tune.study import counts, open_study, round_space

METRIC = "score"


def _trainable(config: SearchConfig, space: Space):
    """A Ray Tune function trainable running the search's objective on one sample."""
    def trainable(raw: dict) -> None:
        from ray import tune

        objective = load_objective(config.objective)
        try:
            score = float(objective({**config.fixed, **space.decode(raw)}, None))
        except FloatingPointError:
            score = math.nan  # diverged: recorded as a failed trial
        tune.report({METRIC: score})

    return trainable


def _run_round(config, space, n, seed, storage_path):
    from ray import tune
    from ray.tune.search.basic_variant import BasicVariantGenerator

    tuner = tune.Tuner(
        _trainable(config, space), param_space=space.ray_space(),
        tune_config=tune.TuneConfig(num_samples=n, search_alg=BasicVariantGenerator(
            random_state=seed)),
        run_config=tune.RunConfig(storage_path=storage_path, verbose=0))
    return tuner.fit()


def _record(study, space: Space, result, round_: int):
    """Add one Ray result to the study as a complete (or failed) trial."""
    score = (result.metrics or {}).get(METRIC, math.nan)
    raw = {d.raw_name: result.config[d.raw_name] for d in space}
    failed = result.error is not None or not math.isfinite(score)
    trial = create_trial(state=TrialState.FAIL if failed else TrialState.COMPLETE,
                         value=None if failed else score, params=raw,
                         distributions=space.optuna_distributions(),
                         user_attrs={"round": round_, "engine": "ray",
                                     "seconds": (result.metrics or {}).get("time_total_s")})
    study.add_trial(trial)
    return trial


def ray_search(config: SearchConfig, url, num_cpus: int = 2, address: str | None = None,
               on_trial=None, storage_path=None) -> optuna.Study:
    """Run the search's remaining trials on Ray (a local cluster of ``num_cpus`` unless
    ``address`` names a running one); returns the Optuna study holding every trial."""
    # Ray Tune's verbose=0 still prints a box per run with its newer console output.
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    ray = require("ray", "cluster", "a search on a Ray cluster")

    study = open_study(config, url)
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(address=address, num_cpus=None if address else num_cpus,
                 include_dashboard=False, log_to_driver=False, configure_logging=False)
    path = str(Path(storage_path or Path.cwd() / "runs" / "tune" / config.name / "ray").resolve())
    try:
        target = 0
        for round_, size in enumerate(config.round_sizes):
            target += size
            for _attempt in range(3):  # failed (diverged) trials are made up for, twice at most
                if counts(study)[0] >= target:
                    break
                missing = target - counts(study)[0]
                space = round_space(study, config, round_)
                seed = config.seed * 10_007 + len(study.get_trials(deepcopy=False))
                for result in _run_round(config, space, missing, seed, path):
                    trial = _record(study, space, result, round_)
                    if on_trial:
                        on_trial(study, trial)
    finally:
        if started_here:
            ray.shutdown()
    return study
