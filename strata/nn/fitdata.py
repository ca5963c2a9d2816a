"""What fit, evaluate and predict accept as data, checked before any work: arrays (or a tuple
of arrays for a model with several inputs), labels, per-example and per-class weights, and the
validation set; and how fit cuts them into batches, copied to the model's device."""

from __future__ import annotations

from functools import partial

import numpy as np

from strata import backend
from strata.data.batches import iterate_minibatches
from strata.tensor import Tensor


class Stack:
    """Several arrays indexed together: a model's inputs, or labels with their weights.
    ``stack[rows]`` is the tuple of each array's rows."""

    def __init__(self, arrays):
        self.arrays = tuple(arrays)

    def __len__(self) -> int:
        return len(self.arrays[0])

    def __getitem__(self, rows) -> tuple:
        return tuple(a[rows] for a in self.arrays)

    @property
    def shape(self) -> tuple:
        """One example's shape per input."""
        return tuple(a.shape[1:] for a in self.arrays)


def _real_array(a, what: str, name: str) -> np.ndarray:
    a = np.asarray(a.data if isinstance(a, Tensor) else a)
    kind = a.dtype.kind
    if kind not in "fiu":
        hint = {"b": "convert booleans with .astype(np.float32)",
                "c": "complex numbers have no order for a loss to minimize",
                "U": "map class names to integers, e.g. np.unique(y, return_inverse=True)",
                "S": "map class names to integers, e.g. np.unique(y, return_inverse=True)",
                "O": "convert it to a numeric NumPy array first"}.get(kind, "")
        raise TypeError(f"{name}: expected {what} of real numbers (float or int), got dtype "
                        f"{a.dtype}" + (f"; {hint}" if hint else ""))
    if kind == "f" and what.startswith("X") and not np.isfinite(a).all():
        raise ValueError(f"{name}: {what} contains NaN or infinite values "  # NaN labels may
                         f"({int(np.size(a) - np.isfinite(a).sum())} of {a.size})")  # be missing
    return a


def _inputs(X, name: str):
    if isinstance(X, Stack):  # already checked (validation_split's held-out part)
        return X
    if isinstance(X, (tuple, list)) and X and not np.isscalar(X[0]) and np.ndim(X[0]) >= 1 \
            and all(hasattr(x, "shape") for x in X):
        arrays = [_real_array(x, f"X[{i}]", name) for i, x in enumerate(X)]
        for i, x in enumerate(arrays):
            _check_shape(x, f"X[{i}]", name)
            if len(x) != len(arrays[0]):
                raise ValueError(f"{name}: the inputs X[0] and X[{i}] have {len(arrays[0])} and "
                                 f"{len(x)} examples; every input needs one row per example")
        return Stack(arrays)
    X = _real_array(X, "X", name)
    _check_shape(X, "X", name)
    return X


def _check_shape(X, what: str, name: str) -> None:
    if X.ndim < 2 or len(X) == 0 or 0 in X.shape[1:]:
        raise ValueError(f"{name}: expected {what} of shape (m, n_x, ...) with m >= 1 examples "
                         f"and at least one feature, got {X.shape}")


def check_data(X, Y, name: str):
    """(X, Y) checked: X an array (m, ...) or a Stack of several, Y labels with m rows."""
    X = _inputs(X, name)
    if Y is not None:
        Y = _real_array(Y, "labels Y", name)
        if len(Y) != len(X):
            raise ValueError(f"{name}: X has {len(X)} examples but Y has {len(Y)}")
    return X, Y


def check_validation(data) -> tuple:
    """validation_data as a checked (X_val, Y_val)."""
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        got = (f"a {type(data).__name__} of {len(data)}" if isinstance(data, (tuple, list))
               else type(data).__name__)
        raise ValueError(f"fit: expected validation_data=(X_val, Y_val), got {got}")
    return check_data(*data, "fit (validation_data)")


def check_count(value, name: str, minimum: int) -> int:
    """An integer (Python or NumPy) >= minimum, else a ValueError saying what it got."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"fit: expected {name} to be an integer >= {minimum}, got {value!r}"
                         f" ({type(value).__name__})")
    return int(value)


def class_indices(Y: np.ndarray) -> np.ndarray:
    """Each example's class: the index (m,), the arg max of one-hot rows (m, C), or the 0/1
    label (m, 1) rounded."""
    if Y.ndim == 2 and Y.shape[1] > 1:
        return Y.argmax(axis=1)
    return np.rint(Y.reshape(len(Y))).astype(np.int64)


def example_weights(Y, sample_weight, class_weight) -> np.ndarray | None:
    """Keras's weights per example: ``sample_weight`` (m,) times ``class_weight[class]``."""
    m = len(Y)
    weights = None
    if sample_weight is not None:
        weights = _real_array(sample_weight, "sample_weight", "fit").astype(np.float64)
        if weights.shape not in ((m,), (m, 1)) or not np.isfinite(weights).all() or (
                weights < 0).any():
            raise ValueError(f"fit: expected sample_weight of shape ({m},) with finite values "
                             f">= 0, got shape {weights.shape} with values in "
                             f"[{weights.min() if weights.size else None}, "
                             f"{weights.max() if weights.size else None}]")
        weights = weights.reshape(m)
    if class_weight is not None:
        if not isinstance(class_weight, dict):
            raise TypeError(f"fit: expected class_weight as a dict class -> weight, got "
                            f"{type(class_weight).__name__}")
        classes = class_indices(Y)
        missing = sorted(set(np.unique(classes).tolist()) - set(class_weight))
        bad = {k: v for k, v in class_weight.items() if not (
            isinstance(v, (int, float, np.number)) and np.isfinite(v) and v >= 0)}
        if missing or bad:
            raise ValueError(f"fit: class_weight needs a finite weight >= 0 for every class in "
                             f"the labels; missing {missing}, invalid {bad}")
        lookup = np.zeros(max(max(class_weight), classes.max()) + 1)
        for k, v in class_weight.items():
            lookup[int(k)] = v
        per_class = lookup[classes]
        weights = per_class if weights is None else weights * per_class
    return weights


def on_device(batch, device):
    """A batch (an array, a tuple of arrays, None) on ``device`` (None: as it is), each array
    copied there explicitly unless it is there already."""
    if device is None or batch is None:
        return batch
    if isinstance(batch, tuple):
        return tuple(on_device(a, device) for a in batch)
    return backend.to_device(batch, device)


def _moved(epoch, device, start: int = 0):
    """``epoch(start=start)``'s batches, each copied to ``device`` as the loop takes it. The
    epoch is drawn now, as fit's resuming expects, not at the first batch."""
    batches = epoch(start=start)
    return ((on_device(xb, device), on_device(yb, device)) for xb, yb in batches)


class TrainingData:
    """fit's training examples: ``epoch(start=...)`` gives an epoch's batches (xb, yb) — yb a
    (labels, weights) pair when weights are given — and ``steps`` their number;
    ``validation`` the held-out ``validation_split`` (or None). With a ``device`` (a model
    moved by ``Model.to``) the batches arrive there: a Pipeline copies them in its background
    thread, arrays are copied batch by batch."""

    def __init__(self, X, Y, batch_size, shuffle: bool, validation_split, sample_weight=None,
                 class_weight=None, device: str | None = None):
        from strata.data.pipeline import Pipeline

        if isinstance(validation_split, bool) or not isinstance(
                validation_split, (int, float, np.floating)) or not 0 <= validation_split < 1:
            raise ValueError(f"fit: expected validation_split in [0, 1), got "
                             f"{validation_split!r}")
        self.validation = None
        if isinstance(X, Pipeline):
            if Y is not None or validation_split or sample_weight is not None or class_weight:
                raise ValueError("fit: a Pipeline brings its own labels: pass Y=None, and "
                                 "validation_data=(X_val, Y_val) instead of validation_split; "
                                 "sample_weight and class_weight need arrays")
            self.epoch, self.example_shape, self.steps = X.epoch, X.X.shape[1:], len(X)
            if device is not None:
                self.epoch = partial(X.epoch, device=device)
            self.first = X.X[:1]
            return
        X, Y = check_data(X, Y, "fit")
        weights = None if Y is None else example_weights(Y, sample_weight, class_weight)
        if validation_split:
            X, Y, weights = self._hold_out(X, Y, weights, validation_split)
        size = len(X) if batch_size is None else check_count(batch_size, "batch_size", 1)
        labels = Y if weights is None else Stack([Y, weights])
        self.epoch = partial(iterate_minibatches, X, labels, size, shuffle)
        if device is not None:
            self.epoch = partial(_moved, self.epoch, device)
        self.example_shape, self.steps, self.first = X.shape[1:], -(-len(X) // size), X[:1]

    def _hold_out(self, X, Y, weights, fraction):
        cut = len(X) - int(len(X) * fraction)
        if Y is None or cut in (0, len(X)):
            raise ValueError(f"fit: validation_split={fraction} of {len(X)} examples leaves "
                             f"{len(X) - cut} for validation and {cut} for training; both need "
                             f"at least one, and labels Y")
        rows = (lambda part: Stack(X[part])) if isinstance(X, Stack) else X.__getitem__
        self.validation = (rows(slice(cut, None)), Y[cut:])
        return rows(slice(cut)), Y[:cut], None if weights is None else weights[:cut]
