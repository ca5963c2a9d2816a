"""YOLO (course 4 week 3) in its YOLOv2 form: A anchor boxes in each cell of an S x S grid.

**Output layout.** A YOLO network ends in an array (m, S, S, A, 5 + C): image, grid row (y),
grid column (x), anchor, then per anchor the logits (t_x, t_y, t_w, t_h, t_o, t_1 ... t_C).
The course's Keras output (m, S, S, A (5 + C)), e.g. (m, 19, 19, 425), is the same array with
its last two axes flattened: ``from_course_output`` reshapes it. Anchors are (A, 2) (width,
height) in grid cells, as in the course's yolo_anchors.txt; image sizes are (height, width),
the course's ``image_shape``.

**Decoding** (``decode``; the course's yolo_head, relative to the image, then in pixels):
x = (column + sigmoid(t_x)) / S, y = (row + sigmoid(t_y)) / S, w = p_w exp(t_w) / S,
h = p_h exp(t_h) / S, score of class c = sigmoid(t_o) softmax(t_1..t_C)_c.

**Targets** (``encode_targets``) have the output's shape; each object sets the slot of the
cell holding its midpoint and of the anchor most like it (IoU of the two boxes centred on one
point) to (b_x, b_y, b_w, b_h, 1, one-hot class): b_x = x S - column in [0, 1) (its midpoint's
offset in the cell), b_w = w (its width relative to the image); every other slot is zeros. The
ideal logits are then t_x = logit(b_x), t_w = log(b_w S / p_w) (what ``yolo_loss`` regresses)
and decoding them gives the object's box back.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np

from strata import backend


class Detections(NamedTuple):
    """Corner boxes (x1, y1, x2, y2) in pixels, their scores and class indices."""

    boxes: np.ndarray
    scores: np.ndarray
    classes: np.ndarray


class AnchorFit(NamedTuple):
    """``kmeans_anchors``'s answer: anchors (k, 2) by area, and the boxes' mean best IoU."""

    anchors: np.ndarray
    mean_iou: float


def _raw(x) -> np.ndarray:
    return np.asarray(getattr(x, "data", x))


def _pair(value, name: str, what: str, integer: bool = False) -> tuple:
    """A positive number or (height, width) pair as a pair."""
    v = _raw(value)
    pair = np.broadcast_to(v, (2,)) if v.ndim == 0 else v
    ok = (pair.shape == (2,) and pair.dtype.kind in "iuf" and bool(np.isfinite(pair).all())
          and bool((pair > 0).all()) and (not integer or bool((pair == np.round(pair)).all())))
    if not ok:
        kind = "integer" if integer else "number"
        raise ValueError(f"{name}: expected {what} as a positive {kind} or a (height, width) "
                         f"pair of them, got {value!r}")
    return tuple(int(p) if integer else float(p) for p in pair)


def check_anchors(anchors, name: str, count: int | None = None,
                  what: str = "anchors (A, 2) (width, height in grid cells)") -> np.ndarray:
    """Anchors as a float64 (A, 2) array of positive (width, height), checked."""
    a = _raw(anchors)
    if a.ndim != 2 or a.shape[1] != 2 or a.shape[0] == 0 or a.dtype.kind not in "iuf":
        raise ValueError(f"{name}: expected {what}, got shape {a.shape} dtype {a.dtype}")
    if not (np.isfinite(a).all() and (a > 0).all()):
        raise ValueError(f"{name}: expected {what} positive and finite, got {a.tolist()}")
    if count is not None and len(a) != count:
        raise ValueError(f"{name}: the output has {count} anchors per cell (axis 3) but "
                         f"{len(a)} anchors were given")
    return a.astype(np.float64)


def check_output(output, name: str) -> np.ndarray:
    """A YOLO output (m, S, S, A, 5 + C) with C >= 1, as an array."""
    t = _raw(output)
    if t.ndim != 5 or t.shape[-1] < 6 or t.dtype.kind != "f" or 0 in t.shape:
        raise ValueError(f"{name}: expected a floating output of shape (m, S, S, A, 5 + C) "
                         f"with C >= 1, got shape {t.shape} dtype {t.dtype} (use "
                         f"from_course_output for the course's (m, S, S, A (5 + C)))")
    return t


def wh_iou(wh1, wh2) -> np.ndarray:
    """IoU (n, k) of boxes of sizes wh1 (n, 2) and wh2 (k, 2), all centred on one point."""
    inter = (np.minimum(wh1[:, None, 0], wh2[None, :, 0])
             * np.minimum(wh1[:, None, 1], wh2[None, :, 1]))
    area1, area2 = wh1[:, 0] * wh1[:, 1], wh2[:, 0] * wh2[:, 1]
    return inter / (area1[:, None] + area2[None, :] - inter)


def sigmoid(t: np.ndarray) -> np.ndarray:
    """The logistic function, without overflow for any t."""
    e = np.exp(-np.abs(t))
    return np.where(t >= 0, 1, e) / (1 + e)


def _objects(boxes, classes, n_classes: int, name: str):
    """Every image's boxes (k, 4) and classes (k,) checked, then concatenated with their image
    index: (boxes (n, 4) float64, classes (n,) int64, image (n,) int64)."""
    if not isinstance(boxes, (list, tuple)) or not isinstance(classes, (list, tuple)):
        raise TypeError(f"{name}: expected boxes and classes as lists with one array per "
                        f"image, got {type(boxes).__name__} and {type(classes).__name__}")
    if len(boxes) != len(classes) or not boxes:
        raise ValueError(f"{name}: expected one boxes array and one classes array per image "
                         f"(at least one image), got {len(boxes)} and {len(classes)}")
    all_b, all_c = [], []
    for i, (b, c) in enumerate(zip(boxes, classes)):
        b, c = _raw(b), _raw(c)
        b = b.reshape(0, 4) if b.size == 0 else b
        if b.ndim != 2 or b.shape[1] != 4 or b.dtype.kind not in "iuf":
            raise ValueError(f"{name}: image {i}: expected boxes of shape (k, 4) (x1, y1, x2, "
                             f"y2 in pixels), got shape {b.shape} dtype {b.dtype}")
        if c.shape != (len(b),) or (c.size and c.dtype.kind not in "iu"):
            raise ValueError(f"{name}: image {i}: expected {len(b)} integer classes (shape "
                             f"({len(b)},)), got shape {c.shape} dtype {c.dtype}")
        if not np.isfinite(b).all() or (b[:, 2:] <= b[:, :2]).any():
            raise ValueError(f"{name}: image {i}: expected finite boxes with x2 > x1 and "
                             f"y2 > y1, got {b.tolist()}")
        if c.size and (c.min() < 0 or c.max() >= n_classes):
            raise ValueError(f"{name}: image {i}: expected classes in [0, {n_classes}), got "
                             f"{c.tolist()}")
        all_b.append(b.astype(np.float64))
        all_c.append(c.astype(np.int64))
    image = np.repeat(np.arange(len(all_b)), [len(b) for b in all_b])
    return np.concatenate(all_b), np.concatenate(all_c), image


def encode_targets(boxes, classes, grid_size, anchors, n_classes: int, image_size,
                   dtype=None) -> np.ndarray:
    """Training targets (m, S, S, A, 5 + C) for corner pixel ``boxes`` (one (k, 4) array per
    image) of ``classes`` (one (k,) integer array per image); see the module's doc for the
    layout. Two objects that land in one cell and anchor: the larger (area) is kept, the
    earlier on a tie. ``grid_size`` and ``image_size`` are a number or (height, width)."""
    name = "encode_targets"
    rows, cols = _pair(grid_size, name, "grid_size", integer=True)
    height, width = _pair(image_size, name, "image_size")
    anchors = check_anchors(anchors, name)
    if not isinstance(n_classes, (int, np.integer)) or n_classes < 1:
        raise ValueError(f"{name}: expected n_classes a positive integer, got {n_classes!r}")
    b, c, image = _objects(boxes, classes, int(n_classes), name)
    x = (b[:, 0] + b[:, 2]) / (2 * width)
    y = (b[:, 1] + b[:, 3]) / (2 * height)
    outside = (x < 0) | (x > 1) | (y < 0) | (y > 1)
    if outside.any():
        raise ValueError(f"{name}: expected box midpoints inside the {width:g} x {height:g} "
                         f"image, got boxes {b[outside].tolist()} of images "
                         f"{image[outside].tolist()}")
    w, h = (b[:, 2] - b[:, 0]) / width, (b[:, 3] - b[:, 1]) / height
    col = np.minimum((x * cols).astype(np.int64), cols - 1)
    row = np.minimum((y * rows).astype(np.int64), rows - 1)
    anchor = wh_iou(np.stack([w * cols, h * rows], axis=1), anchors).argmax(axis=1)
    n_anchors = len(anchors)
    key = ((image * rows + row) * cols + col) * n_anchors + anchor
    order = np.argsort(-(w * h), kind="stable")  # largest first, list order on ties
    keep = order[np.unique(key[order], return_index=True)[1]]
    target = np.zeros((len(boxes), rows, cols, n_anchors, 5 + int(n_classes)),
                      dtype=dtype or backend.get_default_dtype())
    slot = (image[keep], row[keep], col[keep], anchor[keep])
    target[slot + (slice(0, 5),)] = np.stack(
        [x[keep] * cols - col[keep], y[keep] * rows - row[keep], w[keep], h[keep],
         np.ones(len(keep))], axis=1)
    target[slot + (5 + c[keep],)] = 1
    return target


def decode(output, anchors, image_size, clip: bool = True) -> Detections:
    """Every predicted box of ``output`` (m, S, S, A, 5 + C): corner boxes (m, S S A, 4) in the
    pixels of an image of ``image_size`` (height, width) (clipped to it unless ``clip`` is
    False), scores (m, S S A) = objectness x best class probability, and that class."""
    name = "decode"
    t = check_output(output, name)
    anchors = check_anchors(anchors, name, t.shape[3])
    height, width = _pair(image_size, name, "image_size")
    m, rows, cols = t.shape[:3]
    s = sigmoid(t[..., [0, 1, 4]])
    x = (np.arange(cols)[:, None] + s[..., 0]) / cols
    y = (np.arange(rows)[:, None, None] + s[..., 1]) / rows
    with np.errstate(over="ignore"):
        half_w = anchors[:, 0] * np.exp(t[..., 2]) / (2 * cols)
        half_h = anchors[:, 1] * np.exp(t[..., 3]) / (2 * rows)
    boxes = np.stack([(x - half_w) * width, (y - half_h) * height,
                      (x + half_w) * width, (y + half_h) * height], axis=-1)
    if clip:
        boxes = np.clip(boxes, 0, [width, height, width, height])
    logits = t[..., 5:]
    e = np.exp(logits - logits.max(axis=-1, keepdims=True))
    scores = s[..., 2:] * e / e.sum(axis=-1, keepdims=True)
    best = scores.argmax(axis=-1)
    top = np.take_along_axis(scores, best[..., None], axis=-1)[..., 0]
    return Detections(boxes.reshape(m, -1, 4).astype(t.dtype, copy=False),
                      top.reshape(m, -1), best.reshape(m, -1))


def filter_boxes(decoded, score_threshold: float = 0.6, iou_threshold: float = 0.5,
                 max_boxes: int | None = 10) -> list[Detections]:
    """The course's yolo_filter_boxes (scores >= ``score_threshold``) then non-max suppression
    per class, at most ``max_boxes`` per image: one ``Detections`` per image, best first."""
    from strata.vision.nms import non_max_suppression

    name = "filter_boxes"
    boxes, scores, classes = (_raw(a) for a in decoded)
    if boxes.ndim != 3 or boxes.shape[2] != 4 or scores.shape != boxes.shape[:2] \
            or classes.shape != boxes.shape[:2]:
        raise ValueError(f"{name}: expected decode's boxes (m, n, 4), scores (m, n) and classes "
                         f"(m, n), got shapes {boxes.shape}, {scores.shape}, {classes.shape}")
    if np.isnan(scores).any():
        raise ValueError(f"{name}: expected scores without NaN, got {np.isnan(scores).sum()} "
                         f"NaN scores (the network's output holds NaN)")
    if max_boxes is not None and (not isinstance(max_boxes, (int, np.integer)) or max_boxes < 1):
        raise ValueError(f"{name}: expected max_boxes a positive integer or None, got "
                         f"{max_boxes!r}")
    kept = []
    for i in range(len(boxes)):
        candidates = np.flatnonzero(scores[i] >= score_threshold)
        chosen = candidates[non_max_suppression(
            boxes[i, candidates], scores[i, candidates], iou_threshold, None, max_boxes,
            classes[i, candidates])]
        kept.append(Detections(boxes[i, chosen], scores[i, chosen], classes[i, chosen]))
    return kept


def from_course_output(feats, n_anchors: int = 5) -> np.ndarray:
    """The course's Keras output (m, S, S, A (5 + C)) as (m, S, S, A, 5 + C): the same numbers
    in the same order (the course's yolo_head reshapes alike, x along the columns)."""
    f = _raw(feats)
    if f.ndim != 4 or f.shape[-1] % n_anchors or f.shape[-1] // n_anchors < 6:
        raise ValueError(f"from_course_output: expected the course's output (m, S, S, "
                         f"{n_anchors} (5 + C)) with C >= 1, got shape {f.shape}")
    return f.reshape(*f.shape[:3], n_anchors, f.shape[-1] // n_anchors)


def from_course_boxes(boxes) -> np.ndarray:
    """The course's (y1, x1, y2, x2) boxes (yolo_boxes_to_corners) as (x1, y1, x2, y2)."""
    b = _raw(boxes)
    if b.ndim < 1 or b.shape[-1] != 4:
        raise ValueError(f"from_course_boxes: expected boxes (..., 4), got shape {b.shape}")
    return b[..., [1, 0, 3, 2]]


def read_anchors(path) -> np.ndarray:
    """Anchors (A, 2) from a text file of comma-separated w, h pairs (yolo_anchors.txt)."""
    text = Path(path).read_text()
    try:
        values = [float(v) for v in text.replace("\n", ",").split(",") if v.strip()]
    except ValueError as e:
        raise ValueError(f"read_anchors: {path}: expected comma-separated numbers ({e})") from None
    if not values or len(values) % 2:
        raise ValueError(f"read_anchors: {path}: expected an even number of values (width, "
                         f"height pairs), got {len(values)}")
    return check_anchors(np.reshape(values, (-1, 2)), f"read_anchors: {path}")


def read_class_names(path) -> list[str]:
    """Class names, one a line (coco_classes.txt), blank lines skipped."""
    names = [line.strip() for line in Path(path).read_text().splitlines() if line.strip()]
    if not names:
        raise ValueError(f"read_class_names: {path}: expected one class name a line, got none")
    return names


def kmeans_anchors(wh, k: int, iterations: int = 100, seed: int = 0) -> AnchorFit:
    """YOLOv2's anchors: k-means on box sizes ``wh`` (n, 2) with distance 1 - IoU (boxes
    centred), seeded k-means++ start, each centre the mean of its boxes. Returns the anchors
    (k, 2) sorted by area and the boxes' mean IoU with their best anchor."""
    name = "kmeans_anchors"
    wh = check_anchors(wh, name, what="box sizes wh (n, 2) (width, height)")
    if not isinstance(k, (int, np.integer)) or not 1 <= k <= len(wh):
        raise ValueError(f"{name}: expected k an integer in [1, {len(wh)}] (the number of "
                         f"boxes), got {k!r}")
    if not isinstance(iterations, (int, np.integer)) or iterations < 1:
        raise ValueError(f"{name}: expected iterations a positive integer, got {iterations!r}")
    rng = np.random.default_rng(seed)
    centres = wh[[rng.integers(len(wh))]]
    while len(centres) < k:  # k-means++: far boxes (in 1 - IoU) are likelier next centres
        far = (1 - wh_iou(wh, centres).max(axis=1)) ** 2
        p = far / far.sum() if far.sum() > 0 else None
        centres = np.vstack([centres, wh[rng.choice(len(wh), p=p)]])
    assigned = None
    for _ in range(iterations):
        best = wh_iou(wh, centres).argmax(axis=1)
        if assigned is not None and np.array_equal(best, assigned):
            break
        assigned = best
        for j in range(k):
            members = wh[assigned == j]
            if len(members):
                centres[j] = members.mean(axis=0)
            else:  # an empty cluster restarts at the box its anchor fits worst
                centres[j] = wh[wh_iou(wh, centres).max(axis=1).argmin()]
    centres = centres[np.argsort(centres.prod(axis=1), kind="stable")]
    return AnchorFit(centres, float(wh_iou(wh, centres).max(axis=1).mean()))


__all__ = ["Detections", "AnchorFit", "encode_targets", "decode", "filter_boxes", "wh_iou",
           "from_course_output", "from_course_boxes", "read_anchors", "read_class_names",
           "kmeans_anchors"]
