"""Course 4 week 1's "convolution model application": a small ConvNet for the SIGNS hand signs."""

from __future__ import annotations

from strata.nn.conv import Conv2D, MaxPool2D
from strata.nn.layers import Dense, Flatten
from strata.nn.sequential import Sequential


def signs_convnet(classes: int = 6, filters=(8, 16), input_shape=(64, 64, 3)) -> Sequential:
    """CONV2D 4x4 (8 filters, same) -> ReLU -> MAXPOOL 8x8 stride 8 (same) -> CONV2D 2x2
    (16 filters, same) -> ReLU -> MAXPOOL 4x4 stride 4 (same) -> FLATTEN -> DENSE(classes) logits.

    Train with loss="sparse_categorical_crossentropy". He initialization (the course used
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
        Dense(classes, kernel_initializer="glorot"),
    ])
    if input_shape is not None:
        model.build(tuple(input_shape))
    return model
