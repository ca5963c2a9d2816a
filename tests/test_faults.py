"""Runs a user can trust, tested as a user meets them: SIGKILL at random moments (resumed runs
bit-identical, nothing corrupt, no temporary file left), Ctrl-C, two writers on one folder,
atomic and locked run folders, files created with the user's umask."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import strata
from strata import cli
from strata.files import FolderBusy, FolderLock, atomic_write
from strata.runfolder import RunFolder, partial_path

sys.path.insert(0, str(Path(__file__).parent))
import faults  # noqa: E402 -- the fault-injection script beside this file


def test_sigkill_at_random_moments_never_breaks_a_run(tmp_path):
    totals = faults.inject(kills=22, seed=1, workdir=tmp_path)
    print(faults.summary(totals))
    assert totals["kills"] >= 20
    assert totals["training_kills"] >= 12
    assert totals["resumed_identical"] == totals["training_kills"]
    assert totals["corrupt"] == 0 and totals["temporary"] == 0


def _train(out, *extra):
    return subprocess.Popen([sys.executable, "-m", "strata", "train", "--epochs", "400",
                             "--hidden", "64,64", "--quiet", "--out", str(out), *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for(path: Path, timeout=60.0):
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


def test_ctrl_c_checkpoints_says_how_to_resume_and_exits_130(tmp_path):
    out = tmp_path / "run"
    process = _train(out)
    _wait_for(partial_path(out) / "checkpoint.safetensors")
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 130
    assert "Traceback" not in stderr
    assert f"strata train --resume {out}" in stderr
    assert not out.exists() and (partial_path(out) / "checkpoint.safetensors").is_file()
    progress = strata.nn.load_checkpoint(partial_path(out) / "checkpoint.safetensors")
    assert 0 < progress["progress"]["iteration"]


def test_a_second_writer_is_refused_with_the_holder_named(tmp_path):
    out = tmp_path / "run"
    first = _train(out)
    try:
        _wait_for(partial_path(out) / "config.json")
        second = _train(out)
        _, stderr = second.communicate(timeout=60)
        assert second.returncode == 2
        assert f"being written by process {first.pid}" in stderr
    finally:
        first.kill()
        first.wait()
    with FolderLock(out):  # a dead holder does not keep the lock
        pass


def test_lock_names_its_holder_in_process(tmp_path):
    with FolderLock(tmp_path / "x", purpose="test"), pytest.raises(FolderBusy, match="test"):
        FolderLock(tmp_path / "x").acquire()


def test_finished_runs_are_refused_without_overwrite_and_replaced_whole_with_it(tmp_path):
    out = tmp_path / "run"
    args = ["train", "--epochs", "2", "--quiet", "--out", str(out)]
    assert cli.main(args) == 0
    first = json.loads((out / "metrics.json").read_text())
    assert cli.main(args) == 2  # refused: a finished run is there
    assert cli.main([*args[:-2], "--seed", "5", "--out", str(out), "--overwrite"]) == 0
    assert json.loads((out / "metrics.json").read_text()) != first
    assert json.loads((out / "config.json").read_text())["seed"] == 5
    assert sorted(p.name for p in tmp_path.iterdir()) == [".run.lock", "run"]


def test_default_runs_are_numbered_and_latest_follows(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs" / "latest").mkdir(parents=True)  # a folder from an older strata
    (tmp_path / "runs" / "latest" / "config.json").write_text("{}")
    for _ in range(2):
        assert cli.main(["train", "--epochs", "1", "--quiet"]) == 0
    runs = tmp_path / "runs"
    assert (runs / "run-0001" / "config.json").read_text() == "{}"  # kept, renamed
    assert os.readlink(runs / "latest") == "run-0003"
    assert (runs / "latest" / "model.safetensors").is_file()


def test_resume_without_an_interrupted_run_says_so(tmp_path, capsys):
    assert cli.main(["train", "--resume", str(tmp_path / "nothing")]) == 2
    assert "nothing to resume" in capsys.readouterr().err


def test_a_failed_run_leaves_no_partial_folder_without_a_checkpoint(tmp_path):
    with pytest.raises(RuntimeError), RunFolder(tmp_path / "r", checkpoint="c") as run:
        (run.path / "config.json").write_text("{}")
        raise RuntimeError("failed before any checkpoint")
    assert not partial_path(tmp_path / "r").exists()


def test_atomic_write_uses_the_umask_and_leaves_nothing_on_failure(tmp_path):
    old = os.umask(0o027)
    try:
        path = atomic_write(tmp_path / "a.txt", b"data")
    finally:
        os.umask(old)
    assert (path.stat().st_mode & 0o777) == 0o640

    def broken(tmp):
        Path(tmp).write_bytes(b"half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(tmp_path / "a.txt", broken)
    assert (tmp_path / "a.txt").read_bytes() == b"data"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_model_files_get_the_umask_too(tmp_path):
    model = strata.nn.Sequential([strata.nn.Dense(2)])
    model.build((3,))
    path = strata.save_model(model, tmp_path / "m.safetensors")
    assert (path.stat().st_mode & 0o777) == 0o666 & ~_umask()
    np.testing.assert_array_equal(strata.load_model(path).layers[0].W.data,
                                  model.layers[0].W.data)


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def test_babysit_keeps_one_checkpoint_and_one_session_at_a_time(tmp_path, capsys):
    from strata.tune.panda import CHECKPOINT, Panda

    folder = tmp_path / "panda"
    panda = Panda(folder, {"dataset": "moons", "hidden": [8], "lr": 0.02})
    panda.train(2)
    files = sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))
    assert files == [CHECKPOINT, "study.db"]  # weights, optimizer and state in one file
    saved = strata.nn.load_checkpoint(folder / CHECKPOINT)
    assert saved["progress"]["panda"]["epoch"] == 2
    with FolderLock(folder, purpose="strata babysit"):  # another session holds the folder
        with pytest.raises(FolderBusy, match="strata babysit"):
            Panda(folder).train(1)
        assert cli.main(["babysit", str(folder), "--epochs", "1"]) == 2
        assert "is being written by" in capsys.readouterr().err
    assert Panda(folder).epoch == 2
