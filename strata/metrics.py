"""Evaluation metrics: accuracy, precision, recall, F1 and the confusion matrix (course 3).

Metrics take NumPy arrays or Tensors and return Python numbers (the confusion matrix: an
integer array). Labels and predictions may each be given as
- class indices, shape (m,) or (m, 1), integer or whole-number floats;
- binary probabilities, shape (m,) or (m, 1), floats in [0, 1]: class 1 where p > threshold
  (0.5 by default, as in the course's ``predict``: A > 0.5); for logits pass threshold=0.0
  (sigmoid(z) > 0.5 exactly when z > 0), otherwise values outside [0, 1] are an error;
- one-hot or probability (or logit) rows, shape (m, C) with C > 1: the class is the argmax.
Rows of several independent sigmoid outputs (multi-label) are read as one-hot rows too.

When a score's denominator is zero (no predicted positives for precision, no actual positives
for recall, neither for F1) the score is 0.0, as scikit-learn's ``zero_division=0``.
"""

from __future__ import annotations

import numpy as np

from strata.naming import lookup
from strata.tensor import Tensor

AVERAGES = ("binary", "macro")


def _as_classes(y, role: str, fn: str, threshold: float) -> np.ndarray:
    """Class indices (m,) from class indices, binary probabilities or one-hot/probability rows."""
    a = np.asarray(y.data if isinstance(y, Tensor) else y)
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
            raise ValueError(f"{fn}: {role} class indices must be >= 0, got {a.min()}")
        return a.astype(np.int64, copy=False)
    if a.dtype.kind != "f":
        raise TypeError(f"{fn}: expected numeric {role}, got dtype {a.dtype}")
    if np.isnan(a).any():
        raise ValueError(f"{fn}: {role} contain {int(np.isnan(a).sum())} NaN value(s)")
    if np.array_equal(a, np.round(a)) and (a.size == 0 or a.min() >= 0):
        return a.astype(np.int64)
    if 0 < threshold < 1 and (a.min() < 0 or a.max() > 1):
        raise ValueError(f"{fn}: {role} look like logits (values in [{a.min():g}, "
                         f"{a.max():g}]); pass probabilities in [0, 1], class indices, or "
                         f"threshold=0.0 for logits")
    return (a > threshold).astype(np.int64)


def _pair(y_true, y_pred, fn: str, threshold: float) -> tuple[np.ndarray, np.ndarray]:
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
    return float(np.mean(t == p))


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
    counts = np.bincount(t * num_classes + p, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes)


def _divide(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den, and 0.0 where den == 0 (scikit-learn's zero_division=0)."""
    out = np.zeros(np.shape(num), dtype=np.float64)
    np.divide(num, den, out=out, where=np.asarray(den) != 0)
    return out


def _scores(y_true, y_pred, average: str, fn: str, threshold: float):
    """Per-class (tp, fp, fn) counts: of class 1 for "binary", of each present class for
    "macro" (classes absent from both y_true and y_pred are left out, as scikit-learn does)."""
    if average not in AVERAGES:
        raise ValueError(f"{fn}: average must be one of {AVERAGES}, got {average!r}")
    t, p = _pair(y_true, y_pred, fn, threshold)
    cm = confusion_matrix(t, p)
    if average == "binary":
        if cm.shape[0] > 2:
            raise ValueError(f"{fn}: average='binary' needs classes 0 and 1 only, found "
                             f"classes up to {cm.shape[0] - 1}; use average='macro'")
        return cm[1, 1], cm[0, 1], cm[1, 0]
    present = (cm.sum(axis=0) + cm.sum(axis=1)) > 0
    tp = np.diag(cm)
    return tp[present], (cm.sum(axis=0) - tp)[present], (cm.sum(axis=1) - tp)[present]


def precision(y_true, y_pred, average: str = "binary", threshold: float = 0.5) -> float:
    """tp / (tp + fp): of the predicted positives, the fraction truly positive (0.0 if none)."""
    tp, fp, _ = _scores(y_true, y_pred, average, "precision", threshold)
    return float(np.mean(_divide(tp, tp + fp)))


def recall(y_true, y_pred, average: str = "binary", threshold: float = 0.5) -> float:
    """tp / (tp + fn): of the actual positives, the fraction predicted positive (0.0 if none)."""
    tp, _, fn = _scores(y_true, y_pred, average, "recall", threshold)
    return float(np.mean(_divide(tp, tp + fn)))


def f1_score(y_true, y_pred, average: str = "binary", threshold: float = 0.5) -> float:
    """2 P R / (P + R) = 2tp / (2tp + fp + fn), the harmonic mean; "macro" averages per class."""
    tp, fp, fn = _scores(y_true, y_pred, average, "f1_score", threshold)
    return float(np.mean(_divide(2 * tp, 2 * tp + fp + fn)))


METRICS = {"accuracy": accuracy, "precision": precision, "recall": recall, "f1": f1_score,
           "f1_score": f1_score}


def get_metric(name):
    """The metric called ``name`` (see ``METRICS``); a callable is returned unchanged."""
    return lookup(METRICS, name, "metric")
