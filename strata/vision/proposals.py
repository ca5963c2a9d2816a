"""Region proposals and R-CNN (course 4 week 3): selective search, warped-crop classification,
and R-CNN detection, the slow baseline that YOLO replaced.

R-CNN (Girshick et al., 2014) proposes about 2000 regions per image with selective search
(Uijlings et al., 2013), warps each region to the classifier's input size, classifies every crop
in its own forward pass and keeps the best boxes per class with non-max suppression. One
classifier pass per proposal is what makes it slow (seconds per image); YOLO runs the network
once over the whole image and reads every box off one output grid.

Boxes are corners (x1, y1, x2, y2) in pixels with exclusive ends: a box covers columns
x1 .. x2 - 1 and rows y1 .. y2 - 1, so a one-pixel region is (x, y, x + 1, y + 1).
"""

from __future__ import annotations

import heapq
import sys

import numpy as np

from strata.extras import require

_COLOUR_BINS, _TEXTURE_BINS, _ORIENTATIONS = 25, 10, 8
_SIMILARITIES = ("colour", "texture", "size", "fill")
_COLOR_SPACES = ("rgb", "hsv", "lab", "gray")


def _require(ok, caller: str, expected: str, got) -> None:
    if not ok:
        raise ValueError(f"{caller}: expected {expected}, got {got}")


def _number(v, low: float) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) \
        and bool(np.isfinite(v)) and v >= low


def _integer(v, low: int) -> bool:
    return isinstance(v, (int, np.integer)) and _number(v, low)


def _skimage(caller: str):
    for module in ("color", "filters", "segmentation", "transform"):
        require(f"skimage.{module}", "vision", caller)
    return sys.modules["skimage"]


def _check_image(image, caller: str) -> np.ndarray:
    image = np.asarray(image)
    if image.dtype.kind not in "biuf":
        raise TypeError(f"{caller}: expected a numeric image, got dtype {image.dtype}")
    _require(image.ndim in (2, 3) and image.shape[2:] in ((), (1,), (3,)), caller,
             "one image of shape (H, W) or (H, W, C) with C 1 or 3", f"shape {image.shape}")
    _require(image.size, caller, "a non-empty image", f"shape {image.shape}")
    _require(image.dtype.kind != "f" or np.isfinite(image).all(), caller,
             "finite pixel values", "NaN or inf")
    return image if image.ndim == 3 else image[..., None]


def _unit_range(image: np.ndarray) -> np.ndarray:
    """Pixels in [0, 1]: unsigned integers over their dtype's maximum; other images as they are
    when already in [0, 1], else min-max rescaled."""
    if image.dtype.kind == "u":
        return image / float(np.iinfo(image.dtype).max)
    x = image.astype(np.float64)
    lo, hi = x.min(), x.max()
    if lo >= 0 and hi <= 1:
        return x
    return (x - lo) / (hi - lo) if hi > lo else np.zeros_like(x)


def _convert(unit: np.ndarray, space: str, ski) -> np.ndarray:
    if unit.shape[2] == 1:
        return unit
    if space == "gray":
        return ski.color.rgb2gray(unit)[..., None]
    if space == "hsv":
        return ski.color.rgb2hsv(unit)
    if space == "lab":  # L in [0, 100], a and b in about [-128, 127]: to [0, 1]
        lab = ski.color.rgb2lab(unit)
        return np.clip((lab + [0, 128, 128]) / [100, 255, 255], 0, 1)
    return unit


def _histograms(flat: np.ndarray, values: np.ndarray, n: int, bins: int) -> np.ndarray:
    """L1-normalised per-region histograms of values in [0, 1], shape (pixels, channels)."""
    k = values.shape[1]
    b = np.minimum((values * bins).astype(np.int64), bins - 1)
    idx = flat[:, None] * (k * bins) + np.arange(k) * bins + b
    h = np.bincount(idx.ravel(), minlength=n * k * bins).reshape(n, k * bins).astype(np.float64)
    return h / h.sum(1, keepdims=True)


def _gradients(img: np.ndarray, ski) -> np.ndarray:
    """Gaussian derivatives (sigma 1) in 8 orientations per channel, scaled to [0, 1]:
    (H * W, C * 8). Half-wave rectified: opposite orientations hold a derivative's two signs."""
    smooth = ski.filters.gaussian(img, sigma=1, channel_axis=-1)
    gy, gx = (np.gradient(smooth, axis=a) if img.shape[a] > 1 else np.zeros_like(smooth)
              for a in (0, 1))  # np.gradient needs two pixels along its axis
    theta = np.arange(_ORIENTATIONS) * (2 * np.pi / _ORIENTATIONS)
    grad = np.maximum(gx[..., None] * np.cos(theta) + gy[..., None] * np.sin(theta), 0)
    grad /= np.maximum(grad.max(axis=(0, 1, 3), keepdims=True), 1e-12)
    return grad.reshape(img.shape[0] * img.shape[1], -1)


def _features(labels: np.ndarray, img: np.ndarray, grad: np.ndarray, n: int) -> dict:
    """Each region's size, bounding box, colour histogram (25 bins per channel) and texture
    histogram (10 bins per gradient orientation and channel)."""
    flat = labels.ravel()
    order = np.argsort(flat, kind="stable")
    starts = np.searchsorted(flat[order], np.arange(n))
    ys, xs = np.divmod(order, img.shape[1])
    box = np.stack([np.minimum.reduceat(xs, starts), np.minimum.reduceat(ys, starts),
                    np.maximum.reduceat(xs, starts) + 1, np.maximum.reduceat(ys, starts) + 1], 1)
    return {"size": np.bincount(flat, minlength=n).astype(np.float64), "box": box.astype(float),
            "colour": _histograms(flat, np.clip(img, 0, 1).reshape(len(flat), -1), n,
                                  _COLOUR_BINS),
            "texture": _histograms(flat, grad, n, _TEXTURE_BINS)}


def _adjacent_pairs(labels: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(i, j) with i < j for regions that touch horizontally or vertically."""
    a = np.concatenate([labels[:, :-1].ravel(), labels[:-1, :].ravel()]).astype(np.int64)
    b = np.concatenate([labels[:, 1:].ravel(), labels[1:, :].ravel()]).astype(np.int64)
    differ = a != b
    codes = np.unique(np.minimum(a, b)[differ] * n + np.maximum(a, b)[differ])
    return codes // n, codes % n


def _similarity(f: dict, a, b, use: tuple, n_pixels: int) -> np.ndarray:
    """Selective search's similarity of regions a and b (index arrays): a sum of the measures
    in ``use``, each in [0, 1]."""
    s = np.zeros(len(a))
    for name in ("colour", "texture"):
        if name in use:
            s += np.minimum(f[name][a], f[name][b]).sum(1)
    size = f["size"][a] + f["size"][b]
    if "size" in use:
        s += 1 - size / n_pixels
    if "fill" in use:
        box = np.c_[np.minimum(f["box"][a, :2], f["box"][b, :2]),
                    np.maximum(f["box"][a, 2:], f["box"][b, 2:])]
        s += 1 - ((box[:, 2] - box[:, 0]) * (box[:, 3] - box[:, 1]) - size) / n_pixels
    return s


def _group(f: dict, pairs, use: tuple, n_pixels: int) -> np.ndarray:
    """Hierarchical grouping: merge the most similar adjacent pair until one region is left.
    Returns every region's box in creation order (initial segments first, whole image last)."""
    n = len(f["size"])
    for key, v in f.items():  # room for the n - 1 merged regions
        f[key] = np.concatenate([v, np.zeros((n - 1,) + v.shape[1:])])
    neighbours = [set() for _ in range(n)]
    for i, j in zip(*(p.tolist() for p in pairs)):
        neighbours[i].add(j)
        neighbours[j].add(i)
    heap = list(zip((-_similarity(f, *pairs, use, n_pixels)).tolist(), *(p.tolist()
                                                                          for p in pairs)))
    heapq.heapify(heap)
    alive, k = np.ones(2 * n - 1, bool), n
    while heap:
        _, i, j = heapq.heappop(heap)
        if not (alive[i] and alive[j]):
            continue  # a stale pair: one of its regions was merged already
        si, sj = f["size"][i], f["size"][j]
        f["size"][k] = si + sj
        f["box"][k, :2] = np.minimum(f["box"][i, :2], f["box"][j, :2])
        f["box"][k, 2:] = np.maximum(f["box"][i, 2:], f["box"][j, 2:])
        for name in ("colour", "texture"):
            f[name][k] = (si * f[name][i] + sj * f[name][j]) / (si + sj)
        alive[i] = alive[j] = False
        merged = (neighbours[i] | neighbours[j]) - {i, j}
        neighbours[i] = neighbours[j] = None
        for m in merged:
            neighbours[m] -= {i, j}
            neighbours[m].add(k)
        neighbours.append(merged)
        if merged:
            ms = np.fromiter(merged, np.int64, len(merged))
            for s, m in zip((-_similarity(f, ms, np.full_like(ms, k), use, n_pixels)).tolist(),
                            ms.tolist()):
                heapq.heappush(heap, (s, m, k))
        k += 1
    return f["box"][:k]


def _check_options(scale, sigma, min_size, max_proposals, color_spaces, similarities):
    scales = tuple(np.ravel(scale).tolist()) if np.ndim(scale) <= 1 else ()
    name = "propose_regions"
    _require(scales and all(_number(k, 0) and k > 0 for k in scales), name,
             "scale as a positive number or a sequence of them", repr(scale))
    _require(_number(sigma, 0), name, "sigma >= 0", repr(sigma))
    for key, v, low in (("min_size", min_size, 0), ("max_proposals", max_proposals, 1)):
        _require(_integer(v, low), name, f"an integer {key} >= {low}", repr(v))
    _require(color_spaces and set(color_spaces) <= set(_COLOR_SPACES), name,
             f"color_spaces from {_COLOR_SPACES}", repr(color_spaces))
    _require(similarities and set(similarities) <= set(_SIMILARITIES), name,
             f"similarities from {_SIMILARITIES}", repr(similarities))
    return scales


def propose_regions(image, scale=(50, 150), sigma=0.8, min_size=20, max_proposals=2000,
                    color_spaces=("hsv", "lab"), similarities=_SIMILARITIES) -> np.ndarray:
    """Selective search: candidate object boxes (n, 4) as float32 corners in pixels.

    ``image`` is one (H, W) or (H, W, C) image (C 1 or 3), uint8 in [0, 255] or float in
    [0, 1] (other ranges are min-max rescaled). For each diversification strategy, one per
    (``scale``, colour space) pair, Felzenszwalb's graph segmentation (``scale``, ``sigma``,
    ``min_size``) gives the initial regions; then the most similar pair of adjacent regions is
    merged until one is left, by the sum of the ``similarities``: colour and texture histogram
    intersection, size (merge small regions first) and fill (merge regions whose union fills
    its box). Grey images use their one channel whatever ``color_spaces`` say.

    Order: by hierarchy level from the top, the whole image first, then the regions merged
    last, down to the initial segments; strategies interleave by that level, duplicates are
    dropped, and at most ``max_proposals`` boxes are kept.
    """
    image = _check_image(image, "propose_regions")
    scales = _check_options(scale, sigma, min_size, max_proposals, tuple(color_spaces),
                            tuple(similarities))
    ski = _skimage("propose_regions")
    unit, h, w = _unit_range(image), image.shape[0], image.shape[1]
    spaces = ("gray",) if image.shape[2] == 1 else tuple(dict.fromkeys(color_spaces))
    levels, boxes = [], []
    for space in spaces:
        img = _convert(unit, space, ski)
        grad = _gradients(img, ski)
        for k in scales:
            labels = ski.segmentation.felzenszwalb(
                img if img.shape[2] == 3 else img[..., 0], scale=k, sigma=sigma,
                min_size=int(min_size), channel_axis=-1 if img.shape[2] == 3 else None)
            labels = np.unique(labels, return_inverse=True)[1].reshape(h, w)
            n = int(labels.max()) + 1
            f = _features(labels, img, grad, n)
            found = _group(f, _adjacent_pairs(labels, n), tuple(similarities), h * w)
            levels.append(np.arange(len(found))[::-1])
            boxes.append(found)
    levels, boxes = np.concatenate(levels), np.concatenate(boxes)
    boxes = boxes[np.argsort(levels, kind="stable")]
    first = np.sort(np.unique(boxes, axis=0, return_index=True)[1])
    return boxes[first[:max_proposals]].astype(np.float32)
