"""Classification with localization and landmark detection (strata.vision.localization): the
target vector's layout, the losses' values, float64 gradient checks and PyTorch oracles, the
checks that raise, and two ConvNets trained on generated images (squares of three colours) that
learn to localize and classify them, and to find their corners."""

from __future__ import annotations

import numpy as np
import pytest

import strata
from strata import nn
from strata.autograd import ShapeError
from strata.vision.landmarks import (
    LandmarkHead,
    LandmarkLoss,
    decode_landmarks,
    landmark_loss,
    landmark_target,
    normalized_mean_distance,
)
from strata.vision.localization import (
    LocalizationHead,
    LocalizationLoss,
    decode_localization,
    localization_loss,
    localization_target,
)

TORCH_MISSING = "torch not installed: PyTorch comparisons skipped (pip install torch==2.13.0)"
COLOURS = np.array([[1.0, 0.2, 0.2], [0.2, 1.0, 0.2], [0.2, 0.2, 1.0]])

_rng = np.random.default_rng(3)
M, N = 7, 3
Z = _rng.standard_normal((M, 5 + N))
CLASSES = np.array([0, -1, 2, 1, -1, 0, 2])
_corners = _rng.uniform(0, 20, (M, 2))
BOXES = np.concatenate([_corners, _corners + _rng.uniform(4, 12, (M, 2))], axis=1)
Y = localization_target(BOXES, CLASSES, (32, 48), N)
Y[1, 1:] = np.nan  # "don't care" where p_c = 0
WEIGHTS = np.array([1.0, 2.0, 0.5, 0.0, 1.0, 3.0, 1.0])
K = 4
LANDMARKS = _rng.random((M, 2 * K))
LANDMARKS[0, 2:4] = np.nan  # landmark 2 of example 0 is not visible
VISIBILITY = np.ones((M, K))
VISIBILITY[3, 0] = VISIBILITY[5, 3] = 0


def squares(m, seed, size=32, empty=0.2):
    """m images (size, size, 3) of dark noise, each with one bright square (side 8 to 18) of
    one of three colours, the class, at a random place; a fraction ``empty`` has none (class
    -1). Returns the images, the squares' corner boxes (x1, y1, x2, y2) and the classes."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(0, 0.15, (m, size, size, 3))
    classes = rng.integers(0, 3, m)
    classes[rng.random(m) < empty] = -1
    boxes = np.full((m, 4), np.nan)
    for i in np.flatnonzero(classes >= 0):
        s = rng.integers(8, 19)
        x, y = rng.integers(0, size - s + 1, 2)
        X[i, y:y + s, x:x + s] = COLOURS[classes[i]] * rng.uniform(0.7, 1.0)
        boxes[i] = (x, y, x + s, y + s)
    return X.astype(np.float32), boxes, classes


def iou(a, b):
    """Intersection over union of corner boxes, row by row."""
    w = np.clip(np.minimum(a[:, 2], b[:, 2]) - np.maximum(a[:, 0], b[:, 0]), 0, None)
    h = np.clip(np.minimum(a[:, 3], b[:, 3]) - np.maximum(a[:, 1], b[:, 1]), 0, None)
    area = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1]) + (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return w * h / (area - w * h)


def convnet(head):
    he = {"kernel_initializer": "he"}
    return nn.Sequential([
        nn.Conv2D(8, 3, padding="same", activation="relu", **he), nn.AvgPool2D(2),
        nn.Conv2D(16, 3, padding="same", activation="relu", **he), nn.AvgPool2D(2),
        nn.Flatten(), nn.Dense(128, "relu", **he), head])


# ---- the target vector and decoding ----

def test_target_vector_keeps_the_course_order():
    y = localization_target([[8, 4, 24, 12]], [2], (16, 32, 3), 3)
    # p_c, b_x = 16/32, b_y = 8/16, b_h = 8/16, b_w = 16/32, then one-hot c_1..c_3
    np.testing.assert_allclose(y, [[1, 0.5, 0.5, 0.5, 0.5, 0, 0, 1]])
    empty = localization_target([[np.nan] * 4], [-1], (16, 32), 3)
    np.testing.assert_array_equal(empty, np.zeros((1, 8)))


def test_decode_inverts_the_target():
    logits = Y.copy()
    logits[:, 0] = np.where(CLASSES >= 0, 30.0, -30.0)
    logits[:, 5:] *= 20
    logits[1, 1:] = 0
    out = decode_localization(logits, (32, 48, 3))
    present = CLASSES >= 0
    np.testing.assert_allclose(out.boxes[present], BOXES[present], atol=1e-9)
    np.testing.assert_array_equal(out.classes[present], CLASSES[present])
    np.testing.assert_array_equal(out.p_c > 0.5, present)
    np.testing.assert_allclose(out.class_probabilities.sum(axis=1), 1)


def test_decode_clips_boxes_and_ignores_negative_sizes():
    out = decode_localization(np.array([[0.0, 0.9, 0.5, -0.2, 0.6, 1.0]]), (10, 20))
    np.testing.assert_allclose(out.boxes, [[12.0, 5.0, 20.0, 5.0]])
    assert out.p_c[0] == 0.5 and out.classes[0] == 0


# ---- the localization loss ----

def _by_hand(z, y, box_weight=1.0, class_weight=1.0, w=None):
    w = np.ones(len(z)) if w is None else w
    p_c = y[:, 0]
    s = 1 / (1 + np.exp(-z[:, 0]))
    bce = -(p_c * np.log(s) + (1 - p_c) * np.log(1 - s))
    box = np.nan_to_num(((z[:, 1:5] - y[:, 1:5]) ** 2).sum(axis=1))
    log_p = z[:, 5:] - np.log(np.exp(z[:, 5:]).sum(axis=1, keepdims=True))
    ce = -np.nan_to_num(y[:, 5:] * log_p).sum(axis=1)
    return (w * (bce + p_c * (box_weight * box + class_weight * ce))).mean()


def test_localization_loss_value():
    assert localization_loss(Z, Y).item() == pytest.approx(_by_hand(Z, Y), rel=1e-12)
    got = localization_loss(Z, Y, box_weight=5, class_weight=0.5, sample_weight=WEIGHTS).item()
    assert got == pytest.approx(_by_hand(Z, Y, 5, 0.5, WEIGHTS), rel=1e-12)


def test_images_without_an_object_train_only_p_c():
    z = strata.Tensor(Z.copy(), requires_grad=True)
    wild = Z.copy()
    wild[1, 1:] = [np.inf, -np.inf, 1e30, 0, 0, 0, np.inf]  # anything where p_c = 0
    loss = localization_loss(z, Y)
    loss.backward()
    assert np.all(z.grad[[1, 4], 1:] == 0) and np.all(z.grad[[1, 4], 0] != 0)
    with np.errstate(invalid="ignore", over="ignore"):
        assert localization_loss(wild, Y).item() == pytest.approx(loss.item(), rel=1e-12)


def test_localization_loss_gradient_check():
    def fn(z):
        return localization_loss(z, Y, box_weight=2.0, class_weight=0.7, sample_weight=WEIGHTS)

    assert max(strata.gradcheck(fn, Z)) < 1e-7
    assert max(strata.gradcheck(lambda z: localization_loss(z, Y), Z * 10)) < 1e-7


def test_localization_loss_matches_torch():
    torch = pytest.importorskip("torch", reason=TORCH_MISSING)
    F = torch.nn.functional
    z = strata.Tensor(Z.copy(), requires_grad=True)
    loss = localization_loss(z, Y, box_weight=3.0, sample_weight=WEIGHTS)
    loss.backward()
    tz = torch.tensor(Z, requires_grad=True)
    y, w = torch.tensor(np.nan_to_num(Y)), torch.tensor(WEIGHTS)
    p_c = y[:, 0]
    bce = F.binary_cross_entropy_with_logits(tz[:, 0], p_c, reduction="none")
    box = ((tz[:, 1:5] - y[:, 1:5]) ** 2).sum(dim=1)
    ce = F.cross_entropy(tz[:, 5:], y[:, 5:], reduction="none")  # one-hot targets
    expected = (w * (bce + p_c * (3.0 * box + ce))).mean()
    expected.backward()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-12)
    np.testing.assert_allclose(z.grad, tz.grad.numpy(), rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("pred, labels, kwargs, error, match", [
    (Z[:, :5], Y[:, :5], {}, ShapeError, r"\(m, 5 \+ n_classes\)"),
    (Z, Y[:, :-1], {}, ShapeError, "labels have shape"),
    (Z, np.where(np.arange(8) == 0, 2.0, Y), {}, ValueError, r"p_c labels .* in \[0, 1\]"),
    (Z, np.where(np.arange(8) == 2, np.nan, Y), {}, ValueError, "must be finite"),
    (Z, Y, {"box_weight": -1}, ValueError, "box_weight to be a finite number >= 0"),
    (Z, Y, {"sample_weight": [1.0]}, ValueError, r"sample_weight of shape \(7,\)"),
    (np.where(np.arange(8) == 3, np.nan, Z), Y, {}, FloatingPointError, "NaN"),
])
def test_localization_loss_rejects_bad_input(pred, labels, kwargs, error, match):
    with pytest.raises(error, match=match):
        localization_loss(pred, labels, **kwargs)


def test_activated_outputs_are_refused():
    with pytest.raises(ValueError, match="raw .* outputs of a LocalizationHead"):
        localization_loss(strata.sigmoid(strata.Tensor(Z)), Y)
    with pytest.raises(ValueError, match="LandmarkHead, got the output of a softmax"):
        landmark_loss(strata.softmax(strata.Tensor(LANDMARKS * 0)), LANDMARKS)


def test_heads_flatten_and_have_the_right_widths():
    x = np.zeros((2, 4, 4, 3), np.float32)
    assert LocalizationHead(3)(x).shape == (2, 8) and LandmarkHead(5)(x).shape == (2, 10)
    assert LocalizationHead(2).get_config() == {"n_classes": 2, "l2": None, "l1": None,
                                                "kernel_initializer": "glorot"}
    with pytest.raises(ValueError, match="n_classes to be a positive int, got 0"):
        LocalizationHead(0)


def test_model_with_a_head_saves_and_loads(tmp_path):
    model = convnet(LocalizationHead(3))
    model.build((16, 16, 3))
    x = np.random.default_rng(0).random((2, 16, 16, 3), dtype=np.float32)
    strata.save_model(model, tmp_path / "m.safetensors")
    loaded = strata.load_model(tmp_path / "m.safetensors")
    assert isinstance(loaded.layers[-1], LocalizationHead)
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))


# ---- landmarks ----

def test_landmark_loss_is_mse_over_visible_landmarks():
    pred = _rng.random((M, 2 * K))
    full = np.nan_to_num(LANDMARKS, nan=0.3)
    assert landmark_loss(pred, full).item() == pytest.approx(((pred - full) ** 2).mean())
    visible = np.repeat(~np.isnan(LANDMARKS).reshape(M, K, 2).any(2) & (VISIBILITY > 0), 2, 1)
    expected = ((pred - full) ** 2)[visible].mean()
    got = landmark_loss(pred, LANDMARKS, visibility=VISIBILITY).item()
    assert got == pytest.approx(expected, rel=1e-12)
    z = strata.Tensor(pred, requires_grad=True)
    landmark_loss(z, LANDMARKS, visibility=VISIBILITY).backward()
    assert np.all(z.grad[~visible] == 0) and np.all(z.grad[visible] != 0)


def test_landmark_loss_gradient_check():
    def fn(z):
        return landmark_loss(z, LANDMARKS, visibility=VISIBILITY, sample_weight=WEIGHTS)

    assert max(strata.gradcheck(fn, _rng.standard_normal((M, 2 * K)))) < 1e-7


def test_landmark_loss_matches_torch():
    torch = pytest.importorskip("torch", reason=TORCH_MISSING)
    pred = _rng.standard_normal((M, 2 * K))
    z = strata.Tensor(pred.copy(), requires_grad=True)
    loss = landmark_loss(z, LANDMARKS, visibility=VISIBILITY, sample_weight=WEIGHTS)
    loss.backward()
    visible = np.repeat(~np.isnan(LANDMARKS).reshape(M, K, 2).any(2) & (VISIBILITY > 0), 2, 1)
    tz = torch.tensor(pred, requires_grad=True)
    mask = torch.tensor(visible)
    weighted = torch.tensor(WEIGHTS)[:, None] * (tz - torch.tensor(np.nan_to_num(LANDMARKS))) ** 2
    expected = torch.where(mask, weighted, 0.0).sum() / mask.sum()
    expected.backward()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-12)
    np.testing.assert_allclose(z.grad, tz.grad.numpy(), rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("pred, labels, kwargs, match", [
    (LANDMARKS[:, :3], LANDMARKS[:, :3], {}, r"\(m, 2k\)"),
    (LANDMARKS, LANDMARKS, {"visibility": np.ones((M, K + 1))}, r"visibility \(m, k\)"),
    (LANDMARKS, np.full_like(LANDMARKS, np.nan), {}, "no visible landmark"),
    (LANDMARKS, np.where(LANDMARKS > 0.5, np.inf, 0), {}, "must be finite"),
])
def test_landmark_loss_rejects_bad_input(pred, labels, kwargs, match):
    with pytest.raises((ValueError, ShapeError), match=match):
        landmark_loss(np.nan_to_num(pred), labels, **kwargs)


def test_landmark_coordinates_round_trip():
    points = _rng.uniform(0, 30, (M, K, 2))
    points[0, 1] = np.nan
    y = landmark_target(points, (30, 60, 3))
    assert y.shape == (M, 2 * K) and y[1, 0] == points[1, 0, 0] / 60
    np.testing.assert_allclose(decode_landmarks(y, (30, 60)), points)


def test_normalized_mean_distance():
    true = np.array([[[0.0, 0.0], [10.0, 0.0]], [[0.0, 0.0], [np.nan, np.nan]]])
    pred = np.array([[[3.0, 4.0], [10.0, 0.0]], [[0.0, 6.0], [99.0, 99.0]]])
    # distances 5, 0 (size 10) and 6 (size 20); the invisible landmark does not count
    assert normalized_mean_distance(pred, true, [10.0, 20.0]) == pytest.approx((0.5 + 0 + 0.3) / 3)
    assert normalized_mean_distance(pred.reshape(2, 4), true.reshape(2, 4), 10.0) == \
        pytest.approx((0.5 + 0 + 0.6) / 3)
    pred[0, 0, 0] = np.nan
    assert np.isnan(normalized_mean_distance(pred, true, 10.0))  # never silently dropped
    with pytest.raises(ValueError, match="object_size > 0"):
        normalized_mean_distance(pred, true, [1.0, 0.0])


# ---- training ----

def test_convnet_learns_to_localize_and_classify():
    strata.seed(0)
    X, boxes, classes = squares(1500, seed=1)
    X_test, boxes_test, classes_test = squares(300, seed=2)
    model = convnet(LocalizationHead(3))
    model.compile("adam", loss=LocalizationLoss(box_weight=5.0), lr=0.003)
    schedule = nn.LearningRateScheduler(lambda epoch: 0.003 * 0.8 ** epoch)
    Y = localization_target(boxes, classes, X.shape[1:], 3)
    Y[classes < 0, 1:] = np.nan  # the course's "?": fit takes them, the loss ignores them
    model.fit(X, Y, epochs=12, batch_size=16, verbose=0, callbacks=[schedule])
    out = decode_localization(model.predict(X_test), X_test.shape[1:])
    present = classes_test >= 0
    assert iou(out.boxes[present], boxes_test[present]).mean() > 0.7
    assert (out.classes[present] == classes_test[present]).mean() > 0.95
    assert ((out.p_c > 0.5) == present).mean() > 0.95


def test_convnet_learns_landmarks_with_hidden_ones():
    strata.seed(0)
    X, boxes, _ = squares(1500, seed=3, empty=0)
    X_test, boxes_test, _ = squares(300, seed=4, empty=0)

    def corners(b):  # top-left, top-right, bottom-right, bottom-left: (m, 4, 2)
        return np.stack([b[:, [0, 1]], b[:, [2, 1]], b[:, [2, 3]], b[:, [0, 3]]], axis=1)

    Y = landmark_target(corners(boxes), X.shape[1:])
    rng = np.random.default_rng(5)
    hidden = np.flatnonzero(rng.random(len(Y)) < 0.25)  # one corner unlabelled in a quarter
    Y[hidden[:, None], 2 * rng.integers(0, 4, len(hidden))[:, None] + [0, 1]] = np.nan
    model = convnet(LandmarkHead(4))
    model.compile("adam", loss=LandmarkLoss(), lr=0.003)
    model.fit(X, Y, epochs=10, batch_size=16, verbose=0,
              callbacks=[nn.LearningRateScheduler(lambda epoch: 0.003 * 0.8 ** epoch)])
    points = decode_landmarks(model.predict(X_test), X_test.shape[1:])
    diagonal = np.hypot(boxes_test[:, 2] - boxes_test[:, 0], boxes_test[:, 3] - boxes_test[:, 1])
    assert normalized_mean_distance(points, corners(boxes_test), diagonal) < 0.1
