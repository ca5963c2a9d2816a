"""What every loss checks before its work: predictions, labels, per-example weights, and whether
the predictions can be fused with the sigmoid/softmax that made them."""

from __future__ import annotations

import numpy as np

from strata import backend
from strata.autograd import ShapeError
from strata.ops.activation import produced_by
from strata.ops.common import lift
from strata.tensor import Tensor

#: Probabilities are clipped to [EPSILON, 1 - EPSILON] before log (Keras's epsilon), so log(0)
#: never happens; clipped entries get zero gradient, like any clip.
EPSILON = 1e-7


class NonFiniteError(ValueError, FloatingPointError):
    """NaN predictions or labels: a ValueError, and a FloatingPointError like a diverged cost."""


def _prediction(y_pred, name: str) -> Tensor:
    y_pred = lift(y_pred)
    if not np.issubdtype(y_pred.dtype, np.floating):
        raise TypeError(f"{name}: expected floating predictions, got dtype {y_pred.dtype}")
    if y_pred.size == 0:
        raise ValueError(f"{name}: got an empty batch of predictions, shape {y_pred.shape}")
    return y_pred


def _as_array(value, xp):
    """``value`` (an array, a Tensor, a list) as an array of the module ``xp``, the
    predictions': labels and weights given on another device are copied there explicitly."""
    a = value.data if isinstance(value, Tensor) else value
    if type(a) is not np.ndarray and backend.array_module(a) is np:
        a = np.asarray(a)  # a list, a number, a NumPy scalar
    return backend.to_device(a, xp)


def _label_array(y_true, y_pred: Tensor, name: str, dtype=None):
    """Labels as a raw array of the predictions' shape (and dtype, unless ``dtype`` is given),
    on the predictions' device."""
    y = _as_array(y_true, backend.array_module(y_pred.data))
    if y.shape != y_pred.shape:
        hint = "; reshape the labels to (m, 1)" if y_pred.shape == y.shape + (1,) else ""
        raise ShapeError(f"{name}: predictions have shape {y_pred.shape} but labels have shape "
                         f"{y.shape}; expected equal shapes{hint}")
    return y.astype(dtype or y_pred.dtype, copy=False)


def _check_unit_interval(y, name: str, allowed: str = "") -> None:
    if y.size and not (y.min() >= 0 and y.max() <= 1):  # NaN fails both comparisons
        found = ("NaN" if backend.array_module(y).isnan(y).any() else
                 f"values in [{float(y.min()):g}, {float(y.max()):g}]")
        sentinel = "NaN" in found or (y == -1).any()
        hint = ("; mark missing labels with NaN or -1 and use masked_binary_crossentropy"
                if sentinel and not allowed else "")
        raise ValueError(f"{name}: labels must lie in [0, 1]{allowed}, got {found}{hint}")


def _check_classes(A: Tensor, name: str) -> None:
    if A.shape[-1] == 1:
        raise ValueError(f"{name}: the predictions have a single class (shape {A.shape}), so the "
                         f"loss is 0 whatever they are; use binary_crossentropy with a sigmoid "
                         f"output for two classes")


def _sample_weights(sample_weight, batch_shape: tuple, dtype, name: str, xp=np):
    """Keras's ``sample_weight``: one finite weight >= 0 per example, (m,) or (m, 1), checked
    against ``batch_shape`` (the predictions' shape without the class axis, m first) and
    returned as an (m,) array of the predictions' dtype, of the array module ``xp`` (theirs)."""
    if not batch_shape:
        raise ValueError(f"{name}: sample_weight needs batch-first predictions, with one row per "
                         f"example; got predictions without a batch axis")
    m = batch_shape[0]
    expected = f"{name}: expected sample_weight of shape ({m},) (one finite weight >= 0 per " \
               f"example)"
    try:
        w = _as_array(sample_weight, xp)
    except (TypeError, ValueError) as e:  # ragged lists and other objects NumPy cannot stack
        raise ValueError(f"{expected}, got {type(sample_weight).__name__} ({e})") from None
    if w.dtype.kind not in "biuf":
        raise ValueError(f"{expected}, got dtype {w.dtype} (numbers expected)")
    if w.shape not in ((m,), (m, 1)):
        raise ValueError(f"{expected}, got shape {w.shape}")
    w = w.reshape(m)
    if w.dtype.kind == "f" and not xp.isfinite(w).all():
        bad = w[~xp.isfinite(w)]
        raise ValueError(f"{expected}, got {bad.size} non-finite value(s) (e.g. "
                         f"{float(bad[0])})")
    if w.dtype.kind in "if" and (w < 0).any():
        bad = w[w < 0]
        raise ValueError(f"{expected}, got {bad.size} negative value(s) (e.g. "
                         f"{float(bad[0]):g})")
    return w.astype(dtype, copy=False)


def _per_example(w, ndim: int):
    """Weights (m,) shaped to broadcast over the other ``ndim - 1`` axes of an (m, ...) array."""
    return w.reshape(w.shape + (1,) * (ndim - 1))


def _checked(loss: Tensor, y_pred: Tensor, name: str, y_true: Tensor | None = None) -> Tensor:
    """Raise when the loss is NaN because the predictions (or labels) are: checked after the
    forward pass so that valid batches pay no extra pass over the predictions (on a device,
    reading the one flag back to the host is the only transfer)."""
    xp = backend.array_module(loss.data)
    if not xp.isnan(loss.data):
        return loss
    if xp.isnan(y_pred.data).any():
        count = int(xp.isnan(y_pred.data).sum())
        raise NonFiniteError(f"{name}: predictions contain {count} NaN value(s) out of "
                             f"{y_pred.size}; training has probably diverged (lower the "
                             f"learning rate, or check the inputs)")
    if y_true is not None and xp.isnan(y_true.data).any():
        raise NonFiniteError(f"{name}: labels contain {int(xp.isnan(y_true.data).sum())} NaN "
                             f"value(s) out of {y_true.size}")
    return loss


def _check_probabilities(x, name: str) -> None:
    lo, hi = x.min(), x.max()
    if lo < 0 or hi > 1:  # NaN passes here and is reported by _checked
        raise ValueError(f"{name}: expected probabilities in [0, 1] (from_logits=False, the "
                         f"default), got predictions in [{float(lo):g}, {float(hi):g}]; pass "
                         f"from_logits=True if the model outputs logits (no sigmoid/softmax on "
                         f"its last layer)")


def _fused_logits(pred: Tensor, kind: str, from_logits: bool, name: str, mask=None):
    """Z when ``pred`` is ``kind``(Z) and the loss takes probabilities (the fused path), else
    None; raises where the predictions and ``from_logits`` cannot both be right."""
    made = produced_by(pred)
    if made is None:
        if not from_logits:
            _check_probabilities(pred.data if mask is None else pred.data[mask], name)
        return None
    made_by, z = made
    if from_logits:
        raise ValueError(f"{name}: from_logits=True, but the predictions are the output of a "
                         f"{made_by} (probabilities, not logits); drop from_logits=True (the "
                         f"default from_logits=False fuses the {made_by} into the loss, "
                         f"stably), or end the model in logits (activation=None)")
    if made_by == kind:
        return z
    if made_by == "sigmoid":
        raise ValueError(f"{name}: the predictions are sigmoid outputs (one independent "
                         f"probability per class); end the model in activation='softmax' for "
                         f"{name}, or use binary_crossentropy for multi-label outputs")
    if pred.shape[-1] == 1:
        raise ValueError(f"{name}: the predictions are a softmax over a single unit, which is 1 "
                         f"whatever its input; use activation='sigmoid' for one binary output")
    return None  # softmax rows are probabilities too: Keras's clipped formula, unfused
