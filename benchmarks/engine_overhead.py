"""Autograd overhead: a 784-512-256-10 MLP step (forward + backward, batch 128, float32) written
three ways and timed side by side in one process:

- strata tensors and autograd,
- the same computation hand-written in NumPy (the course's forward/backward with caches),
- PyTorch CPU (when installed).

Target: strata's time / hand-written NumPy's time <= 1.10.
Run: ``python benchmarks/engine_overhead.py`` (or ``make bench``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np

import strata

SIZES = (784, 512, 256, 10)


def make_problem(batch: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((batch, SIZES[0])).astype(np.float32)
    Y = np.eye(SIZES[-1], dtype=np.float32)[rng.integers(0, SIZES[-1], batch)]
    params = []
    for n_prev, n in zip(SIZES[:-1], SIZES[1:]):
        W = (rng.standard_normal((n_prev, n)) * np.sqrt(2 / n_prev)).astype(np.float32)
        params.append((W, np.zeros(n, dtype=np.float32)))
    return X, Y, params


def numpy_step(X, Y, params):
    """Forward and backward by hand: relu hidden layers, softmax cross-entropy output."""
    m = X.shape[0]
    caches, A = [], X
    for i, (W, b) in enumerate(params):
        Z = A @ W + b
        caches.append((A, Z))
        A = np.maximum(Z, 0) if i < len(params) - 1 else Z
    shifted = A - A.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    cost = -(Y * log_probs).sum() / m
    dZ = (np.exp(log_probs) - Y) / m
    grads = []
    for i in reversed(range(len(params))):
        A_prev, _ = caches[i]
        W, _ = params[i]
        grads.append((A_prev.T @ dZ, dZ.sum(axis=0)))
        if i > 0:
            dZ = (dZ @ W.T) * (caches[i - 1][1] > 0)
    return cost, grads


def strata_forward(X, params, composed: bool = False):
    A = strata.tensor(X)
    for i, (W, b) in enumerate(params):
        W.grad = b.grad = None
        Z = A @ W + b if composed else strata.linear(A, W, b)
        A = strata.relu(Z) if i < len(params) - 1 else Z
    return A


def strata_step(X, Y, params):
    """The same network with strata's course-style ops: linear, relu, softmax cross-entropy."""
    cost = strata.softmax_cross_entropy(strata_forward(X, params), Y)
    cost.backward()
    return cost


def strata_composed_step(X, Y, params):
    """As strata_step, composed of primitives only (matmul, add, log_softmax, mul, sum, div)."""
    Z = strata_forward(X, params, composed=True)
    cost = -(strata.tensor(Y) * strata.log_softmax(Z, axis=1)).sum() / X.shape[0]
    cost.backward()
    return cost


def torch_step(torch, X, Y, params):
    for W, b in params:
        W.grad = b.grad = None
    A = X
    for i, (W, b) in enumerate(params):
        Z = A @ W + b
        A = torch.relu(Z) if i < len(params) - 1 else Z
    cost = -(Y * torch.log_softmax(A, dim=1)).sum() / X.shape[0]
    cost.backward()
    return cost


def interleaved_ms(steps: dict, rounds: int, inner: int) -> dict:
    """Median ms/step of each step, timed in rounds that rotate through all of them, so that
    the drift of a shared machine hits every step alike."""
    for step in steps.values():  # warm-up
        step()
        step()
    times = {name: [] for name in steps}
    names = list(steps)
    for r in range(rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            start = time.perf_counter()
            for _ in range(inner):
                steps[name]()
            times[name].append((time.perf_counter() - start) / inner * 1e3)
    return {name: statistics.median(t) for name, t in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=60)
    parser.add_argument("--inner", type=int, default=10)
    args = parser.parse_args()

    X, Y, params = make_problem(args.batch)
    st_params = [(strata.tensor(W, requires_grad=True), strata.tensor(b, requires_grad=True))
                 for W, b in params]
    # Same numbers both ways before timing anything.
    cost_np, grads_np = numpy_step(X, Y, params)
    for step in (strata_step, strata_composed_step):
        cost_st = step(X, Y, st_params)
        assert np.allclose(cost_np, cost_st.item(), rtol=1e-5)
        assert np.allclose(grads_np[0][0], st_params[-1][0].grad, rtol=1e-4, atol=1e-6)

    steps = {"numpy": lambda: numpy_step(X, Y, params),
             "strata": lambda: strata_step(X, Y, st_params),
             "strata (primitives only)": lambda: strata_composed_step(X, Y, st_params)}
    timings = interleaved_ms(steps, args.rounds, args.inner)
    # PyTorch is imported and timed afterwards: loading it starts OpenMP threads that keep
    # spinning after each call and slow down whatever shares this 2-core machine with them.
    try:
        import torch
    except ImportError:
        print("torch not installed: PyTorch column skipped (pip install torch==2.13.0)")
    else:
        torch.set_num_threads(os.cpu_count() or 1)
        tX, tY = torch.from_numpy(X), torch.from_numpy(Y)
        t_params = [(torch.from_numpy(W.copy()).requires_grad_(),
                     torch.from_numpy(b.copy()).requires_grad_()) for W, b in params]
        timings.update(interleaved_ms({"pytorch": lambda: torch_step(torch, tX, tY, t_params)},
                                      args.rounds, args.inner))

    print(f"MLP {'-'.join(map(str, SIZES))}, batch {args.batch}, float32, forward+backward "
          f"(OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', 'unset')}, "
          f"{os.cpu_count()} cores)")
    for name, ms in timings.items():
        print(f"  {name:<24} {ms:7.3f} ms/step")
    print(f"strata / hand-written NumPy: {timings['strata'] / timings['numpy']:.3f} "
          f"(target <= 1.10); primitives only: "
          f"{timings['strata (primitives only)'] / timings['numpy']:.3f}")
    if "pytorch" in timings:
        print(f"strata / PyTorch:            {timings['strata'] / timings['pytorch']:.3f}")


if __name__ == "__main__":
    main()
