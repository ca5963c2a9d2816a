"""Box utilities and non-max suppression (strata.vision.boxes, strata.vision.nms): the course's
hand-computed cases, properties, errors, and OpenCV's cv2.dnn.NMSBoxes as an oracle."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from strata.vision.boxes import (
    box_area,
    center_to_corners,
    clip_boxes,
    corners_to_center,
    iou,
    scale_boxes,
)
from strata.vision.nms import non_max_suppression

# ---------------------------------------------------------------------------------------- IoU


@pytest.mark.parametrize("box1, box2, expected", [
    ((2, 1, 4, 3), (1, 2, 3, 4), 1 / 7),  # the course's example
    ((1, 2, 3, 4), (5, 6, 7, 8), 0.0),  # the course's disjoint boxes
    ((1, 1, 2, 2), (2, 2, 3, 3), 0.0),  # the course's: touching at a corner
    ((1, 1, 3, 3), (2, 3, 3, 4), 0.0),  # the course's: touching along an edge
    ((0, 0, 4, 4), (1, 1, 2, 2), 1 / 16),  # contained
    ((0, 0, 4, 4), (0, 0, 4, 4), 1.0),  # identical
    ((0, 0, 2, 1), (0, 0, 1, 1), 0.5),
    ((1, 1, 1, 3), (0, 0, 4, 4), 0.0),  # zero-area box
    ((1, 1, 1, 1), (1, 1, 1, 1), 0.0),  # two identical zero-area boxes: 0, not NaN
])
def test_iou_hand_cases(box1, box2, expected):
    assert iou([box1], [box2])[0, 0] == pytest.approx(expected, abs=1e-15)
    assert iou([box2], [box1])[0, 0] == pytest.approx(expected, abs=1e-15)


def _iou_loop(a, b):
    """IoU written pair by pair, as the course's assignment does."""
    out = np.zeros((len(a), len(b)))
    for i, (ax1, ay1, ax2, ay2) in enumerate(a):
        for j, (bx1, by1, bx2, by2) in enumerate(b):
            inter = max(min(ax2, bx2) - max(ax1, bx1), 0) * max(min(ay2, by2) - max(ay1, by1), 0)
            union = (ax2 - ax1) * (ay2 - ay1) + (bx2 - bx1) * (by2 - by1) - inter
            out[i, j] = inter / union if union > 0 else 0.0
    return out


def _corner_boxes(max_n=12, min_n=0):
    """Hypothesis strategy: (n, 4) corner boxes on a half-integer grid (exact arithmetic)."""
    coords = st.integers(0, 20).map(lambda v: v / 2)
    sizes = st.integers(0, 12).map(lambda v: v / 2)
    box = st.tuples(coords, coords, sizes, sizes).map(lambda c: (c[0], c[1], c[0] + c[2],
                                                                 c[1] + c[3]))
    return st.lists(box, min_size=min_n, max_size=max_n).map(
        lambda rows: np.array(rows, dtype=np.float64).reshape(-1, 4))


@settings(max_examples=60, deadline=None)
@given(_corner_boxes(), _corner_boxes())
def test_iou_matches_pairwise_loop_and_is_symmetric(a, b):
    got = iou(a, b)
    assert got.shape == (len(a), len(b))
    np.testing.assert_allclose(got, _iou_loop(a, b), rtol=1e-15, atol=0)
    np.testing.assert_array_equal(got, iou(b, a).T)
    assert np.all((got >= 0) & (got <= 1))


def test_iou_dtype_and_nan_propagation():
    a = np.array([[0, 0, 2, 2], [0, 0, np.nan, 2]], dtype=np.float32)
    b = np.array([[1, 1, 3, 3], [0, 0, 2, 2]], dtype=np.float32)
    got = iou(a, b)
    assert got.dtype == np.float32
    assert got[0, 1] == 1 and got[0, 0] == pytest.approx(1 / 7)
    assert np.isnan(got[1]).all()  # the NaN box's row only
    assert iou([[0, 0, 1, 1]], [[0, 0, 1, 1]]).dtype == np.float64  # integers give float64


@pytest.mark.parametrize("bad, match", [
    (np.zeros((3,)), r"shape \(n, 4\), received shape \(3,\)"),
    (np.zeros((2, 5)), r"shape \(n, 4\), received shape \(2, 5\)"),
    (np.zeros((1, 2, 4)), r"shape \(n, 4\)"),
    ([[2, 0, 1, 1]], r"x2 >= x1 and y2 >= y1, received \[2.0, 0.0, 1.0, 1.0\] at index 0"),
    ([[0, 0, 1, 1], [0, 3, 1, 2]], r"at index 1"),
])
def test_iou_errors(bad, match):
    with pytest.raises(ValueError, match=match):
        iou(bad, [[0, 0, 1, 1]])
    with pytest.raises(ValueError, match="boxes2"):
        iou([[0, 0, 1, 1]], bad)


def test_iou_rejects_non_numeric():
    with pytest.raises(TypeError, match="numeric"):
        iou([["a", "b", "c", "d"]], [[0, 0, 1, 1]])


# ------------------------------------------------------------------------------- conversions


def test_conversions_by_hand():
    corners = np.array([[1.0, 2.0, 5.0, 4.0]])
    np.testing.assert_array_equal(corners_to_center(corners), [[3.0, 3.0, 4.0, 2.0]])
    np.testing.assert_array_equal(center_to_corners([[3.0, 3.0, 4.0, 2.0]]), corners)
    grid = np.zeros((19, 19, 5, 4))  # a YOLO grid of boxes keeps its shape
    assert corners_to_center(grid).shape == grid.shape == center_to_corners(grid).shape


@settings(max_examples=80, deadline=None)
@given(hnp.arrays(np.float64, st.tuples(st.integers(0, 6), st.just(4)),
                  elements=st.floats(-1e6, 1e6, allow_nan=False)))
def test_conversions_round_trip(raw):
    corners = np.concatenate([np.minimum(raw[:, :2], raw[:, 2:]),
                              np.maximum(raw[:, :2], raw[:, 2:])], axis=1)
    center = corners_to_center(corners)
    assert np.all(center[:, 2:] >= 0)
    np.testing.assert_allclose(center_to_corners(center), corners, rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(corners_to_center(center_to_corners(center)), center,
                               rtol=1e-12, atol=1e-9)


def test_conversion_errors():
    with pytest.raises(ValueError, match=r"corners_to_center: .*x2 >= x1"):
        corners_to_center([[3, 0, 1, 1]])
    with pytest.raises(ValueError, match=r"center_to_corners: .*b_w >= 0"):
        center_to_corners([[0, 0, -1, 1]])
    with pytest.raises(ValueError, match=r"shape \(\.\.\., 4\), received shape \(2, 3\)"):
        corners_to_center(np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"shape \(\.\.\., 4\), received shape \(\)"):
        center_to_corners(1.0)


def test_scale_clip_area():
    image_shape = (100, 200)  # height, width
    np.testing.assert_array_equal(scale_boxes([[0.5, 0.25, 1.0, 1.0]], image_shape),
                                  [[100, 25, 200, 100]])
    np.testing.assert_array_equal(clip_boxes([[-5, 10, 250, 120]], image_shape),
                                  [[0, 10, 200, 100]])
    np.testing.assert_array_equal(box_area([[1, 1, 4, 3], [2, 2, 2, 5]]), [6, 0])
    assert np.isnan(clip_boxes([[np.nan, 0, 1, 1]], image_shape)[0, 0])


@pytest.mark.parametrize("shape", [(100,), (100, 200, 3), (0, 10), (10, -1), "ab", (np.nan, 5)])
def test_image_shape_errors(shape):
    with pytest.raises(ValueError, match=r"image_shape \(height, width\)"):
        scale_boxes([[0, 0, 1, 1]], shape)


def test_area_and_clip_reject_reversed_corners():
    for fn in (box_area, lambda b: clip_boxes(b, (10, 10))):
        with pytest.raises(ValueError, match="x2 >= x1"):
            fn([[0, 5, 1, 1]])


# ------------------------------------------------------------------------------------- NMS


def _nms_reference(boxes, scores, t, score_threshold=None, max_boxes=None, classes=None):
    """The course's greedy procedure spelled out on the full IoU matrix."""
    order = [i for i in np.argsort(-np.asarray(scores), kind="stable")
             if score_threshold is None or scores[i] > score_threshold]
    overlap = iou(boxes, boxes) if len(boxes) else np.zeros((0, 0))
    kept = []
    for i in order:
        if not any(overlap[i, k] > t and (classes is None or classes[i] == classes[k])
                   for k in kept):
            kept.append(i)
    return np.array(kept[:max_boxes], dtype=np.int64)


def test_nms_hand_case():
    boxes = [[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30]]  # IoU(0, 1) = 81 / 119
    got = non_max_suppression(boxes, [0.9, 0.8, 0.7])
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, [0, 2])
    np.testing.assert_array_equal(non_max_suppression(boxes, [0.9, 0.8, 0.7], 0.7), [0, 1, 2])
    np.testing.assert_array_equal(non_max_suppression(boxes, [0.8, 0.9, 0.95]), [2, 1])


def test_nms_threshold_is_strict_like_opencv():
    boxes = [[0, 0, 2, 1], [0, 0, 1, 1]]  # IoU exactly 0.5
    np.testing.assert_array_equal(non_max_suppression(boxes, [0.9, 0.8], 0.5), [0, 1])
    np.testing.assert_array_equal(non_max_suppression(boxes, [0.9, 0.8], 0.49), [0])
    touching = [[0, 0, 1, 1], [1, 0, 2, 1]]  # IoU 0 is not > 0: both stay even at threshold 0
    np.testing.assert_array_equal(non_max_suppression(touching, [0.9, 0.8], 0.0), [0, 1])
    np.testing.assert_array_equal(non_max_suppression([[0, 0, 1, 1], [0.9, 0, 2, 1]],
                                                      [0.9, 0.8], 0.0), [0])


def test_nms_ties_in_index_order_and_best_first():
    same = [[0, 0, 1, 1]] * 3
    np.testing.assert_array_equal(non_max_suppression(same, [0.5, 0.7, 0.7]), [1])
    apart = [[0, 0, 1, 1], [2, 2, 3, 3], [4, 4, 5, 5], [6, 6, 7, 7]]
    np.testing.assert_array_equal(non_max_suppression(apart, [0.1, 0.9, 0.5, 0.9]), [1, 3, 2, 0])


def test_nms_score_threshold_and_max_boxes():
    apart = [[0, 0, 1, 1], [2, 2, 3, 3], [4, 4, 5, 5], [6, 6, 7, 7]]
    scores = [0.5, 0.6, -1.0, 0.9]
    np.testing.assert_array_equal(non_max_suppression(apart, scores), [3, 1, 0, 2])
    np.testing.assert_array_equal(non_max_suppression(apart, scores, score_threshold=0.5), [3, 1])
    np.testing.assert_array_equal(non_max_suppression(apart, scores, max_boxes=2), [3, 1])
    assert non_max_suppression(apart, scores, max_boxes=0).size == 0
    np.testing.assert_array_equal(non_max_suppression(apart, scores, max_boxes=9), [3, 1, 0, 2])
    inf_scores = [np.inf, 0.0, -np.inf, 1.0]  # infinite scores still have an order
    np.testing.assert_array_equal(non_max_suppression(apart, inf_scores), [0, 3, 1, 2])


def test_nms_per_class():
    boxes = [[0, 0, 10, 10], [0, 0, 10, 10], [1, 0, 10, 10], [50, 50, 60, 60]]
    scores = [0.9, 0.8, 0.7, 0.6]
    np.testing.assert_array_equal(non_max_suppression(boxes, scores), [0, 3])
    np.testing.assert_array_equal(non_max_suppression(boxes, scores, classes=[0, 1, 0, 1]),
                                  [0, 1, 3])
    np.testing.assert_array_equal(non_max_suppression(boxes, scores, classes=["car", "cat",
                                                                                "dog", "car"]),
                                  [0, 1, 2, 3])
    got = non_max_suppression(boxes, scores, classes=[5, -1, 7, 5], max_boxes=2)
    np.testing.assert_array_equal(got, [0, 1])  # the best two over all classes


def test_nms_edge_inputs():
    assert non_max_suppression(np.zeros((0, 4)), []).dtype == np.int64
    assert non_max_suppression(np.zeros((0, 4)), [], classes=[]).size == 0
    # zero-area boxes cover nothing: never suppressed (OpenCV gives two such boxes overlap 1)
    np.testing.assert_array_equal(non_max_suppression([[1, 1, 1, 1], [5, 5, 5, 5]], [0.9, 0.8]),
                                  [0, 1])
    ints = np.array([[0, 0, 4, 4], [0, 0, 4, 3]], dtype=np.int32)  # IoU 0.75
    np.testing.assert_array_equal(non_max_suppression(ints, np.array([1, 2], np.uint8)), [1])


@pytest.mark.parametrize("kwargs, error, match", [
    ({"scores": [np.nan, 0.5]}, ValueError, r"scores without NaN, received 1 NaN score"),
    ({"boxes": [[0, 0, 1, 1], [0, 0, np.nan, 1]]}, ValueError, r"finite box coordinates.*index 1"),
    ({"boxes": [[0, 0, 1, 1], [0, 0, np.inf, 1]]}, ValueError, r"finite box coordinates"),
    ({"boxes": [[0, 0, 1, 1], [3, 0, 1, 1]]}, ValueError, r"x2 >= x1"),
    ({"boxes": [[0, 0, 1, 1]]}, ValueError, r"scores of shape \(1,\).*received shape \(2,\)"),
    ({"scores": [[0.5, 0.5]]}, ValueError, r"scores of shape \(2,\)"),
    ({"boxes": [[0, 0, 1], [0, 0, 1]]}, ValueError, r"boxes of shape \(n, 4\)"),
    ({"iou_threshold": 1.5}, ValueError, r"iou_threshold a number in \[0.0, 1.0\], received 1.5"),
    ({"iou_threshold": -0.1}, ValueError, r"iou_threshold"),
    ({"iou_threshold": float("nan")}, ValueError, r"iou_threshold"),
    ({"iou_threshold": True}, ValueError, r"iou_threshold"),
    ({"score_threshold": float("nan")}, ValueError, r"score_threshold"),
    ({"max_boxes": -1}, ValueError, r"max_boxes None or an integer >= 0, received -1"),
    ({"max_boxes": 2.0}, ValueError, r"max_boxes"),
    ({"classes": [0]}, ValueError, r"classes of shape \(2,\)"),
    ({"classes": [0.0, np.nan]}, ValueError, r"classes without NaN"),
])
def test_nms_errors(kwargs, error, match):
    args = {"boxes": [[0, 0, 1, 1], [0, 0, 1, 1]], "scores": [0.9, 0.8], **kwargs}
    with pytest.raises(error, match=match):
        non_max_suppression(**args)


@settings(max_examples=150, deadline=None)
@given(data=st.data(), boxes=_corner_boxes(max_n=40))
def test_nms_equals_the_greedy_definition(data, boxes):
    n = len(boxes)
    scores = np.array(data.draw(st.lists(st.integers(0, 5), min_size=n, max_size=n)), float)
    t = data.draw(st.sampled_from([0.0, 0.1, 0.25, 0.3, 0.5, 0.7, 1.0]) | st.floats(0, 1))
    score_threshold = data.draw(st.none() | st.sampled_from([0, 2.5, 3]))
    max_boxes = data.draw(st.none() | st.integers(0, 5))
    classes = data.draw(st.none() | st.lists(st.integers(0, 2), min_size=n, max_size=n))
    got = non_max_suppression(boxes, scores, t, score_threshold, max_boxes, classes)
    want = _nms_reference(boxes, scores, t, score_threshold, max_boxes, classes)
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("case", ["huge span", "tiny and huge", "one spot", "thin strip"])
def test_nms_kernel_bins_on_extreme_layouts(case):
    """The kernel files boxes in bins by position; odd layouts must not change the result."""
    rng = np.random.default_rng(7)
    n = 400
    xy = rng.uniform(0, 100, size=(n, 2))
    wh = rng.uniform(1, 30, size=(n, 2))
    if case == "huge span":
        xy[:5] = [[-1e300, 0], [1e300, 0], [0, -1e300], [0, 1e300], [1e290, 1e290]]
    elif case == "tiny and huge":
        wh[::2] *= 1e-6
        wh[1::7] *= 1e4
    elif case == "one spot":
        xy[:] = 5.0
    else:
        xy[:, 1], wh[:, 1] = 0.0, 1.0
    boxes = np.concatenate([xy, xy + wh], axis=1)
    scores = rng.random(n)
    for t in (0.0, 0.3, 0.5, 0.9):
        np.testing.assert_array_equal(non_max_suppression(boxes, scores, t),
                                      _nms_reference(boxes, scores, t))


# --------------------------------------------------------------------- OpenCV as an oracle


def _cv2():
    return pytest.importorskip("cv2", reason="OpenCV (opencv-python-headless) is the NMS oracle; "
                                             "install the test extra")


def _opencv(cv2, xywh, scores, t, score_threshold=0.0, classes=None):
    """cv2.dnn.NMSBoxes (or NMSBoxesBatched) on float64 (x, y, w, h) boxes: the Rect2d
    overload, which keeps fractional coordinates and computes areas as w * h."""
    if classes is None:
        got = cv2.dnn.NMSBoxes(xywh, scores, score_threshold, t)
    else:
        if not hasattr(cv2.dnn, "NMSBoxesBatched"):
            pytest.skip(f"OpenCV {cv2.__version__} has no NMSBoxesBatched (added in 4.7)")
        got = cv2.dnn.NMSBoxesBatched(xywh, scores, classes.astype(np.int32), score_threshold, t)
    return np.asarray(got, dtype=np.int64).ravel()  # () when empty; (k, 1) in older versions


def _xywh_and_corners(xy, wh):
    xywh = np.concatenate([xy, wh], axis=1)
    return xywh, np.concatenate([xy, xy + wh], axis=1)  # x + w, computed as OpenCV does


@pytest.mark.parametrize("seed", range(6))
def test_nms_equals_opencv_on_grid_boxes_with_ties(seed):
    """Many overlapping boxes on a half-pixel grid: equal scores, IoUs exactly at thresholds."""
    cv2 = _cv2()
    rng = np.random.default_rng(seed)
    for _ in range(20):
        n = int(rng.integers(1, 300))
        xywh, corners = _xywh_and_corners(rng.integers(0, 40, size=(n, 2)) / 2,
                                          rng.integers(1, 16, size=(n, 2)) / 2)
        scores = (rng.integers(1, 20, n) / 20).astype(np.float32)  # OpenCV's scores are float32
        classes = rng.integers(0, 4, n)
        for t in (0.0, 0.25, 0.3, 0.5, 0.7, 1.0):
            for score_threshold in (0.0, 0.5):
                want = _opencv(cv2, xywh, scores, t, score_threshold)
                got = non_max_suppression(corners, scores, t, score_threshold)
                np.testing.assert_array_equal(got, want)
                want = _opencv(cv2, xywh, scores, t, score_threshold, classes)
                got = non_max_suppression(corners, scores, t, score_threshold, classes=classes)
                np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("n", [100, 2000])
def test_nms_equals_opencv_on_detector_like_boxes(n):
    """Clusters of jittered boxes around objects plus scattered ones, continuous coordinates."""
    cv2 = _cv2()
    rng = np.random.default_rng(n)
    objects = max(1, n // 40)
    centers = rng.uniform(0, 600, size=(objects, 2))
    sizes = rng.uniform(10, 150, size=(objects, 2))
    which = rng.integers(0, objects, n)
    wh = sizes[which] * np.exp(rng.normal(0, 0.2, size=(n, 2)))
    xy = centers[which] + rng.normal(0, 0.15, size=(n, 2)) * sizes[which] - wh / 2
    xy[::5] = rng.uniform(0, 600, size=(len(xy[::5]), 2))
    xywh, corners = _xywh_and_corners(xy, wh)
    scores = rng.random(n).astype(np.float32)
    for t in (0.3, 0.5, 0.7):
        want = _opencv(cv2, xywh, scores, t, 0.1)
        np.testing.assert_array_equal(non_max_suppression(corners, scores, t, 0.1), want)
        # max_boxes keeps the first k of the full result (OpenCV's top_k limits candidates)
        np.testing.assert_array_equal(non_max_suppression(corners, scores, t, 0.1, max_boxes=7),
                                      want[:7])
