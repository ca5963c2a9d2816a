"""Selective search's proposal recall on MNIST canvases: 1-5 test digits at random sizes (20-40
px), not overlapping, on a 128x128 black canvas; the true box of a digit is the tight box of
its non-zero pixels; ``--noise`` adds Gaussian noise of that standard deviation. Prints the
recall at IoU 0.5 and 0.7, the proposals per image and the time per image of
``strata.vision.propose_regions`` with its defaults.

Run: ``python benchmarks/proposals.py [--images 20] [--noise 0.1] [--data DIR]``; DIR holds
mnist/t10k-images-idx3-ubyte.gz (default: $STRATA_DATA, else ../shared/datasets).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

from strata.data.datasets import read_idx
from strata.vision.proposals import propose_regions
from strata.vision.rcnn import proposal_recall

CANVAS = 128


def mnist_canvas(digits: np.ndarray, rng: np.random.Generator):
    """A (128, 128) float canvas in [0, 1] with 1-5 digits, and their tight boxes (k, 4)."""
    from skimage.transform import resize

    canvas, taken, boxes = np.zeros((CANVAS, CANVAS)), np.zeros((CANVAS, CANVAS), bool), []
    for _ in range(int(rng.integers(1, 6))):
        for _attempt in range(50):  # rejection sampling of a free square
            s = int(rng.integers(20, 41))
            x, y = (int(v) for v in rng.integers(0, CANVAS - s + 1, 2))
            if not taken[y:y + s, x:x + s].any():
                break
        else:
            continue
        digit = resize(digits[rng.integers(len(digits))] / 255.0, (s, s), order=1)
        digit[digit < 0.1] = 0  # interpolation's faint fringe is not part of the digit
        canvas[y:y + s, x:x + s] = np.maximum(canvas[y:y + s, x:x + s], digit)
        taken[y:y + s, x:x + s] = True
        ys, xs = np.nonzero(digit)
        boxes.append((x + xs.min(), y + ys.min(), x + xs.max() + 1, y + ys.max() + 1))
    return canvas, np.asarray(boxes, dtype=np.float64).reshape(-1, 4)


def measure(n_images: int = 20, data: Path | None = None, seed: int = 0, noise: float = 0.0,
            **options) -> dict:
    """Recall at IoU 0.5 and 0.7, mean proposals and median seconds per image."""
    root = data or Path(os.environ.get("STRATA_DATA") or
                        Path(__file__).resolve().parents[2] / "shared" / "datasets")
    digits = read_idx(root / "mnist" / "t10k-images-idx3-ubyte.gz")
    rng = np.random.default_rng(seed)
    scenes = [mnist_canvas(digits, rng) for _ in range(n_images)]
    scenes = [(np.clip(c + rng.normal(0, noise, c.shape), 0, 1) if noise else c, b)
              for c, b in scenes]
    propose_regions(scenes[0][0], **options)  # warm-up: scikit-image's lazy imports
    proposals, seconds = [], []
    for canvas, _ in scenes:
        start = time.perf_counter()
        proposals.append(propose_regions(canvas, **options))
        seconds.append(time.perf_counter() - start)
    truths = [boxes for _, boxes in scenes]
    return {"images": n_images, "digits": sum(len(t) for t in truths),
            "recall@0.5": proposal_recall(proposals, truths, 0.5),
            "recall@0.7": proposal_recall(proposals, truths, 0.7),
            "proposals": float(np.mean([len(p) for p in proposals])),
            "seconds": float(np.median(seconds))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=20)
    parser.add_argument("--noise", type=float, default=0.0)
    parser.add_argument("--data", type=Path, default=None)
    args = parser.parse_args()
    r = measure(args.images, args.data, noise=args.noise)
    print(f"{r['images']} canvases, {r['digits']} digits, noise {args.noise}: recall "
          f"{r['recall@0.5']:.3f} at IoU 0.5, {r['recall@0.7']:.3f} at IoU 0.7; "
          f"{r['proposals']:.0f} proposals and {1000 * r['seconds']:.0f} ms per image (median)")


if __name__ == "__main__":
    main()
