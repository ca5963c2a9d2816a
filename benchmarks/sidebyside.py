"""Shared machinery of the training-step benchmarks (mlp.py, lenet.py, resnet.py, ...): strata
and PyTorch timed side by side in one run, ratio and peak memory printed.

Each framework runs in its own worker process (``python SCRIPT --worker FRAMEWORK``) and the
parent alternates between them: one round (``--inner`` steps) of strata, one of PyTorch, and so
on. Separate processes keep each framework's thread pools from disturbing the other (OpenMP and
OpenBLAS workers keep spinning after each call, and a spinning pool slows whatever runs next on
a 2-core machine); alternating rounds make the drift of a shared machine hit both alike. Each
round starts after a short pause (the other process's spinning threads go to sleep) with one
untimed step (thread pools wake, caches warm). The reported time is the median round. Each
worker also reports how far its peak resident memory rose above its level after imports and
data creation (weights, optimizer state, activations, workspaces).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

_SETTLE_S = 0.3  # idle time before each round: the other process's spinning threads go to sleep


def training_step(optimizer, loss):
    """One full training step for either framework: zero the gradients, ``loss()`` forward,
    backward, optimizer update."""
    def step():
        optimizer.zero_grad()
        loss().backward()
        optimizer.step()
    return step


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith(field + ":"))
    return int(line.split()[1])


def _import_torch():
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(os.cpu_count() or 1)
    return torch


def _worker(framework: str, inner: int, make_strata_step, make_torch_step) -> None:
    """The child process: build the step, then per "go" line on stdin run one untimed step and
    time ``inner`` steps; on "quit", print the peak memory growth (MiB) and exit."""
    torch = _import_torch() if framework == "pytorch" else None
    if framework == "pytorch" and torch is None:
        print("no-torch", flush=True)
        return
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")  # resets VmHWM, the peak resident set size, to the current size
    before = _status_kib("VmRSS")
    step = make_torch_step(torch) if torch is not None else make_strata_step()
    for _ in range(3):  # warm-up: compilation, caches, allocator
        step()
    print("ready", flush=True)
    for line in sys.stdin:
        if line.strip() != "go":
            break
        step()  # untimed: wakes the thread pools and warms the caches after the pause
        start = time.perf_counter()
        for _ in range(inner):
            step()
        print(f"{(time.perf_counter() - start) / inner * 1e3:.6f}", flush=True)
    print(f"{(_status_kib('VmHWM') - before) / 1024:.1f}", flush=True)


class _Worker:
    def __init__(self, script: str, framework: str, inner: int):
        self.proc = subprocess.Popen(
            [sys.executable, script, "--worker", framework, "--inner", str(inner)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.ready = self.proc.stdout.readline().strip() == "ready"
        self.times: list[float] = []

    def round(self) -> None:
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()
        self.times.append(float(self.proc.stdout.readline()))

    def finish(self) -> float:
        """Stop the worker and return its peak memory growth in MiB."""
        out, _ = self.proc.communicate("quit\n")
        if self.proc.returncode:
            raise RuntimeError(f"benchmark worker {self.proc.args} failed")
        return float(out.split()[-1])


def run(script: str, title: str, target: float, make_strata_step, make_torch_step) -> None:
    """The benchmark's command line: timings, ratio and peak memory of both frameworks.

    ``make_strata_step()`` and ``make_torch_step(torch)`` build a model and its data and return
    a function running one full training step (forward, loss, backward, optimizer update).
    """
    parser = argparse.ArgumentParser(description=title)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--inner", type=int, default=3, help="steps per timed round")
    parser.add_argument("--worker", choices=["strata", "pytorch"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        _worker(args.worker, args.inner, make_strata_step, make_torch_step)
        return
    workers = {name: _Worker(script, name, args.inner) for name in ("strata", "pytorch")}
    if not workers["pytorch"].ready:
        workers["pytorch"].finish()
        del workers["pytorch"]
        print("torch not installed: PyTorch column skipped (pip install torch==2.13.0)")
    for r in range(args.rounds):
        order = list(workers) if r % 2 == 0 else list(workers)[::-1]
        for name in order:
            time.sleep(_SETTLE_S)
            workers[name].round()
    print(f"{title} (OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', 'unset')}, "
          f"{os.cpu_count()} cores; {args.rounds} alternating rounds of {args.inner} steps, "
          f"one process per framework)")
    median = {}
    for name, worker in workers.items():
        median[name] = statistics.median(worker.times)
        memory = worker.finish()
        print(f"  {name:<8} {median[name]:8.2f} ms/step   peak memory +{memory:7.1f} MiB")
    if "pytorch" in median:
        print(f"strata / PyTorch: {median['strata'] / median['pytorch']:.3f} "
              f"(target <= {target})")
