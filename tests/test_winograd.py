"""conv2d's Winograd route (strata/ops/winograd.py: 3x3 kernels, stride 1, at least 16 channels
in and out) against references that share no code with it: an einsum over every window for the
output and dW, the adjoint identity for dx, conv2d's im2col routes (the Winograd route turned
off) and, in the registry (op_cases_conv.py), PyTorch and gradcheck."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view
from test_conv_paths import reference_conv, run_conv

import strata
from strata.ops import parallel, winograd
from strata.ops.conv import Conv2D


def im2col_routes(monkeypatch):
    """Turn the Winograd route off for the rest of a test."""
    monkeypatch.setattr(winograd, "MIN_CHANNELS", 10**9)


def test_the_route_applies_to_3x3_stride_1_convolutions_of_16_channels_or_more():
    same, valid, two = ((1, 1), (1, 1)), ((0, 0), (0, 0)), ((2, 2), (0, 1))
    assert winograd.applies((3, 3, 16, 16), 1, same, (5, 5), 1)
    assert winograd.applies((3, 3, 64, 128), 1, valid, (14, 11), 50)
    assert winograd.applies((3, 3, 32, 16), 1, two, (3, 3), 2)
    assert not winograd.applies((3, 3, 8, 64), 1, same, (5, 5), 8)  # too few input channels
    assert not winograd.applies((3, 3, 64, 8), 1, same, (5, 5), 8)  # too few output channels
    assert not winograd.applies((3, 3, 32, 32), 2, same, (5, 5), 8)  # strided
    assert not winograd.applies((5, 5, 32, 32), 1, same, (5, 5), 8)  # another kernel size
    assert not winograd.applies((3, 3, 32, 32), 1, ((3, 3), (1, 1)), (9, 5), 8)  # padding 3


def test_wide_layers_on_few_pixels_keep_im2col():
    """VGG-19's conv5 on a 300x400 image (an 18x25 map: 117 tiles) against 512 x 512 channels;
    the same layer on a batch of 8 such maps takes the route."""
    same = ((1, 1), (1, 1))
    assert not winograd.applies((3, 3, 512, 512), 1, same, (18, 25), 1)
    assert winograd.applies((3, 3, 512, 512), 1, same, (18, 25), 8)
    assert winograd.applies((3, 3, 64, 64), 1, same, (1, 1), 8)


def test_conv2d_takes_the_route_for_such_layers(monkeypatch):
    calls = []
    original = winograd.conv
    monkeypatch.setattr(winograd, "conv", lambda *a: calls.append(a[1].shape) or original(*a))
    x = np.ones((2, 5, 5, 16))
    strata.conv2d(x, np.ones((3, 3, 16, 16)), None, 1, "same")
    strata.conv2d(x, np.ones((3, 3, 16, 16)), None, 2, "same")  # strided: im2col
    strata.conv2d(x, np.ones((5, 5, 16, 16)), None, 1, "same")
    assert calls == [(3, 3, 16, 16)]


def _dW_reference(x, upstream, pads):
    xp = np.pad(x, ((0, 0), *pads, (0, 0)))
    windows = sliding_window_view(xp, (3, 3), axis=(1, 2))  # (m, n_H, n_W, C, 3, 3)
    return np.einsum("nhwcij,nhwo->ijco", windows, upstream)


# (x shape, n_C, padding): odd and even sizes (tiles cut by the edge), "same", "valid" and
# padding 2 (dx's rotated kernel then pads by 0), channel counts that are not powers of two.
SHAPES = [((3, 7, 5, 16), 16, 1), ((2, 8, 8, 16), 32, 0), ((4, 9, 6, 20), 17, 1),
          ((2, 5, 5, 16), 16, 2), ((1, 1, 1, 16), 16, 1), ((2, 3, 4, 24), 16, 0)]


@pytest.mark.parametrize("x_shape, n_c, pad", SHAPES)
def test_output_and_gradients_equal_the_window_sums_in_float64(x_shape, n_c, pad):
    rng = np.random.default_rng(0)
    x, W, b = (rng.standard_normal(s) for s in (x_shape, (3, 3, x_shape[3], n_c), (n_c,)))
    out, dx, dW, db = run_conv(x, W, b, 1, pad)
    np.testing.assert_allclose(out, reference_conv(x, W, b, 1, pad), rtol=1e-12, atol=1e-12)
    upstream = np.random.default_rng(1).standard_normal(out.shape)
    np.testing.assert_allclose(dW, _dW_reference(x, upstream, ((pad, pad), (pad, pad))),
                               rtol=1e-12, atol=1e-11)
    np.testing.assert_allclose(db, upstream.sum(axis=(0, 1, 2)), rtol=1e-12)
    for seed in range(3):  # dx by the adjoint: <dx, v> = <conv(v) - b, upstream> for every v
        v = np.random.default_rng(seed + 10).standard_normal(x.shape)
        expected = np.sum(reference_conv(v, W, np.zeros(n_c), 1, pad) * upstream)
        np.testing.assert_allclose(np.sum(dx * v), expected, rtol=1e-11)


@pytest.mark.parametrize("pads", [((0, 1), (2, 0)), ((2, 1), (0, 2))])
def test_uneven_padding_equals_the_im2col_routes(monkeypatch, pads):
    """Padding that differs before and after (only reachable through the Function)."""
    rng = np.random.default_rng(2)
    x, W = rng.standard_normal((3, 6, 7, 16)), rng.standard_normal((3, 3, 16, 18))
    out_hw = (6 + sum(pads[0]) - 2, 7 + sum(pads[1]) - 2)

    def run():
        tx, tW = strata.tensor(x, requires_grad=True), strata.tensor(W, requires_grad=True)
        out = Conv2D.apply(tx, tW, stride=1, pads=pads, out_hw=out_hw)
        out.backward(np.random.default_rng(3).standard_normal(out.shape))
        return out.data, tx.grad, tW.grad

    winograd_results = run()
    im2col_routes(monkeypatch)
    for got, expected in zip(winograd_results, run(), strict=True):
        np.testing.assert_allclose(got, expected, rtol=1e-11, atol=1e-11)


def test_float32_rounding_is_that_of_the_direct_sum():
    """Float32 in, float32 out, within float32 rounding of the float64 sums."""
    rng = np.random.default_rng(4)
    x, W, b = (rng.standard_normal(s) for s in ((4, 12, 13, 32), (3, 3, 32, 64), (64,)))
    out, dx, dW, _ = run_conv(*(a.astype(np.float32) for a in (x, W, b)), 1, 1)
    assert out.dtype == dx.dtype == dW.dtype == np.float32
    expected = reference_conv(x, W, b, 1, 1)
    assert np.abs(out - expected).max() <= 2e-6 * np.abs(expected).max()
    upstream = np.random.default_rng(1).standard_normal(out.shape)
    expected_dW = _dW_reference(x, upstream, ((1, 1), (1, 1)))
    assert np.abs(dW - expected_dW).max() <= 2e-6 * np.abs(expected_dW).max()


def test_blocks_of_tiles_across_images_and_threads_equal_one_block(monkeypatch):
    """Blocks of 16 tiles cut through images (12 tiles each) and the last block
    is partial; the tiles of 7 images split over 3 threads. Same results as one block on one
    thread."""
    rng = np.random.default_rng(5)
    x, W, b = (rng.standard_normal(s) for s in ((7, 7, 5, 16), (3, 3, 16, 16), (16,)))
    monkeypatch.setattr(parallel, "MIN_FLOPS", float("inf"))
    whole = run_conv(x, W, b, 1, 1)
    monkeypatch.setattr(winograd, "_BLOCK_BYTES", 1)
    monkeypatch.setattr(winograd, "MIN_BLOCK", 16)
    assert winograd._block(16, 16, 8) == 16
    monkeypatch.setattr(parallel, "MIN_FLOPS", 0)
    monkeypatch.setattr(parallel, "threads", lambda: 3)
    split = run_conv(x, W, b, 1, 1)
    for got, expected in zip(split, whole, strict=True):
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)
    assert max(strata.gradcheck(lambda a, k, c: strata.conv2d(a, k, c, 1, 1), x, W, b)) < 1e-6


def _positive(shape, seed, inf_at=None):
    """Values in [0.5, 1), with one inf at ``inf_at`` when given."""
    a = np.random.default_rng(seed).uniform(0.5, 1.0, shape)
    if inf_at is not None:
        a[inf_at] = np.inf
    return a


@pytest.mark.parametrize("which", ["x", "W", "upstream"])
def test_inf_gives_the_direct_sums_inf_not_the_transforms_nan(monkeypatch, which):
    """The transforms subtract values of a tile, so an inf there makes NaN (inf - inf) where
    the direct sum of positive terms is inf: the route notices and the exact routes answer."""
    x = _positive((2, 6, 6, 16), 0, (0, 2, 3, 5) if which == "x" else None)
    W = _positive((3, 3, 16, 16), 1, (1, 1, 4, 7) if which == "W" else None)
    upstream = _positive((2, 6, 6, 16), 2, (1, 4, 2, 3) if which == "upstream" else None)

    def run():
        tx, tW = strata.tensor(x, requires_grad=True), strata.tensor(W, requires_grad=True)
        out = strata.conv2d(tx, tW, None, 1, "same")
        out.backward(upstream)
        return out.data, tx.grad, tW.grad

    if which != "upstream":  # the transforms alone do give NaN here
        assert winograd.conv(x, W, None, ((1, 1), (1, 1)), (6, 6), 0) is None
    got = run()
    im2col_routes(monkeypatch)
    expected = run()
    assert any(np.isposinf(e).any() for e in expected)
    for g, e in zip(got, expected, strict=True):  # inf where inf, and no NaN
        np.testing.assert_allclose(g, e, rtol=1e-12, equal_nan=False)


def test_nan_propagates_to_the_outputs_whose_windows_hold_it():
    x = np.ones((1, 6, 6, 16))
    x[0, 2, 3, 0] = np.nan
    out = strata.conv2d(x, np.ones((3, 3, 16, 16)), None, 1, "same").data
    rows, cols = np.nonzero(np.isnan(out[0, :, :, 0]))
    assert sorted(zip(rows.tolist(), cols.tolist())) == [
        (h, w) for h in (1, 2, 3) for w in (2, 3, 4)]
    assert np.isnan(out).sum() == 9 * 16
