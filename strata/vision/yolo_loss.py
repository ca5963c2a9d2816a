"""The YOLO loss (course 4 week 3, YOLOv2 form) on outputs and targets laid out as in
``strata.vision.yolo`` (m, S, S, A, 5 + C), as one Function with a hand-written backward.

With 1_obj the slots (cell, anchor) holding an object, 1_noobj the others, s = sigmoid,
p = anchor sizes in cells, S the grid (S_h rows, S_w columns) and w_i the image's weight:

    L_i = lambda_coord sum_obj [(s(t_x) - b_x)^2 + (s(t_y) - b_y)^2
                                + (t_w - log(b_w S_w / p_w))^2 + (t_h - log(b_h S_h / p_h))^2]
        + sum_obj BCE(t_o, 1) + lambda_noobj sum_noobj BCE(t_o, 0)
        + sum_obj CE(softmax(t_1..t_C), one-hot class)

    J = (1/m) sum_i w_i L_i

Coordinates: squared error on the sigmoid offsets and on the log sizes relative to the anchor
(the logits that decode exactly to the target), so a perfect prediction costs 0. Objectness:
binary cross-entropy on the logit t_o (stable, its gradient s(t_o) - 1_obj never vanishes
as a squared error on s(t_o) does when s saturates). Classes: softmax cross-entropy, only
where an object is. YOLOv2's "ignore" rule for no-object slots whose box overlaps an object
is left out. Slots without an object contribute only their objectness, so their other
predictions may be anything (even NaN).
"""

from __future__ import annotations

import numpy as np

from strata.autograd import Function
from strata.losses.checks import _checked, _prediction, _sample_weights
from strata.losses.classes import Loss
from strata.tensor import Tensor
from strata.vision.yolo import check_anchors, check_output, sigmoid


class YoloLossOp(Function):
    """``yolo_loss`` fused: forward keeps the terms (``self.terms``) and what backward needs."""

    def forward(self, x, y, rows, anchors, lambda_coord, lambda_noobj, weight=None):
        m, n_rows, n_cols, n_anchors, depth = x.shape
        X, Y = x.reshape(-1, depth), y.reshape(-1, depth)
        self.shape, self.m, self.lambda_coord, self.rows = x.shape, m, lambda_coord, rows
        obj = np.zeros(len(X), dtype=x.dtype)
        obj[rows] = 1
        scale = np.full(len(X), lambda_noobj, dtype=x.dtype)
        scale[rows] = 1
        if weight is not None:  # one weight per image, repeated over its S S A slots
            scale *= np.repeat(weight, n_rows * n_cols * n_anchors)
        z = X[:, 4]
        self.z, self.e, self.obj, self.scale = z, np.exp(-np.abs(z)), obj, scale
        # BCE from logits: max(z, 0) - z y + log(1 + e^-|z|), exact and without overflow
        bce = scale * (np.maximum(z, 0) - z * obj + np.log1p(self.e))
        xo, yo = X[rows], Y[rows]
        self.k = scale[rows]  # the image's weight at each object
        self.sxy = sigmoid(xo[:, :2])
        self.dxy = self.sxy - yo[:, :2]
        grid = np.array([n_cols, n_rows], dtype=x.dtype)
        self.dwh = xo[:, 2:4] - np.log(yo[:, 2:4] * grid / anchors[rows % n_anchors])
        shifted = xo[:, 5:] - xo[:, 5:].max(axis=1, keepdims=True)
        exp = np.exp(shifted)
        total = exp.sum(axis=1, keepdims=True)
        self.p, self.labels = exp / total, yo[:, 5:]
        log_p = shifted - np.log(total)
        coord = lambda_coord * self.k * ((self.dxy ** 2).sum(axis=1) + (self.dwh ** 2).sum(axis=1))
        self.terms = {"coord": coord.sum() / m, "object": bce[rows].sum() / m,
                      "no_object": bce @ (1 - obj) / m,
                      "class": -(self.k * (self.labels * log_p).sum(axis=1)).sum() / m}
        return np.asarray(sum(self.terms.values()), dtype=x.dtype)

    def backward(self, g):
        g = g / self.m
        dX = np.zeros((len(self.z), self.shape[-1]), dtype=self.scale.dtype)
        s_obj = np.where(self.z >= 0, 1, self.e) / (1 + self.e)  # sigmoid(z), from forward's e
        dX[:, 4] = (g * self.scale) * (s_obj - self.obj)
        k = (g * self.k)[:, None]
        c = 2 * self.lambda_coord * k
        dX[self.rows, :2] = c * self.dxy * self.sxy * (1 - self.sxy)
        dX[self.rows, 2:4] = c * self.dwh
        dX[self.rows, 5:] = k * (self.p * self.labels.sum(axis=1, keepdims=True) - self.labels)
        return (dX.reshape(self.shape),)


def _lambda(value, name: str, what: str) -> float:
    if not isinstance(value, (int, float, np.integer, np.floating)) or not (
            np.isfinite(value) and value >= 0):
        raise ValueError(f"{name}: expected {what} a finite number >= 0, got {value!r}")
    return float(value)


def _targets(y_true, x: Tensor, name: str) -> tuple[np.ndarray, np.ndarray]:
    """The targets as an array of the predictions' shape and dtype, checked where it matters,
    and the rows (flat slot indices) that hold an object."""
    y = np.asarray(getattr(y_true, "data", y_true))
    if y.shape != x.shape:
        raise ValueError(f"{name}: predictions have shape {x.shape} but targets have shape "
                         f"{y.shape}; expected equal shapes (encode_targets makes them)")
    y = y.astype(x.dtype, copy=False)
    obj = y[..., 4].ravel()
    rows = np.flatnonzero(obj == 1)
    if len(rows) + np.count_nonzero(obj == 0) != obj.size:
        raise ValueError(f"{name}: expected target objectness (index 4) 0 or 1, got values in "
                         f"[{np.nanmin(obj):g}, {np.nanmax(obj):g}] (NaN: {np.isnan(obj).any()})")
    held = y.reshape(-1, y.shape[-1])[rows]
    if held.size and not ((held[:, :2] >= 0).all() and (held[:, :2] <= 1).all()
                          and (held[:, 2:4] > 0).all() and np.isfinite(held[:, 2:4]).all()
                          and (held[:, 5:] >= 0).all() and (held[:, 5:] <= 1).all()):
        raise ValueError(f"{name}: expected targets with objectness 1 to hold offsets b_x, b_y "
                         f"in [0, 1], sizes b_w, b_h > 0 and finite, class labels in [0, 1]; "
                         f"got offsets in [{held[:, :2].min():g}, {held[:, :2].max():g}], sizes "
                         f"in [{held[:, 2:4].min():g}, {held[:, 2:4].max():g}], labels in "
                         f"[{held[:, 5:].min():g}, {held[:, 5:].max():g}]")
    return y, rows


def _prepare(y_pred, y_true, lambda_coord, lambda_noobj, anchors, sample_weight, name):
    x = _prediction(y_pred, name)
    check_output(x.data, name)
    y, rows = _targets(y_true, x, name)
    params = {"y": y, "rows": rows,
              "anchors": check_anchors(anchors, name, x.shape[3]).astype(x.dtype),
              "lambda_coord": _lambda(lambda_coord, name, "lambda_coord"),
              "lambda_noobj": _lambda(lambda_noobj, name, "lambda_noobj")}
    if sample_weight is not None:
        params["weight"] = _sample_weights(sample_weight, x.shape, x.dtype, name)
    return x, params


def yolo_loss(y_pred, y_true, lambda_coord: float = 5.0, lambda_noobj: float = 0.5, *,
              anchors, sample_weight=None) -> Tensor:
    """The YOLO loss J of outputs ``y_pred`` (m, S, S, A, 5 + C) (logits) against
    ``encode_targets``'s ``y_true``, anchors (A, 2) in grid cells; see the module's doc for the
    formula. ``sample_weight`` (m,) weighs each image: J = (1/m) sum_i w_i L_i."""
    name = "yolo_loss"
    x, params = _prepare(y_pred, y_true, lambda_coord, lambda_noobj, anchors, sample_weight,
                         name)
    return _checked(YoloLossOp.apply(x, **params), x, name)


def yolo_loss_terms(y_pred, y_true, lambda_coord: float = 5.0, lambda_noobj: float = 0.5, *,
                    anchors, sample_weight=None) -> dict:
    """``yolo_loss``'s four terms as floats, each a mean over the batch and summing to J:
    "coord", "object", "no_object", "class" (for watching what a detector learns)."""
    x, params = _prepare(y_pred, y_true, lambda_coord, lambda_noobj, anchors, sample_weight,
                         "yolo_loss_terms")
    op = YoloLossOp()
    op.forward(x.data, **params)
    return {key: float(value) + 0.0 for key, value in op.terms.items()}  # no -0.0


class YoloLoss(Loss):
    """``yolo_loss`` with its anchors and weights fixed: ``compile(loss=YoloLoss(anchors))``.
    The model's outputs are raw logits, so predict returns them unchanged."""

    fn = staticmethod(yolo_loss)

    def __init__(self, anchors, lambda_coord: float = 5.0, lambda_noobj: float = 0.5):
        name = type(self).__name__
        self.anchors = check_anchors(anchors, name)
        self.lambda_coord = _lambda(lambda_coord, name, "lambda_coord")
        self.lambda_noobj = _lambda(lambda_noobj, name, "lambda_noobj")
        self.from_logits, self.options = True, {}
        self.__name__ = "yolo_loss"

    def __call__(self, y_pred, y_true, sample_weight=None) -> Tensor:
        """The loss of the batch; ``sample_weight`` (m,) weighs its images."""
        return yolo_loss(y_pred, y_true, self.lambda_coord, self.lambda_noobj,
                         anchors=self.anchors, sample_weight=sample_weight)

    @property
    def logits_activation(self) -> None:
        """None: YOLO outputs mix sigmoid and softmax parts, so nothing is applied to them."""
        return None

    def get_config(self) -> dict:
        """The constructor's arguments."""
        return {"anchors": self.anchors.tolist(), "lambda_coord": self.lambda_coord,
                "lambda_noobj": self.lambda_noobj}


__all__ = ["yolo_loss", "yolo_loss_terms", "YoloLoss", "YoloLossOp"]
