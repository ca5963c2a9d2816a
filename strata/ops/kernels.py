"""Loops compiled by numba for the convolution, pooling, batch-norm and ReLU ops (NHWC,
C-contiguous arrays).

NumPy has no fast scatter-add of overlapping windows (col2im) nor a windowed argmax; written as
plain loops and compiled, they run 5-30x faster than the NumPy formulations (PERF_NOTES). The
forward patch copy (im2col) stays in NumPy, whose strided copies are faster than a loop here.
The kernels run on the calling thread (no numba thread pool): OpenBLAS keeps its worker
threads spinning for a while after each GEMM, and a second pool competing with them for the
cores made a LeNet-5 training step 2-4x slower on a 2-core machine. Those that run on parts of a
batch split across Python threads (strata.ops.parallel: conv2d's, batch norm's, ReLU's)
release the GIL (nogil).
error_model="numpy"
(division by zero gives inf, as in NumPy, instead of raising) lets LLVM vectorize the loops:
Python's error model kept them scalar, 3-4x slower. Likewise an index numba cannot prove
non-negative (e.g. h * s + i) gets a wraparound test that stops vectorization: inner loops
index slices with plain range variables (10x on the direct convolution) or flat arrays with
unsigned (np.uint64) indices (2.3x on col2im).
Compiled once per dtype and cached on disk (the first call takes a second or two).
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, error_model="numpy", nogil=True)
def col2im(dcols, xp_shape, fh, fw, s, Ho, Wo):  # pragma: no cover - compiled
    """The adjoint of im2col: add every patch row back into the padded input's shape. Each
    kernel row of a patch (fw pixels of C channels) is one contiguous run in both arrays, added
    as one vectorized loop; the flat indices are unsigned, so numba adds no wraparound test for
    negative indices (which kept the loop scalar: 2.3x slower at LeNet-5's C = 6)."""
    N, Hp, Wp, C = xp_shape
    flat = np.zeros(N * Hp * Wp * C, dcols.dtype)  # a new array: no aliasing, vectorized loop
    src = dcols.reshape(-1)
    width, run = dcols.shape[1], fw * C
    for n in range(N):
        for h in range(Ho):
            for w in range(Wo):
                row = (n * Ho + h) * Wo + w
                for i in range(fh):
                    dst = np.uint64(((n * Hp + h * s + i) * Wp + w * s) * C)
                    start = np.uint64(row * width + i * run)
                    for t in range(run):
                        flat[dst + np.uint64(t)] += src[start + np.uint64(t)]
    return flat.reshape((N, Hp, Wp, C))


@numba.njit(cache=True, error_model="numpy", nogil=True)
def add_bias(out, b):  # pragma: no cover - compiled
    """out[m, k] += b[k] in place, returning out (NumPy's broadcast add is slow on narrow rows)."""
    M, K = out.shape
    for m in range(M):
        for k in range(K):
            out[m, k] += b[k]
    return out


@numba.njit(cache=True, error_model="numpy")
def max_pool(xp, fh, fw, s, Ho, Wo):  # pragma: no cover - compiled
    """Windowed maximum and the flat (row * Wp + col) position of the maximum (flat unsigned
    indices, as in ``col2im``): the first maximum, or the last NaN, which wins as in np.max
    (and PyTorch's choice of index, so the NaN gets the gradient)."""
    N, Hp, Wp, C = xp.shape
    flat = xp.reshape(-1)
    out = np.empty(N * Ho * Wo * C, xp.dtype)
    arg = np.empty(N * Ho * Wo * C, np.int32)  # a flat position within one image
    k = np.uint64(0)
    for n in range(N):
        for h in range(Ho):
            for w in range(Wo):
                corner = np.uint64(((n * Hp + h * s) * Wp + w * s) * C)
                position = h * s * Wp + w * s
                # Bitwise |, not `or`: a short-circuit branch kept the loops 3x slower.
                if C >= 8:  # channels innermost: vectorized, 3-4x faster at 16-64 channels
                    for c in range(C):
                        out[k + np.uint64(c)] = flat[corner + np.uint64(c)]
                        arg[k + np.uint64(c)] = position
                    for i in range(fh):
                        for j in range(fw):
                            src, here = corner + np.uint64((i * Wp + j) * C), position + i * Wp + j
                            for c in range(C):
                                value, best = flat[src + np.uint64(c)], out[k + np.uint64(c)]
                                take = (value > best) | (value != value)
                                out[k + np.uint64(c)] = value if take else best
                                arg[k + np.uint64(c)] = here if take else arg[k + np.uint64(c)]
                else:  # too few channels to fill a vector: one window at a time
                    for c in range(C):
                        best, where = flat[corner + np.uint64(c)], position
                        for i in range(fh):
                            for j in range(fw):
                                value = flat[corner + np.uint64((i * Wp + j) * C + c)]
                                if (value > best) | (value != value):
                                    best, where = value, position + i * Wp + j
                        out[k + np.uint64(c)] = best
                        arg[k + np.uint64(c)] = where
                k += np.uint64(C)
    return out.reshape((N, Ho, Wo, C)), arg.reshape((N, Ho, Wo, C))


@numba.njit(cache=True, error_model="numpy")
def max_pool_backward(g, arg, xp_shape):  # pragma: no cover - compiled
    """Route each output gradient to the input element that was the window's maximum."""
    N, Hp, Wp, C = xp_shape
    dxp = np.zeros(N * Hp * Wp * C, g.dtype)
    g_flat, arg_flat = g.reshape(-1), arg.reshape(-1)
    per_image = g.shape[1] * g.shape[2]
    k = np.uint64(0)
    for n in range(N):
        image = np.uint64(n * Hp * Wp * C)
        for _ in range(per_image):
            for c in range(C):
                dxp[image + np.uint64(arg_flat[k]) * np.uint64(C) + np.uint64(c)] += g_flat[k]
                k += np.uint64(1)
    return dxp.reshape((N, Hp, Wp, C))


@numba.njit(cache=True, error_model="numpy")
def avg_pool(xp, count, fh, fw, s, Ho, Wo):  # pragma: no cover - compiled
    """Windowed sum divided by ``count[h, w]``, the number of real (unpadded) inputs."""
    N, Hp, Wp, C = xp.shape
    flat = xp.reshape(-1)
    out = np.zeros(N * Ho * Wo * C, xp.dtype)
    for n in range(N):
        for h in range(Ho):
            for w in range(Wo):
                o = np.uint64(((n * Ho + h) * Wo + w) * C)
                corner = np.uint64(((n * Hp + h * s) * Wp + w * s) * C)
                for i in range(fh):
                    for j in range(fw):
                        src = corner + np.uint64((i * Wp + j) * C)
                        for c in range(C):
                            out[o + np.uint64(c)] += flat[src + np.uint64(c)]
                for c in range(C):
                    out[o + np.uint64(c)] /= count[h, w]
    return out.reshape((N, Ho, Wo, C))


@numba.njit(cache=True, error_model="numpy")
def avg_pool_backward(g, count, xp_shape, fh, fw, s):  # pragma: no cover - compiled
    """Spread each output gradient evenly over the real inputs of its window."""
    N, Hp, Wp, C = xp_shape
    Ho, Wo = g.shape[1], g.shape[2]
    dxp = np.zeros(N * Hp * Wp * C, g.dtype)
    g_flat = g.reshape(-1)
    for n in range(N):
        for h in range(Ho):
            for w in range(Wo):
                o = np.uint64(((n * Ho + h) * Wo + w) * C)
                corner = np.uint64(((n * Hp + h * s) * Wp + w * s) * C)
                for i in range(fh):
                    for j in range(fw):
                        dst = corner + np.uint64((i * Wp + j) * C)
                        for c in range(C):
                            dxp[dst + np.uint64(c)] += g_flat[o + np.uint64(c)] / count[h, w]
    return dxp.reshape((N, Hp, Wp, C))


# The batch-norm and ReLU loops below work on rows [start, stop) of flat or (rows, features)
# arrays and write into arrays the caller made, so that strata.ops.parallel.over_rows can run
# them on parts of a large batch at once (nogil); sums come back per part.

@numba.njit(cache=True, error_model="numpy", nogil=True)
def column_sums(x2, shift, start, stop):  # pragma: no cover - compiled
    """Per column, over rows [start, stop): sum of (x - shift) and of its square, in float64."""
    C = x2.shape[1]
    sums = np.zeros((2, C))
    for r in range(start, stop):
        for c in range(C):
            d = x2[r, c] - shift[c]
            sums[0, c] += d
            sums[1, c] += d * d
    return sums


@numba.njit(cache=True, error_model="numpy", nogil=True)
def normalize(x2, mean, inv_std, gamma, beta, relu, out, x_hat, start,
              stop):  # pragma: no cover - compiled
    """x_hat = (x - mean) * inv_std and out = gamma * x_hat + beta, then max(out, 0) when
    ``relu`` (NaN stays NaN), rows [start, stop)."""
    C = x2.shape[1]
    for r in range(start, stop):
        for c in range(C):
            v = (x2[r, c] - mean[c]) * inv_std[c]
            x_hat[r, c] = v
            o = v * gamma[c] + beta[c]
            out[r, c] = 0 if relu and o <= 0 else o


@numba.njit(cache=True, error_model="numpy", nogil=True)
def normalize_sums(g2, x_hat, out, relu, start, stop):  # pragma: no cover - compiled
    """dgamma = sum g * x_hat and dbeta = sum g over rows [start, stop), as rows of (2, C);
    with ``relu``, g is 0 where the output ``out`` was <= 0 (relu's backward, fused)."""
    C = g2.shape[1]
    sums = np.zeros((2, C))
    for r in range(start, stop):
        for c in range(C):
            g = 0 if relu and out[r, c] <= 0 else g2[r, c]
            sums[0, c] += g * x_hat[r, c]
            sums[1, c] += g
    return sums


@numba.njit(cache=True, error_model="numpy", nogil=True)
def normalize_backward(g2, x_hat, out, relu, scale, dgamma, dbeta, training, dx, start,
                       stop):  # pragma: no cover - compiled
    """dx of rows [start, stop): through the batch statistics when training,
    scale / M * (M g - dbeta - x_hat dgamma), else g * scale; scale = gamma / sigma; with
    ``relu``, g is 0 where the output ``out`` was <= 0."""
    M, C = g2.shape
    for r in range(start, stop):
        for c in range(C):
            g = 0 if relu and out[r, c] <= 0 else g2[r, c]
            if training:
                dx[r, c] = scale[c] / M * (M * g - dbeta[c] - x_hat[r, c] * dgamma[c])
            else:
                dx[r, c] = g * scale[c]


@numba.njit(cache=True, error_model="numpy", nogil=True)
def relu(a, out, start, stop):  # pragma: no cover - compiled
    """out = max(a, 0) on the flat range [start, stop) (NaN stays NaN)."""
    for k in range(start, stop):
        v = a[k]
        out[k] = 0 if v <= 0 else v


@numba.njit(cache=True, error_model="numpy", nogil=True)
def relu_backward(g, out, dx, start, stop):  # pragma: no cover - compiled
    """dx = g where the output was positive or NaN (relu passed the NaN on, so its gradient
    passes too, as in PyTorch), else 0, on the flat range [start, stop)."""
    for k in range(start, stop):
        dx[k] = 0 if out[k] <= 0 else g[k]


# Direct convolution for one input channel (stride 1; conv2d uses it for n_C_prev = 1, the
# loops accept any): a GEMM over patches with an inner size of f*f (25 for LeNet-5's first
# layer) is memory-bound on its patch matrix, and the patch copy costs as much again. Here
# each output row (n_W * n_C contiguous floats) is summed as f*f*n_C_prev shifted
# multiply-adds: each input row is expanded so that its pixel w sits at w*n_C + o for every
# output channel o ("wide" below), and shifting by j pixels is then shifting by j*n_C floats.
# The arrays are indexed flat with unsigned offsets: no wraparound test, and no array view
# made per shifted row (slicing a view per row cost 10-13 % of the kernel).

@numba.njit(cache=True, error_model="numpy")
def _widen(x, src, Wp, C, n_c, wide, dst):  # pragma: no cover - compiled
    """wide[dst + (c*Wp + w)*n_c + o] = x[src + w*C + c] for every output channel o < n_c:
    one input row (Wp pixels of C channels, starting at flat offset ``src``) widened."""
    for c in range(C):
        for w in range(Wp):
            v, start = x[src + np.uint64(w * C + c)], dst + np.uint64((c * Wp + w) * n_c)
            for o in range(n_c):
                wide[start + np.uint64(o)] = v


@numba.njit(cache=True, error_model="numpy", nogil=True)
def conv_direct(xp, W, b, out):  # pragma: no cover - compiled
    """Stride-1 cross-correlation of padded NHWC ``xp`` with W (fh, fw, C, n_c), plus b, into
    the contiguous ``out`` (N, Ho, Wo, n_c); releases the GIL, so that parts of a batch run
    on several threads (parallel.over_images)."""
    N, Hp, Wp, C = xp.shape
    fh, fw, _, n_c = W.shape
    Ho, Wo = Hp - fh + 1, Wp - fw + 1
    run, row = Wo * n_c, C * Wp * n_c  # floats per output row, per widened input row
    tiled = np.empty((fh, fw, C, run), W.dtype)  # tiled[i, j, c, w*n_c + o] = W[i, j, c, o]
    bias = np.empty(run, W.dtype)
    for w in range(Wo):
        tiled[:, :, :, w * n_c:(w + 1) * n_c] = W
        bias[w * n_c:(w + 1) * n_c] = b
    tiled, x, result = tiled.reshape(-1), xp.reshape(-1), out.reshape(-1)
    wide = np.empty(fh * row, xp.dtype)  # the last fh input rows, widened, in a ring
    for n in range(N):
        for i in range(fh - 1):  # the rows before the first output row's last
            _widen(x, np.uint64((n * Hp + i) * Wp * C), Wp, C, n_c, wide, np.uint64(i * row))
        for h in range(Ho):
            last = h + fh - 1
            _widen(x, np.uint64((n * Hp + last) * Wp * C), Wp, C, n_c, wide,
                   np.uint64((last % fh) * row))
            acc = np.uint64((n * Ho + h) * run)
            for t in range(run):
                result[acc + np.uint64(t)] = bias[t]
            for i in range(fh):
                for c in range(C):
                    for j in range(fw):
                        xs = np.uint64(((h + i) % fh) * row + (c * Wp + j) * n_c)
                        ws = np.uint64(((i * fw + j) * C + c) * run)
                        for t in range(run):
                            result[acc + np.uint64(t)] += wide[xs + np.uint64(t)] * tiled[
                                ws + np.uint64(t)]
    return out


@numba.njit(cache=True, error_model="numpy", nogil=True)
def conv_direct_kernel_grad(xp, g, fh, fw):  # pragma: no cover - compiled
    """dW (fh, fw, C, n_c) of ``conv_direct``: the sum over (n, h, w) of xp patch * dZ."""
    N, Hp, Wp, C = xp.shape
    _, Ho, Wo, n_c = g.shape
    run, row = Wo * n_c, C * Wp * n_c
    acc = np.zeros(fh * fw * C * run, g.dtype)  # summed over the n_W positions at the end
    wide = np.empty(Hp * row, xp.dtype)
    x, dz = xp.reshape(-1), g.reshape(-1)
    for n in range(N):
        for r in range(Hp):
            _widen(x, np.uint64((n * Hp + r) * Wp * C), Wp, C, n_c, wide, np.uint64(r * row))
        for i in range(fh):
            for c in range(C):
                for j in range(fw):
                    a = np.uint64(((i * fw + j) * C + c) * run)
                    for h in range(Ho):
                        xs = np.uint64((h + i) * row + (c * Wp + j) * n_c)
                        gs = np.uint64((n * Ho + h) * run)
                        for t in range(run):
                            acc[a + np.uint64(t)] += wide[xs + np.uint64(t)] * dz[gs + np.uint64(t)]
    return acc.reshape((fh, fw, C, Wo, n_c)).sum(axis=3)
