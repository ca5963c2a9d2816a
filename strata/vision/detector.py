"""A small YOLO-style detector (course 4 week 3) for grey canvases: a fully convolutional
network of conv-BN-ReLU blocks and max pooling down to an S x S grid, a 1x1 convolution to
A (5 + C) numbers per cell, reshaped to YOLO's (m, S, S, A, 5 + C) by its last layer, which
also holds the anchors (so a saved model detects by itself). Training encodes the boxes with
``strata.vision.yolo.encode_targets`` and minimizes ``YoloLoss`` with Adam; ``detect``
decodes, filters by score and applies non-max suppression per class.
"""

from __future__ import annotations

import math
import time

import numpy as np

import strata
from strata import nn, ops
from strata.vision.yolo import check_anchors, decode, encode_targets, filter_boxes, kmeans_anchors
from strata.vision.yolo_loss import YoloLoss

#: Channels of the blocks before each 2x2 max pooling, then of the blocks at the grid's size.
WIDTHS = (32, 64)
HEAD_WIDTHS = (128, 128)
#: The first layer cuts the image into 4 x 4 patches (a 4x4 convolution at stride 4): the
#: full-resolution maps of a 3x3 first layer cost more than the rest of the network.
STEM = 4
OBJECTNESS_PRIOR = -4.0


@nn.register
class YoloOutput(nn.Module):
    """(m, S, S, A (5 + C)) -> (m, S, S, A, 5 + C): the last layer of a detector; it keeps the
    anchors (A, 2) (width, height in grid cells) that its output is decoded with."""

    def __init__(self, anchors):
        flat = np.asarray(anchors, dtype=np.float64)  # a saved config holds them flat
        self.anchors = check_anchors(flat.reshape(-1, 2) if flat.ndim == 1 and flat.size % 2 == 0
                                     else flat, "YoloOutput").tolist()

    def forward(self, x):
        A = len(self.anchors)
        if x.ndim != 4 or x.shape[3] % A:
            raise ValueError(f"YoloOutput: expected (m, S, S, {A} (5 + C)) logits, received "
                             f"shape {x.shape}")
        return ops.reshape(x, (*x.shape[:3], A, x.shape[3] // A))

    def get_config(self) -> dict:
        """The anchors as one flat list w1, h1, w2, h2, ... (a saved config holds flat lists)."""
        return {"anchors": [float(v) for a in self.anchors for v in a]}

    def extra_repr(self) -> str:
        return f"{len(self.anchors)} anchors"


def _block(filters: int, kernel: int = 3, strides: int = 1) -> list:
    padding = "same" if strides == 1 else "valid"
    return [nn.Conv2D(filters, kernel, strides=strides, padding=padding, use_bias=False,
                      kernel_initializer="he"), nn.BatchNorm(momentum=0.9), nn.Activation("relu")]


def detector_network(anchors, n_classes: int, image_size: int = 128, widths=WIDTHS,
                     head_widths=HEAD_WIDTHS, stem: int = STEM) -> nn.Sequential:
    """The detector for grey ``image_size`` square images: a stem (a ``stem`` x ``stem``
    convolution at stride ``stem``, which cuts the image into patches, or for ``stem=1`` a 3x3
    block and 2x2 max pooling) of ``widths[0]`` channels, then per later width a 3x3
    conv-BN-ReLU block and 2x2 max pooling, the blocks of ``head_widths`` at the grid's size,
    a 1x1 convolution to A (5 + C) and ``YoloOutput``: (m, S, S, A, 5 + C) logits with
    S = image_size / downsampling(widths, stem). Load a saved one after importing this module
    (it registers ``YoloOutput``)."""
    anchors = check_anchors(anchors, "detector_network")
    factor = downsampling(widths, stem)
    if not isinstance(image_size, (int, np.integer)) or image_size % factor:
        raise ValueError(f"detector_network: expected image_size a multiple of the network's "
                         f"downsampling {factor} (stem {stem}, {len(widths)} widths), "
                         f"received {image_size!r}")
    layers = _block(widths[0]) + [nn.MaxPool2D(2)] if stem == 1 else _block(widths[0], stem,
                                                                            stem)
    for w in widths[1:]:
        layers += _block(w) + [nn.MaxPool2D(2)]
    for w in head_widths:
        layers += _block(w)
    head = nn.Conv2D(len(anchors) * (5 + n_classes), 1, kernel_initializer="glorot")
    model = nn.Sequential([*layers, head, YoloOutput(anchors)])
    model.build((image_size, image_size, 1))
    # Almost every slot holds no object: starting its objectness at sigmoid(-4) = 0.018
    # instead of 0.5 spares the first epoch from learning only that (RetinaNet's prior).
    head.b.data.reshape(len(anchors), 5 + n_classes)[:, 4] = OBJECTNESS_PRIOR
    return model


def downsampling(widths, stem: int) -> int:
    """How many pixels of the image one grid cell spans, per side."""
    return (2 if stem == 1 else stem) * 2 ** (len(widths) - 1)


def fit_anchors(boxes, n_anchors: int, grid_size: int, image_size: int, seed: int = 0):
    """YOLOv2's anchors for training ``boxes`` (one (k, 4) array per image): k-means with
    1 - IoU on their sizes, in grid cells. Returns (anchors (A, 2), mean best IoU)."""
    b = np.concatenate([np.asarray(x, np.float64).reshape(-1, 4) for x in boxes])
    wh = (b[:, 2:] - b[:, :2]) * grid_size / image_size
    fit = kmeans_anchors(wh, n_anchors, seed=seed)
    return fit.anchors, fit.mean_iou


def anchors_of(model) -> np.ndarray:
    """The anchors a detector's ``YoloOutput`` layer holds."""
    last = model.layers[-1] if hasattr(model, "layers") and model.layers else None
    if not isinstance(last, YoloOutput):
        raise ValueError(f"expected a detector ending in YoloOutput (detector_network), "
                         f"received a model ending in {type(last).__name__}")
    return np.asarray(last.anchors)


class CosineSchedule:
    """lr0 at epoch 0 falling along half a cosine to ``floor`` x lr0 at the last epoch."""

    def __init__(self, lr0: float, epochs: int, floor: float = 0.02):
        self.lr0, self.epochs, self.floor = lr0, epochs, floor

    def __call__(self, epoch: int) -> float:
        t = min(epoch / max(self.epochs - 1, 1), 1.0)
        return self.lr0 * (self.floor + (1 - self.floor) * 0.5 * (1 + math.cos(math.pi * t)))


class DetectionMAP(nn.Callback):
    """Adds the mAP@0.5 and mAP@0.5:0.95 of the model on labelled validation images to each
    epoch's logs ("val_map50", "val_map50_95"), e.g. for the CSVLogger after it."""

    def __init__(self, images, boxes, classes, n_classes: int):
        self.data, self.n_classes = (images, boxes, classes), n_classes

    def on_epoch_end(self, epoch, logs):
        report, _ = evaluate_detector(self.model, *self.data, self.n_classes)
        logs["val_map50"], logs["val_map50_95"] = report.map_50, report.map_50_95


class TrainingTimer(nn.Callback):
    """Adds up the seconds spent in training epochs; kept in checkpoints, so a resumed run
    reports its whole training time."""

    seconds, start = 0.0, None

    def on_epoch_begin(self, epoch, logs):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs):
        self.seconds += time.perf_counter() - self.start
        logs["train_seconds"] = self.seconds

    def state_dict(self):
        return {"seconds": self.seconds}

    def load_state_dict(self, state):
        self.seconds = float(state["seconds"])


def _check_images(images, where: str) -> np.ndarray:
    x = np.asarray(images)
    if x.ndim != 4 or x.shape[3] != 1 or x.shape[1] != x.shape[2] or x.dtype.kind != "f":
        raise ValueError(f"{where}: expected grey square images (m, size, size, 1) of floats "
                         f"in [0, 1], received shape {x.shape} dtype {x.dtype}")
    return x.astype(strata.get_default_dtype(), copy=False)


def train_detector(images, boxes, classes, n_classes: int, epochs: int = 10,
                   batch_size: int = 32, lr: float = 2e-3, n_anchors: int = 3, model=None,
                   widths=WIDTHS, head_widths=HEAD_WIDTHS, stem: int = STEM,
                   checkpoint=None, resume: bool = False, verbose: int = 1, callbacks=(),
                   seed: int = 0):
    """Train a detector on ``images`` (m, size, size, 1) with their ``boxes`` and ``classes``
    (one array per image): anchors by k-means on the training boxes, targets by
    ``encode_targets``, ``YoloLoss``, Adam with a cosine-decayed learning rate, and fit's
    ``checkpoint``/``resume``. ``model``: a detector to train further (its anchors are kept).
    Returns (model, history)."""
    images = _check_images(images, "train_detector")
    size = images.shape[1]
    strata.seed(seed)
    if model is None:
        grid_size = size // downsampling(widths, stem)
        anchors, _ = fit_anchors(boxes, n_anchors, grid_size, size, seed)
        model = detector_network(anchors, n_classes, size, widths, head_widths, stem)
    else:
        grid_size = model.predict(images[:1]).shape[1]
    anchors = anchors_of(model)
    targets = encode_targets(list(boxes), list(classes), grid_size, anchors, n_classes, size)
    model.compile(optimizer="adam", lr=lr, loss=YoloLoss(anchors))
    schedule = nn.LearningRateScheduler(CosineSchedule(lr, epochs))
    history = model.fit(images, targets, epochs=epochs, batch_size=batch_size, verbose=verbose,
                        callbacks=[schedule, *callbacks], checkpoint=checkpoint, resume=resume)
    return model, history


def detect(model, images, score_threshold: float = 0.3, iou_threshold: float = 0.5,
           max_boxes: int = 20, batch_size: int = 256) -> list[dict]:
    """Detections per image of ``images`` (m, size, size, 1): a dict with "boxes" (k, 4)
    corners in pixels, "scores" (k,) and "classes" (k,), best first, after a score threshold
    and non-max suppression per class (the format of ``evaluate_detections``)."""
    images = _check_images(images, "detect")
    out = model.predict(images, batch_size=batch_size)
    decoded = decode(out, anchors_of(model), images.shape[1:3])
    kept = filter_boxes(decoded, score_threshold, iou_threshold, max_boxes)
    return [{"boxes": d.boxes, "scores": d.scores, "classes": d.classes} for d in kept]


def evaluate_detector(model, images, boxes, classes, n_classes: int, score_threshold=0.01,
                      **kwargs):
    """(DetectionReport, detections) of ``model`` on labelled images: COCO's AP per class,
    mAP@0.5 and mAP@0.5:0.95 (a low ``score_threshold`` keeps the whole precision-recall
    curve)."""
    from strata.vision.evaluation import evaluate_detections

    kwargs.setdefault("max_boxes", 100)
    detections = detect(model, images, score_threshold=score_threshold, **kwargs)
    truths = [{"boxes": b, "classes": c} for b, c in zip(boxes, classes)]
    return evaluate_detections(detections, truths, n_classes=n_classes), detections
