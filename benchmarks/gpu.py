"""strata on an NVIDIA GPU through CuPy (issue 18): correctness, then speed against PyTorch CUDA.

1. Every case of the op registry (tests/op_cases.py) and every layer case (LAYER_CASES of
   tests/test_nn_layers.py, through tests/test_standin.py's helpers; needs pytest), forward and
   backward in float64 on CuPy arrays, compared with the NumPy results (the same check the
   suite runs on its CPU stand-in for CuPy).
2. One full training step (zero_grad, forward, softmax cross-entropy, backward, Adam) of the
   benchmark networks in float32, strata on the GPU and PyTorch CUDA with the same weights and
   data, timed side by side in alternating rounds (medians): the 784-4096-2048-10 MLP at batch
   4096 (issue 18's case), LeNet-5 (batch 1024), the small ResNet of benchmarks/resnet.py
   (batch 256) and the 2-layer character LSTM of benchmarks/lstm.py (batch 256): batch sizes
   large enough to keep the GPU busy. Each prints ``strata / PyTorch: <ratio>``.

Run on a machine with CuPy and a GPU: ``python benchmarks/gpu.py`` (``--only-speed``,
``--only-checks``, ``--rounds``, ``--inner``). Without CuPy or without a GPU it says so and
exits with status 2; without PyTorch it prints strata's times alone.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import traceback
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "benchmarks")]

import strata  # noqa: E402 -- after the path set-up above
from strata import backend  # noqa: E402

#: CuPy's float64 kernels (exp, tanh, reductions in another order) differ from NumPy's by ulps.
RTOL, ATOL = 1e-7, 1e-9


def require_gpu():
    """CuPy, after checking it is installed and sees a GPU; else exit with status 2."""
    try:
        import cupy
    except ImportError:
        print("benchmarks/gpu.py: CuPy is not installed, so there is no GPU to run on: "
              "pip install 'strata[gpu]' (or the cupy-cudaNNx wheel of your CUDA version)",
              file=sys.stderr)
        sys.exit(2)
    try:
        count = cupy.cuda.runtime.getDeviceCount()
        float(cupy.arange(3).sum())  # a kernel really runs
    except Exception as e:  # CUDARuntimeError and friends: no driver, no device
        print(f"benchmarks/gpu.py: CuPy is installed but finds no usable GPU ({e})",
              file=sys.stderr)
        sys.exit(2)
    if count == 0:
        print("benchmarks/gpu.py: CuPy sees no GPU", file=sys.stderr)
        sys.exit(2)
    return cupy


def _close(got, ref) -> float:
    """The worst relative difference of a device array from its NumPy reference; raises
    AssertionError if it is not a CuPy array or too far."""
    if backend.array_module(got) is np:
        raise AssertionError(f"came back as {type(got).__name__}, not as a device array")
    got = backend.to_numpy(got)
    np.testing.assert_allclose(got, ref, rtol=RTOL, atol=ATOL)
    return float(np.max(np.abs(got - ref) / (np.abs(ref) + ATOL), initial=0.0))


def check_ops() -> bool:
    """The op registry on the GPU against NumPy float64; prints a summary and the failures."""
    from op_cases import ALL_CASES
    from test_standin import run_case

    failures, worst = [], 0.0
    for case in ALL_CASES:
        try:
            out, grads = run_case(case, "gpu")
            ref_out, ref_grads = run_case(case)
            worst = max(worst, _close(out, ref_out),
                        *(_close(g, r) for g, r in zip(grads, ref_grads, strict=True)))
        except Exception as e:  # report every case, not only the first failure
            failures.append(f"{case.id}: {type(e).__name__}: {str(e).strip()[:300]}")
    print(f"ops: {len(ALL_CASES) - len(failures)}/{len(ALL_CASES)} registry cases equal to "
          f"NumPy float64 on the GPU (worst relative difference {worst:.2g})")
    for line in failures:
        print("  FAILED", line)
    return not failures


def check_layers() -> bool:
    """Every layer case forward and backward on the GPU against the CPU, in float64."""
    try:
        from test_standin import LAYER_CASES, forward_backward, make_layer
    except ImportError as e:  # pytest missing: the layer registry lives in test modules
        print(f"layers: skipped ({e})")
        return True
    failures = []
    for name in sorted(LAYER_CASES):
        try:
            got = forward_backward(*make_layer(name), "gpu")
            ref = forward_backward(*make_layer(name))
            for a, b in zip(got[:2], ref[:2], strict=True):
                _close(a, b)
            for part, ref_part in zip(got[2:], ref[2:], strict=True):
                for key, value in part.items():
                    _close(value, ref_part[key])
        except Exception as e:
            failures.append(f"{name}: {type(e).__name__}: {str(e).strip()[:300]}")
    print(f"layers: {len(LAYER_CASES) - len(failures)}/{len(LAYER_CASES)} layer cases equal to "
          f"the CPU on the GPU (float64, forward, backward, running averages)")
    for line in failures:
        print("  FAILED", line)
    return not failures


# --- training-step speed --------------------------------------------------------------------

def _mlp(batch):
    import mlp

    sizes = (784, 4096, 2048, 10)
    strata.seed(0)
    nn = strata.nn
    model = nn.Sequential([nn.Dense(n, "relu", kernel_initializer="he") for n in sizes[1:-1]]
                          + [nn.Dense(sizes[-1], kernel_initializer="he")])
    model.build((sizes[0],))
    rng = np.random.default_rng(0)
    X = rng.standard_normal((batch, sizes[0])).astype(np.float32)
    labels = rng.integers(0, sizes[-1], batch)
    return model, lambda torch: mlp.torch_model(torch, model)[0], X, labels, X


def _lenet(batch):
    import lenet

    model = lenet.strata_model()
    rng = np.random.default_rng(0)
    X = rng.standard_normal((batch, 28, 28, 1)).astype(np.float32)
    labels = rng.integers(0, 10, batch)
    return (model, lambda torch: lenet.torch_copy(torch, model), X, labels,
            X.transpose(0, 3, 1, 2).copy())


def _resnet(batch):
    import resnet

    model = resnet.strata_model()
    rng = np.random.default_rng(0)
    X = rng.standard_normal((batch, 32, 32, 3)).astype(np.float32)
    labels = rng.integers(0, 10, batch)
    return (model, lambda torch: resnet.torch_copy(torch, model), X, labels,
            X.transpose(0, 3, 1, 2).copy())


def _lstm(batch):
    import lstm

    model = lstm.strata_model()
    rng = np.random.default_rng(0)
    ids, labels = (rng.integers(0, lstm.VOCAB, (batch, lstm.T)) for _ in range(2))
    return model, lambda torch: lstm.torch_copy(torch, model), ids, labels, ids


#: name -> (builder, batch size): (strata model built on the CPU, torch copy of its weights,
#: strata's input, labels, torch's input).
NETWORKS = {"MLP 784-4096-2048-10": (_mlp, 4096), "LeNet-5 28x28x1": (_lenet, 1024),
            "ResNet (4 basic blocks) 32x32x3": (_resnet, 256),
            "2-layer char LSTM (hidden 256, T 64)": (_lstm, 256)}


def _strata_step(model, X, labels):
    """A full strata training step on the GPU: the model, its data and Adam's state there."""
    from strata.optim import Adam

    model.to("gpu")
    X, labels = backend.to_device(X, "gpu"), backend.to_device(labels, "gpu")
    opt = Adam(model.parameters(), lr=1e-3)

    def loss():
        return strata.softmax_cross_entropy(model(X), labels)

    def step():
        opt.zero_grad()
        loss().backward()
        opt.step()
    return step, loss


def _torch_step(torch, net, X, labels):
    net = net.cuda()
    X, labels = torch.from_numpy(X).cuda(), torch.from_numpy(labels).cuda()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)

    def loss():
        out = net(X)
        return torch.nn.functional.cross_entropy(out.reshape(-1, out.shape[-1]),
                                                 labels.reshape(-1))

    def step():
        opt.zero_grad()
        loss().backward()
        opt.step()
    return step, loss


def _timed(step, sync, inner: int) -> float:
    """Milliseconds per step over ``inner`` steps, after one untimed step."""
    step()
    sync()
    start = time.perf_counter()
    for _ in range(inner):
        step()
    sync()
    return (time.perf_counter() - start) / inner * 1e3


def time_network(name, build, batch, torch, cupy, rounds: int, inner: int) -> float | None:
    """Prints both frameworks' median step times and their ratio; returns the ratio."""
    model, torch_net, X, labels, torch_X = build(batch)
    steps = {}
    net = torch_net(torch) if torch is not None else None  # copies the CPU weights first
    steps["strata"] = _strata_step(model, X, labels)
    if torch is not None:
        steps["pytorch"] = _torch_step(torch, net, torch_X, labels)
        with torch.no_grad(), strata.no_grad():  # same workload: the same loss at the start
            ours, theirs = float(steps["strata"][1]().item()), float(steps["pytorch"][1]())
        if abs(ours - theirs) > 1e-3 * max(1.0, abs(ours)):
            print(f"  warning: initial losses differ: strata {ours:.6f}, PyTorch {theirs:.6f}")
    syncs = {"strata": cupy.cuda.Device().synchronize,
             "pytorch": torch.cuda.synchronize if torch is not None else None}
    for fw in steps:  # warm-up: CuPy compiles its kernels, allocators fill their pools
        for _ in range(3):
            steps[fw][0]()
        syncs[fw]()
    times = {fw: [] for fw in steps}
    for r in range(rounds):
        for fw in (list(steps) if r % 2 == 0 else list(steps)[::-1]):
            times[fw].append(_timed(steps[fw][0], syncs[fw], inner))
    print(f"{name} + Adam, batch {batch}, float32, full training step")
    median = {fw: statistics.median(t) for fw, t in times.items()}
    for fw, ms in median.items():
        print(f"  {fw:<8} {ms:9.3f} ms/step")
    if "pytorch" not in median:
        return None
    ratio = median["strata"] / median["pytorch"]
    print(f"strata / PyTorch: {ratio:.3f} (target <= 1.5)")
    return ratio


def _torch():
    try:
        import torch
    except ImportError:
        print("PyTorch is not installed: strata's times only")
        return None
    if not torch.cuda.is_available():
        print("PyTorch sees no CUDA device: strata's times only")
        return None
    return torch


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only-checks", action="store_true")
    parser.add_argument("--only-speed", action="store_true")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--inner", type=int, default=5, help="steps per timed round")
    args = parser.parse_args()
    cupy = require_gpu()
    props = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)
    print(f"GPU: {props['name'].decode()} (CuPy {cupy.__version__})")
    ok = True
    if not args.only_speed:
        with strata.default_dtype(np.float64):
            for check in (check_ops, check_layers):
                try:
                    ok = check() and ok
                except Exception:
                    traceback.print_exc()
                    ok = False
    if not args.only_checks:
        torch = _torch()
        for name, (build, batch) in NETWORKS.items():
            try:
                time_network(name, build, batch, torch, cupy, args.rounds, args.inner)
            except Exception:
                print(f"{name}: FAILED")
                traceback.print_exc()
                ok = False
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
