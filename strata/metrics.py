"""Evaluation metrics: accuracy, precision, recall, F1 and the confusion matrix (course 3).

Metrics take arrays (NumPy's, or a device's such as CuPy's: computed there, only the result
copied to the host) or Tensors and return Python numbers (the confusion matrix: an integer NumPy
array). Labels and predictions may each be given as
- class indices, shape (m,) or (m, 1), integer or whole-number floats;
- binary probabilities, shape (m,) or (m, 1), floats in [0, 1]: class 1 where p > threshold
  (0.5 by default, as in the course's ``predict``: A > 0.5); for logits pass threshold=0.0
  (sigmoid(z) > 0.5 exactly when z > 0), otherwise values outside [0, 1] are an error;
- one-hot or probability (or logit) rows, shape (m, C) with C > 1: the class is the argmax.
Rows of several independent sigmoid outputs (multi-label) are read as one-hot rows too.

Precision, recall and F1 are scikit-learn's. ``average="binary"`` (the default, as in
scikit-learn) scores class 1 and refuses more than two classes; ``"macro"`` averages the
per-class scores, each class weighing the same; ``"weighted"`` weighs them by each class's
number of true examples. In ``compile(metrics=[...])`` they are "precision", "recall", "f1"
(binary) and "precision_macro", "recall_weighted", "f1_macro", "f1_weighted"... (multi-class).
When a score's denominator is zero (no predicted positives for precision, no actual positives
for recall, neither for F1) the score is 0.0, as scikit-learn's ``zero_division=0``.
"""

from __future__ import annotations

import numpy as np

from strata import backend
from strata.naming import lookup
from strata.tensor import Tensor

AVERAGES = ("binary", "macro", "weighted")


def _values(y):
    """The array behind ``y`` (a Tensor, an array of any device, a list): NumPy's unless it
    lives on a device, where it stays."""
    a = y.data if isinstance(y, Tensor) else y
    return a if type(a) is np.ndarray or backend.array_module(a) is not np else np.asarray(a)


def _as_classes(y, role: str, fn: str, threshold: float):
    """Class indices (m,) from class indices, binary probabilities or one-hot/probability rows,
    computed by the array module of ``y`` (on its device)."""
    a = _values(y)
    xp = backend.array_module(a)
    if a.dtype.kind == "f" and xp.isnan(a).any():  # argmax would pick the NaN
        raise ValueError(f"{fn}: {role} contain {int(xp.isnan(a).sum())} NaN value(s)")
    if a.ndim == 2 and a.shape[1] > 1:
        return a.argmax(axis=1)
    if a.ndim == 2:
        a = a[:, 0]
    if a.ndim != 1:
        raise ValueError(f"{fn}: expected {role} of shape (m,), (m, 1) or (m, C), got {a.shape}")
    if a.dtype.kind == "b":
        return a.astype(np.int64)
    if a.dtype.kind in "iu":
        if a.size and a.min() < 0:
            raise ValueError(f"{fn}: {role} class indices must be >= 0, got {int(a.min())}")
        return a.astype(np.int64, copy=False)
    if a.dtype.kind != "f":
        raise TypeError(f"{fn}: expected numeric {role}, got dtype {a.dtype}")
    if (a == a.round()).all() and (a.size == 0 or a.min() >= 0):
        return a.astype(np.int64)
    if 0 < threshold < 1 and (a.min() < 0 or a.max() > 1):
        raise ValueError(f"{fn}: {role} look like logits (values in [{float(a.min()):g}, "
                         f"{float(a.max()):g}]); pass probabilities in [0, 1], class indices, or "
                         f"threshold=0.0 for logits")
    return (a > threshold).astype(np.int64)


def _pair(y_true, y_pred, fn: str, threshold: float) -> tuple:
    """Both sides as class indices (m,), on the device of either when one lives on a device
    (the other copied there explicitly)."""
    y_true, y_pred = _values(y_true), _values(y_pred)
    xp = backend.array_module(y_true, y_pred)
    if xp is not np:
        y_true, y_pred = backend.to_device(y_true, xp), backend.to_device(y_pred, xp)
    if y_pred.ndim >= 3 and y_true.shape == y_pred.shape[:-1]:  # sequences (m, T_y, C):
        y_true, y_pred = y_true.reshape(-1), y_pred.reshape(-1, y_pred.shape[-1])  # per step
    t = _as_classes(y_true, "y_true", fn, threshold)
    p = _as_classes(y_pred, "y_pred", fn, threshold)
    if len(t) != len(p):
        raise ValueError(f"{fn}: y_true has {len(t)} examples but y_pred has {len(p)}; "
                         f"expected the same number")
    if len(t) == 0:
        raise ValueError(f"{fn}: got no examples (y_true and y_pred are empty)")
    return t, p


def accuracy(y_true, y_pred, threshold: float = 0.5) -> float:
    """Fraction of examples whose predicted class equals the true class."""
    t, p = _pair(y_true, y_pred, "accuracy", threshold)
    return float((t == p).mean())


def confusion_matrix(y_true, y_pred, num_classes: int | None = None,
                     threshold: float = 0.5) -> np.ndarray:
    """Counts C[i, j] of examples of true class i predicted as class j (rows true, columns pred).

    ``num_classes`` defaults to 1 + the largest class seen (at least 2).
    """
    t, p = _pair(y_true, y_pred, "confusion_matrix", threshold)
    largest = int(max(t.max(), p.max()))
    if num_classes is None:
        num_classes = max(largest + 1, 2)
    elif largest >= num_classes:
        raise ValueError(f"confusion_matrix: num_classes={num_classes} but found class "
                         f"{largest}; classes must lie in [0, {num_classes - 1}]")
    counts = backend.array_module(t).bincount(t * num_classes + p,
                                              minlength=num_classes * num_classes)
    return backend.to_numpy(counts).reshape(num_classes, num_classes)


def _columns(y) -> int:
    """C for one-hot/probability rows (m, C) with C > 1, else 0 (the classes come from values)."""
    a = y.data if isinstance(y, Tensor) else y
    shape = a.shape if hasattr(a, "shape") else np.shape(a)
    return shape[1] if len(shape) == 2 and shape[1] > 1 else 0


def _score(sk_name: str, y_true, y_pred, average: str, fn: str, threshold: float) -> float:
    """scikit-learn's ``sk_name`` (precision_score, recall_score or f1_score) on class indices.

    "binary" scores class 1 and needs two classes at most, by output shape ((m,), (m, 1) or
    (m, 2)) and by value. "macro" and "weighted" average over the classes present in y_true or
    y_pred (scikit-learn's default labels): a class absent from both, as from a small dev set,
    does not pull the average towards 0. zero_division=0 gives 0.0 for an undefined score,
    without scikit-learn's warning.
    """
    if average not in AVERAGES:
        raise ValueError(f"{fn}: average must be one of {AVERAGES} (micro-averaged scores of "
                         f"single-label classes all equal the accuracy), got {average!r}")
    t, p = _pair(y_true, y_pred, fn, threshold)
    if average == "binary":
        classes = max(_columns(y_true), _columns(y_pred), int(max(t.max(), p.max())) + 1)
        if classes > 2:
            name = "f1" if fn == "f1_score" else fn
            raise ValueError(f"{fn}: average='binary' needs classes 0 and 1 only, found "
                             f"{classes} classes; for a multi-class score use average='macro' "
                             f"or 'weighted', in compile(metrics=[...]) the names "
                             f"'{name}_macro' (each class weighs the same) or "
                             f"'{name}_weighted' (classes weighed by their number of examples)")
    from sklearn import metrics as sk  # imported on use: it takes a while to load

    t, p = backend.to_numpy(t), backend.to_numpy(p)  # scikit-learn counts on the host
    return float(getattr(sk, sk_name)(t, p, average=average, zero_division=0))


def precision(y_true, y_pred, average: str = "binary", threshold: float = 0.5) -> float:
    """tp / (tp + fp): of the predicted positives, the fraction truly positive (0.0 if none)."""
    return _score("precision_score", y_true, y_pred, average, "precision", threshold)


def recall(y_true, y_pred, average: str = "binary", threshold: float = 0.5) -> float:
    """tp / (tp + fn): of the actual positives, the fraction predicted positive (0.0 if none)."""
    return _score("recall_score", y_true, y_pred, average, "recall", threshold)


def f1_score(y_true, y_pred, average: str = "binary", threshold: float = 0.5) -> float:
    """2 P R / (P + R) = 2tp / (2tp + fp + fn), the harmonic mean of precision and recall."""
    return _score("f1_score", y_true, y_pred, average, "f1_score", threshold)


AVERAGE_DOCS = {"macro": "the per-class scores averaged, each class weighing the same",
                "weighted": "the per-class scores averaged, weighed by each class's number of "
                            "true examples (its support)"}


def _averaged(score, average: str, name: str):
    """``score`` with ``average`` fixed, named for compile(metrics=[...]) and the history."""
    def metric(y_true, y_pred, threshold: float = 0.5) -> float:
        return score(y_true, y_pred, average=average, threshold=threshold)

    metric.__name__ = metric.__qualname__ = name
    metric.__doc__ = (f"``{score.__name__}(y_true, y_pred, average={average!r})``: "
                      f"{AVERAGE_DOCS[average]}.")
    return metric


precision_macro = _averaged(precision, "macro", "precision_macro")
precision_weighted = _averaged(precision, "weighted", "precision_weighted")
recall_macro = _averaged(recall, "macro", "recall_macro")
recall_weighted = _averaged(recall, "weighted", "recall_weighted")
f1_macro = _averaged(f1_score, "macro", "f1_macro")
f1_weighted = _averaged(f1_score, "weighted", "f1_weighted")


#: Names for ``compile(metrics=[...])``. The plain precision, recall and f1 are binary (class 1
#: is positive), as scikit-learn's defaults; on more than two classes they raise an error
#: naming the _macro and _weighted metrics to use instead.
METRICS = {"accuracy": accuracy, "precision": precision, "recall": recall, "f1": f1_score,
           "f1_score": f1_score,
           **{m.__name__: m for m in (precision_macro, precision_weighted, recall_macro,
                                      recall_weighted, f1_macro, f1_weighted)}}


def get_metric(name):
    """The metric called ``name`` (see ``METRICS``); a callable is returned unchanged."""
    return lookup(METRICS, name, "metric")
