"""Backpropagation through time: the recurrent ops' Functions (public API in recurrent.py).

Each op is one Function for the whole sequence. Forward: one GEMM projects every time step's
input at once (x W_x), then per step one GEMM a<t-1> W_a (all gates side by side) and one
compiled kernel for the gates and the cell update (recurrent_kernels.py), keeping the course's
caches (gates, states) in time-major buffers (T, m, n), where every step is a contiguous
matrix. Backward is BPTT written out: per step (last to first) a kernel gives the gates'
pre-activation gradients dZ<t> and one GEMM sends dZ<t> W_a^T to a<t-1>; the weight gradients
are then single GEMMs over all steps at once (dW = [a<t-1>; x<t>]^T dZ, rows stacked over
(t, example)). No graph of per-step ops is built: T = 1000 needs no recursion, and memory is
the caches only.

Weights arrive as the course's per-gate matrices W (n_a + n_x, n_a), rows for a<t-1> first;
forward concatenates their a-rows into W_a (n_a, k n_a) and their x-rows into W_x.
"""

from __future__ import annotations

import numpy as np

from strata.autograd import Function
from strata.backend import array_module
from strata.ops.dispatch import kernels_for

_NO_MASK = np.empty(0, dtype=bool)  # only its size is read: the kernels' "no mask"


class _StepProduct:
    """out = A B for one step's A (m, k), computed as (B^T A^T)^T and a transposing copy: with
    the batch as the GEMM's short side OpenBLAS splits the work across 2 threads much better
    (for a 256-unit LSTM, a step's product with the copy took 0.85x the time forward and
    0.65x backward)."""

    def __init__(self, B, m: int, dtype):
        self.xp = array_module(B)
        self.BT = self.xp.ascontiguousarray(B.T)
        self.outT = self.xp.empty((B.shape[1], m), dtype)

    def __call__(self, A, out):
        self.xp.matmul(self.BT, A.T, out=self.outT)
        out[...] = self.outT.T


class _Recurrence(Function):
    """Shared parts: time-major buffers, the mask per step, and the GEMMs after the loop."""

    def _begin(self, x, mask, reverse, n):
        m, T, n_x = x.shape
        self.m, self.T, self.n, self.reverse, self.dtype = m, T, n, reverse, x.dtype
        # The array module, and the step kernels for it (numba's for NumPy arrays).
        self.xp = xp = array_module(x)
        self.K = kernels_for(xp)
        X = x.transpose(1, 0, 2)  # time-major: each step is a contiguous (m, n_x) matrix
        self.X = xp.ascontiguousarray(X[::-1] if reverse else X).reshape(T * m, n_x)
        keep = None if mask is None else (mask != 0).T
        # Contiguous, also when reversed: one compiled signature per kernel and dtype.
        self.keep = None if keep is None else xp.ascontiguousarray(keep[::-1] if reverse
                                                                   else keep)

    def _keep(self, t):
        return _NO_MASK if self.keep is None else self.keep[t]

    def _states(self, a0, width=None):
        H = self.xp.empty((self.T + 1, self.m, width or self.n), self.dtype)
        H[0] = a0
        return H

    def _out(self, H):
        """States (T, m, n) in processing order -> (m, T, n) aligned with the inputs: a view,
        so that a recurrent layer stacked on this one gets its time-major input for free."""
        return (H[::-1] if self.reverse else H).transpose(1, 0, 2)

    def _incoming(self, g):
        """The gradient at the outputs, time-major and in processing order."""
        g = g.transpose(1, 0, 2)
        return self.xp.ascontiguousarray(g[::-1] if self.reverse else g)

    def _dx(self, dZ, W_x):
        """dx = dZ W_x^T back in (m, T, n_x) layout, or None when x needs no gradient."""
        if not self.needs_input_grad[0]:
            return None
        dX = (dZ.reshape(self.T * self.m, -1) @ W_x.T).reshape(self.T, self.m, -1)
        return self._out(dX)

    def _gate_grads(self, A_prev, dZ_a, dZ_x, gates):
        """Each gate's dW = [A_prev^T dZ_a ; X^T dZ_x] (its column block) and db = sum dZ_x."""
        rows, n = self.T * self.m, self.n
        dZ_a, dZ_x = dZ_a.reshape(rows, -1), dZ_x.reshape(rows, -1)
        A_prev = A_prev.reshape(rows, -1)
        db = self.xp.ones(rows, self.dtype) @ dZ_x
        # Two GEMMs for all gates, then each gate's columns: faster than 2 GEMMs per gate.
        dW_a, dW_x = A_prev.T @ dZ_a, self.X.T @ dZ_x
        grads = []
        for k in range(gates):
            block = slice(k * n, (k + 1) * n)
            grads += [self.xp.concatenate([dW_a[:, block], dW_x[:, block]]), db[block].copy()]
        return grads


class RNN(_Recurrence):
    """The simple RNN over a sequence: a<t> = g(x<t> Wax + a<t-1> Waa + ba)."""

    def forward(self, x, a0, Wax, Waa, ba, mask, reverse, relu):
        T, m, n = x.shape[1], x.shape[0], Waa.shape[0]
        self._begin(x, mask, reverse, n)
        self.Wax, self.Waa, self.relu = Wax, Waa, relu
        XW = (self.X @ Wax).reshape(T, m, n)
        H, zh, K = self._states(a0), self.xp.empty((m, n), x.dtype), self.K
        product = _StepProduct(Waa, m, x.dtype)
        for t in range(T):
            product(H[t], zh)
            K.rnn_forward_step(XW[t], zh, ba, H[t], self._keep(t), relu, H[t + 1])
        self.H = H
        return self._out(H[1:])

    def backward(self, g):
        G, H, T, xp, K = self._incoming(g), self.H, self.T, self.xp, self.K
        dZ = xp.empty((T, self.m, self.n), self.dtype)
        da, carry = xp.zeros_like(H[0]), xp.zeros_like(H[0])
        product = _StepProduct(self.Waa.T, self.m, self.dtype)
        for t in range(T - 1, -1, -1):
            K.rnn_backward_step(G[t], da, H[t + 1], self._keep(t), self.relu, dZ[t], carry)
            product(dZ[t], da)
            if self.keep is not None:
                da += carry
        rows = dZ.reshape(T * self.m, self.n)
        dWaa = H[:-1].reshape(T * self.m, self.n).T @ rows
        return (self._dx(dZ, self.Wax), da, self.X.T @ rows, dWaa,
                xp.ones(T * self.m, self.dtype) @ rows)


class LSTM(_Recurrence):
    """The LSTM over a sequence; its second output c<T> goes through FinalCell."""

    def forward(self, x, a0, c0, Wf, bf, Wu, bu, Wc, bc, Wo, bo, mask, reverse, sink):
        sink.append(self)  # so that lstm() can read c<T> even when nothing is recorded
        T, m, n = x.shape[1], x.shape[0], bf.shape[0]
        self._begin(x, mask, reverse, n)
        xp, K, Ws = self.xp, self.K, (Wf, Wu, Wc, Wo)
        self.W_a = xp.concatenate([W[:n] for W in Ws], axis=1)
        self.W_x = xp.concatenate([W[n:] for W in Ws], axis=1)
        b = xp.concatenate([bf, bu, bc, bo])
        XW = (self.X @ self.W_x).reshape(T, m, 4 * n)
        H, C = self._states(a0), self._states(c0)
        self.G = xp.empty((T, m, 4 * n), x.dtype)
        self.TC = xp.empty((T, m, n), x.dtype)
        zh, product = xp.empty((m, 4 * n), x.dtype), _StepProduct(self.W_a, m, x.dtype)
        for t in range(T):
            product(H[t], zh)
            K.lstm_forward_step(XW[t], zh, b, C[t], H[t], self._keep(t), self.G[t], C[t + 1],
                                H[t + 1], self.TC[t])
        self.H, self.C, self.dc_last = H, C, None
        return self._out(H[1:])

    def backward(self, g):
        G, T, xp, K = self._incoming(g), self.T, self.xp, self.K
        dZ = xp.empty((T, self.m, 4 * self.n), self.dtype)
        da, carry = xp.zeros_like(self.H[0]), xp.zeros_like(self.H[0])
        dc = xp.zeros_like(da) if self.dc_last is None else self.dc_last.astype(self.dtype)
        self.dc_last = None  # consumed: a second backward (retain_graph) starts afresh
        product = _StepProduct(self.W_a.T, self.m, self.dtype)
        for t in range(T - 1, -1, -1):
            K.lstm_backward_step(G[t], da, dc, self.G[t], self.C[t], self.TC[t], self._keep(t),
                                 dZ[t], carry)
            product(dZ[t], da)
            if self.keep is not None:
                da += carry
        grads = self._gate_grads(self.H[:-1], dZ, dZ, 4)
        return (self._dx(dZ, self.W_x), da, dc, *grads)


class FinalCell(Function):
    """The LSTM's second output, its last memory cell c<T>: the gradient arriving here is
    handed to the LSTM's backward, which runs after (c<T> is recorded as computed from a)."""

    def forward(self, a, owner):
        self.owner, self.shape = owner, a.shape
        return owner.C[-1].copy()  # a view would keep every step's cell alive

    def backward(self, g):
        owner = self.owner
        owner.dc_last = g if owner.dc_last is None else owner.dc_last + g
        # A zero gradient for a (a broadcast view, no allocation), so the LSTM's backward runs
        # even when only c<T> reaches the loss.
        xp = array_module(g)
        return (xp.broadcast_to(xp.zeros((), g.dtype), self.shape),)


class GRU(_Recurrence):
    """The course's full GRU: the relevance gate multiplies c<t-1> before the matmul."""

    def forward(self, x, a0, Wu, bu, Wr, br, Wc, bc, mask, reverse):
        T, m, n = x.shape[1], x.shape[0], bu.shape[0]
        self._begin(x, mask, reverse, n)
        xp, K = self.xp, self.K
        self.W_ur = xp.concatenate([Wu[:n], Wr[:n]], axis=1)
        self.W_cc = xp.ascontiguousarray(Wc[:n])
        self.W_x = xp.concatenate([Wu[n:], Wr[n:], Wc[n:]], axis=1)
        b = xp.concatenate([bu, br, bc])
        XW = (self.X @ self.W_x).reshape(T, m, 3 * n)
        H = self._states(a0)
        self.G, self.RC = xp.empty((T, m, 3 * n), x.dtype), xp.empty((T, m, n), x.dtype)
        zh1, zh2 = xp.empty((m, 2 * n), x.dtype), xp.empty((m, n), x.dtype)
        gates, candidate = (_StepProduct(W, m, x.dtype) for W in (self.W_ur, self.W_cc))
        for t in range(T):
            gates(H[t], zh1)
            K.gru_gates(XW[t], zh1, b, H[t], self.G[t], self.RC[t])
            candidate(self.RC[t], zh2)
            K.gru_candidate(XW[t], zh2, b, H[t], self._keep(t), self.G[t], H[t + 1])
        self.H = H
        return self._out(H[1:])

    def backward(self, g):
        G, H, T, n, xp, K = self._incoming(g), self.H, self.T, self.n, self.xp, self.K
        dZ = xp.empty((T, self.m, 3 * n), self.dtype)
        dc_rec, direct, drc = (xp.zeros_like(H[0]) for _ in range(3))
        gates, candidate = (_StepProduct(W.T, self.m, self.dtype) for W in (self.W_ur,
                                                                              self.W_cc))
        for t in range(T - 1, -1, -1):
            K.gru_backward_candidate(G[t], dc_rec, direct, self.G[t], H[t], self._keep(t),
                                     dZ[t])
            candidate(dZ[t][:, 2 * n:], drc)
            K.gru_backward_reset(drc, self.G[t], H[t], direct, dZ[t])
            gates(dZ[t][:, :2 * n], dc_rec)
        # u and r saw a<t-1>, the candidate saw r * a<t-1>: two sets of recurrent rows.
        ur = self._gate_grads(H[:-1], dZ[..., :2 * n], dZ[..., :2 * n], 2)
        cand = self._gate_grads(self.RC, dZ[..., 2 * n:], dZ[..., 2 * n:], 1)
        return (self._dx(dZ, self.W_x), dc_rec + direct, *ur, *cand)


class GRUResetAfter(_Recurrence):
    """PyTorch's GRU (Keras's reset_after=True): r multiplies (c<t-1> Wc_c + bc_rec)."""

    def forward(self, x, a0, Wu, bu, Wr, br, Wc, bc, bc_rec, mask, reverse):
        T, m, n = x.shape[1], x.shape[0], bu.shape[0]
        self._begin(x, mask, reverse, n)
        xp, K, Ws = self.xp, self.K, (Wu, Wr, Wc)
        self.W_a = xp.concatenate([W[:n] for W in Ws], axis=1)
        self.W_x = xp.concatenate([W[n:] for W in Ws], axis=1)
        b = xp.concatenate([bu, br, bc])
        XW = (self.X @ self.W_x).reshape(T, m, 3 * n)
        H = self._states(a0)
        self.G, self.HC = xp.empty((T, m, 3 * n), x.dtype), xp.empty((T, m, n), x.dtype)
        zh, product = xp.empty((m, 3 * n), x.dtype), _StepProduct(self.W_a, m, x.dtype)
        for t in range(T):
            product(H[t], zh)
            K.gru_after_forward_step(XW[t], zh, b, bc_rec, H[t], self._keep(t), self.G[t],
                                     self.HC[t], H[t + 1])
        self.H = H
        return self._out(H[1:])

    def backward(self, g):
        G, H, T, n, xp, K = self._incoming(g), self.H, self.T, self.n, self.xp, self.K
        dZx, dZh = (xp.empty((T, self.m, 3 * n), self.dtype) for _ in range(2))
        dc_rec, direct = xp.zeros_like(H[0]), xp.zeros_like(H[0])
        product = _StepProduct(self.W_a.T, self.m, self.dtype)
        for t in range(T - 1, -1, -1):
            K.gru_after_backward_step(G[t], dc_rec, direct, self.G[t], self.HC[t], H[t],
                                      self._keep(t), dZx[t], dZh[t])
            product(dZh[t], dc_rec)
        grads = self._gate_grads(H[:-1], dZh, dZx, 3)
        db_rec = xp.ones(T * self.m, self.dtype) @ dZh[..., 2 * n:].reshape(T * self.m, n)
        return (self._dx(dZx, self.W_x), dc_rec + direct, *grads, db_rec)


class Embedding(Function):
    """E[ids]; backward adds each position's gradient row into its token's row of dE."""

    def forward(self, E, ids):
        self.ids, self.vocab_size = ids, E.shape[0]
        return E[ids]

    def backward(self, g):
        xp = array_module(g)
        rows = xp.ascontiguousarray(g.reshape(-1, g.shape[-1]))
        return (kernels_for(xp).scatter_rows(self.ids.reshape(-1), rows, self.vocab_size),)
