"""Matrix product (with NumPy's batching and 1-D rules)."""

from __future__ import annotations

from strata.autograd import Function, ShapeError, unbroadcast
from strata.ops.common import lift, lift_pair


class MatMul(Function):
    def forward(self, a, b):
        self.a, self.b = a, b
        return a @ b

    def backward(self, g):
        a, b = self.a, self.b
        need_a, need_b = self.needs_input_grad
        if a.ndim == 2 and b.ndim == 2:  # the common case, without reshaping
            return (g @ b.T if need_a else None, a.T @ g if need_b else None)
        # Treat vectors as matrices (a row, b a column), restore the axes @ dropped in g.
        a2 = a[None, :] if a.ndim == 1 else a
        b2 = b[:, None] if b.ndim == 1 else b
        if a.ndim == 1 and b.ndim == 1:
            g2 = g.reshape(1, 1)
        else:
            g2 = g[..., None, :] if a.ndim == 1 else g
            g2 = g2[..., None] if b.ndim == 1 else g2
        ga = gb = None
        if need_a:
            ga = unbroadcast(g2 @ b2.swapaxes(-1, -2), a2.shape).reshape(a.shape)
        if need_b:
            gb = unbroadcast(a2.swapaxes(-1, -2) @ g2, b2.shape).reshape(b.shape)
        return ga, gb


def matmul(a, b):
    """Matrix product a @ b: 2-D, batched (leading dims broadcast) or with 1-D vectors."""
    a, b = lift_pair(a, b)
    if a.ndim == 0 or b.ndim == 0:
        raise ShapeError(f"matmul: expected inputs with at least 1 dim, got shapes {a.shape} and "
                         f"{b.shape}; use * to scale")
    inner_b = b.shape[0] if b.ndim == 1 else b.shape[-2]
    if a.shape[-1] != inner_b:
        raise ShapeError(f"matmul: cannot multiply shapes {a.shape} and {b.shape}: a's last dim "
                         f"{a.shape[-1]} != b's {'only' if b.ndim == 1 else 'second-to-last'} "
                         f"dim {inner_b}")
    return MatMul.apply(a, b)


class Linear(Function):
    def forward(self, x, W, b):
        self.x, self.W, self.b_shape = x, W, b.shape
        z = x @ W
        if b.dtype == z.dtype:
            z += b  # z is a fresh array: adding in place saves an allocation
            return z
        return z + b

    def backward(self, g):
        need_x, need_W, need_b = self.needs_input_grad
        dx = g @ self.W.T if need_x else None
        dW = None
        if need_W:  # leading axes of x (examples, time steps...) all sum into dW
            dW = self.x.reshape(-1, self.x.shape[-1]).T @ g.reshape(-1, g.shape[-1])
        return dx, dW, unbroadcast(g, self.b_shape) if need_b else None


def linear(x, W, b):
    """The course's linear step Z = X W + b (batch first: x (..., n_prev), W (n_prev, n), b (n,)).

    One op instead of matmul and add: its backward returns dX = dZ W.T, dW = X.T dZ and
    db = sum of dZ over examples, the course's linear_backward.
    """
    x, W = lift_pair(x, W)
    b = lift(b, W)
    if W.ndim != 2 or x.ndim < 1 or x.shape[-1] != W.shape[0] or b.shape != W.shape[1:]:
        raise ShapeError(f"linear: expected x (..., n_prev), W (n_prev, n) and b (n,), got x "
                         f"{x.shape}, W {W.shape}, b {b.shape}")
    return Linear.apply(x, W, b)
