"""Fault injection: kill strata with SIGKILL at random moments while it trains and while it saves,
then check what it promises — a run resumed after every kill ends bit-identical to an
uninterrupted one, no file is ever corrupt, and no temporary file is left behind.

    python tests/faults.py --kills 20          # prints one summary line at the end

The test suite runs it with fewer kills (tests/test_faults.py). Runs use the `strata train`
command on scikit-learn's digits: an MLP with dropout, and a ConvNet with augmentation.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

RUNS = {  # name -> the `strata train` options of the run killed and resumed
    "mlp": ["--hidden", "32,16", "--keep-prob", "0.8", "--epochs", "12", "--batch-size", "32"],
    "conv": ["--arch", "convnet", "--augment", "--epochs", "4", "--batch-size", "64"],
}
SAVER = """
import sys, numpy as np, strata
from strata import nn
strata.seed(0)
model = nn.Sequential([nn.Dense(512, "relu"), nn.Dense(512)]); model.build((512,))
i = 0
while True:
    for p in model.parameters(): p.data[...] = i
    strata.save_model(model, sys.argv[1]); i += 1
"""


def _strata(*args) -> list:
    return [sys.executable, "-m", "strata", *args]


def _env() -> dict:
    return {**os.environ, "PYTHONUNBUFFERED": "1"}


def _weights(path: Path) -> dict:
    from safetensors.numpy import load_file

    return load_file(str(path))


def temporary_files(folder: Path) -> list:
    """Files an interrupted write could have left: strata's and any other *.tmp."""
    return [p for p in folder.rglob("*") if p.name.endswith(".tmp") or ".tmp." in p.name]


def _intact(target: Path) -> bool:
    """The published run (if any) and the checkpoint in progress (if any) load whole."""
    import strata
    from strata.nn import load_checkpoint
    from strata.runfolder import partial_path

    try:
        if target.exists():
            strata.load_model(target / "model.safetensors")
        checkpoint = partial_path(target) / "checkpoint.safetensors"
        if checkpoint.exists():
            load_checkpoint(checkpoint)
    except (OSError, ValueError):
        return False
    return True


def killed_run(name: str, workdir: Path, kills: int, rng: random.Random) -> dict:
    """Train run ``name`` uninterrupted, then again with ``kills`` SIGKILLs at random moments,
    resuming after each; compare the two models."""
    from strata.runfolder import partial_path

    reference, target = workdir / f"{name}-reference", workdir / f"{name}-killed"
    started = time.perf_counter()
    subprocess.run(_strata("train", *RUNS[name], "--quiet", "--out", str(reference)),
                   check=True, env=_env(), stdout=subprocess.DEVNULL)
    duration = time.perf_counter() - started
    done, corrupt, leftovers = 0, 0, 0
    while True:
        partial = partial_path(target)
        resumable = (partial / "checkpoint.safetensors").is_file()
        args = ["--resume", str(target)] if resumable else [*RUNS[name], "--out", str(target),
                                                              "--overwrite"]
        process = subprocess.Popen(_strata("train", *args, "--quiet"), env=_env(),
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if done < kills:
            try:
                process.wait(timeout=rng.uniform(0.2, duration))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
                done += 1
                corrupt += not _intact(target)
                leftovers += len(temporary_files(workdir))
                continue
        if process.wait() != 0:
            raise RuntimeError(f"strata train {' '.join(args)} failed:\n"
                               f"{process.stderr.read().decode()}")
        if done >= kills:
            break
        shutil.rmtree(target)  # finished before the kill: train it again for the next kill
    expected = _weights(reference / "model.safetensors")
    got = _weights(target / "model.safetensors")
    same = expected.keys() == got.keys() and all(np.array_equal(expected[k], got[k])
                                                 for k in expected)
    return {"kills": done, "identical": same, "corrupt": corrupt, "temporary": leftovers}


def killed_saves(workdir: Path, kills: int, rng: random.Random) -> dict:
    """Kill a process that saves a 1 MB model over and over; the file must always load."""
    import strata

    target = workdir / "saves" / "model.safetensors"
    target.parent.mkdir()
    corrupt = leftovers = 0
    for _ in range(kills):
        process = subprocess.Popen([sys.executable, "-c", SAVER, str(target)], env=_env())
        deadline = time.monotonic() + 60  # the first kill waits for a first save (a missing
        while not target.exists() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)  # file is no corruption; importing strata takes 1-2 s)
        time.sleep(rng.uniform(1.0, 2.0))
        process.kill()
        process.wait()
        try:
            model = strata.load_model(target)
            values = {float(p.data.flat[0]) for p in model.parameters()}
            corrupt += len(values) != 1  # all four arrays from the same save
        except (OSError, ValueError):
            corrupt += 1
        leftovers += len(temporary_files(target.parent))
    return {"kills": kills, "corrupt": corrupt, "temporary": leftovers}


def inject(kills: int, seed: int = 0, workdir: Path | None = None) -> dict:
    """Spread ``kills`` over the two training runs and the saver; totals of what was seen."""
    rng = random.Random(seed)
    own = workdir is None
    workdir = Path(tempfile.mkdtemp(prefix="strata-faults-")) if own else Path(workdir)
    share = {"mlp": kills * 2 // 5, "conv": kills // 5}
    share["saves"] = kills - share["mlp"] - share["conv"]
    try:
        results = [killed_run(name, workdir, share[name], rng) for name in RUNS]
        saves = killed_saves(workdir, share["saves"], rng)
    finally:
        if own:
            shutil.rmtree(workdir, ignore_errors=True)
    training_kills = sum(r["kills"] for r in results)
    return {"kills": training_kills + saves["kills"],
            "resumed_identical": sum(r["kills"] for r in results if r["identical"]),
            "training_kills": training_kills,
            "corrupt": sum(r["corrupt"] for r in results) + saves["corrupt"],
            "temporary": sum(r["temporary"] for r in results) + saves["temporary"]}


def summary(totals: dict) -> str:
    return (f"{totals['kills']} kills, {totals['resumed_identical']} resumed bit-identical (of "
            f"{totals['training_kills']} during training), {totals['corrupt']} corrupt, "
            f"{totals['temporary']} temporary files left")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    totals = inject(args.kills, args.seed)
    print(summary(totals))
    ok = (totals["resumed_identical"] == totals["training_kills"] and not totals["corrupt"]
          and not totals["temporary"])
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
