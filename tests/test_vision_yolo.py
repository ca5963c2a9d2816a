"""YOLO (strata.vision.yolo, yolo_loss): target encoding, decoding and filtering, the course's
19 x 19 x 5 x 85 output with its anchors and class names (from ../shared/datasets via
STRATA_DATA; skipped without them), the loss (hand cases, gradient check, PyTorch) and
k-means anchors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import strata
from strata.data.download import data_dir
from strata.losses import NonFiniteError
from strata.vision.yolo import (
    decode,
    encode_targets,
    filter_boxes,
    from_course_boxes,
    from_course_output,
    kmeans_anchors,
    read_anchors,
    read_class_names,
)
from strata.vision.yolo_loss import YoloLoss, yolo_loss, yolo_loss_terms

SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"
ANCHORS = np.array([[1.0, 1.0], [3.0, 1.5], [1.5, 3.0]])  # grid cells: square, wide, tall


def ideal_logits(y, anchors, confidence=30.0):
    """The logits that decode exactly to encode_targets's boxes: logit(b_x), log(b_w S / p_w),
    objectness +-confidence and class logits +-confidence."""
    rows, cols = y.shape[1:3]
    t = np.zeros(y.shape)
    obj = y[..., 4] == 1
    with np.errstate(divide="ignore"):
        t[..., :2] = np.log(y[..., :2]) - np.log1p(-y[..., :2])
        t[..., 2:4] = np.log(np.where(obj[..., None], y[..., 2:4], 1) * [cols, rows] / anchors)
    t[..., 4] = np.where(obj, confidence, -confidence)
    t[..., 5:] = np.where(y[..., 5:] == 1, confidence, -confidence)
    t[~obj, :4] = 0
    return t


def test_encode_puts_each_object_in_its_midpoint_cell_and_best_anchor():
    boxes = [np.array([[40, 40, 60, 60], [30, 10, 190, 50], [10, 120, 30, 160]]),
             np.zeros((0, 4))]
    y = encode_targets(boxes, [np.array([2, 0, 1]), np.array([], int)], 4, ANCHORS, 3, 200)
    assert y.shape == (2, 4, 4, 3, 8) and y.dtype == np.float32
    assert y[1].sum() == 0 and y[..., 4].sum() == 3
    # midpoint (50, 50): cell size 50, so row 1, column 1, offsets (0, 0); 20x20 px = 0.4 cells
    np.testing.assert_allclose(y[0, 1, 1, 0], [0, 0, 0.1, 0.1, 1, 0, 0, 1])
    # midpoint (110, 30): row 0, column 2, offsets (0.2, 0.6); 3.2 x 0.8 cells: IoU 0.29 with
    # the square anchor, 0.52 with the wide one
    np.testing.assert_allclose(y[0, 0, 2, 1], [0.2, 0.6, 0.8, 0.2, 1, 1, 0, 0], rtol=1e-6)
    # midpoint (20, 140): row 2, column 0; 0.4 x 0.8 cells: IoU 0.32 with the square anchor,
    # 0.071 with the tall one: the square anchor
    np.testing.assert_allclose(y[0, 2, 0, 0], [0.4, 0.8, 0.1, 0.2, 1, 0, 1, 0], rtol=1e-6)
    tall = encode_targets([np.array([[0, 0, 40, 150]])], [np.array([0])], 4, ANCHORS, 1, 200)
    assert np.argwhere(tall[..., 4]).tolist() == [[0, 1, 0, 2]]  # 0.8 x 3 cells: the tall one


def test_encode_with_rectangular_image_and_grid():
    y = encode_targets([np.array([[300, 50, 340, 70]])], [np.array([0])], (2, 4), ANCHORS, 1,
                       (100, 400), dtype=np.float64)
    assert y.shape == (1, 2, 4, 3, 6)  # (height, width) pairs: 2 rows, 4 columns
    np.testing.assert_allclose(y[0, 1, 3, 0, :5], [0.2, 0.2, 0.1, 0.2, 1])
    edge = encode_targets([np.array([[380, 80, 400, 100]])], [np.array([0])], (2, 4), ANCHORS,
                          1, (100, 400))
    assert np.argwhere(edge[..., 4]).tolist() == [[0, 1, 3, 0]]  # midpoint 0.975 of the image


def test_encode_keeps_the_larger_of_two_objects_in_one_cell_and_anchor():
    small, large = [40, 40, 60, 60], [35, 35, 66, 66]  # both in cell (1, 1), square anchor
    y = encode_targets([np.array([small, large])], [np.array([0, 1])], 4, ANCHORS, 2, 200)
    assert y[..., 4].sum() == 1 and y[0, 1, 1, 0, 6] == 1  # the larger one, class 1
    np.testing.assert_allclose(y[0, 1, 1, 0, 2:4], 31 / 200, rtol=1e-6)
    same = [41, 40, 61, 60]  # equal areas: the earlier in the list
    y = encode_targets([np.array([small, same])], [np.array([1, 0])], 4, ANCHORS, 2, 200)
    assert y[..., 4].sum() == 1 and y[0, 1, 1, 0, 6] == 1
    wide = [0, 20, 100, 80]  # same cell, 2 x 1.2 cells: the wide anchor, so both kept
    y = encode_targets([np.array([small, wide])], [np.array([0, 1])], 4, ANCHORS, 2, 200)
    assert np.argwhere(y[..., 4]).tolist() == [[0, 1, 1, 0], [0, 1, 1, 1]]


@pytest.mark.parametrize("boxes, classes, match", [
    ([np.array([[0, 0, 10]])], [np.array([0])], r"expected boxes of shape \(k, 4\)"),
    ([np.array([[0, 0, 10, 10]])], [np.array([0, 1])], r"expected 1 integer classes"),
    ([np.array([[0, 0, 10, 10]])], [np.array([0.0])], r"integer classes.*float64"),
    ([np.array([[0, 0, 10, 10]])], [np.array([3])], r"classes in \[0, 3\), got \[3\]"),
    ([np.array([[10, 0, 5, 10]])], [np.array([0])], r"x2 > x1"),
    ([np.array([[190, 0, 250, 10]])], [np.array([0])], r"midpoints inside the 200 x 200"),
    ([np.array([[0, 0, 10, 10]])], [], r"one boxes array and one classes array per image"),
])
def test_encode_rejects_bad_input(boxes, classes, match):
    with pytest.raises(ValueError, match=match):
        encode_targets(boxes, classes, 4, ANCHORS, 3, 200)


def test_encode_rejects_bad_settings():
    one = ([np.array([[0, 0, 10, 10]])], [np.array([0])])
    with pytest.raises(ValueError, match=r"grid_size as a positive integer.*got 2.5"):
        encode_targets(*one, 2.5, ANCHORS, 1, 200)
    with pytest.raises(ValueError, match=r"anchors \(A, 2\).*got shape \(3,\)"):
        encode_targets(*one, 4, np.ones(3), 1, 200)
    with pytest.raises(ValueError, match=r"n_classes a positive integer, got 0"):
        encode_targets(*one, 4, ANCHORS, 0, 200)
    with pytest.raises(TypeError, match=r"lists with one array per image"):
        encode_targets(np.zeros((1, 1, 4)), [np.array([0])], 4, ANCHORS, 1, 200)


@st.composite
def scenes(draw):
    """Images with objects in distinct cells, each inside the image."""
    m, rows, cols = draw(st.integers(1, 3)), draw(st.integers(1, 5)), draw(st.integers(1, 5))
    height, width = draw(st.sampled_from([(96.0, 96.0), (72.0, 128.0)]))
    boxes, classes = [], []
    for _ in range(m):
        cells = draw(st.lists(st.integers(0, rows * cols - 1), max_size=4, unique=True))
        found = []
        for cell in cells:
            fx, fy = draw(st.floats(0, 0.99)), draw(st.floats(0, 0.99))
            x = (cell % cols + fx) / cols * width
            y = (cell // cols + fy) / rows * height
            rw, rh = draw(st.floats(0.05, 1)), draw(st.floats(0.05, 1))
            half_w, half_h = rw * min(x, width - x), rh * min(y, height - y)
            if min(half_w, half_h) > 1e-3:
                found.append([x - half_w, y - half_h, x + half_w, y + half_h])
        boxes.append(np.array(found).reshape(-1, 4))
        classes.append(np.array(draw(st.lists(st.integers(0, 3), min_size=len(found),
                                              max_size=len(found))), dtype=int))
    return boxes, classes, (rows, cols), (height, width)


@settings(max_examples=60, deadline=None)
@given(scenes())
def test_encode_then_decode_gives_the_boxes_back(scene):
    boxes, classes, grid, size = scene
    y = encode_targets(boxes, classes, grid, ANCHORS, 4, size, dtype=np.float64)
    kept = filter_boxes(decode(ideal_logits(y, ANCHORS), ANCHORS, size), 0.5, 1.0, None)
    for b, c, found in zip(boxes, classes, kept):
        order, back = np.lexsort(b.T[::-1]), np.lexsort(found.boxes.T[::-1])
        np.testing.assert_allclose(found.boxes[back], b[order], rtol=1e-9, atol=1e-9)
        np.testing.assert_array_equal(found.classes[back], c[order])
        np.testing.assert_allclose(found.scores, 1, atol=1e-12)


def course_eval(feats, anchors, image_shape):
    """The course's yolo_head + yolo_boxes_to_corners + scale_boxes in NumPy, its conv_index
    built as YAD2K builds it; boxes (y1, x1, y2, x2), scores objectness x class probability."""
    n = feats.shape[1]
    height_index = np.tile(np.arange(n), [n])
    width_index = np.tile(np.arange(n)[None], [n, 1]).T.flatten()
    conv_index = np.stack([height_index, width_index]).T.reshape(1, n, n, 1, 2)
    f = feats.reshape(len(feats), n, n, len(anchors), -1)
    sig = 1 / (1 + np.exp(-f[..., :5]))
    xy = (sig[..., :2] + conv_index) / n
    wh = np.exp(f[..., 2:4]) * anchors / n
    e = np.exp(f[..., 5:] - f[..., 5:].max(-1, keepdims=True))
    box_scores = sig[..., 4:5] * e / e.sum(-1, keepdims=True)
    mins, maxes = xy - wh / 2, xy + wh / 2
    corners = np.stack([mins[..., 1], mins[..., 0], maxes[..., 1], maxes[..., 0]], -1)
    h, w = image_shape
    return corners * [h, w, h, w], box_scores


def test_decode_matches_the_course_yolo_head_on_its_layout():
    rng = np.random.default_rng(0)
    feats = rng.normal(0, 2, (2, 7, 7, 3 * 9))
    corners, box_scores = course_eval(feats, ANCHORS, (720.0, 1280.0))
    d = decode(from_course_output(feats, 3), ANCHORS, (720, 1280), clip=False)
    np.testing.assert_allclose(d.boxes, from_course_boxes(corners).reshape(2, -1, 4), rtol=1e-12)
    np.testing.assert_allclose(d.scores, box_scores.max(-1).reshape(2, -1), rtol=1e-12)
    np.testing.assert_array_equal(d.classes, box_scores.argmax(-1).reshape(2, -1))
    clipped = decode(from_course_output(feats, 3), ANCHORS, (720, 1280))
    assert clipped.boxes.min() >= 0 and clipped.boxes[..., 2].max() <= 1280
    assert clipped.boxes[..., 3].max() <= 720
    with pytest.raises(ValueError, match=r"\(m, S, S, 3 \(5 \+ C\)\).*\(2, 7, 7, 26\)"):
        from_course_output(feats[..., :26], 3)
    with pytest.raises(ValueError, match=r"from_course_output for the course's"):
        decode(feats, ANCHORS, 720)
    with pytest.raises(ValueError, match=r"3 anchors per cell.*but 2 anchors"):
        decode(from_course_output(feats, 3), ANCHORS[:2], 720)


def test_filter_boxes_thresholds_and_suppresses_per_class():
    boxes = np.array([[[0, 0, 10, 10], [1, 1, 11, 11], [1, 1, 11, 11], [50, 50, 60, 60],
                       [80, 80, 90, 90], [20, 20, 30, 30]]], float)
    scores = np.array([[0.9, 0.8, 0.7, 0.6, 0.59, 0.95]])
    classes = np.array([[0, 0, 1, 0, 0, 2]])
    (kept,) = filter_boxes((boxes, scores, classes))
    # box 1 overlaps box 0 (IoU 0.68) in class 0; box 2 the same place in class 1 stays;
    # 0.6 is at the threshold (kept, >= as in the course); 0.59 is under it.
    np.testing.assert_array_equal(kept.scores, [0.95, 0.9, 0.7, 0.6])
    np.testing.assert_array_equal(kept.classes, [2, 0, 1, 0])
    np.testing.assert_array_equal(kept.boxes[1], [0, 0, 10, 10])
    (top2,) = filter_boxes((boxes, scores, classes), max_boxes=2)
    np.testing.assert_array_equal(top2.scores, [0.95, 0.9])
    (loose,) = filter_boxes((boxes, scores, classes), 0.5, iou_threshold=0.9)
    assert len(loose.scores) == 6
    with pytest.raises(ValueError, match=r"boxes \(m, n, 4\).*\(6, 4\)"):
        filter_boxes((boxes[0], scores[0], classes[0]))
    with pytest.raises(ValueError, match=r"max_boxes a positive integer or None, got 0"):
        filter_boxes((boxes, scores, classes), max_boxes=0)
    with pytest.raises(ValueError, match=r"without NaN, got 1 NaN scores"):
        filter_boxes((boxes, np.where(scores == 0.8, np.nan, scores), classes))


@pytest.fixture
def course_yolo(monkeypatch):
    """The course's anchors and COCO class names, read through STRATA_DATA."""
    names = ("yolo/yolo_anchors.txt", "yolo/coco_classes.txt")
    missing = [rel for rel in names if not (SHARED / rel).is_file()]
    if missing:
        pytest.skip(f"{', '.join(missing)} not in {SHARED} (see ../shared/datasets/SOURCES.md)")
    monkeypatch.setenv("STRATA_DATA", str(SHARED))
    return read_anchors(data_dir() / names[0]), read_class_names(data_dir() / names[1])


def test_course_anchors_and_classes_decode_a_course_output(course_yolo):
    anchors, names = course_yolo
    np.testing.assert_allclose(anchors[0], [0.57273, 0.677385])
    assert anchors.shape == (5, 2) and len(names) == 80
    assert (names[0], names[2], names[-1]) == ("person", "car", "toothbrush")
    rng = np.random.default_rng(1)
    feats = rng.normal(0, 1, (2, 19, 19, 425)).astype(np.float32)
    out = from_course_output(feats)
    out[:, 9, 9, 2, :4], out[:, 9, 9, 2, 4], out[:, 9, 9, 2, 5 + 2] = 0, 8, 12  # a car
    d = decode(out, anchors, (720.0, 1280.0))
    assert d.boxes.shape == (2, 19 * 19 * 5, 4) and d.scores.shape == d.classes.shape == (2, 1805)
    assert d.boxes.dtype == np.float32 and 0 <= d.scores.min() and d.scores.max() <= 1
    assert d.boxes.min() >= 0 and (d.boxes[..., [0, 2]] <= 1280).all()
    assert (d.boxes[..., [1, 3]] <= 720).all() and d.classes.max() < 80
    corners, box_scores = course_eval(feats.astype(np.float64), anchors, (720.0, 1280.0))
    np.testing.assert_allclose(decode(from_course_output(feats.astype(np.float64)), anchors,
                                      (720, 1280), clip=False).boxes,
                               from_course_boxes(corners).reshape(2, -1, 4), rtol=1e-9)
    for kept in filter_boxes(d):
        assert 1 <= len(kept.scores) <= 10 and (kept.scores >= 0.6).all()
        assert names[kept.classes[0]] == "car"
        np.testing.assert_allclose((kept.boxes[0, :2] + kept.boxes[0, 2:]) / 2,
                                   [9.5 / 19 * 1280, 9.5 / 19 * 720], rtol=1e-5)


def test_read_anchors_and_class_names_reject_bad_files(tmp_path):
    bad = tmp_path / "anchors.txt"
    bad.write_text("1.0, 2.0, 3.0\n")
    with pytest.raises(ValueError, match=r"anchors.txt: expected an even number.*got 3"):
        read_anchors(bad)
    bad.write_text("1.0, x\n")
    with pytest.raises(ValueError, match=r"comma-separated numbers"):
        read_anchors(bad)
    bad.write_text("1.0, -2.0\n")
    with pytest.raises(ValueError, match=r"positive and finite"):
        read_anchors(bad)
    bad.write_text("\n\n")
    with pytest.raises(ValueError, match=r"one class name a line, got none"):
        read_class_names(bad)


def one_object_scene(n_classes=3):
    boxes = [np.array([[40, 40, 60, 60], [100, 20, 180, 40]]), np.array([[10, 120, 30, 160]])]
    classes = [np.array([2, 0]), np.array([1])]
    return encode_targets(boxes, classes, 4, ANCHORS, n_classes, 200, dtype=np.float64)


def test_loss_of_a_perfect_prediction_has_no_coordinate_or_class_cost():
    y = one_object_scene()
    terms = yolo_loss_terms(ideal_logits(y, ANCHORS), y, anchors=ANCHORS)
    assert terms["coord"] < 1e-25 and terms["class"] < 1e-12
    n_obj, n_noobj = 3, y[..., 4].size - 3  # BCE(+-30) = log(1 + e^-30) per slot, over m = 2
    np.testing.assert_allclose(terms["object"], n_obj * np.log1p(np.exp(-30)) / 2, rtol=1e-9)
    np.testing.assert_allclose(terms["no_object"], 0.5 * n_noobj * np.log1p(np.exp(-30)) / 2,
                               rtol=1e-9)
    loss = yolo_loss(ideal_logits(y, ANCHORS), y, anchors=ANCHORS)
    np.testing.assert_allclose(loss.item(), sum(terms.values()), rtol=1e-12)


def test_loss_hand_case():
    # one image, a 1 x 1 grid, one anchor (2, 1), two classes; the object fills the middle.
    y = encode_targets([np.array([[25, 40, 75, 60]])], [np.array([1])], 1, [[2.0, 1.0]], 2, 100,
                       dtype=np.float64)
    np.testing.assert_allclose(y[0, 0, 0, 0], [0.5, 0.5, 0.5, 0.2, 1, 0, 1])
    t = np.array([0.0, 1.0, 0.0, 0.0, 0.0, 1.0, -1.0]).reshape(1, 1, 1, 1, 7)
    s1 = 1 / (1 + np.exp(-1))
    coord = 5 * ((s1 - 0.5) ** 2 + np.log(0.25) ** 2 + np.log(0.2) ** 2)
    expected = coord + np.log(2) + np.log1p(np.exp(2))  # BCE(0, 1) + CE([1, -1], class 1)
    assert yolo_loss(t, y, anchors=[[2.0, 1.0]]).item() == pytest.approx(expected, rel=1e-12)
    empty = np.zeros_like(y)  # no object: only the no-object term, lambda_noobj BCE(t_o, 0)
    got = yolo_loss(t, empty, lambda_noobj=0.25, anchors=[[2.0, 1.0]]).item()
    assert got == pytest.approx(0.25 * np.log(2), rel=1e-12)


def test_loss_sample_weight_weighs_images():
    y = one_object_scene()
    t = np.random.default_rng(0).normal(size=y.shape)
    each = [yolo_loss(t[i:i + 1], y[i:i + 1], anchors=ANCHORS).item() for i in range(2)]
    got = yolo_loss(t, y, anchors=ANCHORS, sample_weight=[2.0, 0.5]).item()
    assert got == pytest.approx((2 * each[0] + 0.5 * each[1]) / 2, rel=1e-12)
    assert yolo_loss(t, y, anchors=ANCHORS, sample_weight=[1, 1]).item() == pytest.approx(
        yolo_loss(t, y, anchors=ANCHORS).item(), rel=1e-15)
    with pytest.raises(ValueError, match=r"sample_weight of shape \(2,\).*got shape \(3,\)"):
        yolo_loss(t, y, anchors=ANCHORS, sample_weight=[1, 1, 1])


def test_loss_gradient_check_float64():
    y = one_object_scene()
    x = np.random.default_rng(1).normal(size=y.shape)
    for weight in (None, [1.5, 0.3]):
        diffs = strata.gradcheck(
            lambda t, w=weight: yolo_loss(t, y, 2.0, 0.3, anchors=ANCHORS, sample_weight=w), x)
        assert max(diffs) < 1e-7
    x32 = strata.Tensor(x.astype(np.float32), requires_grad=True)
    loss = yolo_loss(x32, y, anchors=ANCHORS)
    loss.backward()
    assert loss.dtype == np.float32 and x32.grad.dtype == np.float32


def torch_yolo_loss(torch, x, y, anchors, lambda_coord, lambda_noobj, weight=None):
    """The same loss written with PyTorch's own ops."""
    functional = torch.nn.functional
    rows, cols = x.shape[1:3]
    obj = y[..., 4]
    safe = torch.where(obj[..., None] == 1, y[..., 2:4], torch.ones_like(y[..., 2:4]))
    target_wh = torch.log(safe * torch.tensor([cols, rows], dtype=x.dtype) / anchors)
    coord = (((torch.sigmoid(x[..., :2]) - y[..., :2]) ** 2).sum(-1)
             + ((x[..., 2:4] - target_wh) ** 2).sum(-1))
    bce = functional.binary_cross_entropy_with_logits(x[..., 4], obj, reduction="none")
    ce = -(y[..., 5:] * functional.log_softmax(x[..., 5:], dim=-1)).sum(-1)
    per_slot = obj * (lambda_coord * coord + bce + ce) + (1 - obj) * lambda_noobj * bce
    per_image = per_slot.sum(dim=(1, 2, 3))
    return (per_image if weight is None else per_image * weight).mean()


def test_loss_matches_pytorch_forward_and_backward():
    torch = pytest.importorskip("torch", reason="torch not installed: comparison skipped")
    rng = np.random.default_rng(2)
    y = one_object_scene(n_classes=4)
    x = rng.normal(0, 3, size=y.shape)
    weight = np.array([0.7, 1.9])
    ours = strata.Tensor(x.copy(), requires_grad=True)
    loss = yolo_loss(ours, y, 4.0, 0.4, anchors=ANCHORS, sample_weight=weight)
    loss.backward()
    theirs = torch.from_numpy(x.copy()).requires_grad_()
    expected = torch_yolo_loss(torch, theirs, torch.from_numpy(y), torch.from_numpy(ANCHORS),
                               4.0, 0.4, torch.from_numpy(weight))
    expected.backward()
    np.testing.assert_allclose(loss.item(), expected.item(), rtol=1e-12)
    np.testing.assert_allclose(ours.grad, theirs.grad.numpy(), rtol=1e-10, atol=1e-14)


def test_loss_checks_its_inputs_and_nan():
    y = one_object_scene()
    x = np.zeros(y.shape)
    with pytest.raises(ValueError, match=r"predictions have shape .* targets have shape"):
        yolo_loss(x, y[:1], anchors=ANCHORS)
    bad = y.copy()
    bad[0, 0, 0, 0, 4] = 0.5
    with pytest.raises(ValueError, match=r"objectness \(index 4\) 0 or 1"):
        yolo_loss(x, bad, anchors=ANCHORS)
    bad = y.copy()
    bad[y[..., 4] == 1, 2] = 0
    with pytest.raises(ValueError, match=r"sizes b_w, b_h > 0"):
        yolo_loss(x, bad, anchors=ANCHORS)
    with pytest.raises(ValueError, match=r"lambda_noobj a finite number >= 0, got -1"):
        yolo_loss(x, y, lambda_noobj=-1, anchors=ANCHORS)
    with pytest.raises(ValueError, match=r"3 anchors per cell"):
        yolo_loss(x, y, anchors=ANCHORS[:1])
    free = x.copy()
    free[y[..., 4] == 0, :4] = np.nan  # slots without objects: only t_o counts
    assert np.isfinite(yolo_loss(free, y, anchors=ANCHORS).item())
    x[y[..., 4] == 1, 0] = np.nan
    with pytest.raises(NonFiniteError, match=r"predictions contain 3 NaN"):
        yolo_loss(x, y, anchors=ANCHORS)


class TinyDetector(strata.nn.Model):
    """A 1x1 convolution from 4x4 feature maps to a 4 x 4 x 3 x (5 + 3) YOLO output."""

    def __init__(self):
        self.head = strata.nn.Conv2D(3 * 8, 1)

    def forward(self, x):
        out = self.head(x)
        return out.reshape(out.shape[0], 4, 4, 3, 8)


def test_yolo_loss_class_trains_a_model_with_compile_and_fit():
    strata.seed(0)
    y = one_object_scene()
    X = np.random.default_rng(3).normal(size=(2, 4, 4, 5)).astype(np.float32)
    loss = YoloLoss(ANCHORS, lambda_noobj=0.3)
    assert loss.logits_activation is None and loss.get_config()["lambda_noobj"] == 0.3
    assert repr(loss).startswith("YoloLoss(anchors=[[1.0, 1.0], ")
    model = TinyDetector()
    model.compile(optimizer="adam", loss=loss, lr=0.05)
    history = model.fit(X, y.astype(np.float32), epochs=60, batch_size=2, verbose=0,
                        sample_weight=np.array([1.0, 2.0]))
    assert history.history["loss"][-1] < 0.2 * history.history["loss"][0]
    out = model.predict(X)
    assert out.shape == y.shape  # raw logits, ready for decode
    assert len(decode(out, ANCHORS, 200).scores[0]) == 48
    with pytest.raises(ValueError, match=r"YoloLoss: expected lambda_coord"):
        YoloLoss(ANCHORS, lambda_coord=np.nan)


def test_kmeans_anchors_finds_constructed_clusters():
    rng = np.random.default_rng(0)
    centres = np.array([[8.0, 3.0], [1.0, 1.0], [3.0, 6.0]])
    wh = np.concatenate([rng.normal(c, 0.05 * c, (60, 2)) for c in centres])
    fit = kmeans_anchors(wh, 3)
    np.testing.assert_allclose(fit.anchors, centres[[1, 2, 0]], rtol=0.05)  # sorted by area
    assert 0.9 < fit.mean_iou <= 1
    assert np.array_equal(kmeans_anchors(wh, 3).anchors, fit.anchors)  # seeded
    one = kmeans_anchors(wh, 1)
    assert one.anchors.shape == (1, 2) and one.mean_iou < fit.mean_iou
    exact = kmeans_anchors(centres, 3)
    np.testing.assert_allclose(exact.anchors, centres[[1, 2, 0]])
    assert exact.mean_iou == 1.0
    with pytest.raises(ValueError, match=r"k an integer in \[1, 3\].*got 4"):
        kmeans_anchors(centres, 4)
    with pytest.raises(ValueError, match=r"box sizes wh \(n, 2\).*got shape \(3,\)"):
        kmeans_anchors(centres[:, 0], 2)
