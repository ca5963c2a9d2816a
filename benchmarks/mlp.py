"""Training speed: a 784-512-256-10 ReLU MLP, softmax cross-entropy, Adam, batch 128, float32.
One training step (zero_grad, forward, loss, backward, Adam update) with strata.nn and with
PyTorch CPU, timed side by side in one process.

Target: strata's step time / PyTorch's <= 1.0. Run: ``python benchmarks/mlp.py``.
"""

from __future__ import annotations

import argparse
import os

import numpy as np
from engine_overhead import interleaved_ms

import strata
import strata.nn as nn
from strata.optim import Adam

SIZES = (784, 512, 256, 10)


def strata_model(seed: int = 0):
    strata.seed(seed)
    model = nn.Sequential([nn.Dense(n, "relu", kernel_initializer="he") for n in SIZES[1:-1]]
                          + [nn.Dense(SIZES[-1], kernel_initializer="he")])
    model.build((SIZES[0],))
    return model, Adam(model.parameters(), lr=1e-3)


def torch_model(torch, model):
    """The same weights in a torch Sequential (torch keeps W transposed)."""
    layers = []
    for i, dense in enumerate(model.layers):
        lin = torch.nn.Linear(*dense.W.shape)
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(dense.W.data.T))
            lin.bias.copy_(torch.from_numpy(dense.b.data))
        layers += [lin] + ([torch.nn.ReLU()] if i < len(model.layers) - 1 else [])
    net = torch.nn.Sequential(*layers)
    return net, torch.optim.Adam(net.parameters(), lr=1e-3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--inner", type=int, default=10)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    X = rng.standard_normal((args.batch, SIZES[0])).astype(np.float32)
    labels = rng.integers(0, SIZES[-1], args.batch)

    model, opt = strata_model()

    def strata_step():
        opt.zero_grad()
        strata.softmax_cross_entropy(model(X), labels).backward()
        opt.step()

    timings = interleaved_ms({"strata": strata_step}, args.rounds, args.inner)
    try:  # imported after strata's run: its OpenMP threads spin and slow what runs next
        import torch
    except ImportError:
        print("torch not installed: PyTorch column skipped (pip install torch==2.13.0)")
        torch = None
    if torch is not None:
        torch.set_num_threads(os.cpu_count() or 1)
        net, t_opt = torch_model(torch, strata_model()[0])
        tX, t_labels = torch.from_numpy(X), torch.from_numpy(labels)

        def torch_step():
            t_opt.zero_grad()
            torch.nn.functional.cross_entropy(net(tX), t_labels).backward()
            t_opt.step()

        timings.update(interleaved_ms({"pytorch": torch_step}, args.rounds, args.inner))
    print(f"MLP {'-'.join(map(str, SIZES))} + Adam, batch {args.batch}, float32, full training "
          f"step (OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', 'unset')}, "
          f"{os.cpu_count()} cores)")
    for name, ms in timings.items():
        print(f"  {name:<8} {ms:7.3f} ms/step")
    if "pytorch" in timings:
        print(f"strata / PyTorch: {timings['strata'] / timings['pytorch']:.3f} (target <= 1.0)")


if __name__ == "__main__":
    main()
