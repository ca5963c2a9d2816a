"""Non-max suppression speed: strata.vision.non_max_suppression against OpenCV's
cv2.dnn.NMSBoxes on 1,000, 5,000 and 20,000 random boxes, timed side by side in one run.

The boxes look like a detector's raw output: clusters of jittered boxes of varied sizes around
objects in a 1280x720 image, plus scattered false positives, with random scores. Both calls get
the same boxes (corners for strata, (x, y, w, h) for OpenCV, both float64, so OpenCV uses its
Rect2d overload) and must return the same indices. Each call is a single function call on the
calling thread, so one process suffices: rounds alternate between the two (the order flips every
round) and the median round is reported. Target: strata / OpenCV <= 1.0.

Run: ``python benchmarks/nms.py`` (``--rounds``, ``--iou``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np

from strata.vision.nms import non_max_suppression

SIZES = (1_000, 5_000, 20_000)
_ROUND_S = 0.02  # calls per round are repeated until a round lasts about this long


def detector_boxes(n: int, seed: int = 0):
    """``n`` corner boxes (float64) and float32 scores shaped like a detector's raw output."""
    rng = np.random.default_rng(seed)
    objects = max(1, n // 50)
    centers = rng.uniform([0, 0], [1280, 720], size=(objects, 2))
    sizes = np.exp(rng.uniform(np.log(16), np.log(300), size=(objects, 2)))
    which = rng.integers(0, objects, size=n)
    size = sizes[which] * np.exp(rng.normal(0, 0.15, size=(n, 2)))
    center = centers[which] + rng.normal(0, 0.1, size=(n, 2)) * sizes[which]
    stray = rng.random(n) < 0.2  # a fifth are false positives anywhere in the image
    center[stray] = rng.uniform([0, 0], [1280, 720], size=(int(stray.sum()), 2))
    boxes = np.concatenate([center - size / 2, center + size / 2], axis=1)
    return boxes, rng.random(n).astype(np.float32)


def _per_call(fn, calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - start) / calls


def compare(n: int, rounds: int, iou: float) -> tuple[float, float, int]:
    """Median seconds per call of strata and OpenCV on ``n`` boxes, and the number kept."""
    import cv2

    boxes, scores = detector_boxes(n)
    xywh = np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], axis=1)
    calls = {
        "strata": lambda: non_max_suppression(boxes, scores, iou, score_threshold=0.0),
        "opencv": lambda: cv2.dnn.NMSBoxes(xywh, scores, 0.0, iou),
    }
    ours, theirs = calls["strata"](), np.asarray(calls["opencv"]()).ravel()
    if not np.array_equal(ours, theirs):
        raise AssertionError(f"n={n}: strata and OpenCV kept different boxes")
    repeat = {name: max(1, int(_ROUND_S / _per_call(fn, 3))) for name, fn in calls.items()}
    times = {name: [] for name in calls}
    for r in range(rounds):
        for name in (("strata", "opencv") if r % 2 == 0 else ("opencv", "strata")):
            times[name].append(_per_call(calls[name], repeat[name]))
    return statistics.median(times["strata"]), statistics.median(times["opencv"]), ours.size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=21)
    parser.add_argument("--iou", type=float, default=0.5, help="IoU threshold")
    args = parser.parse_args()
    try:
        import cv2
    except ImportError:
        print("OpenCV not installed: nothing to compare with (pip install opencv-python-headless)")
        return
    non_max_suppression(*detector_boxes(10))  # compiles (or loads) the numba kernel
    print(f"NMS, IoU threshold {args.iou} (OpenCV {cv2.__version__}, {os.cpu_count()} cores; "
          f"medians of {args.rounds} alternating rounds)")
    for n in SIZES:
        ours, theirs, kept = compare(n, args.rounds, args.iou)
        print(f"  {n:>6} boxes ({kept:>5} kept): strata {ours * 1e3:8.3f} ms   "
              f"OpenCV {theirs * 1e3:8.3f} ms")
        print(f"strata / OpenCV: {ours / theirs:.3f}")


if __name__ == "__main__":
    main()
