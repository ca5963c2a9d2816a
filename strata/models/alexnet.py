"""AlexNet (Krizhevsky, Sutskever and Hinton, 2012), as course 4 week 2 draws it."""

from __future__ import annotations

from strata.models.arithmetic import classifier, with_input_shape
from strata.nn import Conv2D, Dense, Dropout, Flatten, MaxPool2D, Sequential


def alexnet(input_shape=(227, 227, 3), classes: int = 1000,
            classifier_activation="softmax") -> Sequential:
    """AlexNet, the single-tower variant of the course (no local response normalization):

    conv 11x11/4 96 (valid) -> 55x55x96, max pool 3/2 -> 27x27x96, conv 5x5 256 same,
    max pool 3/2 -> 13x13x256, conv 3x3 384 same, conv 3x3 384 same, conv 3x3 256 same,
    max pool 3/2 -> 6x6x256, Flatten (9,216), Dense 4096, Dropout(keep_prob=0.5), Dense 4096,
    Dropout(0.5), Dense ``classes`` with ``classifier_activation`` (softmax probabilities;
    None for logits, to train with ``from_logits=True``). ReLU everywhere, He initialization.

    62,378,344 parameters at 227x227x3 with 1000 classes (3,747,200 in the convolutions,
    58,631,144 in the dense layers). Parameters are created on the first call.

    >>> from strata.models import count_parameters
    >>> count_parameters(alexnet(), (227, 227, 3)).total
    62378344
    """
    def conv(n, f, s=1, padding="same"):
        return Conv2D(n, f, s, padding, activation="relu", kernel_initializer="he")

    return with_input_shape(Sequential([
        conv(96, 11, 4, "valid"), MaxPool2D(3, 2),
        conv(256, 5), MaxPool2D(3, 2),
        conv(384, 3), conv(384, 3), conv(256, 3), MaxPool2D(3, 2),
        Flatten(), Dense(4096, "relu", kernel_initializer="he"), Dropout(0.5),
        Dense(4096, "relu", kernel_initializer="he"), Dropout(0.5),
        classifier(classes, classifier_activation, "alexnet")]), input_shape)
