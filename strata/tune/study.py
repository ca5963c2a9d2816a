"""Studies in a database, and the worker loop that fills them (Optuna underneath).

A study lives in an Optuna RDB storage: SQLite by default (one file, embedded; a search that is
killed resumes from it, keeping every finished trial) or PostgreSQL for workers on several
machines. Heartbeats make a killed worker's trial visible: a running trial whose heartbeat is
older than the grace period is marked FAIL by the next worker that looks (Optuna's
``fail_stale_trials``), and ``RetryHeartbeatStaleTrialCallback`` queues its hyperparameters again,
so the search still reaches its count and no trial is counted twice.

Coarse-to-fine: the trials are split into rounds; round 0 samples the whole space, each later
round samples the space narrowed around the best ``top`` share of the finished trials. The
narrowed space is stored in the study, so every worker and every resumed run uses the same one.
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path

import optuna
from optuna.trial import TrialState

from strata.tune.config import SearchConfig, load_objective
from strata.tune.space import Space

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


def storage_url(config: SearchConfig, out_dir=None) -> str:
    """The study's database URL: the config's, else SQLite in ``out_dir`` (study.db)."""
    if config.storage:
        return config.storage
    folder = Path(out_dir or Path("runs") / "tune" / config.name)
    folder.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{(folder / 'study.db').resolve()}"


def make_storage(url: str, heartbeat: int = 5, grace: int = 20):
    """An Optuna RDB storage with heartbeats and retry of stale (killed) trials."""
    from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback

    if url in ("memory", ":memory:"):
        return optuna.storages.InMemoryStorage()  # for quick experiments only: not resumable
    kwargs = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {
        "pool_pre_ping": True}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return RDBStorage(url, engine_kwargs=kwargs, heartbeat_interval=heartbeat,
                          grace_period=grace,
                          heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(3))


def open_study(config: SearchConfig, url: str, worker: int = 0) -> optuna.Study:
    """Create or load the config's study; a random sampler (a TPE one if asked) seeded per
    worker and per resume, so parallel workers never draw the same sequence."""
    storage = url if isinstance(url, optuna.storages.BaseStorage) else make_storage(
        url, config.heartbeat, config.grace)
    study = optuna.create_study(storage=storage, study_name=config.name,
                                direction=config.direction, load_if_exists=True)
    seed = config.seed * 10_007 + worker * 101 + len(study.get_trials(deepcopy=False))
    study.sampler = (optuna.samplers.TPESampler(seed=seed) if config.sampler == "tpe"
                     else optuna.samplers.RandomSampler(seed=seed))
    study.pruner = (optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=2)
                    if config.pruner == "median" else optuna.pruners.NopPruner())
    if "space" not in study.user_attrs:
        study.set_user_attr("space", config.space.to_dict())
        study.set_user_attr("fixed", config.fixed)
    return study


def counts(study) -> tuple[int, int]:
    """(finished, running) trials; finished are complete or pruned. Waiting trials (queued
    retries) are not counted: the next ``optimize`` runs them first."""
    states = [t.state for t in study.get_trials(deepcopy=False)]
    return sum(s in FINISHED for s in states), sum(s == TrialState.RUNNING for s in states)


def best_raw_params(study, top: float) -> list:
    """Raw parameters of the best ``top`` share of the complete trials (at least two)."""
    done = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))]
    done.sort(key=lambda t: t.value, reverse=study.direction.name == "MAXIMIZE")
    return [t.params for t in done[:max(2, round(top * len(done)))]]


def round_space(study, config: SearchConfig, round_: int) -> Space:
    """The space of a coarse-to-fine round: the whole space for round 0, else narrowed around
    the best trials so far (computed once, kept in the study's user attributes)."""
    if round_ == 0:
        return config.space
    key = f"round_{round_}_space"
    if key not in study.user_attrs:
        narrowed = config.space.narrowed(best_raw_params(study, config.top))
        study.set_user_attr(key, narrowed.to_dict())
    return Space.from_dict(study.user_attrs[key])


def round_of(config: SearchConfig, finished: int) -> int:
    """The round in progress when ``finished`` trials are done."""
    total = 0
    for r, size in enumerate(config.round_sizes):
        total += size
        if finished < total:
            return r
    return config.rounds - 1


def trial_function(config: SearchConfig, space: Space, round_: int):
    """The Optuna objective for one round: sample, add the fixed values, run, return."""
    objective = load_objective(config.objective)

    def run(trial: optuna.Trial) -> float:
        params = {**config.fixed, **space.suggest(trial)}
        trial.set_user_attr("round", round_)

        def report(step: int, value: float) -> None:
            trial.report(float(value), step)
            if trial.should_prune():
                raise optuna.TrialPruned(f"pruned at step {step} (value {value:g})")

        return float(objective(params, report))

    return run


def run_worker(config: SearchConfig, url, worker: int = 0, on_trial=None) -> optuna.Study:
    """Run trials until the study holds ``config.trials`` finished ones. Safe to run in many
    processes (or machines) on one storage. ``on_trial(study, trial)`` follows each trial."""
    study = open_study(config, url, worker)
    while True:
        with warnings.catch_warnings():  # heartbeats have been "experimental" since Optuna 2.9
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.fail_stale_trials(study)
        finished, running = counts(study)
        if finished >= config.trials:
            return study
        failed = len(study.get_trials(deepcopy=False, states=(TrialState.FAIL,)))
        if failed > max(10, 2 * config.trials):
            raise RuntimeError(f"search {config.name}: {failed} trials failed (diverged or "
                               f"killed) for {finished} finished; check the space's ranges")
        if finished + running >= config.trials:  # the rest are running: finish or go stale
            time.sleep(min(1.0, config.heartbeat))
            continue
        round_ = round_of(config, finished)
        study.optimize(trial_function(config, round_space(study, config, round_), round_),
                       n_trials=1, catch=(FloatingPointError,),
                       callbacks=[on_trial] if on_trial else None)
