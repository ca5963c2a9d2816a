"""Convolution and pooling on NHWC images (course 4 week 1), kernels of shape (f, f, n_C_prev, n_C).

Like every deep learning library, conv2d computes a cross-correlation: the kernel is not
flipped. (True convolution flips it in both spatial axes; since the kernel is learned, the
flip changes nothing but its stored orientation: conv(x, W) = corr(x, W[::-1, ::-1]).)

Output size per spatial axis: floor((n + p_before + p_after - f) / s) + 1. Padding is
"valid" (none), "same" (output ceil(n / s); p = (f - 1) / 2 on each side for odd f and s = 1,
the extra row/column after when the total is odd, as TensorFlow and Keras do), an int p on
every side, or a pair (p_H, p_W).

How the GEMMs are arranged (patches in cache-sized blocks, the transposed convolution for
dx and dW, the direct kernel for one input channel): docs/ARCHITECTURE.md.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from strata.autograd import Function, ShapeError
from strata.backend import array_module
from strata.ops import kernels, parallel, winograd
from strata.ops.common import lift
from strata.ops.dispatch import kernels_for


def output_size(n: int, f: int, s: int = 1, p: int = 0) -> int:
    """The course's floor((n + 2p - f) / s) + 1 for one spatial axis (p on each side)."""
    return (n + 2 * p - f) // s + 1


def _pair(value, name: str, op: str) -> tuple[int, int]:
    pair = (value, value) if isinstance(value, (int, np.integer)) else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, (int, np.integer)) and v >= 1 for v in pair):
        raise ValueError(f"{op}: expected {name} to be a positive int or a pair of them, "
                         f"got {value!r}")
    return int(pair[0]), int(pair[1])


def padding_amounts(padding, n: int, f: int, s: int, op: str = "conv2d") -> tuple[int, int]:
    """(before, after) zero padding of one spatial axis of size n for a window f, stride s."""
    if padding == "valid":
        return 0, 0
    if padding == "same":
        total = max((math.ceil(n / s) - 1) * s + f - n, 0)
        return total // 2, total - total // 2
    if isinstance(padding, (int, np.integer)) and padding >= 0:
        return int(padding), int(padding)
    raise ValueError(f"{op}: expected padding 'valid', 'same', an int >= 0 or a pair of them, "
                     f"got {padding!r}")


def _geometry(x_shape, window, stride, padding, op):
    """Padding widths and output size (Ho, Wo) of a windowed op on NHWC input."""
    if len(x_shape) != 4:
        raise ShapeError(f"{op}: expected a 4-D NHWC input (m, n_H, n_W, n_C), got shape "
                         f"{tuple(x_shape)}")
    paddings = (padding, padding) if isinstance(padding, (str, int, np.integer)) else padding
    if len(paddings) != 2:
        raise ValueError(f"{op}: expected padding for 2 spatial axes, got {padding!r}")
    pads, sizes = [], []
    for n, f, s, p in zip(x_shape[1:3], window, stride, paddings, strict=True):
        before, after = padding_amounts(p, n, f, s, op)
        if n + before + after < f:
            raise ShapeError(f"{op}: window {window[0]}x{window[1]} is larger than the padded "
                             f"input {x_shape[1] + 2 * before}x{x_shape[2] + 2 * before} "
                             f"(input shape {tuple(x_shape)}, padding {padding!r})")
        pads.append((before, after))
        sizes.append((n + before + after - f) // s + 1)
    return pads, tuple(sizes)


def pad_images(x, pads, value=0.0):
    """NHWC images padded by ``pads`` ((top, bottom), (left, right)) with ``value``,
    C-contiguous, in x's array module."""
    xp = array_module(x)
    if not any(before or after for before, after in pads):
        return xp.ascontiguousarray(x)
    return xp.pad(x, ((0, 0), *pads, (0, 0)), constant_values=value)


def crop(dxp, pads):
    """The inverse of pad_images' padding (a view)."""
    (top, bottom), (left, right) = pads
    return dxp[:, top:dxp.shape[1] - bottom, left:dxp.shape[2] - right, :]


def _windows(xp, fh, fw, s, out_hw):
    """The (m, n_H, n_W, fh, fw, n_C) strided view of every patch of ``xp`` (no copy)."""
    n_h, n_w = out_hw
    windows = sliding_window_view(xp, (fh, fw), axis=(1, 2))  # (m, H', W', C, fh, fw)
    return windows[:, :(n_h - 1) * s + 1:s, :(n_w - 1) * s + 1:s].transpose(0, 1, 2, 4, 5, 3)


#: Patch widths f*f*n_C_prev below this multiply on one BLAS thread when the batch is not split
#: (parallel.MIN_FLOPS): such thin GEMMs gain nothing from BLAS's threads, and waking them
#: costs the convolutions after them (parallel.serial). E.g. a detector's 4x4 stem on grey
#: images (k = 16); LeNet-5's second convolution (k = 150) keeps BLAS's threads.
NARROW = 64
_BLOCK_BYTES = 2 << 20  # patches per GEMM block: about as many as stay in cache


def _patch_blocks(xp, fh: int, fw: int, s: int, out_hw, cols=None):
    """im2col in blocks of whole images: yields (images, patches), ``patches`` holding the
    (rows, fh*fw*n_C) patch matrix of the images ``images`` (a slice). Each block is copied
    into ``cols`` (the full patch matrix, kept by the caller) when given, else into one
    reused buffer, and the caller multiplies it while it is still in cache: such GEMMs run up
    to 2x faster than one over a whole patch matrix streamed back from memory (32-64 channel
    3x3 convolutions on this project's machines)."""
    windows = _windows(xp, fh, fw, s, out_hw)
    per_image, k = out_hw[0] * out_hw[1], fh * fw * xp.shape[3]  # patch rows per image, width
    step = max(1, _BLOCK_BYTES // (per_image * k * xp.itemsize))  # images per block
    buffer = cols if cols is not None else np.empty((min(step, len(xp)) * per_image, k),
                                                    xp.dtype)
    for n in range(0, len(xp), step):
        block = windows[n:n + step]
        start = n * per_image if cols is not None else 0
        patches = buffer[start:start + len(block) * per_image]
        patches.reshape(block.shape)[...] = block
        yield slice(n, n + step), patches


class Conv2D(Function):
    def forward(self, x, W, b=None, *, stride, pads, out_hw):
        fh, fw, n_c_prev, n_c = W.shape
        self.W, self.stride, self.pads = W, stride, pads
        self.xp_shape = (len(x), x.shape[1] + sum(pads[0]), x.shape[2] + sum(pads[1]), n_c_prev)
        # What backward needs, by route: xp (direct kernel), x (transposed convolution or
        # Winograd), or
        # the patches (the rest).
        self.xp = self.x = self.cols = None
        self.winograd = winograd.applies(W.shape, stride, pads, out_hw, len(x))
        self.flops = 2 * len(x) * out_hw[0] * out_hw[1] * fh * fw * n_c_prev * n_c  # one GEMM
        self.narrow = fh * fw * n_c_prev < NARROW
        if n_c_prev == 1 and stride == 1:  # e.g. grayscale images: see kernels.conv_direct
            xp = self.xp = pad_images(x, pads)
            bias = np.zeros(n_c, W.dtype) if b is None else b
            out = np.empty((len(x), *out_hw, n_c), np.result_type(x, W))
            parallel.over_images(lambda part: kernels.conv_direct(xp[part], W, bias, out[part]),
                                 len(x), self.flops)
            return out
        if self.winograd:
            out = winograd.conv(x, W, b, pads, out_hw, self.flops)
            if out is not None:
                self.x = np.ascontiguousarray(x)
                return out
            self.winograd = False  # not finite: the exact routes below tell inf from NaN
        out = np.empty((len(x), *out_hw, n_c), np.result_type(x, W))
        pixels = (fh, fw, stride) == (1, 1, 1)  # the patches are the pixels themselves
        if pixels:
            self.cols = pad_images(x, pads).reshape(-1, n_c_prev)
        elif self._transposed(out_hw):
            self.x = np.ascontiguousarray(x)
        else:  # dW needs the patches again: keep them all
            self.cols = np.empty((len(x) * out_hw[0] * out_hw[1], fh * fw * n_c_prev), out.dtype)
        W2 = np.ascontiguousarray(W.reshape(-1, n_c))
        rows = out_hw[0] * out_hw[1]  # patch rows per image

        def work(part):  # the images ``part``, on one thread
            cols = None if self.cols is None else self.cols[part.start * rows:part.stop * rows]
            out_part = out[part]
            blocks = ([(slice(None), cols)] if pixels else
                      _patch_blocks(pad_images(x[part], pads), fh, fw, stride, out_hw, cols))
            for images, patches in blocks:
                z = out_part[images].reshape(-1, n_c)
                np.matmul(patches, W2, out=z)
                if b is not None:
                    kernels.add_bias(z, b)

        parallel.over_images(work, len(x), self.flops, self.narrow)
        return out

    def backward(self, g):
        need_x, need_W, *need_b = self.needs_input_grad
        fh, fw, n_c_prev, n_c = self.W.shape
        g = np.ascontiguousarray(g)
        g2 = g.reshape(-1, n_c)
        if self.winograd:
            dx = self._winograd_dx(g) if need_x else None
            dW = winograd.kernel_grad(self.x, g, self.pads, self.flops) if need_W else None
            dW = self._patch_dW(g) if need_W and dW is None else dW
        elif self.x is not None:
            # The transposed route multiplies dZ's zero padding by W (dx) and by x (dW): a
            # non-finite one would put NaN (0 * inf) where no output saw it; then go exact.
            exact_dx = need_x and not np.isfinite(self.W).all()
            dx, dW = self._transposed_grads(g, need_x and not exact_dx, need_W)
            dx = self._col2im_grad(g) if exact_dx else dx
            dW = self._patch_dW(g) if need_W and not np.isfinite(dW).all() else dW
        else:
            dx = self._col2im_grad(g) if need_x else None
            if not need_W:
                dW = None
            elif self.xp is not None:
                dW = parallel.sum_over_images(lambda part: kernels.conv_direct_kernel_grad(
                    self.xp[part], g[part], fh, fw), len(g), self.flops)
            else:  # of the orientations of this tall-skinny product, OpenBLAS's fastest
                rows = g.shape[1] * g.shape[2]  # patch rows per image
                dW = parallel.sum_over_images(
                    lambda part: g2[part.start * rows:part.stop * rows].T
                    @ self.cols[part.start * rows:part.stop * rows], len(g), self.flops,
                    self.narrow)
                dW = dW.T.reshape(self.W.shape)
        if not need_b:  # called without a bias
            return dx, dW
        if not need_b[0]:
            return dx, dW, None
        with parallel.serial():
            return dx, dW, np.ones(len(g2), g.dtype) @ g2  # GEMV: a fast column sum

    def _winograd_dx(self, g):
        """dx as the convolution of dZ, padded by 2 - p, with W rotated by 180 degrees and its
        channel axes swapped (as _transposed_grads), by Winograd; by col2im if not finite."""
        (top, bottom), (left, right) = self.pads
        W_rot = self.W[::-1, ::-1].transpose(0, 1, 3, 2)
        dx = winograd.conv(g, W_rot, None, ((2 - top, 2 - bottom), (2 - left, 2 - right)),
                           self.x.shape[1:3], self.flops)
        return self._col2im_grad(g) if dx is None else dx

    def _transposed(self, out_hw) -> bool:
        """Whether backward goes by the transposed convolution: stride 1, and its patch
        matrix (one row per input position, f*f*n_C wide) not much larger than the forward's."""
        fh, fw, n_c_prev, n_c = self.W.shape
        (top, bottom), (left, right) = self.pads
        n_h, n_w = self.xp_shape[1] - top - bottom, self.xp_shape[2] - left - right
        return (self.stride == 1 and max(top, bottom) < fh and max(left, right) < fw
                and n_h * n_w * n_c <= 1.5 * out_hw[0] * out_hw[1] * n_c_prev)

    def _transposed_grads(self, g, need_x, need_W):
        """dx and dW from the patches of dZ zero-padded by f - 1 - p ("gcols", one row per
        input position). dx is the convolution of dZ with the kernel rotated by 180 degrees
        and its channel axes swapped: gcols @ W_rot, a GEMM with an inner size of f*f*n_C
        instead of n_C and no scatter. The same patches give dW: gcols^T x = dW rotated, since
        dW[i, j] sums x[q] dZ[q - (i, j)] over the input positions q. Both GEMMs run block by
        block on patches still in cache, and the forward pass did not keep its patches."""
        fh, fw, n_c_prev, n_c = self.W.shape
        (top, bottom), (left, right) = self.pads
        pads = ((fh - 1 - top, fh - 1 - bottom), (fw - 1 - left, fw - 1 - right))
        W_rot = np.ascontiguousarray(self.W[::-1, ::-1].transpose(0, 1, 3, 2).reshape(-1, n_c_prev))
        dx = np.empty(self.x.shape, np.result_type(g, W_rot)) if need_x else None

        def work(part):
            x = self.x[part]
            dW = np.zeros((n_c_prev, fh * fw * n_c), np.result_type(g, x)) if need_W else None
            padded = pad_images(g[part], pads)
            for images, patches in _patch_blocks(padded, fh, fw, 1, x.shape[1:3]):
                if need_x:
                    np.matmul(patches, W_rot, out=dx[part][images].reshape(-1, n_c_prev))
                if need_W:
                    dW += x[images].reshape(-1, n_c_prev).T @ patches
            return dW

        dW = parallel.sum_over_images(work, len(g), self.flops, self.narrow)
        if need_W:  # so far dW[c, i', j', o] holds dW[f - 1 - i', f - 1 - j', c, o]
            dW = dW.reshape(n_c_prev, fh, fw, n_c)[:, ::-1, ::-1].transpose(1, 2, 0, 3)
        return dx, dW

    def _patch_dW(self, g):
        """dW as the patches of x times dZ, block by block (stride 1: the transposed route)."""
        fh, fw, n_c_prev, n_c = self.W.shape
        g2, rows = g.reshape(-1, n_c), g.shape[1] * g.shape[2]
        dW = np.zeros((fh * fw * n_c_prev, n_c), np.result_type(g, self.x))
        padded = pad_images(self.x, self.pads)
        for images, patches in _patch_blocks(padded, fh, fw, 1, g.shape[1:3]):
            dW += patches.T @ g2[images.start * rows:images.start * rows + len(patches)]
        return dW.reshape(self.W.shape)

    def _col2im_grad(self, g):
        """dx as dcols = dZ W^T scattered back by col2im, in blocks of images, each block's
        dcols scattered while still in cache."""
        fh, fw, n_c_prev, n_c = self.W.shape
        Ho, Wo = g.shape[1:3]
        W_t = np.ascontiguousarray(self.W.reshape(-1, n_c).T)
        dxp = np.empty(self.xp_shape, np.result_type(g, W_t))
        step = max(1, _BLOCK_BYTES // (Ho * Wo * W_t.shape[1] * W_t.itemsize))  # images

        def work(part):
            for n in range(part.start, part.stop, step):
                block = slice(n, min(n + step, part.stop))
                dcols = g[block].reshape(-1, n_c) @ W_t
                dxp[block] = kernels.col2im(dcols, dxp[block].shape, fh, fw, self.stride, Ho, Wo)

        parallel.over_images(work, len(dxp), self.flops, self.narrow)
        return crop(dxp, self.pads)


def conv2d(x, W, b=None, stride: int = 1, padding="valid"):
    """2-D convolution (cross-correlation) of NHWC ``x`` (m, n_H_prev, n_W_prev, n_C_prev) with
    ``W`` (f, f, n_C_prev, n_C) plus ``b`` (n_C,): output (m, n_H, n_W, n_C), each element
    sum(a_slice_prev * W[..., c]) + b[c] (the course's conv_single_step)."""
    x, W = lift(x), lift(W)
    if W.ndim != 4:
        raise ShapeError(f"conv2d: expected a kernel of shape (f, f, n_C_prev, n_C), got {W.shape}")
    if x.ndim == 4 and x.shape[3] != W.shape[2]:
        raise ShapeError(f"conv2d: the input has {x.shape[3]} channels but the kernel expects "
                         f"n_C_prev = {W.shape[2]} (input {x.shape}, kernel {W.shape})")
    b = None if b is None else lift(b, x)
    if b is not None and b.shape != (W.shape[3],):
        raise ShapeError(f"conv2d: expected a bias of shape ({W.shape[3]},), got {b.shape}")
    s = _pair(stride, "stride", "conv2d")
    if s[0] != s[1]:
        raise ValueError(f"conv2d: expected equal strides along n_H and n_W, got {stride!r}")
    pads, out_hw = _geometry(x.shape, W.shape[:2], s, padding, "conv2d")
    inputs = (x, W) if b is None else (x, W, b)
    fn = kernels_for(array_module(x.data)).Conv2D  # this class for NumPy arrays
    return fn.apply(*inputs, stride=s[0], pads=pads, out_hw=out_hw)


class MaxPool2D(Function):
    def forward(self, x, window, stride, pads, out_hw):
        self.kernels = kernels_for(array_module(x))
        padded = pad_images(x, pads, -np.inf)
        out, self.arg = self.kernels.max_pool(padded, *window, stride, *out_hw)
        self.xp_shape, self.pads = padded.shape, pads
        return out

    def backward(self, g):
        g = array_module(g).ascontiguousarray(g)
        return (crop(self.kernels.max_pool_backward(g, self.arg, self.xp_shape), self.pads),)


class AvgPool2D(Function):
    def forward(self, x, window, stride, pads, out_hw):
        self.kernels = kernels_for(array_module(x))
        padded = pad_images(x, pads)
        # How many real (unpadded) inputs each window covers: padding is not averaged in.
        # Computed from the shapes alone, on the host.
        real = pad_images(np.ones((1, *x.shape[1:3], 1), x.dtype), pads)[0, :, :, 0]
        windows = np.lib.stride_tricks.sliding_window_view(real, window)[::stride, ::stride]
        self.count = np.ascontiguousarray(windows.sum(axis=(2, 3))[:out_hw[0], :out_hw[1]])
        self.window, self.stride, self.xp_shape, self.pads = window, stride, padded.shape, pads
        return self.kernels.avg_pool(padded, self.count, *window, stride, *out_hw)

    def backward(self, g):
        g = array_module(g).ascontiguousarray(g)
        dxp = self.kernels.avg_pool_backward(g, self.count, self.xp_shape, *self.window,
                                             self.stride)
        return (crop(dxp, self.pads),)


def _pool(kind, x, f, stride, padding, name):
    x = lift(x)
    window = _pair(f, "pool size f", name)
    s = _pair(window[0] if stride is None else stride, "stride", name)
    if s[0] != s[1]:
        raise ValueError(f"{name}: expected equal strides along n_H and n_W, got {stride!r}")
    pads, out_hw = _geometry(x.shape, window, s, padding, name)
    return kind.apply(x, window=window, stride=s[0], pads=pads, out_hw=out_hw)


def max_pool2d(x, f=2, stride=None, padding="valid"):
    """Max pooling of NHWC ``x`` over f x f windows with stride s (default f), per channel."""
    return _pool(MaxPool2D, x, f, stride, padding, "max_pool2d")


def avg_pool2d(x, f=2, stride=None, padding="valid"):
    """Average pooling over f x f windows (stride default f); with "same" padding each window
    averages only its real inputs, as Keras does."""
    return _pool(AvgPool2D, x, f, stride, padding, "avg_pool2d")
