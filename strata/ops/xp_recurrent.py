"""The recurrent ops' per-step kernels as array-module expressions (for CuPy and the test
suite's stand-in; strata.ops.dispatch picks them): the arguments and outputs of the numba
versions in recurrent_kernels.py, whose docstrings give the equations. Each loop over the
batch's rows is one expression over all of them; a masked row (keep[i] False) takes its
values from ``xp.where`` instead of a ``continue``. Outputs are written into the arrays the
caller passes, as the compiled kernels do.
"""

from __future__ import annotations

from strata.backend import array_module

__all__ = ["gru_after_backward_step", "gru_after_forward_step", "gru_backward_candidate",
           "gru_backward_reset", "gru_candidate", "gru_gates", "lstm_backward_step",
           "lstm_forward_step", "rnn_backward_step", "rnn_forward_step"]


def _sigmoid(xp, z):
    return 0.5 + 0.5 * xp.tanh(0.5 * z)  # the compiled kernels' form


def _masked(xp, keep, value, other):
    """``value`` in the rows kept, ``other`` in the masked ones (no mask: ``value``)."""
    return value if keep.size == 0 else xp.where(keep[:, None], value, other)


def rnn_forward_step(xw, zh, b, a_prev, keep, relu, a):
    """a = g(xw + zh + b); masked rows keep a_prev."""
    xp = array_module(a)
    z = xw + zh + b
    new = xp.where(z <= 0, z.dtype.type(0), z) if relu else xp.tanh(z)
    a[...] = _masked(xp, keep, new, a_prev)


def rnn_backward_step(g, da_rec, a, keep, relu, dz, carry):
    """dz = (g + da_rec) * g'(z); masked rows pass their gradient on in ``carry``."""
    xp = array_module(a)
    da = g + da_rec
    d = xp.where(a <= 0, a.dtype.type(0), da) if relu else da * (1 - a * a)
    dz[...] = _masked(xp, keep, d, 0)
    if keep.size:
        carry[...] = _masked(xp, keep, 0, da)


def lstm_forward_step(xw, zh, b, c_prev, a_prev, keep, gates, c, a, tc):
    """Gates [f, u, c~, o]; c = f c_prev + u c~; a = o tanh(c); masked rows keep both."""
    xp, n = array_module(c), c.shape[1]
    zh += xw + b
    gates[:, :2 * n] = _sigmoid(xp, zh[:, :2 * n])
    gates[:, 2 * n:3 * n] = xp.tanh(zh[:, 2 * n:3 * n])
    gates[:, 3 * n:] = _sigmoid(xp, zh[:, 3 * n:])
    c_new = gates[:, :n] * c_prev + gates[:, n:2 * n] * gates[:, 2 * n:3 * n]
    tc[...] = xp.tanh(c_new)
    a_new = gates[:, 3 * n:] * tc
    c[...] = _masked(xp, keep, c_new, c_prev)
    a[...] = _masked(xp, keep, a_new, a_prev)


def lstm_backward_step(g, da_rec, dc, gates, c_prev, tc, keep, dz, carry):
    """dz of the four gates; dc becomes the gradient at c<t-1> (masked rows keep theirs)."""
    xp, n = array_module(dc), dc.shape[1]
    da = g + da_rec
    f, u, cc, o = (gates[:, k * n:(k + 1) * n] for k in range(4))
    dct = dc + da * o * (1 - tc * tc)
    parts = (dct * c_prev * f * (1 - f), dct * cc * u * (1 - u), dct * u * (1 - cc * cc),
             da * tc * o * (1 - o))
    for k, part in enumerate(parts):
        dz[:, k * n:(k + 1) * n] = _masked(xp, keep, part, 0)
    dc[...] = _masked(xp, keep, dct * f, dc)
    if keep.size:
        carry[...] = _masked(xp, keep, 0, da)


def gru_gates(xw, zh, b, c_prev, gates, rc):
    """u and r from xw + zh + b; rc = r * c_prev."""
    xp, n = array_module(c_prev), c_prev.shape[1]
    gates[:, :2 * n] = _sigmoid(xp, xw[:, :2 * n] + zh + b[:2 * n])
    rc[...] = gates[:, n:2 * n] * c_prev


def gru_candidate(xw, zh, b, c_prev, keep, gates, c):
    """c~ = tanh(xw_c + zh + b_c); c = u c~ + (1 - u) c_prev; masked rows keep c_prev."""
    xp, n = array_module(c_prev), c_prev.shape[1]
    cc = xp.tanh(xw[:, 2 * n:] + zh + b[2 * n:])
    gates[:, 2 * n:] = cc
    u = gates[:, :n]
    c[...] = _masked(xp, keep, u * cc + (1 - u) * c_prev, c_prev)


def gru_backward_candidate(g, dc_rec, direct, gates, c_prev, keep, dz):
    """dZu and dZc into dz (dZr is zeroed here, written by gru_backward_reset) and the direct
    part of the gradient at c<t-1> into ``direct``."""
    xp, n = array_module(c_prev), c_prev.shape[1]
    dc = g + dc_rec + direct
    u, cc = gates[:, :n], gates[:, 2 * n:]
    dz[:, :n] = _masked(xp, keep, dc * (cc - c_prev) * u * (1 - u), 0)
    dz[:, n:2 * n] = 0
    dz[:, 2 * n:] = _masked(xp, keep, dc * u * (1 - cc * cc), 0)
    direct[...] = _masked(xp, keep, dc * (1 - u), dc)


def gru_backward_reset(drc, gates, c_prev, direct, dz):
    """dZr from d(r * c_prev) = drc; r * drc added to ``direct``."""
    n = c_prev.shape[1]
    r = gates[:, n:2 * n]
    dz[:, n:2 * n] = drc * c_prev * r * (1 - r)
    direct += drc * r


def gru_after_forward_step(xw, zh, b, b_rec, c_prev, keep, gates, hc, c):
    """PyTorch's GRU step: hc = zh_c + bc_rec kept for backward."""
    xp, n = array_module(c_prev), c_prev.shape[1]
    gates[:, :2 * n] = _sigmoid(xp, xw[:, :2 * n] + zh[:, :2 * n] + b[:2 * n])
    hc[...] = zh[:, 2 * n:] + b_rec
    cc = xp.tanh(xw[:, 2 * n:] + b[2 * n:] + gates[:, n:2 * n] * hc)
    gates[:, 2 * n:] = cc
    u = gates[:, :n]
    c[...] = _masked(xp, keep, u * cc + (1 - u) * c_prev, c_prev)


def gru_after_backward_step(g, dc_rec, direct, gates, hc, c_prev, keep, dzx, dzh):
    """dzx (input-side pre-activations [u, r, c~]) and dzh (the recurrent product's)."""
    xp, n = array_module(c_prev), c_prev.shape[1]
    dc = g + dc_rec + direct
    u, r, cc = (gates[:, k * n:(k + 1) * n] for k in range(3))
    dzu = dc * (cc - c_prev) * u * (1 - u)
    dzc = dc * u * (1 - cc * cc)
    dzr = dzc * hc * r * (1 - r)
    for k, (x_part, h_part) in enumerate(((dzu, dzu), (dzr, dzr), (dzc, dzc * r))):
        dzx[:, k * n:(k + 1) * n] = _masked(xp, keep, x_part, 0)
        dzh[:, k * n:(k + 1) * n] = _masked(xp, keep, h_part, 0)
    direct[...] = _masked(xp, keep, dc * (1 - u), dc)
