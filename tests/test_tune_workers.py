"""Fault tolerance: two worker processes on one study (SQLite, and PostgreSQL when a server is
given), one killed mid-trial. Finished trials are kept, the killed trial is marked FAIL by the
heartbeat and retried once, and the surviving worker completes the search. Also the Ray engine
on a local two-CPU cluster."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from strata.tune.config import SearchConfig, config_to_dict
from strata.tune.space import Space
from strata.tune.study import open_study

HERE = Path(__file__).resolve().parent
TRIALS = 8


def _config(name: str, storage: str) -> SearchConfig:
    space = Space.from_dict({"lr": {"log": [1e-4, 1.0]}, "beta": {"one_minus_log": [0.9, 0.999]}})
    return SearchConfig(space=space, name=name, trials=TRIALS, rounds=1,
                        objective="tune_objectives:sleepy", storage=storage, heartbeat=1,
                        grace=3, pruner="none")


def _worker(config_file, url, i, env):
    return subprocess.Popen([sys.executable, "-m", "strata.tune.worker", str(config_file), url,
                             str(i)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)


def _kill_one_mid_trial(tmp_path, url):
    import optuna
    from optuna.trial import TrialState

    config = _config(f"fault-{uuid.uuid4().hex[:8]}", url)
    config_file = tmp_path / "search.json"
    config_file.write_text(json.dumps(config_to_dict(config)))
    open_study(config, url)  # tables and study first: two workers would race to create them
    mark = tmp_path / "victim-is-mid-trial"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get(
        "PYTHONPATH", "")])}
    victim = _worker(config_file, url, 0, {**env, "STRATA_TUNE_VICTIM": str(mark)})
    survivor = _worker(config_file, url, 1, env)
    deadline = time.monotonic() + 60
    while not mark.exists():
        assert time.monotonic() < deadline and victim.poll() is None, victim.communicate()[0]
        time.sleep(0.05)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    storage = optuna.storages.RDBStorage(url)
    study = optuna.load_study(study_name=config.name, storage=storage)
    before = {t.number: t.value for t in study.get_trials(states=(TrialState.COMPLETE,))}
    # The survivor's running trial may not have sampled its parameters yet: .get.
    killed = [t for t in study.get_trials() if t.state == TrialState.RUNNING
              and t.params.get("lr") == _victim_lr(mark)]
    assert len(killed) == 1  # the victim's trial, left RUNNING by the kill
    out, _ = survivor.communicate(timeout=90)
    assert survivor.returncode == 0, out
    trials = study.get_trials()
    optuna.delete_study(study_name=config.name, storage=storage)
    return before, killed[0].number, trials


def _victim_lr(mark: Path) -> float:
    import ast

    return ast.literal_eval(mark.read_text())["lr"]  # the victim's hyperparameters


def _check_kept_and_counted_once(before, killed, trials):
    from optuna.trial import TrialState

    states = {t.number: t.state for t in trials}
    complete = {t.number: t for t in trials if t.state == TrialState.COMPLETE}
    assert len(complete) == TRIALS  # the search reached its count
    assert {n: complete[n].value for n in before} == before  # every finished trial kept
    assert states[killed] == TrialState.FAIL  # marked by the heartbeat, so not counted
    retries = [t for t in trials if t.system_attrs.get("failed_trial") == killed]
    assert len(retries) == 1 and retries[0].state == TrialState.COMPLETE
    assert retries[0].params == next(t.params for t in trials if t.number == killed)
    assert len({t.number for t in trials}) == len(trials)
    assert sum(s == TrialState.RUNNING for s in states.values()) == 0


def test_sqlite_search_survives_a_killed_worker(tmp_path):
    url = f"sqlite:///{tmp_path / 'study.db'}"
    _check_kept_and_counted_once(*_kill_one_mid_trial(tmp_path, url))


def test_postgresql_search_survives_a_killed_worker(tmp_path):
    url = os.environ.get("STRATA_TEST_POSTGRES_URL")
    if not url:
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true but STRATA_TEST_POSTGRES_URL is not set: .ci/run should have "
                        "started a PostgreSQL server and exported its URL")
        pytest.skip("no PostgreSQL server: set STRATA_TEST_POSTGRES_URL (CI starts one)")
    _check_kept_and_counted_once(*_kill_one_mid_trial(tmp_path, url))


def test_ray_local_cluster_completes_the_search(tmp_path):
    pytest.importorskip("ray.tune", reason="ray[tune] is not installed")
    from optuna.trial import TrialState

    from strata.tune.search import search

    space = Space.from_dict({"lr": {"log": [1e-3, 1.0]}, "beta1": {"one_minus_log": [0.9, 0.999]},
                             "batch_size": {"pow2": [16, 64]}})
    config = SearchConfig(space=space, name="ray", trials=4, rounds=1, pruner="none",
                          fixed={"dataset": "moons", "epochs": 4, "hidden": [8]})
    result = search(config, tmp_path, workers=2, engine="ray", progress=False)
    trials = result["study"].get_trials()  # Ray's results, kept in the study's SQLite file
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 4
    assert all(t.user_attrs["engine"] == "ray" and 0.3 < t.value <= 1 for t in trials)
    assert len({t.params["lr"] for t in trials}) == 4
    assert all(t.params["log2(batch_size)"] in (4, 5, 6) for t in trials)
    assert (tmp_path / "results.csv").read_text().count("\n") == 5
