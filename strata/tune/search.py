"""Running a search: "panda" (one model, babysat: see panda.py) or "caviar" (many models in
parallel). Caviar runs Optuna workers: in this process (one worker), as local worker
processes sharing the study's database, or on a Ray cluster. Workers on other machines join by
running ``python -m strata.tune.worker`` on the same PostgreSQL storage."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import optuna

from strata.tune.config import SearchConfig, config_to_dict
from strata.tune.results import best_trials, format_trials, plot_scores, trials_table, write_csv
from strata.tune.study import counts, open_study, run_worker, storage_url

ENGINES = ("optuna", "ray")


def _bar(config: SearchConfig, show: bool):
    from tqdm.auto import tqdm

    return tqdm(total=config.trials, desc=f"search {config.name}", unit="trial",
                disable=not show, dynamic_ncols=True)


def _progress(bar, study) -> None:
    finished, _ = counts(study)
    if finished == bar.n:
        return
    bar.n = finished
    best = [t.value for t in study.get_trials(deepcopy=False) if t.value is not None]
    if best:
        bar.set_postfix(best=f"{(max if study.direction.name == 'MAXIMIZE' else min)(best):.4g}")
    bar.refresh()


def start_workers(config_file: Path, url: str, workers: int, log_dir: Path) -> list:
    """Start ``workers`` worker processes on one study; their output goes to worker-<i>.log."""
    procs = []
    for i in range(workers):
        log = open(log_dir / f"worker-{i}.log", "w")  # the child keeps its own copy
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "strata.tune.worker", str(config_file), url, str(i)],
            stdout=log, stderr=subprocess.STDOUT))
        log.close()
    return procs


def _local_workers(config, url, workers, out, bar):
    config_file = out / "search.json"
    from strata.io import write_text_atomic

    write_text_atomic(config_file, json.dumps(config_to_dict(config), indent=2) + "\n")
    study = open_study(config, url)
    procs = start_workers(config_file, url, workers, out)
    while any(p.poll() is None for p in procs):
        _progress(bar, study)
        time.sleep(0.5)
    _progress(bar, study)
    failed = [i for i, p in enumerate(procs) if p.returncode != 0]
    if failed and counts(study)[0] < config.trials:
        raise RuntimeError(f"search {config.name}: worker(s) {failed} failed before the search "
                           f"finished; see {out}/worker-{failed[0]}.log")
    return study


def search(config: SearchConfig, out_dir, workers: int = 1, engine: str = "optuna",
           progress: bool = True) -> dict:
    """Run (or resume) the search until ``config.trials`` trials are finished, then write
    results.csv and score_vs_<name>.png into ``out_dir``; returns paths and the best trials."""
    if engine not in ENGINES:
        raise ValueError(f"search: expected engine among {ENGINES}, got {engine!r}")
    if not isinstance(workers, int) or workers < 1:
        raise ValueError(f"search: expected workers >= 1, got {workers!r}")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    url = storage_url(config, out)
    with _bar(config, progress) as bar:
        if engine == "ray":
            from strata.tune.ray_engine import ray_search

            study = ray_search(config, url, num_cpus=max(workers, 1),
                               storage_path=out / "ray", on_trial=lambda s, _: _progress(bar, s))
        elif workers == 1:
            study = run_worker(config, url, on_trial=lambda s, _: _progress(bar, s))
        else:
            study = _local_workers(config, url, workers, out, bar)
    return summarize(study, config, out)


def summarize(study, config: SearchConfig, out: Path) -> dict:
    """Write the results CSV and plots; return their paths, the best trials and their text."""
    rows = trials_table(study, config.space)
    best = best_trials(rows, 5, config.direction == "maximize")
    csv_path = write_csv(rows, out / "results.csv")
    plots = plot_scores(rows, config.space, out, "dev accuracy" if config.objective.endswith(
        ":train_mlp") else "score")
    return {"storage": study._storage, "study": study, "results": csv_path, "plots": plots,
            "best": best, "text": format_trials(best, config.space.names)}
