"""Landmark detection (course 4 week 3): ``LandmarkHead(k)`` outputs (l_1x, l_1y, ...,
l_kx, l_ky) (x then y per landmark, landmarks in the dataset's order), as fractions of n_W and
n_H; ``landmark_loss`` is the squared error over visible landmarks (a landmark is invisible
where a coordinate of its label is NaN or its ``visibility`` is 0); ``normalized_mean_distance``
is the usual metric, the mean distance divided by the object's size."""

from __future__ import annotations

import numpy as np

from strata import ops
from strata.autograd import ShapeError
from strata.losses.checks import _checked, _label_array, _prediction, _sample_weights
from strata.nn.registry import register
from strata.tensor import Tensor
from strata.vision.localization import (
    _Head,
    _image_hw,
    _not_activated,
    _outputs,
    _positive_int,
    _RawOutputLoss,
)


@register
class LandmarkHead(_Head):
    """Dense(2k), linear: (l_1x, l_1y, ..., l_kx, l_ky) as fractions of the image; 4-D inputs
    are flattened first. Train with ``LandmarkLoss()``."""

    def __init__(self, k: int, kernel_initializer="glorot", l2=None, l1=None):
        self.k = _positive_int(k, "k (the number of landmarks)", "LandmarkHead")
        super().__init__(2 * self.k, {"k": self.k, "l2": l2, "l1": l1,
                                      "kernel_initializer": kernel_initializer})




def landmark_loss(y_pred, y_true, *, visibility=None, sample_weight=None) -> Tensor:
    """Mean squared error of landmarks (m, 2k) = (l_1x, l_1y, ..., l_kx, l_ky) over the visible
    ones: J = sum_i w_i sum_{visible j} ((lx - lx_hat)^2 + (ly - ly_hat)^2) / (2 * visible
    count). A landmark is invisible where a coordinate of its label is NaN or ``visibility``
    (m, k) is 0; with all visible and no weights, J is ``mean_squared_error``."""
    name = "landmark_loss"
    pred = _prediction(y_pred, name)
    if pred.ndim != 2 or pred.shape[1] % 2:
        raise ShapeError(f"{name}: expected predictions (m, 2k) = (l_1x, l_1y, ..., l_kx, "
                         f"l_ky), got shape {pred.shape}")
    _not_activated(pred, name, "LandmarkHead")
    y = _label_array(y_true, pred, name)
    m, k = pred.shape[0], pred.shape[1] // 2
    visible = ~np.isnan(y).reshape(m, k, 2).any(axis=2)
    if visibility is not None:
        v = np.asarray(visibility)
        if v.shape != (m, k) or v.dtype.kind not in "biuf":
            raise ShapeError(f"{name}: expected visibility (m, k) = {(m, k)} of 0/1, got "
                             f"{v.shape} ({v.dtype})")
        visible &= v.astype(bool)
    if not np.isfinite(y[np.repeat(visible, 2, axis=1)]).all():
        raise ValueError(f"{name}: labels of visible landmarks must be finite, got inf")
    if not visible.any():
        raise ValueError(f"{name}: no visible landmark in the batch of {m} (all {m * k} are "
                         f"NaN or have visibility 0); at least one is needed")
    mask = np.repeat(visible, 2, axis=1)
    scale = np.full((m, 1), 1.0 / (2 * visible.sum()), pred.dtype)
    if sample_weight is not None:
        scale *= _sample_weights(sample_weight, (m,), pred.dtype, name)[:, None]
    target = Tensor._wrap(np.where(mask, y, 0).astype(pred.dtype, copy=False), False)
    diff = ops.where(mask, pred - target, 0.0)  # masked entries: no value, no gradient
    return _checked((diff * diff * Tensor._wrap(scale, False)).sum(), pred, name)


class LandmarkLoss(_RawOutputLoss):
    """``landmark_loss`` for ``compile``: mark invisible landmarks with NaN labels."""

    fn = staticmethod(landmark_loss)


def decode_landmarks(output, image_shape) -> np.ndarray:
    """``LandmarkHead``'s outputs (m, 2k) as fractions -> points (m, k, 2) (x, y) in pixels."""
    out = _outputs(output, 2, "decode_landmarks")
    n_h, n_w = _image_hw(image_shape, "decode_landmarks")
    return out.reshape(len(out), -1, 2) * np.array([n_w, n_h])


def landmark_target(points, image_shape) -> np.ndarray:
    """Points (m, k, 2) (x, y) in pixels, NaN where invisible -> targets (m, 2k) as fractions
    (l_1x, l_1y, ..., l_kx, l_ky), NaN kept."""
    p = np.asarray(points, dtype=np.float64)
    if p.ndim != 3 or p.shape[2] != 2:
        raise ShapeError(f"landmark_target: expected points (m, k, 2), got shape {p.shape}")
    n_h, n_w = _image_hw(image_shape, "landmark_target")
    return (p / np.array([n_w, n_h])).reshape(len(p), -1)


def normalized_mean_distance(pred, true, object_size) -> float:
    """Mean over visible landmarks of ||pred - true|| / object_size, the usual landmark error
    (NME). ``pred``/``true``: (m, 2k) or (m, k, 2) in the same units, pixels preferably
    (fractions of a non-square image distort distances); NaN in ``true`` marks an invisible
    landmark, NaN in ``pred`` gives NaN. ``object_size``: a number or (m,) > 0, e.g. the face
    box's diagonal sqrt(w^2 + h^2), or the inter-ocular distance (outer eye corners, as 300-W).

    >>> normalized_mean_distance([[3.0, 4.0]], [[0.0, 0.0]], 10.0)
    0.5
    """
    name = "normalized_mean_distance"
    p, t = np.asarray(pred, dtype=np.float64), np.asarray(true, dtype=np.float64)
    if p.shape != t.shape or p.ndim not in (2, 3) or p.shape[-1] % 2 or (
            p.ndim == 3 and p.shape[-1] != 2):
        raise ShapeError(f"{name}: expected pred and true of one shape, (m, 2k) or (m, k, 2), "
                         f"got {p.shape} and {t.shape}")
    m = len(t)
    p, t = p.reshape(m, -1, 2), t.reshape(m, -1, 2)
    size = np.asarray(object_size, dtype=np.float64)
    size = np.full(m, size) if size.ndim == 0 else size
    if size.shape != (m,) or not (size > 0).all() or not np.isfinite(size).all():
        raise ValueError(f"{name}: expected object_size > 0, a number or ({m},), got shape "
                         f"{size.shape} with values in [{size.min():g}, {size.max():g}]")
    visible = ~np.isnan(t).any(axis=2)
    if not visible.any():
        raise ValueError(f"{name}: no visible landmark (every true landmark has NaN)")
    distance = np.sqrt(((p - t) ** 2).sum(axis=2)) / size[:, None]
    return float(distance[visible].mean())
