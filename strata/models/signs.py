"""Course 4 week 1's "convolution model application": a small ConvNet for the SIGNS hand signs."""

from __future__ import annotations

from strata.models.arithmetic import classifier
from strata.nn.conv import Conv2D, MaxPool2D
from strata.nn.layers import Flatten
from strata.nn.sequential import Sequential


def signs_convnet(classes: int = 6, filters=(8, 16), input_shape=(64, 64, 3),
                  classifier_activation="softmax") -> Sequential:
    """CONV2D 4x4 (8 filters, same) -> ReLU -> MAXPOOL 8x8 stride 8 (same) -> CONV2D 2x2
    (16 filters, same) -> ReLU -> MAXPOOL 4x4 stride 4 (same) -> FLATTEN -> DENSE(classes) with
    ``classifier_activation`` (softmax, as the course; None for logits).

    Train with loss="sparse_categorical_crossentropy" (``from_logits=True`` for logits; see
    ``strata.losses.SparseCategoricalCrossentropy``). He initialization (the course used
    Xavier) lets Adam start fast with ReLU; ``filters`` widens the two conv layers.
    ``input_shape`` (n_H, n_W, n_C) builds the weights at once; None defers to the first batch.
    """
    f1, f2 = (int(f) for f in filters)
    model = Sequential([
        Conv2D(f1, 4, padding="same", activation="relu", kernel_initializer="he"),
        MaxPool2D(8, strides=8, padding="same"),
        Conv2D(f2, 2, padding="same", activation="relu", kernel_initializer="he"),
        MaxPool2D(4, strides=4, padding="same"),
        Flatten(),
        classifier(classes, classifier_activation, "signs_convnet", kernel_initializer="glorot"),
    ])
    if input_shape is not None:
        model.build(tuple(input_shape))
    return model


def small_convnet(classes: int = 6, filters=(16, 32, 64), pools=(2, 2, 4),
                  input_shape=(64, 64, 3), classifier_activation="softmax") -> Sequential:
    """A plain ConvNet: per block CONV2D 3x3 (same, ReLU, He init) -> MAXPOOL, then FLATTEN ->
    DENSE(classes) with ``classifier_activation`` (softmax; None for logits). With the
    defaults, 64x64x3 SIGNS images become 4x4x64 = 1024 features; trained 15 epochs with Adam
    (lr 0.002, decayed 0.93 per epoch) it scores over 90 % on the course's SIGNS test set
    (tests/test_signs.py), where the week-1 network above reaches about 78 %.

    >>> small_convnet().summary(print_fn=lambda *_: None)
    29734
    """
    if len(filters) != len(pools):
        raise ValueError(f"small_convnet: expected one pool size per conv block, got filters "
                         f"{tuple(filters)} and pools {tuple(pools)}")
    layers = []
    for f, p in zip(filters, pools, strict=True):
        layers += [Conv2D(int(f), 3, padding="same", activation="relu", kernel_initializer="he"),
                   MaxPool2D(int(p))]
    model = Sequential([*layers, Flatten(),
                        classifier(classes, classifier_activation, "small_convnet")])
    if input_shape is not None:
        model.build(tuple(input_shape))
    return model
