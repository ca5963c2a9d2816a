"""Detection data sets: canvases of MNIST digits at random scales and places (a real detection
task that trains on a laptop), and generated shapes that need no download (for the tests).

Both return ``(images, boxes, classes)``: images (n, size, size, 1) float32 in [0, 1], boxes a
list of (k, 4) float32 corner boxes (x1, y1, x2, y2) in pixels, tight around the ink (x2 and y2
are one past the last inked column and row), classes a list of (k,) int64.
"""

from __future__ import annotations

import numpy as np

#: The MNIST test set (10,000 images) is cut in two: training canvases draw their digits only
#: from the first 8,000 images, evaluation canvases only from the last 2,000.
MNIST_PARTS = {"train": (0, 8000), "eval": (8000, 10000)}
#: A pixel above this value is ink: the tight box of a digit is that of its ink pixels.
INK = 0.2
SHAPES = ("circle", "square", "triangle")


def _check_range(value, name: str, where: str, low: float, integer: bool = False) -> tuple:
    ok = isinstance(value, (tuple, list)) and len(value) == 2 and all(
        isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)
        for v in value)
    if not ok or not low <= value[0] <= value[1] or (
            integer and any(int(v) != v for v in value)):
        raise ValueError(f"{where}: expected {name}=(low, high) with {low} <= low <= high"
                         f"{' (integers)' if integer else ''}, received {value!r}")
    return tuple(int(v) for v in value) if integer else (float(value[0]), float(value[1]))


def _resize_matrix(n_out: int, n_in: int) -> np.ndarray:
    """(n_out, n_in) linear-interpolation weights sampling n_in pixels at n_out pixel centres
    (bilinear resizing is R_y @ image @ R_x^T)."""
    centres = (np.arange(n_out) + 0.5) * n_in / n_out - 0.5
    centres = np.clip(centres, 0, n_in - 1)
    left = np.minimum(np.floor(centres).astype(int), n_in - 2)
    frac = centres - left
    R = np.zeros((n_out, n_in))
    R[np.arange(n_out), left] = 1 - frac
    R[np.arange(n_out), left + 1] += frac
    return R


def resize(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bilinear resize of a 2-D image to (height, width), in NumPy."""
    return _resize_matrix(height, image.shape[0]) @ image @ _resize_matrix(
        width, image.shape[1]).T


def ink_box(patch: np.ndarray, threshold: float = INK):
    """(x1, y1, x2, y2) of the pixels above ``threshold`` (x2, y2 one past the last), or None."""
    rows, cols = np.flatnonzero((patch > threshold).any(1)), np.flatnonzero(
        (patch > threshold).any(0))
    if len(rows) == 0:
        return None
    return cols[0], rows[0], cols[-1] + 1, rows[-1] + 1


def covered(box, boxes) -> np.ndarray:
    """For each of ``boxes`` (n, 4), the fraction of the smaller of it and ``box`` that their
    intersection covers (1: one lies inside the other)."""
    b, a = np.asarray(boxes, np.float64).reshape(-1, 4), np.asarray(box, np.float64)
    w = np.clip(np.minimum(a[2], b[:, 2]) - np.maximum(a[0], b[:, 0]), 0, None)
    h = np.clip(np.minimum(a[3], b[:, 3]) - np.maximum(a[1], b[:, 1]), 0, None)
    smaller = np.minimum((a[2] - a[0]) * (a[3] - a[1]), (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]))
    return w * h / smaller


def _place(canvas, patch, rng, boxes, max_overlap, tries: int = 30):
    """Paste ``patch`` (cropped to its ink) at a random position where its box and each placed
    box overlap by at most ``max_overlap`` of the smaller one (so a digit may touch or cross
    another, never hide behind it); returns the box or None when no place was found."""
    size = canvas.shape[0]
    h, w = patch.shape
    for _ in range(tries):
        y, x = rng.integers(0, size - h + 1), rng.integers(0, size - w + 1)
        box = (x, y, x + w, y + h)
        if not boxes or covered(box, boxes).max() <= max_overlap:
            region = canvas[y:y + h, x:x + w]
            np.maximum(region, patch, out=region)  # overlapping ink: the brighter stroke wins
            return box
    return None


def _mnist_part(part: str):
    from strata.data.datasets import load_mnist

    if part not in MNIST_PARTS:
        raise ValueError(f"digit_canvases: expected part 'train' or 'eval', received {part!r}")
    X, Y = load_mnist("test", flatten=False)
    if len(X) != 10000:
        raise ValueError(f"digit_canvases: expected the 10,000 MNIST test images, received "
                         f"{len(X)}")
    start, stop = MNIST_PARTS[part]
    return X[start:stop, :, :, 0], Y[start:stop], start


def digit_canvases(n: int, part: str = "train", size: int = 128, digits=(1, 5),
                   scale=(24, 48), seed: int = 0, max_overlap: float = 0.2,
                   return_sources: bool = False):
    """``n`` grey size x size canvases holding ``digits`` = (low, high) MNIST digits each, every
    digit's 28x28 image resized to s x s with s uniform in ``scale`` and placed at random (its
    box inside the canvas; two boxes may overlap by up to ``max_overlap`` of the smaller one,
    the brighter stroke showing where they cross). ``part``
    "train" takes digits from the first 8,000 images of the MNIST test set in the data dir,
    "eval" from the last 2,000, so no digit image is in both. Returns (images, boxes, classes),
    and with ``return_sources`` also a list of (k,) indices into the MNIST test set."""
    if not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"digit_canvases: expected n >= 1 canvases, received {n!r}")
    low, high = _check_range(digits, "digits", "digit_canvases", 1, integer=True)
    s_low, s_high = _check_range(scale, "scale", "digit_canvases", 4, integer=True)
    if s_high > size:
        raise ValueError(f"digit_canvases: expected scale <= size {size}, received {scale}")
    X, Y, offset = _mnist_part(part)
    rng = np.random.default_rng([seed, 0 if part == "train" else 1])
    images = np.zeros((n, size, size, 1), np.float32)
    all_boxes, all_classes, all_sources = [], [], []
    for i in range(n):
        boxes, classes, sources = [], [], []
        for _ in range(rng.integers(low, high + 1)):
            j = int(rng.integers(len(X)))
            s = int(rng.integers(s_low, s_high + 1))
            patch = np.clip(resize(X[j].astype(np.float64), s, s), 0, 1)
            x1, y1, x2, y2 = ink_box(patch)
            patch = patch[y1:y2, x1:x2]
            patch = np.where(patch > INK, patch, 0.0)  # the ink box stays tight on the canvas
            box = _place(images[i, :, :, 0], patch.astype(np.float32), rng, boxes, max_overlap)
            if box is not None:
                boxes.append(box), classes.append(Y[j]), sources.append(offset + j)
        all_boxes.append(np.asarray(boxes, np.float32).reshape(-1, 4))
        all_classes.append(np.asarray(classes, np.int64))
        all_sources.append(np.asarray(sources, np.int64))
    if return_sources:
        return images, all_boxes, all_classes, all_sources
    return images, all_boxes, all_classes


def _shape_mask(kind: int, s: int) -> np.ndarray:
    """A filled circle, square or upward triangle drawn in an s x s patch (True inside)."""
    y, x = np.mgrid[0:s, 0:s] + 0.5
    if kind == 0:
        r = s / 2
        return (x - r) ** 2 + (y - r) ** 2 <= r * r
    if kind == 1:
        return np.ones((s, s), bool)
    return np.abs(2 * x - s) <= y  # apex at the top centre, base along the bottom


def shapes_dataset(n: int, size: int = 64, shapes=(1, 3), scale=(12, 28), seed: int = 0,
                   noise: float = 0.05, max_overlap: float = 0.1):
    """``n`` grey canvases of generated filled circles (class 0), squares (1) and triangles (2),
    ``shapes`` = (low, high) per canvas, each s x s with s uniform in ``scale``, random
    brightness, plus Gaussian noise of std ``noise``. No download; returns (images, boxes,
    classes) like ``digit_canvases`` (boxes tight around each shape)."""
    if not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"shapes_dataset: expected n >= 1 canvases, received {n!r}")
    low, high = _check_range(shapes, "shapes", "shapes_dataset", 1, integer=True)
    s_low, s_high = _check_range(scale, "scale", "shapes_dataset", 3, integer=True)
    if s_high > size:
        raise ValueError(f"shapes_dataset: expected scale <= size {size}, received {scale}")
    rng = np.random.default_rng([seed, 2])
    images = np.zeros((n, size, size, 1), np.float32)
    all_boxes, all_classes = [], []
    for i in range(n):
        boxes, classes = [], []
        for _ in range(rng.integers(low, high + 1)):
            kind, s = int(rng.integers(3)), int(rng.integers(s_low, s_high + 1))
            mask = _shape_mask(kind, s)
            x1, y1, x2, y2 = ink_box(mask.astype(np.float32), 0.5)
            patch = (mask[y1:y2, x1:x2] * rng.uniform(0.6, 1.0)).astype(np.float32)
            box = _place(images[i, :, :, 0], patch, rng, boxes, max_overlap)
            if box is not None:
                boxes.append(box), classes.append(kind)
        all_boxes.append(np.asarray(boxes, np.float32).reshape(-1, 4))
        all_classes.append(np.asarray(classes, np.int64))
    if noise:
        images += rng.normal(0, noise, images.shape).astype(np.float32)
        np.clip(images, 0, 1, out=images)
    return images, all_boxes, all_classes
