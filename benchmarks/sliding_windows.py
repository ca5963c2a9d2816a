"""Sliding windows: the naive detector (crop every window, classify each crop) against the
convolutional implementation (``strata.vision.convolutionalize``: one forward pass over the
whole image), on a 64x64x3 classifier (conv 5x5x16, max-pool 2, conv 3x3x32, max-pool 2,
conv 3x3x64, max-pool 2, Dense 128, Dense 3 softmax; total stride 8) over a 256x256x3 image:
25 x 25 = 625 windows. float32, untrained weights (speed does not depend on them), one process;
the two are run in alternating rounds and the median round of each is reported, after checking
that both give the same score map.

Run: ``python benchmarks/sliding_windows.py [--image 256] [--window 64] [--rounds 5]``.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

import strata
import strata.nn as nn
from strata.vision.sliding import convolutionalize, sliding_windows, window_stride


def classifier(window: int) -> nn.Sequential:
    """The 64x64 classifier of the module doc (any window size >= 36 works)."""
    strata.seed(0)
    model = nn.Sequential([
        nn.Conv2D(16, 5, activation="relu", kernel_initializer="he"), nn.MaxPool2D(2),
        nn.Conv2D(32, 3, activation="relu", kernel_initializer="he"), nn.MaxPool2D(2),
        nn.Conv2D(64, 3, activation="relu", kernel_initializer="he"), nn.MaxPool2D(2),
        nn.Flatten(), nn.Dense(128, "relu", kernel_initializer="he"), nn.Dense(3, "softmax")])
    model.build((window, window, 3))
    return model


def _time(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--image", type=int, default=256, help="image side in pixels")
    parser.add_argument("--window", type=int, default=64, help="classifier's input side")
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds of each")
    parser.add_argument("--batch-size", type=int, default=64, help="crops per naive batch")
    args = parser.parse_args()

    model = classifier(args.window)
    conv = convolutionalize(model)
    stride = window_stride(model)
    image = np.random.default_rng(1).random((args.image, args.image, 3), dtype=np.float32)

    def naive():
        return sliding_windows(model, image, args.window, stride, args.batch_size)

    def convolutional():
        return conv.predict(image[None])[0]

    expected, got = naive(), convolutional()  # also the untimed warm-up of each
    assert expected.shape == got.shape, (expected.shape, got.shape)
    max_diff = float(np.abs(expected - got).max())
    assert max_diff < 1e-4, max_diff
    times = {"naive": [], "convolutional": []}
    for _ in range(args.rounds):  # alternating rounds: a shared machine's drift hits both
        times["naive"].append(_time(naive))
        times["convolutional"].append(_time(convolutional))
    t_naive = statistics.median(times["naive"])
    t_conv = statistics.median(times["convolutional"])
    rows, cols = expected.shape[:2]
    print(f"{args.window}x{args.window} classifier over a {args.image}x{args.image} image, "
          f"stride {stride}: {rows} x {cols} = {rows * cols} windows, max |difference| "
          f"{max_diff:.2e}")
    print(f"naive:         {t_naive * 1e3:9.1f} ms (median of {args.rounds})")
    print(f"convolutional: {t_conv * 1e3:9.1f} ms")
    print(f"convolutional / naive: {t_conv / t_naive:.4f}")
    print(f"speed-up: {t_naive / t_conv:.1f}x")


if __name__ == "__main__":
    main()
