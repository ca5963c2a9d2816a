"""Per-time-step loops of the recurrent ops, compiled by numba (time-major (m, n) slices).

Each forward kernel takes the step's pre-activations (the input projection x<t> W_x of every
time step, computed before the loop in one GEMM, and the recurrent product a<t-1> W_a of this
step) and applies the gates, the cell update and the mask in one pass; each backward kernel
turns the gradient arriving at a<t> (and c<t>) into the step's pre-activation gradients dZ,
which the caller stacks for the weight gradients' single GEMM after the loop.

float32 uses a rational approximation of tanh (Eigen's, within a few ulp, NaN and +-inf as
np.tanh; sigmoid(z) = (1 + tanh(z / 2)) / 2) that LLVM vectorizes: libm's scalar exp and tanh
made a step 3-4x slower. float64, which gradient checks use, keeps NumPy's tanh. Serial, numpy
error model: see strata/ops/kernels.py for why.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from numba import types
from numba.extending import overload

_NJIT = {"cache": True, "error_model": "numpy", "fastmath": {"contract"}}


def tanh(x):
    """tanh, specialized by the compiler for the argument's dtype (see _tanh_impl)."""
    return np.tanh(x)


def _rational_tanh32(x):  # pragma: no cover - compiled
    # Eigen's ptanh_float: an odd 13/6 rational fitted on [-7.9053, 7.9053], used up to
    # |x| = 8 (within 4 ulp of tanh: checked on every float32 in [7.5, 8.5]); beyond, +-1,
    # tanh within 4 ulp and exactly from 9.02 on, infinities included. Selecting on
    # `not (|x| > 8)` lets NaN through, since every comparison with NaN is False; Eigen's
    # clamp (x if x < 7.9053 else 7.9053) turned NaN into its bound, and was slower.
    x2 = x * x
    p = np.float32(-2.76076847742355e-16)
    p = p * x2 + np.float32(2.00018790482477e-13)
    p = p * x2 + np.float32(-8.60467152213735e-11)
    p = p * x2 + np.float32(5.12229709037114e-08)
    p = p * x2 + np.float32(1.48572235717979e-05)
    p = p * x2 + np.float32(6.37261928875436e-04)
    p = p * x2 + np.float32(4.89352455891786e-03)
    q = np.float32(1.19825839466702e-06)
    q = q * x2 + np.float32(1.18534705686654e-04)
    q = q * x2 + np.float32(2.26843463243900e-03)
    q = q * x2 + np.float32(4.89352518554385e-03)
    y = x * p / q  # large |x|: inf / inf = NaN, never selected
    return y if not (abs(x) > np.float32(8.0)) else math.copysign(np.float32(1.0), x)


@overload(tanh, jit_options={"error_model": "numpy", "fastmath": {"contract"}})
def _tanh_impl(x):
    if x == types.float32:
        return _rational_tanh32
    return lambda x: np.tanh(x)


# --- simple RNN: a<t> = g(x<t> Wax + a<t-1> Waa + ba) ---------------------------------------

@numba.njit(**_NJIT)
def rnn_forward_step(xw, zh, b, a_prev, keep, relu, a):  # pragma: no cover - compiled
    """a = g(xw + zh + b) per row; rows with keep == 0 (masked) keep a_prev."""
    m, n = a.shape
    zero = a.dtype.type(0.0)
    for i in range(m):
        if keep.size > 0 and keep[i] == 0:
            a[i, :] = a_prev[i, :]
            continue
        for j in range(n):
            z = xw[i, j] + zh[i, j] + b[j]
            # `z <= 0` is False for NaN, which passes on as max(z, 0) does in NumPy
            a[i, j] = (zero if z <= zero else z) if relu else tanh(z)


@numba.njit(**_NJIT)
def rnn_backward_step(g, da_rec, a, keep, relu, dz, carry):  # pragma: no cover - compiled
    """dz = (g + da_rec) * g'(z); masked rows pass their whole gradient on in ``carry``."""
    m, n = a.shape
    one, zero = a.dtype.type(1.0), a.dtype.type(0.0)
    for i in range(m):
        if keep.size > 0 and keep[i] == 0:
            for j in range(n):
                carry[i, j] = g[i, j] + da_rec[i, j]
                dz[i, j] = zero
            continue
        for j in range(n):
            da = g[i, j] + da_rec[i, j]
            dz[i, j] = (zero if a[i, j] <= zero else da) if relu else da * (one - a[i, j] * a[i, j])
        if keep.size > 0:
            carry[i, :] = zero


# --- LSTM: gates [f, u, c~, o] side by side in blocks of n columns --------------------------

@numba.njit(**_NJIT)
def lstm_forward_step(xw, zh, b, c_prev, a_prev, keep, gates, c, a, tc):  # pragma: no cover
    """Gates from xw + zh + b; c = f c_prev + u c~; a = o tanh(c) (kept in tc); masked rows
    keep (a_prev, c_prev)."""
    m, n = c.shape
    half = c.dtype.type(0.5)
    for i in range(m):
        for j in range(4 * n):
            zh[i, j] += xw[i, j] + b[j]
        for j in range(2 * n):
            gates[i, j] = half + half * tanh(half * zh[i, j])
        for j in range(2 * n, 3 * n):
            gates[i, j] = tanh(zh[i, j])
        for j in range(3 * n, 4 * n):
            gates[i, j] = half + half * tanh(half * zh[i, j])
        for j in range(n):
            cj = gates[i, j] * c_prev[i, j] + gates[i, n + j] * gates[i, 2 * n + j]
            c[i, j] = cj
            tc[i, j] = tanh(cj)
            a[i, j] = gates[i, 3 * n + j] * tc[i, j]
        if keep.size > 0 and keep[i] == 0:
            c[i, :] = c_prev[i, :]
            a[i, :] = a_prev[i, :]


@numba.njit(**_NJIT)
def lstm_backward_step(g, da_rec, dc, gates, c_prev, tc, keep, dz, carry):  # pragma: no cover
    """dz (the four gates' pre-activation gradients) from the gradient at a<t> (g + da_rec)
    and at c<t> (dc, replaced in place by the gradient at c<t-1>)."""
    m, n = dc.shape
    one, zero = dc.dtype.type(1.0), dc.dtype.type(0.0)
    for i in range(m):
        if keep.size > 0 and keep[i] == 0:
            for j in range(n):
                carry[i, j] = g[i, j] + da_rec[i, j]
            for j in range(4 * n):
                dz[i, j] = zero
            continue
        for j in range(n):
            da = g[i, j] + da_rec[i, j]
            f, u = gates[i, j], gates[i, n + j]
            cc, o, t = gates[i, 2 * n + j], gates[i, 3 * n + j], tc[i, j]
            dct = dc[i, j] + da * o * (one - t * t)
            dz[i, j] = dct * c_prev[i, j] * f * (one - f)
            dz[i, n + j] = dct * cc * u * (one - u)
            dz[i, 2 * n + j] = dct * u * (one - cc * cc)
            dz[i, 3 * n + j] = da * t * o * (one - o)
            dc[i, j] = dct * f
        if keep.size > 0:
            carry[i, :] = zero


# --- GRU, the course's full GRU: c~ = tanh([r * c<t-1>, x<t>] Wc + bc) -----------------------
# gates [u, r, c~] in blocks of n columns; c<t> = u c~ + (1 - u) c<t-1>.

@numba.njit(**_NJIT)
def gru_gates(xw, zh, b, c_prev, gates, rc):  # pragma: no cover - compiled
    """u and r from xw + zh + b (zh = c_prev [Wu_c | Wr_c]); rc = r * c_prev."""
    m, n = c_prev.shape
    half = c_prev.dtype.type(0.5)
    for i in range(m):
        for j in range(2 * n):
            gates[i, j] = half + half * tanh(half * (xw[i, j] + zh[i, j] + b[j]))
        for j in range(n):
            rc[i, j] = gates[i, n + j] * c_prev[i, j]


@numba.njit(**_NJIT)
def gru_candidate(xw, zh, b, c_prev, keep, gates, c):  # pragma: no cover - compiled
    """c~ = tanh(xw_c + zh + b_c) (zh = rc Wc_c); c = u c~ + (1 - u) c_prev; masked rows keep
    c_prev."""
    m, n = c_prev.shape
    one = c_prev.dtype.type(1.0)
    for i in range(m):
        if keep.size > 0 and keep[i] == 0:
            c[i, :] = c_prev[i, :]
            continue
        for j in range(n):
            cc = tanh(xw[i, 2 * n + j] + zh[i, j] + b[2 * n + j])
            gates[i, 2 * n + j] = cc
            u = gates[i, j]
            c[i, j] = u * cc + (one - u) * c_prev[i, j]


@numba.njit(**_NJIT)
def gru_backward_candidate(g, dc_rec, direct, gates, c_prev, keep, dz):  # pragma: no cover
    """dc = g + dc_rec + direct (the gradient at c<t>); writes dZu, dZc into dz and the direct
    part of the gradient at c<t-1>, dc (1 - u), into ``direct``."""
    m, n = c_prev.shape
    one, zero = c_prev.dtype.type(1.0), c_prev.dtype.type(0.0)
    for i in range(m):
        masked = keep.size > 0 and keep[i] == 0
        for j in range(n):
            dc = g[i, j] + dc_rec[i, j] + direct[i, j]
            if masked:
                direct[i, j] = dc
                dz[i, j] = zero
                dz[i, n + j] = zero
                dz[i, 2 * n + j] = zero
                continue
            u, cc = gates[i, j], gates[i, 2 * n + j]
            dz[i, j] = dc * (cc - c_prev[i, j]) * u * (one - u)
            dz[i, 2 * n + j] = dc * u * (one - cc * cc)
            direct[i, j] = dc * (one - u)


@numba.njit(**_NJIT)
def gru_backward_reset(drc, gates, c_prev, direct, dz):  # pragma: no cover - compiled
    """From d(r * c_prev) = dZc Wc_c^T: dZr into dz, and r * d(rc) added to ``direct``."""
    m, n = c_prev.shape
    one = c_prev.dtype.type(1.0)
    for i in range(m):
        for j in range(n):
            r = gates[i, n + j]
            dz[i, n + j] = drc[i, j] * c_prev[i, j] * r * (one - r)
            direct[i, j] += drc[i, j] * r


# --- GRU with the reset gate after the recurrent product (PyTorch's, Keras reset_after) -----
# c~ = tanh(x<t> Wc_x + bc + r * (c<t-1> Wc_c + bc_rec)).

@numba.njit(**_NJIT)
def gru_after_forward_step(xw, zh, b, b_rec, c_prev, keep, gates, hc, c):  # pragma: no cover
    """zh = c_prev [Wu_c | Wr_c | Wc_c]; keeps hc = zh_c + bc_rec for backward."""
    m, n = c_prev.shape
    half, one = c_prev.dtype.type(0.5), c_prev.dtype.type(1.0)
    for i in range(m):
        for j in range(2 * n):
            gates[i, j] = half + half * tanh(half * (xw[i, j] + zh[i, j] + b[j]))
        for j in range(n):
            h = zh[i, 2 * n + j] + b_rec[j]
            hc[i, j] = h
            cc = tanh(xw[i, 2 * n + j] + b[2 * n + j] + gates[i, n + j] * h)
            gates[i, 2 * n + j] = cc
            u = gates[i, j]
            c[i, j] = u * cc + (one - u) * c_prev[i, j]
        if keep.size > 0 and keep[i] == 0:
            c[i, :] = c_prev[i, :]


@numba.njit(**_NJIT)
def gru_after_backward_step(g, dc_rec, direct, gates, hc, c_prev, keep, dzx,
                            dzh):  # pragma: no cover - compiled
    """dzx: gradients of the input-side pre-activations [u, r, c~]; dzh: of the recurrent
    product c_prev [Wu_c | Wr_c | Wc_c] (its c~ block is r * dZc)."""
    m, n = c_prev.shape
    one, zero = c_prev.dtype.type(1.0), c_prev.dtype.type(0.0)
    for i in range(m):
        masked = keep.size > 0 and keep[i] == 0
        for j in range(n):
            dc = g[i, j] + dc_rec[i, j] + direct[i, j]
            if masked:
                direct[i, j] = dc
                for k in range(3):
                    dzx[i, k * n + j] = zero
                    dzh[i, k * n + j] = zero
                continue
            u, r, cc = gates[i, j], gates[i, n + j], gates[i, 2 * n + j]
            dzu = dc * (cc - c_prev[i, j]) * u * (one - u)
            dzc = dc * u * (one - cc * cc)
            dzr = dzc * hc[i, j] * r * (one - r)
            dzx[i, j] = dzu
            dzx[i, n + j] = dzr
            dzx[i, 2 * n + j] = dzc
            dzh[i, j] = dzu
            dzh[i, n + j] = dzr
            dzh[i, 2 * n + j] = dzc * r
            direct[i, j] = dc * (one - u)


# --- embedding ------------------------------------------------------------------------------

@numba.njit(**_NJIT)
def scatter_rows(ids, g, vocab_size):  # pragma: no cover - compiled
    """dE[v] = sum of the gradient rows g[k] whose id is v (the adjoint of E[ids])."""
    dE = np.zeros((vocab_size, g.shape[1]), g.dtype)
    for k in range(ids.size):
        dE[ids[k], :] += g[k, :]
    return dE
