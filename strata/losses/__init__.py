"""Loss functions J(y_pred, y_true) -> scalar Tensor, and the course's regularization terms.

Keras's conventions: every cross-entropy takes probabilities by default (``from_logits=False``:
the output of a final sigmoid or softmax) and logits with ``from_logits=True``; the loss classes
(``SparseCategoricalCrossentropy(from_logits=True)``) fix the option for ``compile``. The one
exception is ``sequence_crossentropy``, strata's own loss for language models, which takes logits
by default (``from_logits=True``) because the text models end in logits.

Fusion: when the probabilities were made by ``strata.sigmoid`` / ``strata.softmax`` (a layer's
``activation="sigmoid"``/``"softmax"``, or ``nn.Activation``), the loss is computed from their
input Z by the stable fused form, as Keras does with its cached logits: the value is
-log softmax(z)[y] (or max(z, 0) - z y + log(1 + e^-|z|)), the gradient is the course's
dZ = (A - Y) / m, and backward never enters the sigmoid/softmax. Other probabilities use Keras's
formula: rows renormalized to sum 1 (categorical), clipped to [EPSILON, 1 - EPSILON], then log.
The two agree except where probabilities are saturated (below EPSILON or above 1 - EPSILON),
where the clipped formula stops at -log(EPSILON) = 16.1 with zero gradient and the fused one
keeps the exact value and the gradient A - Y.

A mismatch that cannot be fused raises: ``from_logits=True`` on sigmoid/softmax outputs, a
sigmoid output with a categorical loss, a one-unit softmax with a binary loss, or values outside
[0, 1] where probabilities are expected.

Predictions come first and are batch first: (m, n_y), or (m, C) with class indices (m,) for the
sparse loss. Every loss computes on the predictions' device (``backend.array_module``): labels
and weights may be NumPy arrays or lists, copied there explicitly, or arrays already there.
Labels are constants: no gradient flows into them (except in ``mean_squared_error``, where both
sides may be learned). Every loss averages over the batch, so its gradient carries the course's
1/m. Binary cross-entropy with several outputs
(multi-label, n_y > 1) averages over all m * n_y entries, as Keras and PyTorch do.

Per-example weights, Keras's ``sample_weight`` (m,) of finite numbers >= 0, keep Keras's
reduction "sum_over_batch_size": J = (1/m) sum_i w_i l_i, so weights of 1 change nothing and a
weight of 0 drops an example from the value and the gradient:

>>> import numpy as np
>>> from strata.losses import binary_crossentropy
>>> A, Y = np.array([[0.9], [0.2]]), np.array([[1.0], [1.0]])
>>> round(binary_crossentropy(A, Y).item(), 4)  # (-log 0.9 - log 0.2) / 2
0.8574
>>> round(binary_crossentropy(A, Y, sample_weight=[2.0, 0.0]).item(), 4)  # 2 (-log 0.9) / 2
0.1054

Modules: ``checks`` (input checks, EPSILON), ``crossentropy`` (binary, categorical, sparse),
``sequence``, ``regression`` (mse), ``penalties`` (L2, L1), ``classes`` (the Loss classes).
"""

from __future__ import annotations

from strata.backend import array_module
from strata.losses.checks import EPSILON, NonFiniteError
from strata.losses.classes import (
    BinaryCrossentropy,
    CategoricalCrossentropy,
    Loss,
    MaskedBinaryCrossentropy,
    SequenceCrossentropy,
    SparseCategoricalCrossentropy,
)
from strata.losses.crossentropy import (
    BinaryCrossEntropyOp,
    WeightedSoftmaxCrossEntropyOp,
    binary_crossentropy,
    binary_crossentropy_from_logits,
    categorical_crossentropy,
    masked_binary_crossentropy,
    sparse_categorical_crossentropy,
)
from strata.losses.penalties import L1Penalty, L2Penalty, l1_penalty, l2_penalty
from strata.losses.regression import mean_squared_error, mse
from strata.losses.sequence import SequenceCrossEntropyOp, sequence_crossentropy
from strata.losses.triplet import TripletLoss, triplet_loss
from strata.naming import lookup

LOSSES = {
    "binary_crossentropy": binary_crossentropy,
    "binary_crossentropy_from_logits": binary_crossentropy_from_logits,
    "categorical_crossentropy": categorical_crossentropy,
    "sparse_categorical_crossentropy": sparse_categorical_crossentropy,
    "mse": mean_squared_error,
    "mean_squared_error": mean_squared_error,
    "masked_binary_crossentropy": masked_binary_crossentropy,
    "sequence_crossentropy": sequence_crossentropy,
}

# What turns each logits-taking function's outputs into probabilities (see logits_activation).
binary_crossentropy_from_logits.logits_activation = "sigmoid"
sequence_crossentropy.logits_activation = "softmax"


def logits_activation(loss) -> str | None:
    """"sigmoid" or "softmax" when ``loss`` (a name, Loss or function) takes logits: what turns
    the model's outputs into probabilities; None when it takes probabilities."""
    return getattr(get_loss(loss), "logits_activation", None)


def to_probabilities(out, activation: str | None):
    """The model outputs ``out`` (an array of any device, computed there) as probabilities:
    stable sigmoid or softmax (last axis) of logits per ``activation`` (see
    ``logits_activation``), ``out`` itself when None."""
    xp = array_module(out)
    if activation == "sigmoid":
        e = xp.exp(-xp.abs(out))
        return xp.where(out >= 0, 1, e) / (1 + e)
    if activation == "softmax":
        e = xp.exp(out - out.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)
    return out


def get_loss(name):
    """The loss function called ``name`` (see ``LOSSES``: every name takes probabilities but
    "binary_crossentropy_from_logits" and "sequence_crossentropy"); a callable (a function or a
    ``Loss`` such as ``SparseCategoricalCrossentropy(from_logits=True)``) is returned unchanged."""
    return lookup(LOSSES, name, "loss")


__all__ = [
    "EPSILON", "NonFiniteError", "LOSSES", "get_loss", "logits_activation", "to_probabilities",
    "binary_crossentropy", "binary_crossentropy_from_logits", "masked_binary_crossentropy",
    "categorical_crossentropy", "sparse_categorical_crossentropy", "sequence_crossentropy",
    "mean_squared_error", "mse", "l2_penalty", "l1_penalty",
    "Loss", "BinaryCrossentropy", "MaskedBinaryCrossentropy", "CategoricalCrossentropy",
    "SparseCategoricalCrossentropy", "SequenceCrossentropy",
    "BinaryCrossEntropyOp", "WeightedSoftmaxCrossEntropyOp", "SequenceCrossEntropyOp",
    "L2Penalty", "L1Penalty", "triplet_loss", "TripletLoss",
]
