"""Detection evaluation (course 4 week 3): precision-recall curves, AP per class and mAP,
computed exactly as COCO does (pycocotools' COCOeval for boxes, area range "all", no crowd
boxes): equal to COCOeval's ``stats[1]`` (mAP@0.5) and ``stats[0]`` (mAP@0.5:0.95).

Per class and image, at most ``max_detections`` detections by descending score (ties keep input
order) are matched greedily, each to the free true box with the highest IoU >= the threshold
(ties: the later box). Over all images the precision-recall curve is made monotone and read at
recall 0, 0.01, ..., 1; AP is the mean of those 101 precisions. "AP@0.5" is this COCO AP at
IoU 0.5 (not Pascal VOC's); "AP@0.5:0.95" averages IoU 0.50, 0.55, ..., 0.95. A class with no
true box has AP -1 (as in COCO) and is left out of the means. Boxes are corners (x1, y1, x2, y2)
in pixels; IoU has no +1 on widths, as in COCO for boxes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from strata.files import atomic_write
from strata.vision.boxes import iou

COCO_IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10)  # pycocotools' exact values
RECALL_THRESHOLDS = np.linspace(0.0, 1.0, 101)
_AREA_ALL = 1e5**2  # COCO's area range "all" ends here; bigger boxes are ignored, as there
_EPS = np.spacing(1)


def _array(value, where: str) -> np.ndarray:
    arr = np.asarray(value)
    if arr.size == 0:
        return arr.astype(np.float64)
    if arr.dtype.kind not in "iuf":
        raise TypeError(f"{where}: expected numbers, received dtype {arr.dtype}")
    bad = np.flatnonzero(~np.isfinite(arr.reshape(-1)))
    if bad.size:
        raise ValueError(f"{where}: expected finite values, received {arr.reshape(-1)[bad[0]]} "
                         f"at flat index {bad[0]}")
    return arr


def _check_image(entry, where: str, keys: tuple[str, ...]) -> dict:
    if not isinstance(entry, Mapping):
        raise TypeError(f"{where}: expected a dict with keys {list(keys)}, "
                        f"received {type(entry).__name__}")
    missing = [k for k in keys if k not in entry]
    if missing:
        raise ValueError(f"{where}: expected keys {list(keys)}, missing {missing}")
    boxes = _array(entry["boxes"], f"{where}['boxes']")
    boxes = boxes.reshape(0, 4) if boxes.size == 0 else boxes
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError(f"{where}['boxes']: expected shape (n, 4), received {boxes.shape}")
    bad = np.flatnonzero((boxes[:, 2] < boxes[:, 0]) | (boxes[:, 3] < boxes[:, 1]))
    if bad.size:
        raise ValueError(f"{where}['boxes'][{bad[0]}]: expected corners (x1, y1, x2, y2) with "
                         f"x2 >= x1 and y2 >= y1, received {boxes[bad[0]].tolist()}")
    out = {"boxes": boxes.astype(np.float64)}
    for key in keys[1:]:
        arr = _array(entry[key], f"{where}['{key}']")
        arr = arr.reshape(0) if arr.size == 0 else arr
        if arr.shape != (len(boxes),):
            raise ValueError(f"{where}['{key}']: expected shape ({len(boxes)},), one per box, "
                             f"received {arr.shape}")
        out[key] = arr
    wrong = (out["classes"] != np.round(out["classes"])) | (out["classes"] < 0)
    if wrong.any():
        raise ValueError(f"{where}['classes']: expected integers >= 0, received "
                         f"{out['classes'][wrong][0]}")
    out["classes"] = out["classes"].astype(np.int64)
    out["scores"] = out.get("scores", np.zeros(0)).astype(np.float64)
    return out


def _is_count(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value >= 1


def _half(thresholds: np.ndarray) -> int:
    """Index of IoU 0.5 among ``thresholds``, or -1."""
    found = np.flatnonzero(np.isclose(thresholds, 0.5, rtol=0, atol=1e-12))
    return int(found[0]) if found.size else -1


def _check_inputs(detections, ground_truth, n_classes, iou_thresholds, max_detections):
    name = "evaluate_detections"
    for arg, value in (("detections", detections), ("ground_truth", ground_truth)):
        if not isinstance(value, Sequence) or isinstance(value, (str, bytes, Mapping)):
            raise TypeError(f"{name}: expected {arg} as a list with one dict per image, "
                            f"received {type(value).__name__}")
    if len(detections) != len(ground_truth) or not detections or not _is_count(max_detections):
        raise ValueError(f"{name}: expected detections and ground_truth for the same images "
                         f"(equal, non-zero lengths) and max_detections an integer >= 1, received"
                         f" {len(detections)}, {len(ground_truth)} and {max_detections!r}")
    thresholds = COCO_IOU_THRESHOLDS if iou_thresholds is None else _array(
        iou_thresholds, f"{name} iou_thresholds").astype(np.float64)
    if thresholds.ndim != 1 or np.any((thresholds < 0) | (thresholds > 1)) or _half(thresholds) < 0:
        raise ValueError(f"{name}: expected iou_thresholds a 1-D list of values in [0, 1] "
                         f"including 0.5, received {np.asarray(iou_thresholds).tolist()}")
    dets = [_check_image(d, f"{name}: detections[{i}]", ("boxes", "scores", "classes"))
            for i, d in enumerate(detections)]
    gts = [_check_image(g, f"{name}: ground_truth[{i}]", ("boxes", "classes"))
           for i, g in enumerate(ground_truth)]
    top = max((int(e["classes"].max()) for e in dets + gts if e["classes"].size), default=-1)
    if n_classes is None and top < 0:
        raise ValueError(f"{name}: cannot infer n_classes: there is no box in detections or "
                         f"ground_truth; pass n_classes")
    n_classes = top + 1 if n_classes is None else n_classes
    if not _is_count(n_classes) or top >= n_classes:
        raise ValueError(f"{name}: expected n_classes an integer >= 1 above every class index "
                         f"(largest is {top}), received {n_classes!r}")
    return dets, gts, int(n_classes), thresholds


def _last_best(mask: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Per row of ``mask`` (T, G): the last index of the largest ``values`` allowed, or -1."""
    scored = np.where(mask, values[None, :], -np.inf)
    last = mask.shape[1] - 1 - np.argmax(scored[:, ::-1], axis=1)
    return np.where(mask.any(axis=1), last, -1)


def _match_image(det_boxes, scores, gt_boxes, thresholds, max_detections):
    """COCO's evaluateImg for one image and class: scores by rank, which detections match a
    true box at each threshold (T, D), which are ignored (T, D), and the true boxes counted."""
    order = np.argsort(-scores, kind="mergesort")[:max_detections]
    det_boxes, scores = det_boxes[order], scores[order]
    gt_ignored = np.prod(gt_boxes[:, 2:] - gt_boxes[:, :2], axis=1) > _AREA_ALL
    gt_order = np.argsort(gt_ignored, kind="mergesort")
    gt_boxes, gt_ignored = gt_boxes[gt_order], gt_ignored[gt_order]
    T, D = len(thresholds), len(det_boxes)
    matched, ignored = np.zeros((T, D), bool), np.zeros((T, D), bool)
    if D and len(gt_boxes):
        ious = iou(det_boxes, gt_boxes)
        taken = np.zeros((T, len(gt_boxes)), bool)
        limit = np.minimum(thresholds, 1 - 1e-10)[:, None]
        rows = np.arange(T)
        some_ignored = gt_ignored.any()
        for d in np.flatnonzero(ious.max(axis=1) >= limit.min()):  # the others match nothing
            free = (ious[d] >= limit) & ~taken
            if not free.any():
                continue
            m = _last_best(free & ~gt_ignored, ious[d])  # a counted box wins over an ignored one
            if some_ignored:
                m = np.where(m < 0, _last_best(free & gt_ignored, ious[d]), m)
            hit = m >= 0
            matched[hit, d], ignored[hit, d] = True, gt_ignored[m[hit]]
            taken[rows[hit], m[hit]] = True
    huge = np.prod(det_boxes[:, 2:] - det_boxes[:, :2], axis=1) > _AREA_ALL
    ignored |= ~matched & huge[None, :]
    return scores, matched, ignored, int(np.count_nonzero(~gt_ignored))


def _interpolate(recall: np.ndarray, precision: np.ndarray) -> np.ndarray:
    """COCO's 101-point interpolated precision of one raw curve (points by descending score)."""
    if precision.size == 0:
        return np.zeros(RECALL_THRESHOLDS.size)
    envelope = np.maximum.accumulate(precision[::-1])[::-1]
    idx = np.searchsorted(recall, RECALL_THRESHOLDS, side="left")
    return np.where(idx < envelope.size, envelope[np.minimum(idx, envelope.size - 1)], 0.0)


def average_precision(recall, precision) -> float:
    """COCO's 101-point interpolated AP of a precision-recall curve (one point per detection by
    descending score, recall non-decreasing).

    >>> average_precision([0.5, 0.5, 1.0], [1.0, 0.5, 2 / 3])  # doctest: +ELLIPSIS
    0.8349...
    """
    r = _array(recall, "average_precision recall").astype(np.float64)
    p = _array(precision, "average_precision precision").astype(np.float64)
    if r.ndim != 1 or r.shape != p.shape or np.any((r < 0) | (r > 1) | (p < 0) | (p > 1)) \
            or np.any(np.diff(r) < 0):
        raise ValueError(f"average_precision: expected 1-D recall and precision of one length, "
                         f"values in [0, 1], recall non-decreasing; received recall "
                         f"{r[:6].tolist()}..., precision {p[:6].tolist()}...")
    return float(_interpolate(r, p).mean())


@dataclass(frozen=True, eq=False)
class PRCurve:
    """One class's raw precision-recall curve at IoU 0.5: one point per detection, by score."""

    recall: np.ndarray
    precision: np.ndarray
    scores: np.ndarray


def _accumulate(results: list, thresholds: np.ndarray):
    """COCO's accumulate for one class: interpolated precision (T, 101), final recall (T,) and
    the raw curve at IoU 0.5; None when the class has no true box."""
    n_gt = sum(r[3] for r in results)
    if n_gt == 0:
        return None
    scores = np.concatenate([r[0] for r in results])
    order = np.argsort(-scores, kind="mergesort")
    matched = np.concatenate([r[1] for r in results], axis=1)[:, order]
    ignored = np.concatenate([r[2] for r in results], axis=1)[:, order]
    tp = np.cumsum(matched & ~ignored, axis=1).astype(float)
    fp = np.cumsum(~matched & ~ignored, axis=1).astype(float)
    recall, precision = tp / n_gt, tp / (fp + tp + _EPS)
    curve_p = np.stack([_interpolate(recall[t], precision[t]) for t in range(len(thresholds))])
    final = recall[:, -1] if recall.shape[1] else np.zeros(len(thresholds))
    t50 = _half(thresholds)
    keep = ~ignored[t50]
    return curve_p, final, PRCurve(recall[t50][keep], precision[t50][keep], scores[order][keep])


def _mean_valid(values: np.ndarray) -> float:
    return float(np.mean(values[values > -1])) if np.any(values > -1) else -1.0


@dataclass(frozen=True, eq=False)
class DetectionReport:
    """What ``evaluate_detections`` found; -1 marks classes with no true box (COCO's way)."""

    iou_thresholds: np.ndarray  # (T,)
    precision: np.ndarray  # (T, 101, K): COCO's interpolated precision at recall_thresholds
    recall: np.ndarray  # (T, K): recall reached by all (kept) detections
    ap: np.ndarray  # (T, K): AP per IoU threshold and class
    ap_50: np.ndarray  # (K,): COCO's 101-point AP at IoU 0.5
    ap_50_95: np.ndarray  # (K,): AP averaged over the IoU thresholds (0.50:0.05:0.95 by default)
    map_50: float  # COCOeval stats[1]; -1 when no class has a true box
    map_50_95: float  # COCOeval stats[0]; -1 likewise
    curves: tuple  # per class: PRCurve at IoU 0.5, or None without true boxes
    n_ground_truth: np.ndarray  # (K,)
    n_detections: np.ndarray  # (K,) before the max_detections cut
    max_detections: int
    recall_thresholds = RECALL_THRESHOLDS  # (101,): 0, 0.01, ..., 1

    @property
    def n_classes(self) -> int:
        return self.precision.shape[2]

    def __repr__(self) -> str:
        return (f"DetectionReport(n_classes={self.n_classes}, map_50={self.map_50:.4f}, "
                f"map_50_95={self.map_50_95:.4f}, max_detections={self.max_detections})")

    def to_markdown(self, class_names=None) -> str:
        """A table of AP per class and the means, with a line saying how AP is computed."""
        names = _class_names(class_names, self.n_classes, "DetectionReport.to_markdown")
        lo, hi = self.iou_thresholds.min(), self.iou_thresholds.max()
        label = f"AP@{lo:g}:{hi:g}" if len(self.iou_thresholds) > 1 else f"AP@{lo:g}"
        fmt = lambda v: "n/a" if v < 0 else f"{v:.4f}"  # noqa: E731
        lines = [f"| class | AP@0.5 | {label} | true boxes | detections |",
                 "|---|---:|---:|---:|---:|"] + [
            f"| {name} | {fmt(self.ap_50[k])} | {fmt(self.ap_50_95[k])} | "
            f"{self.n_ground_truth[k]} | {self.n_detections[k]} |" for k, name in enumerate(names)]
        lines.append(f"| **mAP** | {fmt(self.map_50)} | {fmt(self.map_50_95)} | "
                     f"{self.n_ground_truth.sum()} | {self.n_detections.sum()} |")
        lines.append(f"\nAP is COCO's: 101-point interpolated precision, at most "
                     f"{self.max_detections} detections per image and class, {label} averaged "
                     f"over {len(self.iou_thresholds)} IoU thresholds; classes without true "
                     f"boxes (n/a) are left out of the means.")
        return "\n".join(lines) + "\n"


def _class_names(class_names, n_classes: int, where: str) -> list[str]:
    if class_names is None:
        return [str(k) for k in range(n_classes)]
    if isinstance(class_names, str) or len(class_names) != n_classes:
        raise ValueError(f"{where}: expected {n_classes} class names, received {class_names!r}")
    return [str(n) for n in class_names]


def evaluate_detections(detections, ground_truth, n_classes=None, iou_thresholds=None,
                        max_detections: int = 100) -> DetectionReport:
    """COCO's AP per class, mAP@0.5 and mAP@0.5:0.95 of ``detections`` (per image: boxes
    (n, 4), scores (n,), classes (n,)) against ``ground_truth`` (per image: boxes, classes)."""
    dets, gts, K, thresholds = _check_inputs(detections, ground_truth, n_classes,
                                             iou_thresholds, max_detections)
    per_class: list[list] = [[] for _ in range(K)]
    for det, gt in zip(dets, gts):
        for k in np.union1d(det["classes"], gt["classes"]):
            d, g = det["classes"] == k, gt["classes"] == k
            per_class[k].append(_match_image(det["boxes"][d], det["scores"][d], gt["boxes"][g],
                                             thresholds, max_detections))
    T, R = len(thresholds), RECALL_THRESHOLDS.size
    precision, recall, curves = -np.ones((T, R, K)), -np.ones((T, K)), []
    for k in range(K):
        found = _accumulate(per_class[k], thresholds) if per_class[k] else None
        if found is not None:
            precision[:, :, k], recall[:, k] = found[0], found[1]
        curves.append(None if found is None else found[2])
    n_gt, n_det = (np.bincount(np.concatenate([e["classes"] for e in entries]), minlength=K)
                   for entries in (gts, dets))
    valid, t50 = precision[0, 0] > -1, _half(thresholds)
    ap = np.where(valid, precision.mean(axis=1), -1.0)
    return DetectionReport(
        np.array(thresholds), precision, recall, ap, ap[t50],
        np.where(valid, precision.mean(axis=(0, 1)), -1.0), _mean_valid(precision[t50]),
        _mean_valid(precision), tuple(curves), n_gt, n_det, int(max_detections))


def plot_pr_curves(report: DetectionReport, path, class_names=None) -> Path:
    """Precision against recall at IoU 0.5 for each class with true boxes (COCO's interpolated
    curve, whose mean is AP, over the raw one); writes a PNG atomically and returns its path."""
    if not isinstance(report, DetectionReport):
        raise TypeError(f"plot_pr_curves: expected a DetectionReport, "
                        f"received {type(report).__name__}")
    names = _class_names(class_names, report.n_classes, "plot_pr_curves")
    shown = [k for k, c in enumerate(report.curves) if c is not None]
    if not shown:
        raise ValueError("plot_pr_curves: expected a report with a class having true boxes, "
                         "received one without")
    import matplotlib

    matplotlib.use("Agg")  # no display needed
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.5))
    t50 = _half(report.iou_thresholds)
    for k in shown:
        line, = ax.plot(RECALL_THRESHOLDS, report.precision[t50, :, k], drawstyle="steps-pre",
                        label=f"{names[k]} (AP {report.ap_50[k]:.3f})")
        ax.plot(report.curves[k].recall, report.curves[k].precision, color=line.get_color(),
                alpha=0.35, linewidth=0.8)
    ax.set(xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1.02),
           title=f"Precision-recall at IoU 0.5 (mAP@0.5 = {report.map_50:.3f})")
    ax.legend(fontsize=7, ncol=1 + len(shown) // 20, loc="best")
    path = Path(path)
    try:
        atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=110, bbox_inches="tight", format="png"))
    finally:
        plt.close(fig)
    return path
