"""Sliding windows (strata.vision.sliding): the naive detector's score map, and the
convolutional implementation of a briefly trained classifier, whose output at every position
equals the naive detector's score for that window; the conversion's weights and the
classifiers it refuses."""

from __future__ import annotations

import numpy as np
import pytest

import strata
from strata import nn
from strata.autograd import ShapeError
from strata.vision.localization import LocalizationHead
from strata.vision.sliding import (
    convolutionalize,
    sliding_windows,
    window_corners,
    window_stride,
)

WINDOW = 16


class Stats(nn.Module):
    """A stand-in classifier: each crop's per-channel mean and its top-left pixel."""

    def forward(self, x):
        x = np.asarray(x)
        return np.concatenate([x.mean(axis=(1, 2)), x[:, 0, 0]], axis=1)


def window_data(m, seed):
    """m windows 16x16x3 of noise; class 1 / 2 hold a bright red / green 8x8 square (class 0
    none)."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(0, 0.2, (m, WINDOW, WINDOW, 3)).astype(np.float32)
    y = rng.integers(0, 3, m)
    for i in np.flatnonzero(y):
        r, c = rng.integers(2, 7, 2)
        X[i, r:r + 8, c:c + 8, y[i] - 1] = 1
    return X, y


def trained(layers, epochs=3):
    """``layers`` trained briefly (Adam) on generated 16x16 windows."""
    strata.seed(0)
    model = nn.Sequential(layers)
    X, y = window_data(300, seed=1)
    model.compile("adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(X, y, epochs=epochs, batch_size=32, verbose=0)
    return model


def classifier(epochs=3):
    # 16 -> conv 3 -> 14 -> pool 2 -> 7 -> conv 2 -> 6 -> pool 2 -> 3x3x16: total stride 4
    return trained([nn.Conv2D(8, 3, activation="relu", kernel_initializer="he"),
                    nn.MaxPool2D(2), nn.Conv2D(16, 2, activation="relu", kernel_initializer="he"),
                    nn.MaxPool2D(2), nn.Flatten(), nn.Dense(32, "relu"), nn.Dropout(0.8),
                    nn.Dense(3, "softmax")], epochs)


@pytest.fixture(scope="module")
def model():
    return classifier()


def scene(seed, shape=(2, 44, 52, 3)):
    """Larger images: noise with a few bright squares."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 0.2, shape).astype(np.float32)
    for _ in range(4):
        i, r, c, ch = rng.integers(0, shape[0]), rng.integers(0, shape[1] - 8), \
            rng.integers(0, shape[2] - 8), rng.integers(0, 2)
        x[i, r:r + 8, c:c + 8, ch] = 1
    return x


# ---- the naive detector ----

def test_naive_detector_scores_every_crop():
    image = np.random.default_rng(0).random((11, 14, 2))
    scores = sliding_windows(Stats(), image, (4, 5), (3, 2), batch_size=4)
    assert scores.shape == ((11 - 4) // 3 + 1, (14 - 5) // 2 + 1, 4)
    for i in range(scores.shape[0]):
        for j in range(scores.shape[1]):
            crop = image[3 * i:3 * i + 4, 2 * j:2 * j + 5]
            np.testing.assert_allclose(scores[i, j], [*crop.mean(axis=(0, 1)), *crop[0, 0]])
    batch = sliding_windows(Stats(), np.stack([image, image[::-1]]), (4, 5), (3, 2))
    np.testing.assert_array_equal(batch[0], scores)
    assert batch.shape == (2, *scores.shape)


def test_window_corners():
    corners = window_corners(3, 4, (16, 8), 4)
    assert corners.shape == (3, 4, 4)
    assert corners[2, 1].tolist() == [4, 8, 12, 24]  # x1, y1, x2, y2 of row 2, column 1


@pytest.mark.parametrize("images, window, stride, match", [
    (np.zeros((8, 8, 3), np.float32), 9, 1, "at least as large as the window"),
    (np.zeros((8, 8), np.float32), 2, 1, "expected floating images"),
    (np.zeros((8, 8, 3), np.int64), 2, 1, "expected floating images"),
    (np.zeros((8, 8, 3), np.float32), 2, 0, "stride to be a positive int"),
    (np.zeros((8, 8, 3), np.float32), (2, 2, 2), 1, "window to be a positive int or a pair"),
])
def test_naive_detector_rejects_bad_input(images, window, stride, match):
    with pytest.raises((ValueError, ShapeError), match=match):
        sliding_windows(Stats(), images, window, stride)


# ---- the convolutional implementation ----

def test_convolutional_output_equals_the_naive_detector(model):
    X, y = window_data(100, seed=2)
    assert model.evaluate(X, y)["accuracy"] > 0.9  # a real classifier, briefly trained
    conv = convolutionalize(model)
    stride = window_stride(model)
    assert stride == 4
    images = scene(3)
    naive = sliding_windows(model, images, WINDOW, stride)
    fast = conv.predict(images)
    assert fast.shape == naive.shape == (2, (44 - 16) // 4 + 1, (52 - 16) // 4 + 1, 3)
    np.testing.assert_allclose(fast, naive, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(fast.sum(axis=-1), 1, rtol=1e-5)  # softmax over the channels
    assert naive.argmax(-1).min() != naive.argmax(-1).max()  # the map is not all one class
    # on a window-sized input the two networks are one and the same
    np.testing.assert_allclose(conv.predict(X)[:, 0, 0], model.predict(X), rtol=1e-5, atol=1e-6)


def test_dense_weights_become_kernels_in_nhwc_flatten_order(model):
    conv = convolutionalize(model)
    first, second = model.layers[5], model.layers[7]
    assert [type(layer).__name__ for layer in conv.layers] == [
        "Conv2D", "MaxPool2D", "Conv2D", "MaxPool2D", "Conv2D", "Dropout", "Conv2D"]
    kernel = conv.layers[4].W.data
    assert kernel.shape == (3, 3, 16, 32) and conv.layers[6].W.shape == (1, 1, 32, 3)
    # Flatten's row (i * w + j) * c + k is the kernel's [i, j, k]
    np.testing.assert_array_equal(kernel[1, 2, 5], first.W.data[(1 * 3 + 2) * 16 + 5])
    np.testing.assert_array_equal(conv.layers[6].W.data[0, 0], second.W.data)
    assert conv.layers[6].config["activation"] == "softmax"
    conv.layers[0].W.data[...] = 0  # a copy: the classifier keeps its weights
    assert np.abs(model.layers[0].W.data).sum() > 0


def test_batch_norm_and_activation_layers_convert():
    model = trained([nn.Conv2D(8, 3), nn.BatchNorm(), nn.Activation("relu"), nn.MaxPool2D(2),
                     nn.Flatten(), nn.Dense(16), nn.BatchNorm(), nn.Activation("tanh"),
                     nn.Dense(3), nn.Activation("softmax")], epochs=1)
    images = scene(4, (1, 30, 26, 3))
    stride = window_stride(model)
    np.testing.assert_allclose(convolutionalize(model).predict(images),
                               sliding_windows(model, images, WINDOW, stride),
                               rtol=1e-5, atol=1e-6)


def test_a_localization_head_scores_every_window():
    strata.seed(0)
    model = nn.Sequential([nn.Conv2D(4, 3, activation="relu"), nn.MaxPool2D(2),
                           LocalizationHead(2)])  # the head flattens its input itself
    model.build((WINDOW, WINDOW, 3))
    images = scene(5, (1, 24, 28, 3))
    np.testing.assert_allclose(convolutionalize(model).predict(images),
                               sliding_windows(model, images, WINDOW, 2), rtol=1e-5, atol=1e-6)


def test_padding_is_refused_unless_asked_for():
    strata.seed(0)
    model = nn.Sequential([nn.Conv2D(4, 3, padding="same"), nn.MaxPool2D(2), nn.Flatten(),
                           nn.Dense(3, "softmax")])
    model.build((8, 8, 3))
    with pytest.raises(ValueError, match=r"layers \[0\] pad their input"):
        convolutionalize(model)
    conv = convolutionalize(model, exact=False)  # the same network on windows of 8x8
    x = np.random.default_rng(0).random((2, 8, 8, 3), dtype=np.float32)
    np.testing.assert_allclose(conv.predict(x)[:, 0, 0], model.predict(x), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("layers, input_shape, match", [
    ([nn.Conv2D(4, 3), nn.MaxPool2D(2)], (8, 8, 3), "no Flatten layer"),
    ([nn.Conv2D(4, 3), nn.Dense(3)], (8, 8, 3), r"layer 1 \(Dense\) comes before Flatten"),
    ([nn.Conv2D(4, 3), nn.GlobalAveragePooling2D(), nn.Dense(3)], (8, 8, 3),
     r"layer 1 \(GlobalAveragePooling2D\) comes before Flatten"),
    ([nn.Conv2D(4, 3), nn.Flatten(), nn.Dense(3)], (8, 10, 3), "feature map .* is 6x8"),
    ([nn.Conv2D(4, 3), nn.Flatten(), nn.Activation("softmax"), nn.Dense(3)], (8, 8, 3),
     "no softmax before one"),
])
def test_unconvertible_classifiers_are_refused(layers, input_shape, match):
    model = nn.Sequential(layers)
    model.build(input_shape)
    with pytest.raises(ValueError, match=match):
        convolutionalize(model)


def test_convolutionalize_needs_a_built_sequential():
    with pytest.raises(ValueError, match="input_shape"):
        convolutionalize(nn.Sequential([nn.Conv2D(4, 3), nn.Flatten(), nn.Dense(3)]))
    with pytest.raises(TypeError, match="expected a Sequential classifier"):
        convolutionalize(nn.Dense(3))


def test_convolutional_model_saves_and_loads(model, tmp_path):
    conv = convolutionalize(model)
    strata.save_model(conv, tmp_path / "conv.safetensors")
    images = scene(6, (1, 24, 20, 3))
    np.testing.assert_array_equal(strata.load_model(tmp_path / "conv.safetensors").predict(images),
                                  conv.predict(images))
