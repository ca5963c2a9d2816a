"""Winograd's minimal filtering F(2x2, 3x3) for conv2d's 3x3 stride-1 convolutions (Lavin and
Gray, "Fast Algorithms for Convolutional Neural Networks", 2016).

Each 2x2 block of outputs ("tile") is computed from the 4x4 input patch d under it as

    Y = A^T [ (G w G^T) * (B^T d B) ] A

where the product * is elementwise over the 16 positions xi of the 4x4 transformed tile and a
sum over the input channels. For a batch, the 16 positions become 16 GEMMs, (tiles x n_C_prev)
@ (n_C_prev x n_C): 16 multiplies per input channel and output channel per tile instead of the
36 of the direct 2x2 block, 2.25x fewer FLOPs than im2col's GEMM, and no patch matrix (each
input pixel copied 9 times). On this project's 2-core machines the forward pass of a 32 -> 64
channel layer ran 1.5-1.8x faster than im2col (docs/ARCHITECTURE.md).

The transforms B^T d B and A^T m A only add and subtract; G w G^T is done once per call in
float64. Both backward products reuse the same machinery: dx is the forward convolution of dZ
with the kernel rotated by 180 degrees (channels swapped), and dW = G^T dU G with
dU[xi] = V[xi]^T (A dY A^T)[xi] summed over the tiles: 16 GEMMs with the tiles as their inner
size. Float32 results differ from the direct sum by rounding only (relative 1e-6).

Never silently wrong: the transforms mix the values of a tile, so an inf in x or W can become
NaN where the direct sum gives inf. The output kernel notes any non-finite output, and the
caller (ops.conv.Conv2D) then computes that result again by its exact im2col route.

The kernels work on a range of tiles numbered across the images (so that small images still
make tall GEMMs), reading the input with its zero padding implied, not copied. The threads of
strata.ops.parallel take contiguous ranges of tiles, so that one large image (style transfer)
splits as well as a batch of small ones.
"""

from __future__ import annotations

import numba
import numpy as np

from strata.ops import parallel

#: Both channel counts at least this: narrower GEMMs (an RGB first layer's 3 channels) run too
#: far below BLAS's peak for the FLOPs saved to pay.
MIN_CHANNELS = 16
#: A block of tiles reads all 16 transformed kernels (16 n_C_prev n_C floats): the route needs,
#: and each block holds, at least one tile per this many n_C_prev * n_C (measured on VGG-19's
#: layers at benchmarks/style.py's sizes).
KERNEL_FLOATS_PER_TILE = 1024
_BLOCK_BYTES = 1 << 20  # the 16 transformed tiles of a block, in and out, stay in L2
MIN_BLOCK = 128

G = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.0, 1.0]])
_GG = np.kron(G, G)  # (16, 9): G w G^T of every (c, k) as one product with w as (9, c * k)


def applies(W_shape, stride: int, pads, out_hw, m: int) -> bool:
    """Whether conv2d takes this route: a 3x3 kernel, stride 1, at least MIN_CHANNELS in and
    out, padding the 180-degree-rotated kernel can undo (at most 2 on each side), and enough
    tiles (KERNEL_FLOATS_PER_TILE): wide layers on few pixels (VGG's conv5 on an 18x25 map: 117
    tiles of 512 x 512 channels) are memory-bound here and faster as one im2col GEMM."""
    fh, fw, n_c_prev, n_c = W_shape
    th, tw = _tiles(out_hw)
    return ((fh, fw, stride) == (3, 3, 1) and min(n_c_prev, n_c) >= MIN_CHANNELS
            and all(0 <= p <= 2 for pair in pads for p in pair)
            and m * th * tw * KERNEL_FLOATS_PER_TILE >= n_c_prev * n_c)


def _tiles(out_hw):
    """(tile rows, tile columns) covering an n_H x n_W output with 2x2 tiles."""
    return (out_hw[0] + 1) // 2, (out_hw[1] + 1) // 2


def _block(n_c_prev, n_c, itemsize) -> int:
    """Tiles per block: about _BLOCK_BYTES of them, and at least MIN_BLOCK and one per
    KERNEL_FLOATS_PER_TILE, below which the GEMMs of wide layers wait on reading the
    transformed kernels (VGG's 512-channel layers: 256 tiles)."""
    return max(MIN_BLOCK, _BLOCK_BYTES // (16 * max(n_c_prev, n_c) * itemsize),
               n_c_prev * n_c // KERNEL_FLOATS_PER_TILE)


def _views(V, M, t0, end, step):
    """The (16, tiles, channels) blocks of the flat buffers V and M for the tiles t0 up to
    t0 + step (at most ``end``), C-contiguous: the kernels vectorize only such arrays."""
    tiles = min(step, end - t0)
    return (V[:16 * tiles * (len(V) // (16 * step))].reshape(16, tiles, -1),
            M[:16 * tiles * (len(M) // (16 * step))].reshape(16, tiles, -1))


def conv(x, W, b, pads, out_hw, flops):
    """The stride-1 3x3 cross-correlation of NHWC ``x`` zero-padded by ``pads`` with ``W``
    (3, 3, n_C_prev, n_C), plus ``b`` (or None): (m, n_H, n_W, n_C), or None if an output is
    not finite (then the exact route must decide between inf and NaN)."""
    x = np.ascontiguousarray(x)
    dtype = np.result_type(x, W)
    # A small product: waking BLAS's threads would slow the split. A non-finite W is for the
    # caller to handle (the exact routes), not a warning.
    with parallel.serial(), np.errstate(invalid="ignore", over="ignore"):
        U = (_GG @ W.reshape(9, -1)).reshape(16, *W.shape[2:]).astype(dtype)
    bias = np.zeros(W.shape[3], dtype) if b is None else b.astype(dtype, copy=False)
    out = np.empty((len(x), *out_hw, W.shape[3]), dtype)
    th, tw = _tiles(out_hw)
    step = _block(*W.shape[2:], out.itemsize)
    (top, _), (left, _) = pads

    def work(tiles):
        finite = True
        V, M = np.empty(16 * step * W.shape[2], dtype), np.empty(16 * step * W.shape[3], dtype)
        for t0 in range(tiles.start, tiles.stop, step):
            v, m = _views(V, M, t0, tiles.stop, step)
            _input_tiles(x, top, left, th, tw, t0, v)
            np.matmul(v, U, out=m)
            finite &= _output_tiles(m, bias, th, tw, t0, out)
        return finite

    return out if all(parallel.over_images(work, len(x) * th * tw, flops)) else None


def kernel_grad(x, g, pads, flops):
    """dW (3, 3, n_C_prev, n_C) of ``conv(x, W, ...)`` given dZ ``g``, or None if not finite."""
    x, g = np.ascontiguousarray(x), np.ascontiguousarray(g)
    dtype = np.result_type(x, g)
    n_c_prev, n_c = x.shape[3], g.shape[3]
    th, tw = _tiles(g.shape[1:3])
    step = _block(n_c_prev, n_c, np.dtype(dtype).itemsize)
    (top, _), (left, _) = pads

    def work(tiles):
        dU = np.zeros((16, n_c_prev, n_c), dtype)
        V, M = np.empty(16 * step * n_c_prev, dtype), np.empty(16 * step * n_c, dtype)
        for t0 in range(tiles.start, tiles.stop, step):
            v, m = _views(V, M, t0, tiles.stop, step)
            _input_tiles(x, top, left, th, tw, t0, v)
            _output_grad_tiles(g, th, tw, t0, m)
            dU += v.transpose(0, 2, 1) @ m
        return dU

    dU = parallel.sum_over_images(work, len(x) * th * tw, flops)
    with parallel.serial(), np.errstate(invalid="ignore", over="ignore"):
        dW = (_GG.T @ dU.reshape(16, -1)).reshape(3, 3, n_c_prev, n_c).astype(dtype)
    return dW if np.isfinite(dW).all() else None


@numba.njit(cache=True, error_model="numpy", nogil=True)
def _input_tiles(x, top, left, th, tw, t0, V):  # pragma: no cover - compiled
    """V[xi, t] = (B^T d B)[xi] for the tiles t0, t0 + 1, ... of x (numbered image by image,
    row by row), d the 4x4 patch at (2a - top, 2b - left) with zeros outside x, where
    B^T = [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]].
    Each row of d is read from x and transformed in one loop over the channels (copying the
    patch first, as slices, then transforming it took twice as long at 32-128 channels)."""
    N, H, W, C = x.shape
    zero = x.dtype.type(0)
    d = np.empty((4, 4, C), x.dtype)  # the patch, transformed along its rows (d B)
    for t in range(V.shape[1]):
        n, r = divmod(t0 + t, th * tw)
        a, b = divmod(r, tw)
        h0, w0 = 2 * a - top, 2 * b - left
        for i in range(4):
            h = h0 + i
            if 0 <= h < H:  # zeros outside x; as fast as a separate loop for inner tiles
                for c in range(C):
                    d0 = x[n, h, w0, c] if 0 <= w0 < W else zero
                    d1 = x[n, h, w0 + 1, c] if 0 <= w0 + 1 < W else zero
                    d2 = x[n, h, w0 + 2, c] if 0 <= w0 + 2 < W else zero
                    d3 = x[n, h, w0 + 3, c] if 0 <= w0 + 3 < W else zero
                    d[i, 0, c] = d0 - d2
                    d[i, 1, c] = d1 + d2
                    d[i, 2, c] = d2 - d1
                    d[i, 3, c] = d1 - d3
            else:
                d[i] = zero
        for j in range(4):  # then B^T down its columns
            for c in range(C):
                e0, e1, e2, e3 = d[0, j, c], d[1, j, c], d[2, j, c], d[3, j, c]
                V[j, t, c] = e0 - e2
                V[4 + j, t, c] = e1 + e2
                V[8 + j, t, c] = e2 - e1
                V[12 + j, t, c] = e1 - e3


@numba.njit(cache=True, error_model="numpy", nogil=True)
def _output_tiles(M, bias, th, tw, t0, out):  # pragma: no cover - compiled
    """out's 2x2 tiles t0, t0 + 1, ... = A^T m A + bias, cropped to out, where
    A^T = [[1, 1, 1, 0], [0, 1, -1, -1]]. Returns whether every output written is finite."""
    _, Ho, Wo, K = out.shape
    q = np.empty((2, 4, K), M.dtype)
    check = np.zeros(K, M.dtype)  # 0 * each output: NaN where an output is not finite
    for t in range(M.shape[1]):
        n, r = divmod(t0 + t, th * tw)
        a, b = divmod(r, tw)
        for j in range(4):
            for o in range(K):
                m1, m2 = M[4 + j, t, o], M[8 + j, t, o]
                q[0, j, o] = M[j, t, o] + m1 + m2
                q[1, j, o] = m1 - m2 - M[12 + j, t, o]
        for i in range(2):
            h = 2 * a + i
            if h < Ho:
                w = 2 * b
                for o in range(K):
                    y = q[i, 0, o] + q[i, 1, o] + q[i, 2, o] + bias[o]
                    out[n, h, w, o] = y
                    check[o] += y * 0
                if w + 1 < Wo:
                    for o in range(K):
                        y = q[i, 1, o] - q[i, 2, o] - q[i, 3, o] + bias[o]
                        out[n, h, w + 1, o] = y
                        check[o] += y * 0
    return not np.isnan(check).any()


@numba.njit(cache=True, error_model="numpy", nogil=True)
def _output_grad_tiles(g, th, tw, t0, M):  # pragma: no cover - compiled
    """The adjoint of _output_tiles: M[xi, t] = (A dY A^T)[xi] for the tiles t0, t0 + 1, ...,
    dY the tile's 2x2 block of g (zero where the tile passes g's edge)."""
    _, Ho, Wo, K = g.shape
    p = np.empty((4, 2, K), g.dtype)
    for t in range(M.shape[1]):
        n, r = divmod(t0 + t, th * tw)
        a, b = divmod(r, tw)
        for s in range(2):  # A along the rows of dY
            w = 2 * b + s
            for o in range(K):
                y0 = g[n, 2 * a, w, o] if w < Wo else 0
                y1 = g[n, 2 * a + 1, w, o] if w < Wo and 2 * a + 1 < Ho else 0
                p[0, s, o] = y0
                p[1, s, o] = y0 + y1
                p[2, s, o] = y0 - y1
                p[3, s, o] = -y1
        for i in range(4):  # and A^T along its columns
            for o in range(K):
                z0, z1 = p[i, 0, o], p[i, 1, o]
                M[4 * i, t, o] = z0
                M[4 * i + 1, t, o] = z0 + z1
                M[4 * i + 2, t, o] = z0 - z1
                M[4 * i + 3, t, o] = -z1
