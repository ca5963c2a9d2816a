"""Data augmentation (course 4 week 2) on NHWC batches (m, n_H, n_W, n_C): mirroring, random
cropping, rotation, zooming, shearing, local warping, color shifting and PCA color augmentation,
plus the test-time tricks 10-crop and ensembling.

Every transform is called as ``transform(X, rng=None)`` and returns a new array of the input's
dtype; randomness comes from ``rng`` or, when it is None, from the shared ``strata.rng()``.
"""

from __future__ import annotations

import numpy as np

from strata import backend


def _check_batch(X, name: str, floating: bool = False) -> np.ndarray:
    X = np.asarray(X)
    if X.ndim != 4:
        raise ValueError(f"{name}: expected a 4-D NHWC batch (m, n_H, n_W, n_C), got shape "
                         f"{X.shape}")
    if floating and not np.issubdtype(X.dtype, np.floating):
        raise TypeError(f"{name}: expected a floating-point batch, got dtype {X.dtype}; convert "
                        f"it first, e.g. X.astype(np.float32) / 255")
    return X


def _check_number(value, name: str, what: str, low: float = 0.0, high: float = np.inf) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not low <= value <= high:
        bounds = f"in [{low}, {high}]" if np.isfinite(high) else f">= {low}"
        raise ValueError(f"{name}: expected {what} {bounds}, got {value!r}")
    return float(value)


def _check_int(value, name: str, what: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"{name}: expected an integer {what} >= {low}, got {value!r}")
    return int(value)


def _pair(size, name: str) -> tuple[int, int]:
    try:
        pair = (size, size) if isinstance(size, (int, np.integer)) else tuple(size)
    except TypeError:
        pair = (size,)
    if len(pair) != 2 or not all(isinstance(s, (int, np.integer)) and not isinstance(s, bool)
                                 and s >= 1 for s in pair):
        raise ValueError(f"{name}: expected size as a positive int or a pair (h, w) of positive "
                         f"ints, got {size!r}")
    return int(pair[0]), int(pair[1])


def bilinear_sample(X: np.ndarray, rows, cols) -> np.ndarray:
    """Sample X (m, H, W, C) at fractional pixel positions ``rows``, ``cols`` (shape (m, h, w) or
    broadcastable to it) by bilinear interpolation; positions outside the image read zeros."""
    X = _check_batch(X, "bilinear_sample", floating=True)
    m, H, W, _ = X.shape
    rows, cols = np.broadcast_arrays(np.asarray(rows, np.float64), np.asarray(cols, np.float64))
    if rows.ndim != 3 or rows.shape[0] not in (1, m):
        raise ValueError(f"bilinear_sample: expected rows and cols of shape ({m}, h, w) or "
                         f"(1, h, w), got {rows.shape}")
    # Positions are clipped to [-1, H] x [-1, W] and the image gets a zero border (1 before,
    # 2 after), so every corner outside the image reads a zero and no mask is needed.
    rows, cols = np.clip(rows, -1, H), np.clip(cols, -1, W)
    r0, c0 = np.floor(rows), np.floor(cols)
    dtype = np.result_type(X.dtype, np.float32)
    fr, fc = (rows - r0).astype(dtype), (cols - c0).astype(dtype)
    flat = np.pad(X, ((0, 0), (1, 2), (1, 2), (0, 0))).reshape(-1, X.shape[3])
    stride = W + 3
    top_left = ((np.arange(m) * (H + 3) * stride)[:, None, None]
                + (r0.astype(np.intp) + 1) * stride + c0.astype(np.intp) + 1)
    out = None
    for offset, weight in ((0, (1 - fr) * (1 - fc)), (1, (1 - fr) * fc),
                           (stride, fr * (1 - fc)), (stride + 1, fr * fc)):
        term = np.take(flat, top_left + offset, axis=0)
        term *= weight[..., None]
        out = term if out is None else np.add(out, term, out=out)
    return out.astype(X.dtype, copy=False)


def _centred_grid(H: int, W: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel coordinates relative to the image centre, shapes (1, H, 1) and (1, 1, W)."""
    ys = np.arange(H, dtype=np.float64)[None, :, None] - (H - 1) / 2
    xs = np.arange(W, dtype=np.float64)[None, None, :] - (W - 1) / 2
    return ys, xs


class Transform:
    """Base class of the augmentations: validates the batch, picks the Generator, calls _apply."""

    _fields: tuple[str, ...] = ()
    _floating = False

    def __call__(self, X, rng=None) -> np.ndarray:
        X = _check_batch(X, type(self).__name__, self._floating)
        return self._apply(X, backend.rng() if rng is None else rng)

    def _apply(self, X: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        raise NotImplementedError

    def __repr__(self) -> str:
        args = ", ".join(f"{f}={getattr(self, f)!r}" for f in self._fields)
        return f"{type(self).__name__}({args})"


class RandomFlip(Transform):
    """Mirroring: flip each example left-right (axis 2) with probability p."""

    _fields = ("p",)

    def __init__(self, p: float = 0.5):
        self.p = _check_number(p, "RandomFlip", "a probability p", 0.0, 1.0)

    def _apply(self, X, rng):
        flip = rng.random(len(X)) < self.p
        return np.where(flip[:, None, None, None], X[:, :, ::-1], X)


class RandomCrop(Transform):
    """Random cropping: zero-pad by ``padding`` then cut a random (h, w) window per example."""

    _fields = ("size", "padding")

    def __init__(self, size, padding: int = 0):
        self.size = _pair(size, "RandomCrop")
        self.padding = _check_int(padding, "RandomCrop", "padding", 0)

    def _apply(self, X, rng):
        (h, w), p = self.size, self.padding
        m, H, W = X.shape[0], X.shape[1] + 2 * p, X.shape[2] + 2 * p
        if h > H or w > W:
            raise ValueError(f"RandomCrop: crop size {(h, w)} is larger than the padded image "
                             f"{(H, W)} (input {X.shape[1:3]}, padding {p})")
        padded = np.pad(X, ((0, 0), (p, p), (p, p), (0, 0))) if p else X
        rows = rng.integers(0, H - h + 1, size=m)[:, None] + np.arange(h)
        cols = rng.integers(0, W - w + 1, size=m)[:, None] + np.arange(w)
        return padded[np.arange(m)[:, None, None], rows[:, :, None], cols[:, None, :]]


class RandomRotation(Transform):
    """Rotate each example about its centre by a uniform angle in [-max_degrees, max_degrees].

    A positive angle turns the picture counterclockwise as displayed (row 0 on top), so +90
    degrees on a square image equals ``np.rot90(X, 1, axes=(1, 2))``. Bilinear, zeros outside.
    """

    _fields = ("max_degrees",)
    _floating = True

    def __init__(self, max_degrees: float):
        self.max_degrees = _check_number(max_degrees, "RandomRotation", "max_degrees", 0.0, 180.0)

    def _apply(self, X, rng):
        theta = np.deg2rad(rng.uniform(-self.max_degrees, self.max_degrees, len(X)))
        cos, sin = np.cos(theta)[:, None, None], np.sin(theta)[:, None, None]
        ys, xs = _centred_grid(X.shape[1], X.shape[2])
        # each output pixel reads the input at the inversely rotated position
        rows = cos * ys + sin * xs + (X.shape[1] - 1) / 2
        cols = -sin * ys + cos * xs + (X.shape[2] - 1) / 2
        return bilinear_sample(X, rows, cols)


class RandomZoom(Transform):
    """Scale each example about its centre by a factor z drawn log-uniformly in
    [1 / (1 + max_zoom), 1 + max_zoom] (z > 1 enlarges): output (y, x) reads input (y / z, x / z),
    centred. Bilinear; positions outside the image read the nearest edge pixel, so zooming out
    extends the border instead of framing the picture in black."""

    _fields = ("max_zoom",)
    _floating = True

    def __init__(self, max_zoom: float):
        self.max_zoom = _check_number(max_zoom, "RandomZoom", "max_zoom")

    def _apply(self, X, rng):
        H, W = X.shape[1:3]
        bound = np.log1p(self.max_zoom)
        z = np.exp(rng.uniform(-bound, bound, len(X)))[:, None, None]
        ys, xs = _centred_grid(H, W)
        return bilinear_sample(X, np.clip(ys / z + (H - 1) / 2, 0, H - 1),
                               np.clip(xs / z + (W - 1) / 2, 0, W - 1))


class RandomShear(Transform):
    """Horizontal shearing: output (y, x) reads input (y, x + s * y), centred, s uniform in
    [-max_shear, max_shear]. Bilinear, zeros outside."""

    _fields = ("max_shear",)
    _floating = True

    def __init__(self, max_shear: float):
        self.max_shear = _check_number(max_shear, "RandomShear", "max_shear")

    def _apply(self, X, rng):
        s = rng.uniform(-self.max_shear, self.max_shear, len(X))[:, None, None]
        ys, xs = _centred_grid(X.shape[1], X.shape[2])
        return bilinear_sample(X, ys + (X.shape[1] - 1) / 2, xs + s * ys + (X.shape[2] - 1) / 2)


class RandomWarp(Transform):
    """Local warping: random displacements uniform in [-max_shift, max_shift] pixels on a coarse
    (grid x grid) lattice, upsampled bilinearly to a smooth field, then sampled bilinearly."""

    _fields = ("max_shift", "grid")
    _floating = True

    def __init__(self, max_shift: float = 2.0, grid: int = 4):
        self.max_shift = _check_number(max_shift, "RandomWarp", "max_shift")
        self.grid = _check_int(grid, "RandomWarp", "grid", 2)

    def _apply(self, X, rng):
        m, H, W, _ = X.shape
        g = self.grid
        coarse = rng.uniform(-self.max_shift, self.max_shift, (m, g, g, 2))
        gy = np.arange(H)[None, :, None] * ((g - 1) / max(H - 1, 1))
        gx = np.arange(W)[None, None, :] * ((g - 1) / max(W - 1, 1))
        field = bilinear_sample(coarse, *np.broadcast_arrays(gy, gx))  # (m, H, W, 2)
        rows = np.arange(H)[None, :, None] + field[..., 0]
        cols = np.arange(W)[None, None, :] + field[..., 1]
        return bilinear_sample(X, rows, cols)


class ColorShift(Transform):
    """Color shifting: add to each example a random offset per channel (R, G, B), uniform in
    [-max_shift, max_shift], then clip to ``clip=(low, high)`` unless it is None."""

    _fields = ("max_shift", "clip")
    _floating = True

    def __init__(self, max_shift: float, clip: tuple[float, float] | None = None):
        self.max_shift = _check_number(max_shift, "ColorShift", "max_shift")
        if clip is not None and (len(clip) != 2 or not clip[0] < clip[1]):
            raise ValueError(f"ColorShift: expected clip=None or a pair (low, high) with "
                             f"low < high, got {clip!r}")
        self.clip = None if clip is None else (float(clip[0]), float(clip[1]))

    def _apply(self, X, rng):
        m, C = X.shape[0], X.shape[3]
        shift = rng.uniform(-self.max_shift, self.max_shift, (m, 1, 1, C)).astype(X.dtype)
        out = X + shift
        return out if self.clip is None else np.clip(out, *self.clip, out=out)


class PCAColor(Transform):
    """PCA color augmentation (AlexNet): add sum_i alpha_i * lambda_i * p_i to every pixel of an
    example, with (lambda_i, p_i) the eigenpairs of the n_C x n_C covariance of pixel colours and
    alpha_i ~ N(0, std) drawn per example.

    After ``fit(X)`` the eigenpairs of that data set are used; before it, each call computes them
    from the batch it is given.
    """

    _fields = ("std",)
    _floating = True

    def __init__(self, std: float = 0.1):
        self.std = _check_number(std, "PCAColor", "std")
        self.eigenvalues: np.ndarray | None = None
        self.eigenvectors: np.ndarray | None = None

    @staticmethod
    def _eigen(X) -> tuple[np.ndarray, np.ndarray]:
        pixels = X.reshape(-1, X.shape[3]).astype(np.float64)
        if len(pixels) < 2:
            raise ValueError(f"PCAColor: need at least 2 pixels to estimate colour covariance, "
                             f"got shape {X.shape}")
        values, vectors = np.linalg.eigh(np.cov(pixels, rowvar=False).reshape(X.shape[3], -1))
        return np.clip(values, 0.0, None), vectors

    def fit(self, X) -> PCAColor:
        """Estimate the colour eigenpairs on a data set X (m, n_H, n_W, n_C); returns self."""
        X = _check_batch(X, "PCAColor.fit")
        self.eigenvalues, self.eigenvectors = self._eigen(X)
        return self

    def _apply(self, X, rng):
        if self.eigenvalues is None:
            values, vectors = self._eigen(X)
        elif len(self.eigenvalues) != X.shape[3]:
            raise ValueError(f"PCAColor: fitted on {len(self.eigenvalues)} channels, got a batch "
                             f"with {X.shape[3]} (shape {X.shape})")
        else:
            values, vectors = self.eigenvalues, self.eigenvectors
        alpha = rng.normal(0.0, self.std, (len(X), len(values)))
        delta = (alpha * values) @ vectors.T  # (m, n_C): column i of vectors is p_i
        return X + delta[:, None, None, :].astype(X.dtype)


class Compose(Transform):
    """Apply several transforms in order, e.g. Compose([RandomCrop(24, 4), RandomFlip()])."""

    _fields = ("transforms",)

    def __init__(self, transforms):
        self.transforms = list(transforms)
        for t in self.transforms:
            if not callable(t):
                raise TypeError(f"Compose: expected callables transform(X, rng), got {t!r}")

    def _apply(self, X, rng):
        for t in self.transforms:
            X = t(X, rng)
        return X.copy() if not self.transforms else X
