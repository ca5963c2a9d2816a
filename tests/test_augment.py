"""Data augmentation (course 4 week 2) and the test-time tricks 10-crop and ensembling."""

from __future__ import annotations

import numpy as np
import pytest

import strata
from strata.data.augment import (
    ColorShift,
    Compose,
    PCAColor,
    RandomCrop,
    RandomFlip,
    RandomRotation,
    RandomShear,
    RandomWarp,
    RandomZoom,
    bilinear_sample,
)
from strata.data.testtime import ensemble_predict, multi_crop_predict, ten_crop

TRANSFORMS = [
    RandomFlip(0.5), RandomCrop(5, padding=2), RandomRotation(30), RandomZoom(0.2),
    RandomShear(0.3),
    RandomWarp(max_shift=1.5, grid=3), ColorShift(0.2, clip=(0, 1)), PCAColor(0.5),
    Compose([RandomCrop((6, 7), padding=1), RandomFlip(), ColorShift(0.1)]),
]
IDS = [type(t).__name__ for t in TRANSFORMS]


def batch(m=4, H=8, W=9, C=3, seed=0, dtype=np.float32):
    return np.random.default_rng(seed).random((m, H, W, C)).astype(dtype)


def fixed(value):
    """A stand-in Generator whose uniform() returns ``value`` for every example."""

    class Fixed:
        def uniform(self, low, high, size):
            return np.full(size, value, dtype=np.float64)

    return Fixed()


def expected_shape(t, X):
    crop = t if isinstance(t, RandomCrop) else None
    if isinstance(t, Compose):
        crop = t.transforms[0]
    return X.shape if crop is None else (len(X), *crop.size, X.shape[3])


@pytest.mark.parametrize("t", TRANSFORMS, ids=IDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_shape_dtype_and_input_untouched(t, dtype):
    X = batch(dtype=dtype)
    before = X.copy()
    out = t(X, np.random.default_rng(1))
    assert out.shape == expected_shape(t, X) and out.dtype == dtype
    assert np.array_equal(X, before) and not np.shares_memory(out, X)


@pytest.mark.parametrize("t", TRANSFORMS, ids=IDS)
def test_deterministic_per_seed_and_different_across_seeds(t):
    X = batch(m=8)
    a, b = t(X, np.random.default_rng(5)), t(X, np.random.default_rng(5))
    assert np.array_equal(a, b)
    assert not np.array_equal(a, t(X, np.random.default_rng(6)))


@pytest.mark.parametrize("t", TRANSFORMS, ids=IDS)
def test_default_generator_is_the_shared_one(t):
    X = batch()
    strata.seed(11)
    a = t(X)
    strata.seed(11)
    assert np.array_equal(a, t(X))


@pytest.mark.parametrize("t", TRANSFORMS, ids=IDS)
def test_rejects_non_nhwc_input_naming_the_transform(t):
    name = type(t).__name__
    with pytest.raises(ValueError, match=rf"{name}: expected a 4-D NHWC .* got shape \(8, 9, 3\)"):
        t(np.zeros((8, 9, 3), np.float32))


def test_flip_with_p_one_mirrors_and_p_zero_keeps():
    X = batch()
    assert np.array_equal(RandomFlip(p=1)(X), X[:, :, ::-1])
    assert np.array_equal(RandomFlip(p=0)(X), X)
    out = RandomFlip(0.5)(batch(m=200, H=2, W=2, C=1), np.random.default_rng(0))
    flipped = (out != batch(m=200, H=2, W=2, C=1)).any(axis=(1, 2, 3))
    assert 60 < flipped.sum() < 140


def test_crop_full_size_without_padding_is_identity():
    X = batch()
    assert np.array_equal(RandomCrop((8, 9))(X), X)


def test_crop_is_a_contiguous_window_of_the_padded_input():
    X, p = batch(m=6, H=5, W=5), 2
    padded = np.pad(X, ((0, 0), (p, p), (p, p), (0, 0)))
    out = RandomCrop(4, padding=p)(X, np.random.default_rng(3))
    for i in range(len(X)):
        windows = [(r, c) for r in range(6) for c in range(6)
                   if np.array_equal(padded[i, r:r + 4, c:c + 4], out[i])]
        assert windows, f"example {i} is not a window of the padded image"


def test_rotation_by_zero_is_identity_and_by_90_is_rot90():
    X = batch(H=7, W=7)
    assert np.allclose(RandomRotation(0)(X), X)
    # a positive angle turns counterclockwise as displayed, like np.rot90 on axes (1, 2)
    assert np.allclose(RandomRotation(90)(X, fixed(90.0)), np.rot90(X, 1, axes=(1, 2)), atol=1e-5)
    assert np.allclose(RandomRotation(90)(X, fixed(-90.0)), np.rot90(X, -1, axes=(1, 2)),
                       atol=1e-5)


def test_rotation_keeps_the_centre_and_fills_corners_with_zeros():
    X = np.ones((1, 9, 9, 1), np.float32)
    out = RandomRotation(45)(X, fixed(45.0))
    assert out[0, 4, 4, 0] == pytest.approx(1.0) and out[0, 0, 0, 0] == 0.0


@pytest.mark.parametrize("z", [1.25, 0.8, 1.0])
def test_zoom_matches_scipy_affine_transform_with_nearest_edges(z):
    ndimage = pytest.importorskip("scipy.ndimage")
    X = batch(m=2, H=7, W=9, C=2, dtype=np.float64)
    out = RandomZoom(0.3)(X, fixed(np.log(z)))  # the factor is exp(uniform(-b, b))
    centre = (np.array([7, 9]) - 1) / 2
    for i in range(2):
        for c in range(2):
            expected = ndimage.affine_transform(X[i, :, :, c], np.diag([1 / z, 1 / z]),
                                                offset=centre - centre / z, order=1,
                                                mode="nearest")
            np.testing.assert_allclose(out[i, :, :, c], expected, atol=1e-12)


def test_zoom_factors_stay_within_the_bound():
    # a ramp along x, zero at the centre: bilinear sampling is exact on it, so the output two
    # pixels right of the centre is 2 / z and gives each example's zoom factor back
    X = np.broadcast_to(np.arange(21.0) - 10, (400, 5, 21)).astype(np.float32)[..., None]
    out = RandomZoom(0.25)(X, np.random.default_rng(0))
    assert out.shape == X.shape and out.dtype == X.dtype
    z = 2 / out[:, 2, 12, 0]
    assert z.min() >= 1 / 1.25 - 1e-5 and z.max() <= 1.25 + 1e-5
    assert z.min() < 0.85 and z.max() > 1.2  # both ends are drawn
    with pytest.raises(ValueError, match="max_zoom"):
        RandomZoom(-0.1)


def test_shear_is_a_horizontal_shift_growing_with_the_row():
    X = batch(m=1, H=5, W=12)
    assert np.allclose(RandomShear(0.0)(X), X)
    out = RandomShear(1.0)(X, fixed(1.0))  # row y reads column x + (y - 2)
    assert np.allclose(out[0, 2], X[0, 2])
    assert np.allclose(out[0, 3, :-1], X[0, 3, 1:]) and np.allclose(out[0, 3, -1], 0)
    assert np.allclose(out[0, 0, 2:], X[0, 0, :-2]) and np.allclose(out[0, 0, :2], 0)


def test_warp_with_zero_shift_is_identity_and_small_shift_stays_close():
    X = batch()
    assert np.allclose(RandomWarp(max_shift=0.0)(X), X)
    smooth = np.tile(np.linspace(0, 1, 9, dtype=np.float32)[None, None, :, None], (2, 8, 1, 1))
    out = RandomWarp(max_shift=0.5, grid=3)(smooth, np.random.default_rng(0))
    assert np.abs(out - smooth)[:, 1:-1, 1:-1].max() <= 0.5 / 8 + 1e-6  # shifts <= 0.5 px


def test_bilinear_sample_interpolates_between_pixels():
    X = np.arange(4, dtype=np.float64).reshape(1, 2, 2, 1)  # [[0, 1], [2, 3]]
    rows, cols = np.array([[[0.5, 0.0, -1.0, 1.5, 9.0]]]), np.array([[[0.5, 0.25, 0.0, 1.0, 9.0]]])
    out = bilinear_sample(X, rows, cols)
    assert np.allclose(out[0, 0, :, 0], [1.5, 0.25, 0.0, 1.5, 0.0])  # zeros outside the image
    two = bilinear_sample(np.concatenate([X, 10 * X]), rows, cols)  # (1, h, w) positions broadcast
    assert np.allclose(two[1], 10 * out[0])
    with pytest.raises(ValueError, match=r"bilinear_sample: expected rows and cols of shape"):
        bilinear_sample(X, np.zeros((3, 2, 2)), np.zeros((3, 2, 2)))


def test_color_shift_adds_one_bounded_offset_per_example_and_channel():
    X = batch(m=16) * 0.5 + 0.25
    out = ColorShift(0.2)(X, np.random.default_rng(0))
    offsets = out - X
    assert np.allclose(offsets, offsets[:, :1, :1, :], atol=1e-6)  # constant over pixels
    assert np.abs(offsets).max() <= 0.2 + 1e-6
    assert offsets[:, 0, 0, :].std(axis=0).min() > 0.01  # differs between examples
    clipped = ColorShift(1.0, clip=(0, 1))(X, np.random.default_rng(0))
    assert clipped.min() >= 0 and clipped.max() <= 1


def test_pca_color_moves_colours_along_their_principal_direction_only():
    rng = np.random.default_rng(0)
    d = np.array([0.6, 0.0, 0.8])
    t = rng.random((5, 6, 6, 1))
    X = 0.2 + t * d  # every pixel colour lies on one line in RGB space
    out = PCAColor(std=1.0)(X, np.random.default_rng(1))
    delta = (out - X)[:, 0, 0, :]
    assert np.allclose(out - X, delta[:, None, None, :])
    assert np.allclose(np.cross(delta, d), 0, atol=1e-10) and np.abs(delta).max() > 1e-3


def test_pca_color_fit_uses_the_data_set_statistics():
    data = batch(m=20, seed=1)
    t = PCAColor(0.1).fit(data)
    assert t.eigenvalues.shape == (3,) and t.eigenvectors.shape == (3, 3)
    assert np.allclose(t.eigenvectors @ np.diag(t.eigenvalues) @ t.eigenvectors.T,
                       np.cov(data.reshape(-1, 3), rowvar=False), atol=1e-6)
    flat = np.zeros((2, 4, 4, 3), np.float32)  # no colour variance of its own
    assert not np.array_equal(t(flat, np.random.default_rng(0)), flat)
    assert np.array_equal(PCAColor(0.1)(flat), flat)  # batch statistics: nothing to move along
    with pytest.raises(ValueError, match="PCAColor: fitted on 3 channels, got a batch with 1"):
        t(np.zeros((2, 4, 4, 1), np.float32))


def test_compose_applies_in_order():
    X = batch()
    out = Compose([RandomFlip(1.0), RandomCrop((8, 4))])(X, np.random.default_rng(0))
    windows = [X[:, :, ::-1][:, :, c:c + 4] for c in range(6)]
    assert out.shape == (4, 8, 4, 3)
    assert all(any(np.array_equal(out[i], w[i]) for w in windows) for i in range(4))
    empty = Compose([])(X)
    assert np.array_equal(empty, X) and empty is not X


def test_reprs_are_readable():
    assert repr(RandomFlip(0.3)) == "RandomFlip(p=0.3)"
    assert repr(RandomCrop(24, padding=4)) == "RandomCrop(size=(24, 24), padding=4)"
    assert repr(Compose([RandomRotation(10)])) == \
        "Compose(transforms=[RandomRotation(max_degrees=10.0)])"
    assert repr(RandomWarp()) == "RandomWarp(max_shift=2.0, grid=4)"
    assert repr(ColorShift(0.1, clip=(0, 1))) == "ColorShift(max_shift=0.1, clip=(0.0, 1.0))"


@pytest.mark.parametrize("make, match", [
    (lambda: RandomFlip(1.5), r"RandomFlip: expected a probability p in \[0.0, 1.0\], got 1.5"),
    (lambda: RandomCrop(0), r"RandomCrop: expected size as a positive int or a pair"),
    (lambda: RandomCrop((3, 4, 5)), r"RandomCrop: expected size .* got \(3, 4, 5\)"),
    (lambda: RandomCrop(3, padding=-1), r"RandomCrop: expected an integer padding >= 0, got -1"),
    (lambda: RandomRotation(-5), r"RandomRotation: expected max_degrees in \[0.0, 180.0\]"),
    (lambda: RandomShear(-0.1), r"RandomShear: expected max_shear >= 0.0, got -0.1"),
    (lambda: RandomWarp(grid=1), r"RandomWarp: expected an integer grid >= 2, got 1"),
    (lambda: ColorShift(0.1, clip=(1, 0)), r"ColorShift: expected clip=None or a pair"),
    (lambda: PCAColor(std="big"), r"PCAColor: expected std >= 0.0, got 'big'"),
])
def test_bad_hyperparameters_are_rejected(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_bad_inputs_are_rejected():
    with pytest.raises(ValueError, match=r"RandomCrop: crop size \(9, 9\) is larger than the "
                                         r"padded image \(8, 8\)"):
        RandomCrop(9)(np.zeros((1, 8, 8, 1)))
    with pytest.raises(TypeError, match="RandomRotation: expected a floating-point batch, got "
                                        "dtype uint8"):
        RandomRotation(10)(np.zeros((1, 4, 4, 3), np.uint8))
    with pytest.raises(TypeError, match="Compose: expected callables"):
        Compose([RandomFlip(), 3])
    assert RandomFlip(1.0)(np.arange(4, dtype=np.uint8).reshape(1, 1, 4, 1)).dtype == np.uint8


def test_ten_crop_corners_centre_and_mirror():
    X = batch(m=2, H=6, W=7)
    crops = ten_crop(X, (4, 5))
    assert crops.shape == (10, 2, 4, 5, 3)
    assert np.array_equal(crops[0], X[:, :4, :5])  # top-left
    assert np.array_equal(crops[3], X[:, 2:, 2:])  # bottom-right
    assert np.array_equal(crops[4], X[:, 1:5, 1:6])  # centre
    assert np.array_equal(crops[5], X[:, :, ::-1][:, :4, :5])  # top-left of the mirror
    assert np.array_equal(crops[5], crops[1][:, :, ::-1])
    with pytest.raises(ValueError, match=r"ten_crop: crop size \(7, 7\) is larger than the "
                                         r"image \(6, 7\)"):
        ten_crop(X, 7)


def test_multi_crop_predict_averages_over_the_ten_crops():
    X = batch(m=3, H=6, W=6)
    crops = ten_crop(X, 4)

    def predict(x):
        return x.mean(axis=(1, 2))

    expected = np.mean([predict(c) for c in crops], axis=0)
    assert np.allclose(multi_crop_predict(predict, X, 4), expected)

    class Model:
        def predict(self, x):
            return x[:, 0, 0, :]

    assert np.allclose(multi_crop_predict(Model(), X, 4), crops[:, :, 0, 0, :].mean(axis=0))


def test_ensemble_predict_averages_callables_and_models():
    X = np.arange(6, dtype=np.float32).reshape(3, 2)

    class Model:
        def __init__(self, k):
            self.k = k

        def __call__(self, x):  # .predict wins over __call__, as for strata models
            raise AssertionError("should use .predict")

        def predict(self, x):
            return self.k * x

    out = ensemble_predict([lambda x: x, Model(2.0), Model(3.0)], X)
    assert np.allclose(out, 2.0 * X)
    with pytest.raises(ValueError, match="ensemble_predict: expected at least one model"):
        ensemble_predict([], X)
    with pytest.raises(TypeError, match="ensemble_predict: expected a callable or an object"):
        ensemble_predict([3], X)
    with pytest.raises(ValueError, match="ensemble_predict: the models' predictions differ"):
        ensemble_predict([lambda x: x, lambda x: x[:, :1]], X)
