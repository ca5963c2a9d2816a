"""Non-max suppression (course 4 week 3): keep the best box of each object, drop its duplicates.

The course's greedy procedure: discard the boxes whose score is not above ``score_threshold``;
then repeatedly take the best remaining box and discard every remaining box whose IoU with it
exceeds ``iou_threshold``. With ``classes``, boxes of different classes never suppress each
other (the course runs it once per class).

The result equals OpenCV's ``cv2.dnn.NMSBoxes`` (checked in tests/test_vision_boxes.py):

- a box is dropped when its IoU with a kept box is strictly greater than ``iou_threshold``
  (OpenCV keeps it while ``overlap <= nms_threshold``), so a pair at exactly the threshold both
  stay; likewise a score must be strictly greater than ``score_threshold`` (OpenCV and
  TensorFlow both use ``score > threshold``);
- equal scores are taken in index order (OpenCV sorts with a stable sort);
- IoU uses areas (x2 - x1) * (y2 - y1), no +1, as OpenCV does for ``Rect2d`` boxes.

Deliberate differences: OpenCV rounds the IoU and the threshold to float32, strata compares in
float64 (results can differ only for an IoU within about 1e-7 of the threshold); OpenCV gives two
zero-area boxes an overlap of 1 wherever they are, strata gives them IoU 0 (see ``iou``);
OpenCV skips NaN scores and boxes silently, strata raises. ``max_boxes`` limits the boxes kept
(TensorFlow's ``max_output_size``, the course's ``max_boxes``), unlike OpenCV's ``top_k``,
which limits the candidates before suppression.

Speed: a greedy loop over every kept box costs (boxes x kept boxes); on 20,000 detector-like
boxes that is tens of millions of IoUs. Only a kept box near the candidate can pass the test, so
the kernel files kept boxes in bins by their top-left corner and compares a candidate only with
the bins where a box overlapping it by more than the threshold can start (``_reach``), in
loops the compiler vectorizes. The kept set is exactly the plain greedy loop's.
"""

from __future__ import annotations

import numbers

import numba
import numpy as np

from strata.vision.boxes import _as_boxes, _check_ordered

_FN = "non_max_suppression"
_JIT = {"cache": True, "error_model": "numpy", "nogil": True}


@numba.njit(**_JIT)
def _bin(v, v0, size, nb, upper):  # pragma: no cover - compiled
    """Bin of coordinate ``v`` among ``nb`` bins of ``size`` from ``v0``, clamped; monotone."""
    c = (v - v0) / size
    if c != c:  # inf / inf: the far end, which can only widen a search
        return nb - 1 if upper else 0
    return np.int64(min(max(c, 0.0), nb - 1.0))


@numba.njit(**_JIT)
def _bin_count(span, mean_size, cap):  # pragma: no cover - compiled
    """Bins along one axis (about one per box size, at most ``cap``) and their size."""
    count = span / mean_size
    count = min(np.floor(count), cap) if count >= 1.0 else 1.0  # also catches NaN
    size = span / count
    if not 0.0 < size < np.inf:  # all boxes start at one coordinate, or the span overflowed
        return 1.0, 1.0
    return count, size


@numba.njit(**_JIT)
def _grid(boxes):  # pragma: no cover - compiled
    """(x0, y0, bin width, bin height, bins along x, bins along y, widest, tallest)."""
    n = boxes.shape[0]
    lo = np.full(2, np.inf)
    hi = np.full(2, -np.inf)
    size = np.zeros(2)
    most = np.zeros(2)
    for i in range(n):
        for a in range(2):
            lo[a] = min(lo[a], boxes[i, a])
            hi[a] = max(hi[a], boxes[i, a])
            side = boxes[i, a + 2] - boxes[i, a]
            size[a] += side
            most[a] = max(most[a], side)
    cap = max(1.0, np.floor(np.sqrt(n)))  # at most n bins in all
    nbx, bw = _bin_count(hi[0] - lo[0], size[0] / n, cap)
    nby, bh = _bin_count(hi[1] - lo[1], size[1] / n, cap)
    return lo[0], lo[1], bw, bh, nbx, nby, most[0], most[1]


@numba.njit(**_JIT)
def _reach(lo, hi, t, v0, size, nb, widest):  # pragma: no cover - compiled
    """Bins where a box with IoU > t with the side [lo, hi] can start.

    IoU > t needs an overlap iw > t * max(w, w_k) (inter > t * area, inter <= iw * height), so
    a kept box starts before hi - t * w, and after lo - w_k (1 - t) where w_k < w / t and
    w_k <= ``widest``; the slack absorbs rounding.
    """
    w = hi - lo
    slack = 1e-9 * (abs(lo) + abs(hi) + w + widest)
    return (_bin(lo - (1.0 - t) * min(w / t, widest) - slack, v0, size, nb, False),
            _bin(hi - t * w + slack, v0, size, nb, True))


@numba.njit(**_JIT)
def _any_over(box, area, kept, lo, hi, t):  # pragma: no cover - compiled
    """Whether a kept box in slots [lo, hi) has IoU > t with ``box``: branch-free, so it
    vectorizes (unsigned indices spare it numba's negative-index test)."""
    kx1, ky1, kx2, ky2, ka = kept[0], kept[1], kept[2], kept[3], kept[4]
    x1, y1, x2, y2 = box[0], box[1], box[2], box[3]
    hits = 0
    for k in range(np.uint64(lo), np.uint64(hi)):
        iw = max(min(x2, kx2[k]) - max(x1, kx1[k]), 0.0)
        ih = max(min(y2, ky2[k]) - max(y1, ky1[k]), 0.0)
        inter = iw * ih
        hits += np.int64(inter / (area + ka[k] - inter) > t)  # 0 / 0 is NaN: not > t
    return hits > 0


@numba.njit(**_JIT)
def _suppressed(box, area, t, binned, listed, first, count, grid):  # pragma: no cover
    """Whether a kept box of the current group has IoU > t with ``box``: looked for in the bins
    where such a box can start, or in the group's plain list (slots [first, count) of
    ``listed``) when that is shorter than the bins to visit, as a low threshold's reach is."""
    kept, start, fill, stamp, group = binned
    x0, y0, bw, bh, nbx, nby, widest, tallest = grid
    bx_lo, bx_hi = _reach(box[0], box[2], t, x0, bw, nbx, widest)
    by_lo, by_hi = _reach(box[1], box[3], t, y0, bh, nby, tallest)
    if 4 * (bx_hi - bx_lo + 1) * (by_hi - by_lo + 1) >= count - first:  # a bin costs ~4 IoUs
        return _any_over(box, area, listed, first, count, t)
    for by in range(by_lo, by_hi + 1):
        for bx in range(bx_lo, bx_hi + 1):
            b = by * np.int64(nbx) + bx
            if stamp[b] == group and _any_over(box, area, kept, start[b], start[b] + fill[b], t):
                return True
    return False


@numba.njit(**_JIT)
def _bin_starts(boxes, grid):  # pragma: no cover - compiled
    """The bin of each box (by its top-left corner) and each bin's first slot."""
    x0, y0, bw, bh, nbx, nby = grid[:6]
    bins = np.empty(boxes.shape[0], dtype=np.int64)
    start = np.zeros(np.int64(nbx * nby) + 1, dtype=np.int64)
    for i in range(boxes.shape[0]):
        bins[i] = (_bin(boxes[i, 1], y0, bh, nby, False) * np.int64(nbx)
                   + _bin(boxes[i, 0], x0, bw, nbx, False))
        start[bins[i] + 1] += 1
    return bins, np.cumsum(start)


@numba.njit(**_JIT)
def _greedy(boxes, groups, t, max_keep):  # pragma: no cover - compiled
    """Rows of ``boxes`` (sorted by group, best first within one) kept by greedy NMS.

    Each bin holds its kept boxes in its own run of slots, sized by how many boxes start in it;
    ``stamp`` marks which group a bin's boxes belong to, so a new group starts with empty bins.
    """
    n = boxes.shape[0]
    grid = _grid(boxes)
    bins, start = _bin_starts(boxes, grid)
    kept = np.empty((5, n))  # x1, y1, x2, y2, area per slot, by bin
    listed = np.empty((5, n))  # the same, in the order kept
    fill = np.zeros(start.size, dtype=np.int64)
    stamp = np.full(start.size, -1, dtype=np.int64)
    out = np.empty(n, dtype=np.int64)
    count = first = 0
    for i in range(n):
        box, b, g = boxes[i], bins[i], groups[i]
        first = count if i > 0 and g != groups[i - 1] else first
        area = (box[2] - box[0]) * (box[3] - box[1])
        # a zero-area box has IoU 0 with everything: never suppressed
        if area > 0.0 and _suppressed(box, area, t, (kept, start, fill, stamp, g), listed,
                                      first, count, grid):
            continue
        if stamp[b] != g:
            stamp[b], fill[b] = g, 0
        for slot, into in ((start[b] + fill[b], kept), (count, listed)):
            into[:4, slot] = box
            into[4, slot] = area
        fill[b] += 1
        out[count] = i
        count += 1
        if count >= max_keep:
            break
    return out[:count]


def _check_threshold(value, name: str, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not low <= value <= high:
        raise ValueError(f"{_FN}: expected {name} a number in [{low}, {high}], received {value!r}")
    return float(value)


def _check_inputs(boxes, scores, iou_threshold, score_threshold, max_boxes):
    """Validated float64 boxes (n, 4) and scores (n,); raises before any work is done."""
    b = _as_boxes(boxes, _FN, matrix=True)
    s = np.asarray(scores)
    if s.ndim != 1 or s.shape[0] != b.shape[0] or not np.issubdtype(s.dtype, np.number):
        raise ValueError(f"{_FN}: expected scores of shape ({b.shape[0]},) (one number per box), "
                         f"received shape {s.shape} and dtype {s.dtype}")
    if not np.isfinite(b).all():
        bad = int(np.argwhere(~np.isfinite(b))[0, 0])
        raise ValueError(f"{_FN}: expected finite box coordinates, received {b[bad].tolist()} "
                         f"at index {bad}")
    if np.isnan(s).any():
        raise ValueError(f"{_FN}: expected scores without NaN, received "
                         f"{int(np.isnan(s).sum())} NaN score(s), first at index "
                         f"{int(np.argmax(np.isnan(s)))}")
    _check_ordered(b, _FN)
    if not np.issubdtype(s.dtype, np.floating):
        s = s.astype(np.float64)  # so that -s below neither wraps (unsigned) nor overflows
    _check_threshold(iou_threshold, "iou_threshold", 0.0, 1.0)
    if score_threshold is not None:
        _check_threshold(score_threshold, "score_threshold", -np.inf, np.inf)
    if max_boxes is not None and (isinstance(max_boxes, bool)
                                  or not isinstance(max_boxes, numbers.Integral) or max_boxes < 0):
        raise ValueError(f"{_FN}: expected max_boxes None or an integer >= 0, "
                         f"received {max_boxes!r}")
    return b.astype(np.float64, copy=False), s


def _class_codes(classes, n: int) -> np.ndarray:
    """Codes 0, 1, ... per box for ``classes`` (integers or any sortable labels, e.g. strings);
    the kernel's bins use -1 to mean no class yet."""
    c = np.asarray(classes)
    if c.shape != (n,):
        raise ValueError(f"{_FN}: expected classes of shape ({n},) (one label per box), "
                         f"received shape {c.shape}")
    if np.issubdtype(c.dtype, np.floating) and np.isnan(c).any():
        raise ValueError(f"{_FN}: expected classes without NaN, received "
                         f"{int(np.isnan(c).sum())} NaN label(s)")
    return np.unique(c, return_inverse=True)[1].reshape(n)


def _by_score(s: np.ndarray) -> np.ndarray:
    """Indices by decreasing score, equal scores in index order (OpenCV's stable sort). NumPy's
    stable argsort is about 6x slower than its default sort here, so sort unstably, then order
    the runs of equal scores by index with one sort of (run, index) keys."""
    order = np.argsort(-s)
    ranked = s[order]
    runs = np.zeros(s.size, dtype=np.int64)
    np.cumsum(ranked[1:] != ranked[:-1], out=runs[1:])
    return np.sort(runs * s.size + order) % s.size


def non_max_suppression(boxes, scores, iou_threshold=0.5, score_threshold=None, max_boxes=None,
                        classes=None) -> np.ndarray:
    """Indices (int64) of the boxes kept by greedy non-max suppression, best score first.

    boxes: corners (n, 4); scores: (n,); a box whose IoU with a better kept box (of the same
    class, when ``classes`` (n,) is given) is greater than ``iou_threshold`` is dropped; so is
    one whose score is not greater than ``score_threshold``; at most ``max_boxes`` are kept.

    >>> non_max_suppression([[0, 0, 2, 2], [0, 0, 2, 1.9], [5, 5, 6, 6]], [0.8, 0.9, 0.7])
    array([1, 2])
    """
    b, s = _check_inputs(boxes, scores, iou_threshold, score_threshold, max_boxes)
    codes = None if classes is None else _class_codes(classes, b.shape[0])
    limit = b.shape[0] if max_boxes is None else int(max_boxes)
    order = by_score = _by_score(s)
    if score_threshold is not None:
        order = order[s[order] > score_threshold]
    if limit == 0:
        order = order[:0]  # the kernel stops only after keeping a box
    if codes is None:
        groups = np.zeros(order.size, dtype=np.int64)
        return order[_greedy(b[order], groups, float(iou_threshold), limit)]
    # group by class (stable, so best first within a class), then back to score order
    order = order[np.argsort(codes[order], kind="stable")]
    groups = codes[order].astype(np.int64)  # non-decreasing: one run per class
    kept = _greedy(b[order], groups, float(iou_threshold), order.size)
    rank = np.empty(s.size, dtype=np.int64)
    rank[by_score] = np.arange(s.size)
    kept_idx = order[kept]
    return kept_idx[np.argsort(rank[kept_idx])][:limit]
