"""Classification with localization (course 4 week 3).

**Target vector** (the course's order), one row per image, for n classes:

    y = (p_c, b_x, b_y, b_h, b_w, c_1, ..., c_n)          shape (m, 5 + n)

p_c is 1 when the image holds an object and 0 when not; (b_x, b_y) is the box's centre and
(b_h, b_w) its height and width, as fractions of the image ((0, 0) its top-left corner, (1, 1)
its bottom-right: b_x and b_w of n_W, b_y and b_h of n_H); c_1..c_n are one-hot. Where p_c = 0
the rest is the course's "don't care" ("?"): any value, NaN included, is ignored.

**Head and loss.** ``LocalizationHead(n)`` is a linear Dense(5 + n): z_pc (a logit), the four
box numbers, and n class logits. The loss applies the activations itself, in their stable fused
forms (the from_logits forms of ``strata.losses``): binary cross-entropy of sigmoid(z_pc),
squared error of the box and softmax cross-entropy of the classes, the last two only where an
object is present. One head with mixed activations could not fuse with a Keras loss on
probabilities, so the head stays linear and ``decode_localization`` applies sigmoid and softmax
at prediction time.

Landmarks are in strata.vision.landmarks.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from strata import ops
from strata.autograd import Function, ShapeError, is_grad_enabled
from strata.losses import to_probabilities
from strata.losses.checks import _checked, _label_array, _prediction, _sample_weights
from strata.losses.classes import Loss
from strata.nn.layers import Dense, _as_tensor
from strata.nn.registry import register
from strata.ops.activation import produced_by
from strata.tensor import Tensor


def _positive_int(value, what: str, name: str) -> int:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name}: expected {what} to be a positive int, got {value!r}")
    return int(value)


class _Head(Dense):
    """A linear Dense whose 4-D inputs (m, n_H, n_W, n_C) are flattened first (NHWC order)."""

    def __init__(self, units: int, config: dict):
        super().__init__(units, None, True, config["kernel_initializer"], "zeros",
                         config["l2"], config["l1"])
        self.config = config

    def forward(self, x):
        x = _as_tensor(x)
        if x.ndim < 2:
            raise ShapeError(f"{type(self).__name__}: expected input (m, n_prev) or (m, n_H, "
                             f"n_W, n_C), got shape {x.shape}")
        return super().forward(x if x.ndim == 2 else ops.reshape(x, (x.shape[0], -1)))


@register
class LocalizationHead(_Head):
    """Dense(5 + n_classes), linear: (z_pc, b_x, b_y, b_h, b_w, class logits) per example;
    4-D inputs are flattened first. Train with ``LocalizationLoss()``."""

    def __init__(self, n_classes: int, kernel_initializer="glorot", l2=None, l1=None):
        self.n_classes = _positive_int(n_classes, "n_classes", "LocalizationHead")
        super().__init__(5 + self.n_classes, {"n_classes": self.n_classes, "l2": l2, "l1": l1,
                                              "kernel_initializer": kernel_initializer})


class LocalizationLossOp(Function):
    """J = (1/m) sum_i w_i [BCE(sigmoid(z_pc), p_c) + p_c (box_weight ||b_hat - b||^2
    + class_weight CE(softmax(z_c), c))], fused; the gradient is the course's dZ: (sigmoid - p_c)
    for z_pc, 2 box_weight p_c (b_hat - b) for the box, class_weight p_c (softmax - c) for the
    classes, each times w_i / m."""

    def forward(self, z, y, weight, box_weight, class_weight, need_grad=True):
        m, p_c = z.shape[0], y[:, 0]
        present = (p_c > 0)[:, None]
        box = np.where(present, y[:, 1:5], 0)
        classes = np.where(present, y[:, 5:], 0)
        e = np.exp(-np.abs(z[:, 0]))  # the stable BCE from logits of strata.losses
        bce = np.maximum(z[:, 0], 0) - z[:, 0] * p_c + np.log1p(e)
        diff = z[:, 1:5] - box
        shifted = z[:, 5:] - z[:, 5:].max(axis=1, keepdims=True)
        log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        # where, not multiply: outputs of images without an object may be anything, even inf.
        terms = box_weight * (diff * diff).sum(axis=1) - class_weight * (
            classes * log_probs).sum(axis=1)
        losses = bce + np.where(present[:, 0], p_c * terms, 0)
        scale = (np.ones(m, z.dtype) if weight is None else weight) / m
        self.dz = None
        if need_grad:  # not in evaluation: skip the gradient's pass
            dz = np.empty_like(z)
            dz[:, 0] = np.where(z[:, 0] >= 0, 1, e) / (1 + e) - p_c
            dz[:, 1:5] = 2 * box_weight * p_c[:, None] * diff
            dz[:, 5:] = class_weight * p_c[:, None] * (np.exp(log_probs) - classes)
            dz[:, 1:] = np.where(present, dz[:, 1:], 0)
            self.dz = dz * scale[:, None]
        return np.asarray((losses * scale).sum(), dtype=z.dtype)

    def backward(self, g):
        return (self.dz * g,)


def _check_weight(value, what: str, name: str) -> float:
    if not (isinstance(value, (int, float, np.floating)) and np.isfinite(value) and value >= 0):
        raise ValueError(f"{name}: expected {what} to be a finite number >= 0, got {value!r}")
    return float(value)


def _not_activated(pred: Tensor, name: str, head: str) -> None:
    made = produced_by(pred)
    if made is not None:
        raise ValueError(f"{name}: expected the raw (linear) outputs of a {head}, got the "
                         f"output of a {made[0]}; the loss applies sigmoid/softmax itself")


def localization_loss(y_pred, y_true, *, box_weight: float = 1.0, class_weight: float = 1.0,
                      sample_weight=None) -> Tensor:
    """The classification-with-localization loss of ``LocalizationHead``'s raw outputs
    (m, 5 + n) against targets y = (p_c, b_x, b_y, b_h, b_w, c_1..c_n) (see the module doc):
    (1/m) sum_i w_i [BCE(sigmoid(z_pc), p_c) + p_c (box_weight sum_4 (b_hat - b)^2
    + class_weight CE(softmax(z_c), c))]."""
    name = "localization_loss"
    pred = _prediction(y_pred, name)
    if pred.ndim != 2 or pred.shape[1] < 6:
        raise ShapeError(f"{name}: expected predictions (m, 5 + n_classes) with n_classes >= 1, "
                         f"got shape {pred.shape}")
    _not_activated(pred, name, "LocalizationHead")
    y = _label_array(y_true, pred, name)
    p_c = y[:, 0]
    if not (p_c.min() >= 0 and p_c.max() <= 1):  # NaN fails too
        raise ValueError(f"{name}: expected p_c labels (column 0) in [0, 1], got values in "
                         f"[{np.nanmin(p_c):g}, {np.nanmax(p_c):g}]" + (
                             " and NaN" if np.isnan(p_c).any() else ""))
    rest = y[p_c > 0, 1:]
    if rest.size and not np.isfinite(rest).all():
        raise ValueError(f"{name}: the box and class labels of images with an object (p_c > 0) "
                         f"must be finite; got {int((~np.isfinite(rest)).sum())} NaN/inf")
    if rest.size and (rest[:, 4:].min() < 0 or rest[:, 4:].max() > 1):
        raise ValueError(f"{name}: expected one-hot class labels c_1..c_n in [0, 1] where "
                         f"p_c > 0, got values in [{rest[:, 4:].min():g}, {rest[:, 4:].max():g}]")
    w = None if sample_weight is None else _sample_weights(sample_weight, pred.shape[:1],
                                                           pred.dtype, name)
    loss = LocalizationLossOp.apply(
        pred, y=y, weight=w, box_weight=_check_weight(box_weight, "box_weight", name),
        class_weight=_check_weight(class_weight, "class_weight", name),
        need_grad=pred.requires_grad and is_grad_enabled())
    return _checked(loss, pred, name)


class _RawOutputLoss(Loss):
    """A Loss on a head's raw outputs, for ``compile``: no from_logits option (the outputs are
    logits and coordinates, which ``decode_*`` turn into predictions)."""

    logits_activation = None

    def __init__(self, **options):
        self.options, self.from_logits, self.__name__ = options, True, self.fn.__name__

    def __call__(self, y_pred, y_true, sample_weight=None) -> Tensor:
        return self.fn(y_pred, y_true, sample_weight=sample_weight, **self.options)

    def get_config(self) -> dict:
        return dict(self.options)


class LocalizationLoss(_RawOutputLoss):
    """``localization_loss`` with ``box_weight`` and ``class_weight`` fixed, for ``compile``."""

    fn = staticmethod(localization_loss)

    def __init__(self, box_weight: float = 1.0, class_weight: float = 1.0):
        name = type(self).__name__
        super().__init__(box_weight=_check_weight(box_weight, "box_weight", name),
                         class_weight=_check_weight(class_weight, "class_weight", name))


def _image_hw(image_shape, name: str) -> tuple[int, int]:
    shape = tuple(image_shape)
    if len(shape) not in (2, 3) or min(shape[:2]) < 1:
        raise ValueError(f"{name}: expected image_shape (n_H, n_W) or (n_H, n_W, n_C), got "
                         f"{image_shape!r}")
    return int(shape[0]), int(shape[1])


def _outputs(output, n_min: int, name: str) -> np.ndarray:
    out = np.asarray(output.data if isinstance(output, Tensor) else output)
    if out.ndim != 2 or out.shape[1] < n_min or out.dtype.kind not in "fiu":
        raise ShapeError(f"{name}: expected numeric outputs (m, {n_min}+), got shape "
                         f"{out.shape} and dtype {out.dtype}")
    return out


class Localization(NamedTuple):
    """What ``decode_localization`` returns, one entry per image."""

    p_c: np.ndarray  #: (m,) probability that an object is present
    boxes: np.ndarray  #: (m, 4) corners (x1, y1, x2, y2) in pixels, clipped to the image
    classes: np.ndarray  #: (m,) most probable class index
    class_probabilities: np.ndarray  #: (m, n) softmax of the class logits


def decode_localization(output, image_shape) -> Localization:
    """``LocalizationHead``'s raw outputs (m, 5 + n) -> p_c = sigmoid(z_pc), the corner box in
    pixels ((b_x -+ b_w / 2) n_W, (b_y -+ b_h / 2) n_H; negative sizes count as 0; clipped to
    the image), the class (argmax) and the class probabilities (softmax)."""
    name = "decode_localization"
    out = _outputs(output, 6, name)
    n_h, n_w = _image_hw(image_shape, name)
    b_x, b_y = out[:, 1], out[:, 2]
    half_h, half_w = np.maximum(out[:, 3], 0) / 2, np.maximum(out[:, 4], 0) / 2
    boxes = np.stack([(b_x - half_w) * n_w, (b_y - half_h) * n_h,
                      (b_x + half_w) * n_w, (b_y + half_h) * n_h], axis=1)
    boxes = np.clip(boxes, 0, [n_w, n_h, n_w, n_h])
    probs = to_probabilities(out[:, 5:], "softmax")
    return Localization(to_probabilities(out[:, 0], "sigmoid"), boxes, probs.argmax(axis=1),
                        probs)


def localization_target(boxes, classes, image_shape, n_classes: int) -> np.ndarray:
    """Targets y (m, 5 + n) from corner boxes (m, 4) (x1, y1, x2, y2) in pixels and class
    indices (m,), where -1 means "no object" (p_c = 0; the row's box is ignored, NaN allowed)."""
    name = "localization_target"
    n = _positive_int(n_classes, "n_classes", name)
    n_h, n_w = _image_hw(image_shape, name)
    boxes, classes = np.asarray(boxes, dtype=np.float64), np.asarray(classes)
    m = len(classes)
    if boxes.shape != (m, 4) or classes.shape != (m,) or classes.dtype.kind not in "iu":
        raise ShapeError(f"{name}: expected boxes (m, 4) and integer classes (m,), got "
                         f"{boxes.shape} and {classes.shape} ({classes.dtype})")
    present = classes >= 0
    if (classes >= n).any() or not np.isfinite(boxes[present]).all():
        raise ValueError(f"{name}: expected classes in [-1, {n - 1}] and finite boxes where an "
                         f"object is present, got classes up to {classes.max()}")
    x1, y1, x2, y2 = np.where(present[:, None], boxes, 0).T
    y = np.zeros((m, 5 + n))
    y[:, 0] = present
    y[:, 1:5] = np.stack([(x1 + x2) / 2 / n_w, (y1 + y2) / 2 / n_h, (y2 - y1) / n_h,
                          (x2 - x1) / n_w], axis=1) * present[:, None]
    y[present, 5 + classes[present]] = 1
    return y
