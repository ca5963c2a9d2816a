"""Shared machinery of the training-step benchmarks (lenet.py, resnet.py): strata and PyTorch
steps timed in one process, and the peak memory of each measured in a fresh subprocess.

Timing: strata first, in rotating rounds; PyTorch is imported and timed after it, because its
OpenMP threads keep spinning after each op and slow whatever runs next on a 2-core machine.
Memory: ``python SCRIPT --memory FRAMEWORK`` builds the model and runs a few steps in a new
process, and prints how far the process's peak resident memory rose above its level after
imports and data creation (weights, optimizer state, activations and workspaces).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

from engine_overhead import interleaved_ms


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith(field + ":"))
    return int(line.split()[1])


def peak_growth_mib(make_step, steps: int = 5) -> float:
    """How far the peak resident memory rises above the current level while building and
    running ``make_step()`` (Linux: the peak is reset through /proc/self/clear_refs)."""
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")  # resets VmHWM, the peak resident set size, to the current size
    before = _status_kib("VmRSS")
    step = make_step()
    for _ in range(steps):
        step()
    return (_status_kib("VmHWM") - before) / 1024


def _memory_in_subprocess(script: str, framework: str) -> float:
    done = subprocess.run([sys.executable, script, "--memory", framework], capture_output=True,
                          text=True, check=True)
    return float(done.stdout.split()[-1])


def _import_torch():
    try:
        import torch
    except ImportError:
        print("torch not installed: PyTorch column skipped (pip install torch==2.13.0)")
        return None
    torch.set_num_threads(os.cpu_count() or 1)
    return torch


def run(script: str, title: str, target: float, make_strata_step, make_torch_step) -> None:
    """The benchmark's command line: timings, ratio and peak memory of both frameworks.

    ``make_strata_step()`` and ``make_torch_step(torch)`` build a model and its data and return
    a function running one full training step (forward, loss, backward, optimizer update).
    """
    parser = argparse.ArgumentParser(description=title)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--inner", type=int, default=3)
    parser.add_argument("--memory", choices=["strata", "pytorch"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory:  # the child process of the memory measurement
        torch = _import_torch() if args.memory == "pytorch" else None
        make = make_strata_step if torch is None else (lambda: make_torch_step(torch))
        print(f"{peak_growth_mib(make):.1f}")
        return
    timings = interleaved_ms({"strata": make_strata_step()}, args.rounds, args.inner)
    torch = _import_torch()
    if torch is not None:
        timings.update(interleaved_ms({"pytorch": make_torch_step(torch)}, args.rounds,
                                      args.inner))
    print(f"{title} (OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', 'unset')}, "
          f"{os.cpu_count()} cores)")
    for name, ms in timings.items():
        memory = _memory_in_subprocess(script, name)
        print(f"  {name:<8} {ms:8.2f} ms/step   peak memory +{memory:7.1f} MiB")
    if "pytorch" in timings:
        print(f"strata / PyTorch: {timings['strata'] / timings['pytorch']:.3f} "
              f"(target <= {target})")
