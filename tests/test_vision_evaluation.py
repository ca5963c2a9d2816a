"""Detection evaluation: hand-computed COCO APs, equality with pycocotools' COCOeval on random
cases, bad inputs, the markdown table and the plot."""

import contextlib
import io
import os

import numpy as np
import pytest

from strata.vision.evaluation import (
    COCO_IOU_THRESHOLDS,
    DetectionReport,
    average_precision,
    evaluate_detections,
    plot_pr_curves,
)

PYCOCOTOOLS_MISSING = "pycocotools is not installed (pip install 'strata[test]')"


def det(boxes, scores, classes):
    return {"boxes": np.array(boxes, float).reshape(-1, 4), "scores": np.array(scores, float),
            "classes": np.array(classes, int)}


def gt(boxes, classes):
    return {"boxes": np.array(boxes, float).reshape(-1, 4), "classes": np.array(classes, int)}


BOX_A, BOX_B, FAR = [0, 0, 10, 10], [20, 20, 40, 30], [100, 100, 110, 110]


# ---- hand-computed cases ----------------------------------------------------------------------

def test_perfect_detections_give_one():
    r = evaluate_detections([det([BOX_A, BOX_B], [0.9, 0.3], [0, 1]), det([BOX_B], [0.5], [1])],
                            [gt([BOX_A, BOX_B], [0, 1]), gt([BOX_B], [1])])
    assert r.map_50 == pytest.approx(1.0) and r.map_50_95 == pytest.approx(1.0)
    np.testing.assert_allclose(r.ap_50, [1, 1])
    np.testing.assert_allclose(r.ap_50_95, [1, 1])
    np.testing.assert_allclose(r.recall, 1.0)


def test_false_positive_ranked_first_halves_ap():
    # points (recall, precision): (0, 0) then (1, 1/2); the envelope is 1/2 everywhere
    r = evaluate_detections([det([FAR, BOX_A], [0.9, 0.8], [0, 0])], [gt([BOX_A], [0])])
    assert r.map_50 == pytest.approx(0.5) and r.ap_50[0] == pytest.approx(0.5)


def test_false_positive_between_two_hits():
    # (1/2, 1), (1/2, 1/2), (1, 2/3): precision 1 at the 51 recall points <= 0.5, 2/3 above
    r = evaluate_detections([det([BOX_A, FAR, BOX_B], [0.9, 0.8, 0.7], [0, 0, 0])],
                            [gt([BOX_A, BOX_B], [0, 0])])
    assert r.ap_50[0] == pytest.approx((51 + 50 * 2 / 3) / 101)
    curve = r.curves[0]
    np.testing.assert_allclose(curve.recall, [0.5, 0.5, 1.0])
    np.testing.assert_allclose(curve.precision, [1, 0.5, 2 / 3])
    assert average_precision(curve.recall, curve.precision) == pytest.approx(r.ap_50[0])


def test_missed_object_stops_the_curve_at_half_recall():
    r = evaluate_detections([det([BOX_A], [0.9], [0])], [gt([BOX_A, BOX_B], [0, 0])])
    assert r.ap_50[0] == pytest.approx(51 / 101)
    assert r.recall[0, 0] == pytest.approx(0.5)


def test_iou_thresholds_count_a_loose_box_at_half_of_them():
    loose = [0, 0, 10, 7.25]  # IoU 0.725: a hit at 0.50 ... 0.70, a miss at 0.75 ... 0.95
    r = evaluate_detections([det([loose], [0.9], [0])], [gt([BOX_A], [0])])
    assert r.map_50 == pytest.approx(1.0) and r.map_50_95 == pytest.approx(0.5)
    np.testing.assert_allclose(r.ap[:, 0], [1] * 5 + [0] * 5)


def test_class_without_true_boxes_is_left_out_of_the_mean():
    r = evaluate_detections([det([BOX_A, BOX_B], [0.9, 0.8], [0, 2])], [gt([BOX_A], [0])])
    assert r.n_classes == 3
    np.testing.assert_allclose(r.ap_50, [1, -1, -1])
    np.testing.assert_allclose(r.recall[0], [1, -1, -1])
    assert r.map_50 == pytest.approx(1.0) and r.curves[1] is None and r.curves[2] is None
    nothing = evaluate_detections([det([BOX_A], [0.9], [1])], [gt([], [])], n_classes=2)
    assert nothing.map_50 == -1.0 and nothing.map_50_95 == -1.0


def test_max_detections_keeps_the_best_scores_per_image_and_class():
    boxes = [FAR, BOX_A, [50, 50, 60, 60]]
    r = evaluate_detections([det(boxes, [0.1, 0.9, 0.5], [0, 0, 0])], [gt([BOX_A], [0])],
                            max_detections=1)
    assert r.ap_50[0] == pytest.approx(1.0) and r.n_detections[0] == 3
    cut = evaluate_detections([det(boxes, [0.95, 0.9, 0.5], [0, 0, 0])], [gt([BOX_A], [0])],
                              max_detections=1)
    assert cut.ap_50[0] == 0.0


def test_each_true_box_matches_once_and_duplicates_are_false_positives():
    r = evaluate_detections([det([BOX_A, BOX_A], [0.9, 0.8], [0, 0])], [gt([BOX_A], [0])])
    np.testing.assert_allclose(r.curves[0].precision, [1, 0.5])
    assert r.ap_50[0] == pytest.approx(1.0)


def test_average_precision_helper():
    assert average_precision([0.5, 0.5, 1.0], [1.0, 0.5, 2 / 3]) == pytest.approx(
        (51 + 50 * 2 / 3) / 101)
    assert average_precision([], []) == 0.0
    assert average_precision([1.0], [1.0]) == 1.0
    with pytest.raises(ValueError, match="non-decreasing"):
        average_precision([0.5, 0.2], [1, 1])
    with pytest.raises(ValueError, match="one length"):
        average_precision([0.5, 0.6], [1])
    with pytest.raises(ValueError, match="finite"):
        average_precision([0.5, np.nan], [1, 1])


# ---- equality with pycocotools ----------------------------------------------------------------

def random_case(seed):
    """Several images and classes: jittered true boxes (some twice), random false positives,
    random scores (rounded in some cases, so that ties occur)."""
    rng = np.random.default_rng(seed)
    K, n_images = int(rng.integers(1, 5)), int(rng.integers(1, 7))
    dets, gts = [], []
    for _ in range(n_images):
        n = int(rng.integers(0, 9))
        xy = rng.uniform(0, 200, (n, 2))
        true = np.hstack([xy, xy + rng.uniform(4, 60, (n, 2))])
        classes = rng.integers(0, K, n)
        copies = rng.integers(0, 3, n)  # 0: missed, 2: detected twice
        jit = np.repeat(true, copies, axis=0)
        size = np.repeat(true[:, 2:] - true[:, :2], 2, axis=1) if n else np.zeros((0, 4))
        jit = jit + rng.uniform(-0.3, 0.3, jit.shape) * np.repeat(size, copies, axis=0)
        jit[:, 2:] = np.maximum(jit[:, 2:], jit[:, :2])
        m = int(rng.integers(0, 7))
        fxy = rng.uniform(0, 200, (m, 2))
        fake = np.hstack([fxy, fxy + rng.uniform(2, 60, (m, 2))])
        boxes = np.vstack([jit, fake])
        scores = rng.uniform(0, 1, len(boxes))
        if seed % 3 == 0:
            scores = np.round(scores, 1)
        classes_d = np.concatenate([np.repeat(classes, copies), rng.integers(0, K, m)])
        perm = rng.permutation(len(boxes))
        dets.append(det(boxes[perm], scores[perm], classes_d[perm]))
        gts.append(gt(true, classes))
    if not any(len(d["boxes"]) for d in dets):  # COCO.loadRes needs one result at least
        dets[0] = det([FAR], [0.5], [0])
    return dets, gts, K


def coco_eval(dets, gts, K, iou_thresholds=None, max_detections=100):
    pytest.importorskip("pycocotools", reason=PYCOCOTOOLS_MISSING)
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    def xywh(b):
        return [float(b[0]), float(b[1]), float(b[2] - b[0]), float(b[3] - b[1])]

    annotations = []
    for i, g in enumerate(gts):
        for b, c in zip(g["boxes"], g["classes"]):
            box = xywh(b)
            annotations.append({"id": len(annotations) + 1, "image_id": i + 1, "iscrowd": 0,
                                "category_id": int(c) + 1, "bbox": box, "area": box[2] * box[3]})
    results = [{"image_id": i + 1, "category_id": int(c) + 1, "bbox": xywh(b), "score": float(s)}
               for i, d in enumerate(dets) for b, s, c in zip(d["boxes"], d["scores"],
                                                              d["classes"])]
    with contextlib.redirect_stdout(io.StringIO()):
        truth = COCO()
        truth.dataset = {"images": [{"id": i + 1} for i in range(len(gts))],
                         "annotations": annotations,
                         "categories": [{"id": k + 1} for k in range(K)]}
        truth.createIndex()
        ev = COCOeval(truth, truth.loadRes(results), "bbox")
        if iou_thresholds is not None:
            ev.params.iouThrs = np.asarray(iou_thresholds, float)
        ev.params.maxDets = [1, 10, max_detections]
        ev.evaluate()
        ev.accumulate()
        if iou_thresholds is None and max_detections == 100:
            ev.summarize()
    return ev


@pytest.mark.parametrize("seed", range(40))
def test_equals_pycocotools(seed):
    dets, gts, K = random_case(seed)
    ev = coco_eval(dets, gts, K)
    r = evaluate_detections(dets, gts, n_classes=K)
    assert abs(r.map_50_95 - ev.stats[0]) < 1e-6 and abs(r.map_50 - ev.stats[1]) < 1e-6
    coco_precision = ev.eval["precision"][:, :, :, 0, 2]
    np.testing.assert_allclose(r.precision, coco_precision, rtol=0, atol=1e-12)
    np.testing.assert_allclose(r.recall, ev.eval["recall"][:, :, 0, 2], rtol=0, atol=1e-12)
    for k in range(K):
        p = coco_precision[:, :, k]
        want = (np.mean(p[0]), np.mean(p)) if np.all(p > -1) else (-1.0, -1.0)
        assert abs(r.ap_50[k] - want[0]) < 1e-6 and abs(r.ap_50_95[k] - want[1]) < 1e-6


@pytest.mark.parametrize("seed", range(40, 50))
def test_equals_pycocotools_with_other_thresholds_and_max_detections(seed):
    dets, gts, K = random_case(seed)
    thresholds = [0.3, 0.5, 0.75]
    ev = coco_eval(dets, gts, K, thresholds, max_detections=2)
    r = evaluate_detections(dets, gts, n_classes=K, iou_thresholds=thresholds, max_detections=2)
    m = ev.params.maxDets.index(2)  # COCOeval sorts maxDets
    np.testing.assert_allclose(r.precision, ev.eval["precision"][:, :, :, 0, m], atol=1e-12)
    assert r.iou_thresholds.tolist() == thresholds


@pytest.mark.parametrize("seed", range(50, 56))
def test_equals_pycocotools_with_boxes_beyond_cocos_area_range(seed):
    # COCO ignores true boxes above 1e5 ** 2 pixels, and unmatched detections that big
    dets, gts, K = random_case(seed)
    big = np.array([[0, 0, 2e5, 1e5 + seed]])
    gts[0] = gt(np.vstack([gts[0]["boxes"], big]), np.append(gts[0]["classes"], 0))
    extra = np.vstack([big + 3, big * 1.01, [[0, 0, 1e6, 1e6]]])
    dets[0] = det(np.vstack([dets[0]["boxes"], extra]), np.append(dets[0]["scores"], [.4, .6, .9]),
                  np.append(dets[0]["classes"], [0, 0, 0]))
    ev = coco_eval(dets, gts, K)
    r = evaluate_detections(dets, gts, n_classes=K)
    np.testing.assert_allclose(r.precision, ev.eval["precision"][:, :, :, 0, 2], atol=1e-12)
    assert abs(r.map_50_95 - ev.stats[0]) < 1e-6 and abs(r.map_50 - ev.stats[1]) < 1e-6


def test_default_thresholds_are_cocos():
    pytest.importorskip("pycocotools", reason=PYCOCOTOOLS_MISSING)
    from pycocotools.cocoeval import Params

    assert np.array_equal(COCO_IOU_THRESHOLDS, Params("bbox").iouThrs)


# ---- bad inputs -------------------------------------------------------------------------------

GOOD_D, GOOD_G = det([BOX_A], [0.9], [0]), gt([BOX_A], [0])


@pytest.mark.parametrize("detections, ground_truth, kwargs, match", [
    ([GOOD_D], [GOOD_G, GOOD_G], {}, r"same images .* received 1, 2 and 100"),
    ([], [], {}, "non-zero lengths"),
    (GOOD_D, GOOD_G, {}, "list with one dict per image, received dict"),
    ([[BOX_A]], [GOOD_G], {}, r"detections\[0\]: expected a dict"),
    ([{"boxes": [BOX_A], "scores": [0.9]}], [GOOD_G], {}, r"missing \['classes'\]"),
    ([det([BOX_A], [0.9], [0]) | {"boxes": np.ones((1, 3))}], [GOOD_G], {},
     r"\['boxes'\]: expected shape \(n, 4\), received \(1, 3\)"),
    ([det([BOX_A], [np.nan], [0])], [GOOD_G], {}, r"\['scores'\]: expected finite"),
    ([GOOD_D], [gt([[0, 0, np.inf, 1]], [0])], {}, r"ground_truth\[0\]\['boxes'\]: expected fin"),
    ([det([BOX_A], [0.9, 0.8], [0])], [GOOD_G], {}, r"\['scores'\]: expected shape \(1,\)"),
    ([det([BOX_A], [0.9], [-1])], [GOOD_G], {}, r"\['classes'\]: expected integers >= 0"),
    ([GOOD_D], [{"boxes": [BOX_A], "classes": [0.5]}], {}, "expected integers"),
    ([det([[5, 0, 1, 10]], [0.9], [0])], [GOOD_G], {}, r"x2 >= x1 and y2 >= y1, received \[5"),
    ([det([BOX_A], [0.9], [3])], [GOOD_G], {"n_classes": 2}, "largest is 3"),
    ([GOOD_D], [GOOD_G], {"n_classes": 0}, "n_classes an integer >= 1"),
    ([det([], [], [])], [gt([], [])], {}, "cannot infer n_classes"),
    ([GOOD_D], [GOOD_G], {"iou_thresholds": [0.75]}, "including 0.5, received"),
    ([GOOD_D], [GOOD_G], {"iou_thresholds": [0.5, 1.5]}, r"in \[0, 1\]"),
    ([GOOD_D], [GOOD_G], {"max_detections": 0}, "integer >= 1, received 1, 1 and 0"),
    ([{"boxes": [BOX_A], "scores": ["high"], "classes": [0]}], [GOOD_G], {}, "expected numbers"),
])
def test_bad_inputs_are_named(detections, ground_truth, kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        evaluate_detections(detections, ground_truth, **kwargs)


def test_empty_images_are_fine():
    r = evaluate_detections([det([], [], []), GOOD_D], [gt([], []), gt(np.zeros((0, 4)), [])],
                            n_classes=1)
    assert r.map_50 == -1.0 and r.n_detections.tolist() == [1]


# ---- report and plot --------------------------------------------------------------------------

def test_markdown_names_classes_and_marks_missing_ones():
    r = evaluate_detections([det([BOX_A, BOX_B], [0.9, 0.8], [0, 1])], [gt([BOX_A], [0])])
    text = r.to_markdown(["cat", "dog"])
    assert "| cat | 1.0000 | 1.0000 | 1 | 1 |" in text and "| dog | n/a | n/a | 0 | 1 |" in text
    assert "AP@0.5:0.95" in text and "101-point" in text
    with pytest.raises(ValueError, match="expected 2 class names"):
        r.to_markdown(["cat"])


def test_plot_is_written_atomically(tmp_path):
    dets, gts, K = random_case(7)
    r = evaluate_detections(dets, gts, n_classes=K)
    path = plot_pr_curves(r, tmp_path / "plots" / "pr.png", [f"c{k}" for k in range(K)])
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert os.listdir(tmp_path / "plots") == ["pr.png"]
    with pytest.raises(TypeError, match="expected a DetectionReport"):
        plot_pr_curves({"map": 1}, tmp_path / "x.png")
    empty = evaluate_detections([GOOD_D], [gt([], [])])
    with pytest.raises(ValueError, match="a class having true boxes"):
        plot_pr_curves(empty, tmp_path / "y.png")
    assert isinstance(r, DetectionReport)
