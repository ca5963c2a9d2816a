"""LeNet-5 (LeCun et al., 1998), the first of course 4 week 2's classic networks."""

from __future__ import annotations

from strata.models.arithmetic import classifier, with_input_shape
from strata.nn import AvgPool2D, Conv2D, Dense, Flatten, MaxPool2D, Sequential


def lenet5(variant: str = "classic", input_shape=(32, 32, 1), classes: int = 10,
           classifier_activation="softmax") -> Sequential:
    """LeNet-5: conv 5x5 6 filters (valid) -> pool 2 -> conv 5x5 16 (valid) -> pool 2 ->
    Flatten (400) -> Dense 120 -> Dense 84 -> Dense ``classes`` with ``classifier_activation``
    (softmax probabilities for sparse_categorical_crossentropy or categorical_crossentropy, as
    Keras; None for logits, to train with ``from_logits=True``).

    ``variant="classic"``: tanh and average pooling, as LeCun's (every C3 map sees all six S2
    maps here, and the output is a plain dense layer rather than RBF units). ``"modern"``: ReLU
    and max pooling. Both have 61,706 parameters at 32x32x1 (156 + 2,416 + 48,120 + 10,164 +
    850). Parameters are created on the first call (or ``build``/``summary``).

    >>> from strata.models import count_parameters
    >>> count_parameters(lenet5(), (32, 32, 1))
    ParameterCount(output_shape=(10,), trainable=61706, non_trainable=0)
    """
    if variant not in ("classic", "modern"):
        raise ValueError(f"lenet5: expected variant 'classic' or 'modern', got {variant!r}")
    act, Pool = ("tanh", AvgPool2D) if variant == "classic" else ("relu", MaxPool2D)
    init = "glorot" if variant == "classic" else "he"
    return with_input_shape(Sequential([
        Conv2D(6, 5, activation=act, kernel_initializer=init), Pool(2),
        Conv2D(16, 5, activation=act, kernel_initializer=init), Pool(2),
        Flatten(), Dense(120, act, kernel_initializer=init),
        Dense(84, act, kernel_initializer=init),
        classifier(classes, classifier_activation, "lenet5")]), input_shape)
