"""Loops compiled by numba for the convolution and pooling ops (NHWC, C-contiguous arrays).

NumPy has no fast scatter-add of overlapping windows (col2im) nor a windowed argmax; written as
plain loops and compiled, they run 5-30x faster than the NumPy formulations (PERF_NOTES). The
forward patch copy (im2col) stays in NumPy, whose strided copies are faster than a loop here.
The kernels run on the calling thread (no numba thread pool): OpenBLAS keeps its worker
threads spinning for a while after each GEMM, and a second pool competing with them for the
cores made a LeNet-5 training step 2-4x slower on a 2-core machine. error_model="numpy"
(division by zero gives inf, as in NumPy, instead of raising) lets LLVM vectorize the loops:
Python's error model kept them scalar, 3-4x slower.
Compiled once per dtype and cached on disk (the first call takes a second or two).
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, error_model="numpy")
def col2im(dcols, xp_shape, fh, fw, s, Ho, Wo):  # pragma: no cover - compiled
    """The adjoint of im2col: add every patch row back into the padded input's shape."""
    N, Hp, Wp, C = xp_shape
    dxp = np.zeros((N, Hp, Wp, C), dcols.dtype)
    for n in range(N):
        for h in range(Ho):
            for w in range(Wo):
                row = (n * Ho + h) * Wo + w
                for i in range(fh):
                    for j in range(fw):
                        base = (i * fw + j) * C
                        for c in range(C):
                            dxp[n, h * s + i, w * s + j, c] += dcols[row, base + c]
    return dxp


@numba.njit(cache=True, error_model="numpy")
def col2im_rows(dcols, xp_shape, fh, fw, s, Ho, Wo):  # pragma: no cover - compiled
    """col2im for few channels: each kernel row of a patch (fw pixels of C channels) is one
    contiguous run in both arrays, added as one vectorizable loop (1.5x faster at C = 6;
    with many channels the per-channel loop of ``col2im`` is faster)."""
    N, Hp, Wp, C = xp_shape
    dxp = np.zeros(N * Hp * Wp * C, dcols.dtype)
    run = fw * C
    for n in range(N):
        for h in range(Ho):
            for w in range(Wo):
                row = (n * Ho + h) * Wo + w
                for i in range(fh):
                    dst = ((n * Hp + h * s + i) * Wp + w * s) * C
                    for t in range(run):
                        dxp[dst + t] += dcols[row, i * run + t]
    return dxp.reshape((N, Hp, Wp, C))


@numba.njit(cache=True, error_model="numpy")
def add_bias(out, b):  # pragma: no cover - compiled
    """out[m, k] += b[k] in place, returning out (NumPy's broadcast add is slow on narrow rows)."""
    M, K = out.shape
    for m in range(M):
        for k in range(K):
            out[m, k] += b[k]
    return out


@numba.njit(cache=True, error_model="numpy")
def max_pool(xp, fh, fw, s, Ho, Wo):  # pragma: no cover - compiled
    """Windowed maximum and the flat (row * Wp + col) position of the first maximum."""
    N, _, Wp, C = xp.shape
    out = np.empty((N, Ho, Wo, C), xp.dtype)
    arg = np.empty((N, Ho, Wo, C), np.int64)
    for n in range(N):
        for h in range(Ho):
            for w in range(Wo):
                for c in range(C):
                    best, where = xp[n, h * s, w * s, c], h * s * Wp + w * s
                    for i in range(fh):
                        for j in range(fw):
                            value = xp[n, h * s + i, w * s + j, c]
                            if value > best:
                                best, where = value, (h * s + i) * Wp + w * s + j
                    out[n, h, w, c] = best
                    arg[n, h, w, c] = where
    return out, arg


@numba.njit(cache=True, error_model="numpy")
def max_pool_backward(g, arg, xp_shape):  # pragma: no cover - compiled
    """Route each output gradient to the input element that was the window's maximum."""
    N, Hp, Wp, C = xp_shape
    dxp = np.zeros((N, Hp * Wp, C), g.dtype)
    Ho, Wo = g.shape[1], g.shape[2]
    for n in range(N):
        for h in range(Ho):
            for w in range(Wo):
                for c in range(C):
                    dxp[n, arg[n, h, w, c], c] += g[n, h, w, c]
    return dxp.reshape((N, Hp, Wp, C))


@numba.njit(cache=True, error_model="numpy")
def avg_pool(xp, count, fh, fw, s, Ho, Wo):  # pragma: no cover - compiled
    """Windowed sum divided by ``count[h, w]``, the number of real (unpadded) inputs."""
    N, _, _, C = xp.shape
    out = np.zeros((N, Ho, Wo, C), xp.dtype)
    for n in range(N):
        for h in range(Ho):
            for w in range(Wo):
                for i in range(fh):
                    for j in range(fw):
                        out[n, h, w, :] += xp[n, h * s + i, w * s + j, :]
                out[n, h, w, :] /= count[h, w]
    return out


@numba.njit(cache=True, error_model="numpy")
def avg_pool_backward(g, count, xp_shape, fh, fw, s):  # pragma: no cover - compiled
    """Spread each output gradient evenly over the real inputs of its window."""
    N, Hp, Wp, C = xp_shape
    Ho, Wo = g.shape[1], g.shape[2]
    dxp = np.zeros((N, Hp, Wp, C), g.dtype)
    for n in range(N):
        for h in range(Ho):
            for w in range(Wo):
                share = g[n, h, w, :] / count[h, w]
                for i in range(fh):
                    for j in range(fw):
                        dxp[n, h * s + i, w * s + j, :] += share
    return dxp


@numba.njit(cache=True, error_model="numpy")
def _column_sums(x2, shift):  # pragma: no cover - compiled
    """Per column: sum of (x - shift) and of its square, accumulated in float64."""
    M, C = x2.shape
    sums = np.zeros((2, C))
    for r in range(M):
        for c in range(C):
            d = x2[r, c] - shift[c]
            sums[0, c] += d
            sums[1, c] += d * d
    return sums


def column_moments(x2):
    """Mean and population variance of each column (shifted by the first row, for accuracy)."""
    M = x2.shape[0]
    shift = x2[0].astype(np.float64)
    sums = _column_sums(x2, shift)
    mean_shifted = sums[0] / M
    return shift + mean_shifted, np.maximum(sums[1] / M - mean_shifted * mean_shifted, 0.0)


@numba.njit(cache=True, error_model="numpy")
def normalize(x2, mean, inv_std, gamma, beta):  # pragma: no cover - compiled
    """x_hat = (x - mean) * inv_std and gamma * x_hat + beta, in one pass."""
    M, C = x2.shape
    x_hat, out = np.empty_like(x2), np.empty_like(x2)
    for r in range(M):
        for c in range(C):
            v = (x2[r, c] - mean[c]) * inv_std[c]
            x_hat[r, c] = v
            out[r, c] = v * gamma[c] + beta[c]
    return out, x_hat


@numba.njit(cache=True, error_model="numpy")
def normalize_backward(g2, x_hat, scale, training):  # pragma: no cover - compiled
    """dgamma = sum g * x_hat, dbeta = sum g, and dx (through the batch statistics when
    training: scale / M * (M g - dbeta - x_hat dgamma); else g * scale), scale = gamma/sigma."""
    M, C = g2.shape
    sums = np.zeros((2, C))
    for r in range(M):
        for c in range(C):
            sums[0, c] += g2[r, c] * x_hat[r, c]
            sums[1, c] += g2[r, c]
    dgamma, dbeta = sums[0], sums[1]
    dx = np.empty_like(g2)
    for r in range(M):
        for c in range(C):
            if training:
                dx[r, c] = scale[c] / M * (M * g2[r, c] - dbeta[c] - x_hat[r, c] * dgamma[c])
            else:
                dx[r, c] = g2[r, c] * scale[c]
    return dx, dgamma, dbeta
