"""R-CNN, the slow baseline YOLO replaced: every region proposal (strata.vision.proposals) is
cropped, warped to the classifier's input size and classified on its own, one classifier pass
per proposal, then per-class non-max suppression keeps the best boxes; and the proposals'
recall, the fraction of true boxes some proposal covers."""

from __future__ import annotations

import numpy as np

from strata.vision.proposals import (
    _check_image,
    _integer,
    _number,
    _require,
    _skimage,
    propose_regions,
)


def _pixel_boxes(boxes, shape, caller: str) -> np.ndarray:
    """Boxes (n, 4) as integer pixel ranges clipped to the image (fractional ends rounded out)."""
    b = np.asarray(boxes)
    _require(b.dtype.kind in "biuf" and b.ndim == 2 and b.shape[1] == 4, caller,
             "numeric boxes of shape (n, 4)", f"shape {b.shape} and dtype {b.dtype}")
    _require(np.isfinite(b).all(), caller, "finite box coordinates", "NaN or inf")
    h, w = shape[:2]
    pix = np.c_[np.floor(b[:, :2]), np.ceil(b[:, 2:])].clip(0, [w, h, w, h]).astype(np.int64)
    bad = np.flatnonzero((pix[:, 2] <= pix[:, 0]) | (pix[:, 3] <= pix[:, 1]))
    _require(not len(bad), caller, f"boxes (x1, y1, x2, y2) with x1 < x2 and y1 < y2 inside the "
             f"{h}x{w} image", f"{b[bad[:1]].tolist()} at index {bad[:1].tolist()}")
    return pix


def _predict(model, crops: np.ndarray) -> np.ndarray:
    """Scores for a batch: a strata Model's predict_proba, else the output of ``model(crops)``."""
    from strata.autograd import no_grad
    from strata.nn.module import Module
    from strata.nn.training import Model
    from strata.tensor import Tensor

    if isinstance(model, Model):
        return model.predict_proba(crops, batch_size=len(crops))
    with no_grad():
        out = model(Tensor(crops) if isinstance(model, Module) else crops)
    return np.asarray(out.data if isinstance(out, Tensor) else out)


def classify_proposals(model, image, boxes, size, batch_size: int = 256) -> np.ndarray:
    """Warp each box's crop to ``size`` (an int or (height, width)) and classify the crops in
    batches: scores (n, n_classes), one row per box, as the model returns them.

    ``model`` is a strata Model (its ``predict_proba``) or a callable from an NHWC float32
    batch (pixels on the image's scale) to (batch, n_classes) scores. Crops are warped with
    bilinear interpolation, anti-aliased when shrunk, ignoring the aspect ratio, as R-CNN does.
    """
    image = _check_image(image, "classify_proposals")
    pix = _pixel_boxes(boxes, image.shape, "classify_proposals")
    hw = (size,) * 2 if np.ndim(size) == 0 else tuple(np.ravel(size).tolist())
    _require(len(hw) == 2 and all(_integer(v, 1) for v in hw), "classify_proposals",
             "size as a positive int or (height, width)", repr(size))
    _require(_integer(batch_size, 1), "classify_proposals", "an integer batch_size >= 1",
             repr(batch_size))
    ski = _skimage("classify_proposals")
    img, scores = image.astype(np.float32), []
    for start in range(0, len(pix), batch_size):
        crops = np.stack([ski.transform.resize(img[y1:y2, x1:x2], hw + img.shape[2:], order=1,
                                               preserve_range=True)
                          for x1, y1, x2, y2 in pix[start:start + batch_size]]).astype(np.float32)
        out = _predict(model, crops)
        _require(out.ndim == 2 and len(out) == len(crops), "classify_proposals",
                 f"model scores of shape ({len(crops)}, n_classes)", f"shape {out.shape}")
        scores.append(out)
    return np.concatenate(scores) if scores else np.zeros((0, 0), np.float32)


def rcnn_detect(model, image, size, boxes=None, score_threshold=0.5, iou_threshold=0.5,
                background_class=None, max_detections=None, batch_size=256, **proposal_options):
    """R-CNN: proposals -> warped crops -> classifier -> per-class non-max suppression.

    Returns (boxes (k, 4), scores (k,), classes (k,)), best first. Each proposal (``boxes``, or
    ``propose_regions(image, **proposal_options)``) takes its best class other than
    ``background_class`` and that class's score. This is the slow baseline: one classifier pass
    per proposal (about 2000 per image), where YOLO needs one pass per image.
    """
    from strata.vision.nms import non_max_suppression

    _require(background_class is None or _integer(background_class, 0), "rcnn_detect",
             "background_class None or an integer >= 0", repr(background_class))
    if boxes is None:
        boxes = propose_regions(image, **proposal_options)
    scores = classify_proposals(model, image, boxes, size, batch_size)
    boxes = np.asarray(boxes, dtype=np.float32)
    if len(boxes) == 0:
        return boxes, np.zeros(0, np.float32), np.zeros(0, np.int64)
    if background_class is not None:
        n_classes = scores.shape[1]
        _require(1 < n_classes and background_class < n_classes, "rcnn_detect", f"background_"
                 f"class below the model's {n_classes} classes, and another", background_class)
        scores = scores.copy()
        scores[:, background_class] = -np.inf
    classes = scores.argmax(1)
    best = scores[np.arange(len(scores)), classes]
    keep = non_max_suppression(boxes, best, iou_threshold=iou_threshold,
                               score_threshold=score_threshold, max_boxes=max_detections,
                               classes=classes)
    return boxes[keep], best[keep], classes[keep]


def proposal_recall(proposals_per_image, ground_truth_boxes_per_image,
                    iou_threshold: float = 0.5) -> float:
    """The fraction of ground-truth boxes, over all images, that at least one proposal of their
    image overlaps with IoU >= ``iou_threshold``."""
    from strata.vision.boxes import iou

    name = "proposal_recall"
    props, truths = list(proposals_per_image), list(ground_truth_boxes_per_image)
    _require(len(props) == len(truths), name, f"{len(props)} ground-truth box lists, one per "
             f"proposal list", len(truths))
    _require(_number(iou_threshold, 0) and iou_threshold <= 1, name, "iou_threshold in [0, 1]",
             repr(iou_threshold))
    covered = total = 0
    for i, (p, t) in enumerate(zip(props, truths)):
        p, t = (np.asarray(x, dtype=np.float64) for x in (p, t))
        p, t = (x.reshape(0, 4) if x.size == 0 else x for x in (p, t))
        _require(p.ndim == t.ndim == 2 and p.shape[1] == t.shape[1] == 4, name,
                 f"boxes of shape (n, 4) for image {i}", f"shapes {p.shape} and {t.shape}")
        total += len(t)
        if len(t) and len(p):
            covered += int((iou(t, p).max(1) >= iou_threshold).sum())
    _require(total > 0, name, "at least one ground-truth box", total)
    return covered / total
