"""Bounding boxes (course 4 week 3): corner and center-size forms, scaling, clipping, areas and
intersection over union.

Boxes are corners ``(x1, y1, x2, y2)`` (top-left, bottom-right; x to the right, y down) unless a
name says otherwise. The course's label vector writes a box as ``(b_x, b_y, b_h, b_w)``: center
then height then width. The center-size form here is ``(b_x, b_y, b_w, b_h)`` instead (x before
y, width before height, like the corners), so reorder the course's last two entries when reading
its y vectors. The course's YOLO assignment stores corners as ``(y1, x1, y2, x2)`` for
TensorFlow; strata keeps x first everywhere.

Element-wise functions accept any array whose last axis has 4 entries (one box, a list of boxes,
or a YOLO grid ``(S, S, B, 4)``); ``iou`` takes two lists of shape (n, 4) and (m, 4).

>>> iou([[2, 1, 4, 3]], [[1, 2, 3, 4]])  # the course's example: 1 / 7
array([[0.14285714]])
"""

from __future__ import annotations

import numpy as np


def _as_boxes(boxes, fn: str, role: str = "boxes", matrix: bool = False) -> np.ndarray:
    """``boxes`` as a float array, its shape checked: (n, 4) when ``matrix``, else (..., 4)."""
    a = np.asarray(boxes)
    if a.dtype == object or not (np.issubdtype(a.dtype, np.number) or a.dtype == bool):
        raise TypeError(f"{fn}: expected {role} as a numeric array, received dtype {a.dtype}")
    if matrix and (a.ndim != 2 or a.shape[1] != 4):
        raise ValueError(f"{fn}: expected {role} of shape (n, 4), received shape {a.shape}")
    if not matrix and (a.ndim == 0 or a.shape[-1] != 4):
        raise ValueError(f"{fn}: expected {role} of shape (..., 4), received shape {a.shape}")
    if not np.issubdtype(a.dtype, np.floating):
        a = a.astype(np.float64)
    return a


def _check_ordered(a: np.ndarray, fn: str, role: str = "boxes") -> None:
    """Raise unless x2 >= x1 and y2 >= y1 for every box (NaN passes and propagates)."""
    bad = (a[..., 2] < a[..., 0]) | (a[..., 3] < a[..., 1])
    if bad.any():
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        index = where[0] if len(where) == 1 else where
        raise ValueError(f"{fn}: expected {role} as corners (x1, y1, x2, y2) with x2 >= x1 and "
                         f"y2 >= y1, received {a[where].tolist()} at index {index} "
                         f"({int(bad.sum())} such box(es))")


def _image_scale(image_shape, fn: str) -> tuple[float, float]:
    """(height, width) checked: two finite positive numbers."""
    shape = tuple(np.asarray(image_shape).ravel().tolist()) if np.ndim(image_shape) else ()
    if len(shape) != 2 or not all(isinstance(v, (int, float)) and np.isfinite(v) and v > 0
                                  for v in shape):
        raise ValueError(f"{fn}: expected image_shape (height, width) of two positive numbers, "
                         f"received {image_shape!r}")
    return float(shape[0]), float(shape[1])


def corners_to_center(boxes) -> np.ndarray:
    """Corners (x1, y1, x2, y2) to center-size (b_x, b_y, b_w, b_h)."""
    a = _as_boxes(boxes, "corners_to_center")
    _check_ordered(a, "corners_to_center")
    x1, y1, x2, y2 = np.moveaxis(a, -1, 0)
    return np.stack([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1], axis=-1)


def center_to_corners(boxes) -> np.ndarray:
    """Center-size (b_x, b_y, b_w, b_h) to corners (x1, y1, x2, y2)."""
    a = _as_boxes(boxes, "center_to_corners")
    bad = (a[..., 2] < 0) | (a[..., 3] < 0)
    if bad.any():
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(f"center_to_corners: expected boxes (b_x, b_y, b_w, b_h) with b_w >= 0 "
                         f"and b_h >= 0, received {a[where].tolist()} at index {where}")
    bx, by, bw, bh = np.moveaxis(a, -1, 0)
    return np.stack([bx - bw / 2, by - bh / 2, bx + bw / 2, by + bh / 2], axis=-1)


def scale_boxes(boxes, image_shape) -> np.ndarray:
    """Relative [0, 1] boxes to pixels of an image of shape (height, width).

    x-like entries are multiplied by the width and y-like ones by the height, which is right for
    corners and for center-size boxes alike.
    """
    a = _as_boxes(boxes, "scale_boxes")
    height, width = _image_scale(image_shape, "scale_boxes")
    return a * np.array([width, height, width, height], dtype=a.dtype)


def clip_boxes(boxes, image_shape) -> np.ndarray:
    """Corner boxes clipped to the image: x into [0, width], y into [0, height] (NaN stays NaN)."""
    a = _as_boxes(boxes, "clip_boxes")
    _check_ordered(a, "clip_boxes")
    height, width = _image_scale(image_shape, "clip_boxes")
    upper = np.array([width, height, width, height], dtype=a.dtype)
    return np.clip(a, 0, upper)


def box_area(boxes) -> np.ndarray:
    """Area (x2 - x1) * (y2 - y1) of corner boxes, as the course defines it (no +1)."""
    a = _as_boxes(boxes, "box_area")
    _check_ordered(a, "box_area")
    return (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])


def iou(boxes1, boxes2) -> np.ndarray:
    """Pairwise intersection over union (n, m) of corner boxes (n, 4) and (m, 4).

    Boxes that only touch have IoU 0; so does a pair of zero-area boxes (0 / 0 is defined as 0
    because such boxes cover nothing). A NaN coordinate gives NaN in its row or column.
    """
    a = _as_boxes(boxes1, "iou", "boxes1", matrix=True)
    b = _as_boxes(boxes2, "iou", "boxes2", matrix=True)
    _check_ordered(a, "iou", "boxes1")
    _check_ordered(b, "iou", "boxes2")
    dtype = np.result_type(a.dtype, b.dtype)
    a, b = a.astype(dtype, copy=False), b.astype(dtype, copy=False)
    # np.maximum/np.minimum (not clip's comparisons alone) so a NaN coordinate propagates
    iw = np.maximum(np.minimum(a[:, None, 2], b[None, :, 2])
                    - np.maximum(a[:, None, 0], b[None, :, 0]), 0)
    ih = np.maximum(np.minimum(a[:, None, 3], b[None, :, 3])
                    - np.maximum(a[:, None, 1], b[None, :, 1]), 0)
    inter = iw * ih
    union = box_area(a)[:, None] + box_area(b)[None, :] - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        out = inter / union
    out[union == 0] = 0  # both boxes empty: nothing overlaps (NaN unions fail == and stay NaN)
    return out
