"""The kernel families on NumPy arrays (strata.ops.dispatch picks this module for them): numba
loops from kernels.py and recurrent_kernels.py, the large batches of batch norm and ReLU split
across threads (parallel.over_rows), and conv2d's GEMM routes (conv.Conv2D).
xp_kernels.py offers the same names for other array modules.
"""

from __future__ import annotations

import numpy as np

from strata.ops import kernels, parallel
from strata.ops.conv import Conv2D
from strata.ops.kernels import avg_pool, avg_pool_backward, max_pool, max_pool_backward
from strata.ops.recurrent_kernels import (
    gru_after_backward_step,
    gru_after_forward_step,
    gru_backward_candidate,
    gru_backward_reset,
    gru_candidate,
    gru_gates,
    lstm_backward_step,
    lstm_forward_step,
    rnn_backward_step,
    rnn_forward_step,
    scatter_rows,
)

__all__ = ["Conv2D", "avg_pool", "avg_pool_backward", "column_moments", "gru_after_backward_step",
           "gru_after_forward_step", "gru_backward_candidate", "gru_backward_reset",
           "gru_candidate", "gru_gates", "lstm_backward_step", "lstm_forward_step", "max_pool",
           "max_pool_backward", "normalize", "normalize_backward", "relu", "relu_backward",
           "rnn_backward_step", "rnn_forward_step", "scatter_rows"]


# ReLU: one pass each way (numba loops on the flat arrays): NumPy's maximum plus a saved mask
# took two passes forward, and both were slower. Large arrays are split across threads.

def relu(a):
    """max(a, 0) (NaN stays NaN), a new array of a's shape."""
    flat = np.ascontiguousarray(a).reshape(-1)
    out = np.empty_like(flat)
    parallel.over_rows(lambda start, stop: kernels.relu(flat, out, start, stop),
                       flat.size, flat.size)
    return out.reshape(np.shape(a))


def relu_backward(g, out):
    """g where relu's output ``out`` was positive or NaN, else 0."""
    shape, flat_out = np.shape(g), out.reshape(-1)
    g = np.ascontiguousarray(g).reshape(-1)
    dx = np.empty_like(g)
    parallel.over_rows(lambda start, stop: kernels.relu_backward(g, flat_out, dx, start, stop),
                       g.size, g.size)
    return dx.reshape(shape)


# Batch norm: fused loops on the (rows, features) view, one pass to normalize, one to reduce
# and one to write dx, instead of NumPy's eight or so.

def column_moments(x2):
    """Mean and population variance of each column of (rows, features) ``x2``, accumulated in
    float64 from values shifted by the first row (for accuracy)."""
    M = x2.shape[0]
    shift = x2[0].astype(np.float64)
    # A non-finite shift would turn an inf column's mean into inf - inf = NaN (NumPy: inf).
    shift[~np.isfinite(shift)] = 0.0
    sums = sum(parallel.over_rows(
        lambda start, stop: kernels.column_sums(x2, shift, start, stop), M, x2.size))
    mean_shifted = sums[0] / M
    return shift + mean_shifted, np.maximum(sums[1] / M - mean_shifted * mean_shifted, 0.0)


def normalize(x2, mean, inv_std, gamma, beta, relu=False):
    """(out, x_hat): x_hat = (x - mean) * inv_std and out = gamma * x_hat + beta, then
    max(out, 0) when ``relu``."""
    out, x_hat = np.empty_like(x2), np.empty_like(x2)
    parallel.over_rows(lambda start, stop: kernels.normalize(
        x2, mean, inv_std, gamma, beta, relu, out, x_hat, start, stop), len(x2), x2.size)
    return out, x_hat


def normalize_backward(g2, x_hat, scale, training, out=None):
    """(dx, dgamma, dbeta), the sums in float64: dx through the batch statistics when
    training, else g * scale (scale = gamma / sigma). Given the forward's relu ``out``, g is
    first zeroed where it was <= 0."""
    relu, out = out is not None, x_hat if out is None else out
    dgamma, dbeta = sum(parallel.over_rows(
        lambda start, stop: kernels.normalize_sums(g2, x_hat, out, relu, start, stop), len(g2),
        g2.size))
    dx = np.empty_like(g2)
    parallel.over_rows(lambda start, stop: kernels.normalize_backward(
        g2, x_hat, out, relu, scale, dgamma, dbeta, training, dx, start, stop), len(g2), g2.size)
    return dx, dgamma, dbeta
