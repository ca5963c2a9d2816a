"""The kernel families as array-module expressions, for arrays that are not NumPy's (CuPy on a
GPU; the test suite's strict stand-in for it). strata.ops.dispatch picks these; they take the
arguments of the numba versions (cpu_kernels.py) and compute the same values, each loop
written as a few whole-array expressions of the module ``xp`` the arrays belong to.

Convolution is im2col: the f*f shifted views of the padded input copied side by side into
one patch matrix and one GEMM (cuBLAS on a GPU); its backward scatters the patch gradients
back with f*f strided additions. Pooling likewise loops over the f*f window offsets, never
over pixels. The recurrent step kernels are in xp_recurrent.py.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from strata.autograd import Function
from strata.backend import array_module
from strata.ops import xp_recurrent
from strata.ops.conv import crop, pad_images


def _window(a, i, j, s, Ho, Wo):
    """The (m, Ho, Wo, C) strided view of padded images ``a`` at window offset (i, j)."""
    return a[:, i:i + s * (Ho - 1) + 1:s, j:j + s * (Wo - 1) + 1:s, :]


class Conv2D(Function):
    """conv2d on any array module: im2col and one GEMM (see the module docstring)."""

    def forward(self, x, W, b=None, *, stride, pads, out_hw):
        xp = array_module(x)
        fh, fw, n_c_prev, n_c = W.shape
        (Ho, Wo), s = out_hw, stride
        xp_ = pad_images(x, pads)
        self.xp_shape, self.pads, self.stride, self.W = xp_.shape, pads, stride, W
        cols = xp.empty((len(x), Ho, Wo, fh, fw, n_c_prev), np.result_type(x.dtype, W.dtype))
        for i in range(fh):
            for j in range(fw):
                cols[:, :, :, i, j, :] = _window(xp_, i, j, s, Ho, Wo)
        self.cols = cols.reshape(len(x) * Ho * Wo, fh * fw * n_c_prev)
        out = self.cols @ W.reshape(-1, n_c)
        if b is not None:
            out += b
        return out.reshape(len(x), Ho, Wo, n_c)

    def backward(self, g):
        need_x, need_W, *need_b = self.needs_input_grad
        xp = array_module(g)
        fh, fw, n_c_prev, n_c = self.W.shape
        g2 = g.reshape(-1, n_c)
        dW = (self.cols.T @ g2).reshape(self.W.shape) if need_W else None
        dx = None
        if need_x:
            Ho, Wo = g.shape[1:3]
            dcols = (g2 @ self.W.reshape(-1, n_c).T).reshape(len(g), Ho, Wo, fh, fw, n_c_prev)
            dxp = xp.zeros(self.xp_shape, dcols.dtype)
            for i in range(fh):
                for j in range(fw):
                    _window(dxp, i, j, self.stride, Ho, Wo)[...] += dcols[:, :, :, i, j, :]
            dx = crop(dxp, self.pads)
        if not need_b:
            return dx, dW
        return dx, dW, g2.sum(axis=0) if need_b[0] else None


class XpKernels:
    """The kernel families of strata.ops.dispatch for the array module ``xp``."""

    Conv2D = Conv2D

    def __init__(self, xp):
        self.xp = xp
        for name in xp_recurrent.__all__:  # the recurrent steps, bound to this module
            setattr(self, name, getattr(xp_recurrent, name))

    # --- ReLU ---------------------------------------------------------------------------------
    def relu(self, a):
        """max(a, 0), NaN passed on."""
        return self.xp.where(a <= 0, a.dtype.type(0), a)

    def relu_backward(self, g, out):
        """g where the output was positive or NaN, else 0."""
        return self.xp.where(out <= 0, g.dtype.type(0), g)

    # --- batch norm ---------------------------------------------------------------------------
    def column_moments(self, x2):
        """Per-column mean and population variance in float64, shifted by the first row."""
        xp, M = self.xp, x2.shape[0]
        shift = x2[0].astype(np.float64)
        shift = xp.where(xp.isfinite(shift), shift, 0.0)
        d = x2.astype(np.float64) - shift
        mean_shifted = d.sum(axis=0) / M
        var = (d * d).sum(axis=0) / M - mean_shifted * mean_shifted
        return shift + mean_shifted, xp.maximum(var, 0.0)

    def normalize(self, x2, mean, inv_std, gamma, beta, relu=False):
        """(out, x_hat) of batch norm's forward, then max(out, 0) when ``relu``."""
        x_hat = (x2 - mean) * inv_std
        out = x_hat * gamma + beta
        return (self.relu(out) if relu else out), x_hat

    def normalize_backward(self, g2, x_hat, scale, training, out=None):
        """(dx, dgamma, dbeta), the sums in float64; g zeroed first where the forward's relu
        ``out`` (when given) was <= 0."""
        if out is not None:
            g2 = self.relu_backward(g2, out)
        dgamma = (g2 * x_hat).sum(axis=0, dtype=np.float64)
        dbeta = g2.sum(axis=0, dtype=np.float64)
        if not training:
            return g2 * scale, dgamma, dbeta
        M = g2.shape[0]
        dx = scale.astype(np.float64) / M * (M * g2 - dbeta - x_hat * dgamma)
        return dx.astype(g2.dtype), dgamma, dbeta

    # --- pooling ------------------------------------------------------------------------------
    def max_pool(self, xp_, fh, fw, s, Ho, Wo):
        """(windowed maximum, where it was: the first maximum or the last NaN)."""
        xp = self.xp
        best = _window(xp_, 0, 0, s, Ho, Wo).copy()
        offset = xp.zeros(best.shape, np.int32)
        for k in range(1, fh * fw):
            value = _window(xp_, k // fw, k % fw, s, Ho, Wo)
            take = (value > best) | xp.isnan(value)
            best = xp.where(take, value, best)
            offset = xp.where(take, np.int32(k), offset)
        return best, _Argmax(offset, fw, fh * fw, s)

    def max_pool_backward(self, g, arg, xp_shape):
        """Each output gradient routed to its window's maximum."""
        dxp = self.xp.zeros(xp_shape, g.dtype)
        zero, (Ho, Wo) = g.dtype.type(0), g.shape[1:3]
        for k in range(arg.window):
            _window(dxp, k // arg.fw, k % arg.fw, arg.s, Ho, Wo)[...] += self.xp.where(
                arg.offset == k, g, zero)
        return dxp

    def avg_pool(self, xp_, count, fh, fw, s, Ho, Wo):
        """Windowed sums divided by the number of real inputs ``count`` (Ho, Wo)."""
        out = self.xp.zeros((len(xp_), Ho, Wo, xp_.shape[3]), xp_.dtype)
        for i in range(fh):
            for j in range(fw):
                out += _window(xp_, i, j, s, Ho, Wo)
        out /= self.xp.asarray(count)[None, :, :, None]
        return out

    def avg_pool_backward(self, g, count, xp_shape, fh, fw, s):
        """Each output gradient spread evenly over its window's real inputs."""
        dxp = self.xp.zeros(xp_shape, g.dtype)
        share = g / self.xp.asarray(count)[None, :, :, None]
        for i in range(fh):
            for j in range(fw):
                _window(dxp, i, j, s, *g.shape[1:3])[...] += share
        return dxp

    # --- embedding ----------------------------------------------------------------------------
    def scatter_rows(self, ids, g, vocab_size):
        """dE[v] = sum of the rows g[k] with ids[k] == v."""
        dE = self.xp.zeros((vocab_size, g.shape[1]), g.dtype)
        self.xp.add.at(dE, ids, g)
        return dE


class _Argmax(NamedTuple):
    """max_pool's record of each maximum: its window offset i * fw + j, and the window."""

    offset: object
    fw: int
    window: int
    s: int
