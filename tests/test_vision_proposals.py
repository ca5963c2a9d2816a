"""Region proposals (selective search), warped-crop classification, R-CNN detection and
proposal recall, on generated scenes with known boxes."""

import importlib.util
import sys

import numpy as np
import pytest

from strata.vision.boxes import iou
from strata.vision.proposals import propose_regions
from strata.vision.rcnn import classify_proposals, proposal_recall, rcnn_detect

needs_skimage = pytest.mark.skipif(importlib.util.find_spec("skimage") is None,
                                   reason="needs scikit-image (strata[vision])")


def scene(seed: int, size: int = 128, n_objects: int = 4, noise: float = 0.1, grey=False):
    """Coloured rectangles and disks, apart, on a noisy grey background; (image, true boxes).
    With ``grey``, one channel, and objects darker or lighter than the background."""
    rng = np.random.default_rng(seed)
    image = rng.normal(0.5, noise, (size, size, 3)).clip(0, 1)
    yy, xx = np.mgrid[:size, :size]
    taken, boxes = np.zeros((size, size), bool), []
    while len(boxes) < n_objects:
        w, h = (int(v) for v in rng.integers(14, 44, 2))
        x, y = int(rng.integers(0, size - w)), int(rng.integers(0, size - h))
        if taken[max(y - 3, 0):y + h + 3, max(x - 3, 0):x + w + 3].any():
            continue
        taken[y:y + h, x:x + w] = True
        mask = np.zeros((size, size), bool)
        if len(boxes) % 2:  # a disk in the box's top-left square
            r = min(w, h) / 2
            mask = (xx + 0.5 - x - r) ** 2 + (yy + 0.5 - y - r) ** 2 <= r * r
        else:
            mask[y:y + h, x:x + w] = True
        colour = rng.uniform(0, 1, 3) if not grey else rng.choice([0.15, 0.85]) + np.zeros(3)
        image[mask] = (colour + rng.normal(0, noise / 3, (mask.sum(), 3))).clip(0, 1)
        ys, xs = np.nonzero(mask)
        boxes.append((xs.min(), ys.min(), xs.max() + 1, ys.max() + 1))
    return image[..., 0] if grey else image, np.asarray(boxes, dtype=np.float64)


@needs_skimage
@pytest.mark.parametrize("grey", [False, True])
def test_recall_on_generated_scenes(grey):
    scenes = [scene(seed, grey=grey) for seed in range(6)]
    proposals = [propose_regions(im) for im, _ in scenes]
    assert proposal_recall(proposals, [b for _, b in scenes], 0.5) >= 0.9
    assert proposal_recall(proposals, [b for _, b in scenes], 0.7) >= 0.8


@needs_skimage
@pytest.mark.parametrize("shape", [(128, 128, 3), (96, 64), (40, 70, 1), (1, 9), (2, 2, 3)])
def test_boxes_valid_unique_and_ordered_from_the_top(shape):
    image = np.random.default_rng(0).uniform(0, 1, shape)
    boxes = propose_regions(image)
    h, w = shape[:2]
    assert boxes.dtype == np.float32 and boxes.ndim == 2 and boxes.shape[1] == 4
    assert len(np.unique(boxes, axis=0)) == len(boxes) <= 2000
    assert (boxes[:, :2] >= 0).all() and (boxes[:, 2] <= w).all() and (boxes[:, 3] <= h).all()
    assert (boxes[:, 0] < boxes[:, 2]).all() and (boxes[:, 1] < boxes[:, 3]).all()
    assert np.array_equal(boxes[0], [0, 0, w, h])  # the top of the hierarchy: the whole image
    assert np.array_equal(boxes, np.round(boxes))  # whole pixels


@needs_skimage
def test_options_diversify_and_truncate():
    image, _ = scene(1)
    full = propose_regions(image)
    assert np.array_equal(propose_regions(image, max_proposals=7), full[:7])
    one = propose_regions(image, scale=100, color_spaces=("rgb",))
    assert len(one) < len(full)
    for sims in [("colour",), ("texture", "size"), ("fill",)]:
        assert len(propose_regions(image, similarities=sims, color_spaces=("lab",))) > 1


@needs_skimage
def test_pixel_scales_agree_and_constant_image():
    image, _ = scene(2)
    as_bytes = np.round(image * 255).astype(np.uint8)
    assert np.array_equal(propose_regions(as_bytes), propose_regions(as_bytes / 255.0))
    grey = as_bytes[..., 0]
    assert np.array_equal(propose_regions(grey), propose_regions(grey[..., None]))
    assert np.array_equal(propose_regions(np.full((20, 30, 3), 0.3)), [[0, 0, 30, 20]])


@needs_skimage
@pytest.mark.parametrize("image, match", [
    (np.zeros((1, 32, 32, 3)), r"\(H, W\) or \(H, W, C\).*got shape \(1, 32, 32, 3\)"),
    (np.zeros(32), r"got shape \(32,\)"),
    (np.zeros((32, 32, 2)), r"C 1 or 3, got shape \(32, 32, 2\)"),
    (np.zeros((0, 32, 3)), r"non-empty image, got shape \(0, 32, 3\)"),
    (np.full((8, 8), np.nan), "finite pixel values, got NaN or inf"),
    (np.full((8, 8, 3), np.inf), "finite pixel values, got NaN or inf"),
])
def test_bad_images(image, match):
    with pytest.raises(ValueError, match="propose_regions: expected .*" + match):
        propose_regions(image)
    with pytest.raises(ValueError, match="classify_proposals: expected .*" + match):
        classify_proposals(lambda x: x[:, 0, 0], image, [[0, 0, 1, 1]], 4)


@needs_skimage
def test_bad_options():
    image = np.zeros((8, 8))
    with pytest.raises(TypeError, match="numeric image, got dtype <U1"):
        propose_regions(np.full((4, 4), "a"))
    for options, match in [({"scale": 0}, "scale as a positive number"),
                           ({"scale": (50, float("nan"))}, "scale"),
                           ({"sigma": -1}, "sigma >= 0, got -1"),
                           ({"min_size": 2.5}, "integer min_size >= 0, got 2.5"),
                           ({"max_proposals": 0}, "integer max_proposals >= 1, got 0"),
                           ({"color_spaces": ("xyz",)}, "color_spaces from"),
                           ({"similarities": ()}, "similarities from")]:
        with pytest.raises(ValueError, match="propose_regions: expected .*" + match):
            propose_regions(image, **options)


@needs_skimage
def test_classify_proposals_warps_crops():
    image = np.zeros((60, 80, 3), np.float32)
    image[10:30, 20:60] = [1, 0, 0]
    image[40:60, 0:10] = [0, 0, 1]
    seen = []

    def mean_colour(crops):
        seen.append(crops.shape)
        return crops.mean(axis=(1, 2))

    boxes = [[20, 10, 60, 30], [0, 40, 10, 60], [25.5, 12.2, 30.1, 20.9], [0, 0, 80, 60]]
    scores = classify_proposals(mean_colour, image, boxes, (16, 12), batch_size=3)
    assert seen == [(3, 16, 12, 3), (1, 16, 12, 3)]
    np.testing.assert_allclose(scores[:3], [[1, 0, 0], [0, 0, 1], [1, 0, 0]], atol=1e-6)
    np.testing.assert_allclose(scores[3], image.mean(axis=(0, 1)), atol=0.02)
    grey = classify_proposals(lambda c: c.reshape(len(c), -1), image[..., 0], boxes[:1], 5)
    assert grey.shape == (1, 25) and np.allclose(grey, 1)


@needs_skimage
def test_classify_proposals_with_a_strata_model():
    import strata
    import strata.nn as nn

    strata.seed(0)
    model = nn.Sequential([nn.Flatten(), nn.Dense(3, "softmax")])
    model.build((8, 8, 3))
    image, _ = scene(3)
    scores = classify_proposals(model, image, propose_regions(image)[:5], 8)
    assert scores.shape == (5, 3) and np.allclose(scores.sum(1), 1, atol=1e-5)


@needs_skimage
def test_classify_proposals_errors():
    image = np.zeros((20, 30, 3))

    def ok(crops):
        return crops.mean(axis=(1, 2))

    for boxes, match in [([[5, 5, 5, 10]], r"x1 < x2 and y1 < y2 inside the 20x30 image, got "
                          r"\[\[5, 5, 5, 10\]\] at index \[0\]"),
                         ([[0, 0, 4, 4], [31, 0, 40, 4]], r"at index \[1\]"),
                         ([[0, 0, 4, np.nan]], "finite box coordinates"),
                         ([0, 0, 4, 4], r"shape \(n, 4\), got shape \(4,\)")]:
        with pytest.raises(ValueError, match="classify_proposals: expected .*" + match):
            classify_proposals(ok, image, boxes, 4)
    with pytest.raises(ValueError, match=r"size as a positive int or \(height, width\), got 0"):
        classify_proposals(ok, image, [[0, 0, 4, 4]], 0)
    with pytest.raises(ValueError, match="batch_size >= 1, got 0"):
        classify_proposals(ok, image, [[0, 0, 4, 4]], 4, batch_size=0)
    with pytest.raises(ValueError, match=r"model scores of shape \(1, n_classes\), got shape"):
        classify_proposals(lambda c: c.mean(), image, [[0, 0, 4, 4]], 4)


def redness(crops):
    """A trivial classifier: class 1 ("red object") scores the crop's fraction of red pixels."""
    red = ((crops[..., 0] > 0.7) & (crops[..., 1] < 0.3) & (crops[..., 2] < 0.3)).mean((1, 2))
    return np.stack([1 - red, red], 1)


@needs_skimage
def test_rcnn_detect_end_to_end():
    image = np.random.default_rng(4).normal(0.5, 0.05, (96, 128, 3)).clip(0, 1)
    image[20:50, 30:70] = [0.9, 0.1, 0.1]
    image[60:90, 90:120] = [0.1, 0.1, 0.9]
    boxes, scores, classes = rcnn_detect(redness, image, 16, score_threshold=0.5,
                                         background_class=0)
    assert len(boxes) >= 1 and (classes == 1).all() and (np.diff(scores) <= 0).all()
    assert scores[0] == 1 and iou(boxes[:1], [[30, 20, 70, 50]])[0, 0] >= 0.5
    overlap = iou(boxes, boxes) - np.eye(len(boxes))
    assert (overlap <= 0.5).all()  # non-max suppression left no two boxes overlapping
    top, _, _ = rcnn_detect(redness, image, 16, boxes=[[30, 20, 70, 50], [0, 0, 10, 10]],
                            score_threshold=None, max_detections=1)
    np.testing.assert_array_equal(top, [[30, 20, 70, 50]])
    with pytest.raises(ValueError, match="background_class below the model's 2 classes"):
        rcnn_detect(redness, image, 16, boxes=[[0, 0, 4, 4]], background_class=2)


def test_proposal_recall():
    truth = [np.array([[0, 0, 10, 10], [20, 20, 30, 30]]), np.array([[0, 0, 4, 4]])]
    proposals = [np.array([[0, 0, 10, 10], [22, 22, 40, 40]]), np.zeros((0, 4))]
    assert proposal_recall(proposals, truth) == pytest.approx(1 / 3)
    # IoU exactly 0.5 counts: [0, 0, 10, 10] against [0, 0, 10, 20] (100 / 200)
    assert proposal_recall([[[0, 0, 10, 20]]], [[[0, 0, 10, 10]]], 0.5) == 1.0
    assert proposal_recall([[[0, 0, 10, 20]]], [[[0, 0, 10, 10]]], 0.51) == 0.0
    assert proposal_recall([[], [[1, 1, 2, 2]]], [[], [[1, 1, 2, 2]]]) == 1.0
    with pytest.raises(ValueError, match="proposal_recall: expected 2 ground-truth box lists"):
        proposal_recall(proposals, truth[:1])
    with pytest.raises(ValueError, match=r"boxes of shape \(n, 4\) for image 0"):
        proposal_recall([[[0, 0, 1]]], [[[0, 0, 1, 1]]])
    with pytest.raises(ValueError, match="at least one ground-truth box, got 0"):
        proposal_recall([[[0, 0, 1, 1]]], [[]])
    with pytest.raises(ValueError, match=r"iou_threshold in \[0, 1\], got 1.5"):
        proposal_recall(proposals, truth, 1.5)


def test_missing_scikit_image_names_the_extra(monkeypatch):
    for name in [m for m in sys.modules if m == "skimage" or m.startswith("skimage.")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "skimage", None)
    with pytest.raises(ImportError, match=r"propose_regions needs scikit-image, "
                                          r".*pip install 'strata\[vision\]'"):
        propose_regions(np.zeros((8, 8, 3)))
    with pytest.raises(ImportError, match=r"classify_proposals needs .*strata\[vision\]"):
        classify_proposals(redness, np.zeros((8, 8, 3)), [[0, 0, 4, 4]], 4)


@needs_skimage
def test_rcnn_detect_without_boxes():
    boxes, scores, classes = rcnn_detect(redness, np.zeros((8, 8, 3)), 4, boxes=np.zeros((0, 4)))
    assert boxes.shape == (0, 4) and scores.shape == classes.shape == (0,)
