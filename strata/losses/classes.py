"""Keras's loss classes: a loss function with its options fixed, for ``Model.compile``."""

from __future__ import annotations

import inspect

import numpy as np

from strata.losses.crossentropy import (
    binary_crossentropy,
    categorical_crossentropy,
    masked_binary_crossentropy,
    sparse_categorical_crossentropy,
)
from strata.losses.sequence import sequence_crossentropy
from strata.tensor import Tensor


class Loss:
    """A loss with its options fixed, called as ``loss(y_pred, y_true, sample_weight=None)``, as
    Keras's loss classes: ``compile(loss=SparseCategoricalCrossentropy(from_logits=True))``."""

    fn = None  # the loss function, in each subclass
    activation = "sigmoid"  # what turns this loss's logits into its probabilities
    default_from_logits = False

    def __init__(self, from_logits: bool | None = None, **options):
        if not isinstance(from_logits, (bool, np.bool_, type(None))):
            raise TypeError(f"{type(self).__name__}: expected from_logits True or False, got "
                            f"{from_logits!r}")
        if "sample_weight" in options:
            raise TypeError(f"{type(self).__name__}: sample_weight belongs to each batch, not "
                            f"to the loss; pass it to the call, loss(y_pred, y_true, "
                            f"sample_weight=w), or to fit")
        self.from_logits = self.default_from_logits if from_logits is None else bool(from_logits)
        try:  # a misspelt option fails here, not at the first batch
            inspect.signature(self.fn).bind(None, None, from_logits=self.from_logits, **options)
        except TypeError as e:
            raise TypeError(f"{type(self).__name__}: {e}") from None
        self.options = options
        self.__name__ = self.fn.__name__

    def __call__(self, y_pred, y_true, sample_weight=None) -> Tensor:
        """The loss of the batch; ``sample_weight`` (m,) weights its examples (Keras's)."""
        if sample_weight is None:  # a subclass's own fn need not take sample_weight
            return self.fn(y_pred, y_true, from_logits=self.from_logits, **self.options)
        return self.fn(y_pred, y_true, from_logits=self.from_logits, sample_weight=sample_weight,
                       **self.options)

    @property
    def logits_activation(self) -> str | None:
        """"sigmoid"/"softmax" when this loss takes logits, else None."""
        return self.activation if self.from_logits else None

    def get_config(self) -> dict:
        """The constructor's arguments."""
        return {"from_logits": self.from_logits, **self.options}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class BinaryCrossentropy(Loss):
    """``binary_crossentropy`` with ``from_logits`` fixed (default False: probabilities)."""

    fn = staticmethod(binary_crossentropy)


class MaskedBinaryCrossentropy(Loss):
    """``masked_binary_crossentropy`` with ``from_logits`` fixed (default False)."""

    fn = staticmethod(masked_binary_crossentropy)


class CategoricalCrossentropy(Loss):
    """``categorical_crossentropy`` with ``from_logits`` fixed (default False: probabilities)."""

    fn, activation = staticmethod(categorical_crossentropy), "softmax"


class SparseCategoricalCrossentropy(Loss):
    """``sparse_categorical_crossentropy`` with ``from_logits`` fixed (default False)."""

    fn, activation = staticmethod(sparse_categorical_crossentropy), "softmax"


class SequenceCrossentropy(Loss):
    """``sequence_crossentropy`` with ``from_logits`` (default True: logits) and ``mask``-free
    options such as ``reduction="sequence"`` fixed."""

    fn, activation = staticmethod(sequence_crossentropy), "softmax"
    default_from_logits = True
