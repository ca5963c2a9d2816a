"""conv2d's implementation paths give the same results as a plain im2col GEMM: the blocked
patch copy (several blocks, the last one partial), the batch split across threads
(strata.ops.parallel) and the direct kernel for one input channel.
The registry (op_cases_conv.py) gradient-checks and compares each path with PyTorch on small
images; these tests cover what small images do not reach."""

from __future__ import annotations

import multiprocessing

import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view

import strata
from strata.ops import conv, parallel


def reference_conv(x, W, b, s, pad):
    """Cross-correlation by an einsum over every window: no shared code with strata's paths."""
    xp = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    windows = sliding_window_view(xp, W.shape[:2], axis=(1, 2))[:, ::s, ::s]  # (m,H,W,C,f,f)
    return np.einsum("nhwcij,ijco->nhwo", windows, W) + b


def run_conv(x, W, b, s, pad):
    """Output and the gradients of sum(out * upstream) for x, W and b."""
    tx, tW, tb = (strata.tensor(a, requires_grad=True) for a in (x, W, b))
    out = strata.conv2d(tx, tW, tb, s, pad)
    upstream = np.random.default_rng(1).standard_normal(out.shape)
    (out * strata.tensor(upstream)).sum().backward()
    return out.data, tx.grad, tW.grad, tb.grad


@pytest.mark.parametrize("images_per_block", [1, 2])
@pytest.mark.parametrize("s", [1, 2])
def test_blocked_patches_equal_one_block(monkeypatch, images_per_block, s):
    """5 images in blocks of 1, or of 2 with the last block partial; the default block size
    holds all 5 images of this size in one block."""
    rng = np.random.default_rng(0)
    x, W, b = (rng.standard_normal(shape) for shape in ((5, 7, 7, 4), (3, 3, 4, 3), (3,)))
    whole = run_conv(x, W, b, s, 1)
    n_out = (7 + 2 - 3) // s + 1
    patch_bytes_per_image = n_out * n_out * 3 * 3 * 4 * x.itemsize
    monkeypatch.setattr(conv, "_BLOCK_BYTES", images_per_block * patch_bytes_per_image)
    blocked = run_conv(x, W, b, s, 1)
    np.testing.assert_allclose(blocked[0], reference_conv(x, W, b, s, 1), rtol=1e-12, atol=1e-12)
    for got, expected in zip(blocked, whole, strict=True):
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)
    assert max(strata.gradcheck(lambda a, k, c: strata.conv2d(a, k, c, s, 1), x, W, b)) < 1e-6


def test_direct_kernel_matches_reference_at_lenet_size():
    """LeNet-5's first layer (28x28x1, f = 5, "same" padding, 6 channels) in float32."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 28, 28, 1)).astype(np.float32)
    W = rng.standard_normal((5, 5, 1, 6)).astype(np.float32)
    b = rng.standard_normal(6).astype(np.float32)
    out, _, dW, db = run_conv(x, W, b, 1, 2)
    assert out.dtype == dW.dtype == np.float32
    np.testing.assert_allclose(out, reference_conv(x, W, b, 1, 2), rtol=1e-4, atol=1e-4)
    upstream = np.random.default_rng(1).standard_normal(out.shape)
    windows = sliding_window_view(np.pad(x, ((0, 0), (2, 2), (2, 2), (0, 0))), (5, 5), axis=(1, 2))
    expected_dW = np.einsum("nhwcij,nhwo->ijco", windows, upstream)
    np.testing.assert_allclose(dW, expected_dW, rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(db, upstream.sum(axis=(0, 1, 2)), rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("f, pad", [(3, 1), (3, 0), (5, 2)])
def test_transposed_path_gradients_match_reference(f, pad):
    """Stride 1 with n_C_prev >= 4 and n_C <= n_C_prev: dx and dW both come from the patches
    of the padded dZ (Conv2D._transposed_grads), checked against einsums over the windows."""
    rng = np.random.default_rng(0)
    x, W, b = (rng.standard_normal(shape) for shape in ((3, 9, 8, 6), (f, f, 6, 5), (5,)))
    out, dx, dW, db = run_conv(x, W, b, 1, pad)
    np.testing.assert_allclose(out, reference_conv(x, W, b, 1, pad), rtol=1e-10, atol=1e-10)
    upstream = np.random.default_rng(1).standard_normal(out.shape)
    windows = sliding_window_view(np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0))), (f, f),
                                  axis=(1, 2))
    np.testing.assert_allclose(dW, np.einsum("nhwcij,nhwo->ijco", windows, upstream),
                               rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(db, upstream.sum(axis=(0, 1, 2)), rtol=1e-10, atol=1e-10)
    # dx by the adjoint: <dx, v> = <out(v) - b, upstream> for every v, here for 3 random v.
    for seed in range(3):
        v = np.random.default_rng(seed + 10).standard_normal(x.shape)
        expected = np.sum((reference_conv(v, W, np.zeros(5), 1, pad)) * upstream)
        np.testing.assert_allclose(np.sum(dx * v), expected, rtol=1e-10)


# (x shape, kernel shape, stride, padding): the four routes of Conv2D (transposed dx and dW,
# kept patches with col2im at stride 2, kept patches when channels expand, 1x1 pixels).
ROUTES = [((7, 8, 8, 6), (3, 3, 6, 5), 1, 1), ((7, 9, 9, 4), (3, 3, 4, 6), 2, 1),
          ((7, 6, 6, 3), (3, 3, 3, 8), 1, 0), ((7, 5, 5, 4), (1, 1, 4, 6), 1, 0)]


@pytest.mark.parametrize("x_shape, W_shape, s, pad", ROUTES)
def test_batch_split_across_threads_equals_one_part(monkeypatch, x_shape, W_shape, s, pad):
    """7 images split into 3 parts of 2, 2 and 3 (one per thread) give the results of one part,
    and the split path passes gradcheck."""
    rng = np.random.default_rng(0)
    x, W, b = (rng.standard_normal(shape) for shape in (x_shape, W_shape, W_shape[3:]))
    monkeypatch.setattr(parallel, "MIN_FLOPS", float("inf"))
    whole = run_conv(x, W, b, s, pad)
    monkeypatch.setattr(parallel, "MIN_FLOPS", 0)
    monkeypatch.setattr(parallel, "threads", lambda: 3)
    split = run_conv(x, W, b, s, pad)
    np.testing.assert_allclose(split[0], reference_conv(x, W, b, s, pad), rtol=1e-12, atol=1e-12)
    for got, expected in zip(split, whole, strict=True):
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)
    assert max(strata.gradcheck(lambda a, k, c: strata.conv2d(a, k, c, s, pad), x, W, b)) < 1e-6


def test_over_images_covers_the_batch_and_restores_blas_threads(monkeypatch):
    monkeypatch.setattr(parallel, "threads", lambda: 3)
    before = [lib.num_threads for lib in parallel._blas().lib_controllers]
    seen = []

    def work(part):
        seen.append(part)
        return np.full(2, part.stop - part.start)

    assert parallel.sum_over_images(work, 10).tolist() == [10, 10]
    assert sorted((p.start, p.stop) for p in seen) == [(0, 3), (3, 6), (6, 10)]
    assert parallel.over_images(work, 10, flops=parallel.MIN_FLOPS / 2)[0].tolist() == [10, 10]
    assert [lib.num_threads for lib in parallel._blas().lib_controllers] == before


def test_over_images_raises_the_error_of_a_part(monkeypatch):
    monkeypatch.setattr(parallel, "threads", lambda: 2)

    def work(part):
        if part.start > 0:
            raise ValueError(f"part {part.start}:{part.stop} failed")

    with pytest.raises(ValueError, match="part 2:4 failed"):
        parallel.over_images(work, 4)


def _split_conv_exits_cleanly():
    x, W = np.ones((4, 6, 6, 3)), np.ones((3, 3, 3, 2))
    assert strata.conv2d(x, W, None, 1, 1).data[0, 2, 2, 0] == 27


def test_a_forked_child_starts_its_own_threads(monkeypatch):
    """After the parent has split a batch (its pool threads exist), a forked child's split
    runs instead of waiting forever on the parent's threads, which the child does not have."""
    monkeypatch.setattr(parallel, "MIN_FLOPS", 0)
    monkeypatch.setattr(parallel, "threads", lambda: 2)
    _split_conv_exits_cleanly()
    child = multiprocessing.get_context("fork").Process(target=_split_conv_exits_cleanly)
    child.start()
    child.join(60)
    if child.is_alive():
        child.kill()
    assert child.exitcode == 0
