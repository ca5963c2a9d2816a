"""Registry cases of convolution and pooling: a grid of window sizes f, strides s, paddings and
odd image sizes. PyTorch works in NCHW with kernels (n_C, n_C_prev, f, f): the torch side moves
axes, pads explicitly for "same" (TensorFlow's rule, the extra row/column after), and averages
only real inputs when pooling over padding."""

from __future__ import annotations

import math

from op_cases_common import Case, normal

import strata

# (n_H, n_W, n_C_prev, f, s, padding, n_C). Stride-1 cases with n_C_prev >= 4 whose n_C is at
# most 1.5 n_C_prev (scaled by the sizes) take conv2d's transposed-convolution path for dx and
# dW; the others keep their patches for dW and scatter dx by col2im; single-channel stride-1
# cases take the direct kernel (kernels.conv_direct) forward and for dW; 3x3 stride-1 cases with
# 16 channels or more in and out take the Winograd route (strata/ops/winograd.py).
CONV_GRID = [
    (5, 5, 1, 1, 1, "valid", 2),
    (7, 6, 3, 3, 1, "same", 4),
    (8, 7, 2, 3, 2, "same", 3),
    (9, 8, 2, 3, 2, 1, 5),
    (6, 6, 3, 2, 2, "valid", 2),
    (6, 7, 2, 4, 1, "same", 3),
    (7, 7, 2, 5, 1, 2, 2),
    (9, 9, 1, 5, 3, "valid", 2),
    (8, 9, 3, 3, 3, "same", 2),
    (5, 6, 2, 5, 1, "same", 2),
    (6, 6, 3, 3, 1, "valid", 2),  # dx as a transposed convolution, without padding
    (7, 8, 1, 5, 1, 2, 6),  # direct kernel, LeNet-5's first layer in small
    (5, 6, 16, 3, 1, "same", 16),  # Winograd, odd and even sizes
    (6, 5, 16, 3, 1, "valid", 17),  # Winograd without padding
    (6, 5, 1, 3, 1, "same", 3),  # direct kernel, asymmetric "same" padding
    (6, 7, 4, 3, 1, "same", 5),  # transposed path
    (7, 7, 6, 3, 1, "valid", 4),  # transposed path without padding
    (6, 7, 4, 2, 1, "same", 3),  # transposed path, even f: padding only after
    (5, 4, 3, 1, 1, 1, 4),  # 1x1: the patches are the (padded) pixels
]
# (n_H, n_W, n_C, f, s, padding)
POOL_GRID = [
    (6, 6, 2, 2, 2, "valid"),
    (7, 7, 3, 2, 2, "valid"),
    (7, 6, 2, 3, 2, "same"),
    (5, 5, 2, 3, 1, "same"),
    (8, 7, 1, 3, 3, "valid"),
    (6, 8, 2, 4, 2, "same"),
    (5, 7, 2, 3, 1, 1),
    (5, 6, 9, 3, 2, "same"),  # 8 channels or more: max pooling's vectorized loop
]


def same_padding(n: int, f: int, s: int) -> tuple[int, int]:
    total = max((math.ceil(n / s) - 1) * s + f - n, 0)
    return total // 2, total - total // 2


def _torch_pad(t, f, s, padding, value=0.0):
    """Pad an NCHW torch tensor the way strata pads NHWC (explicitly, both sides)."""
    import torch

    if padding == "valid":
        return t
    if padding == "same":
        (top, bottom), (left, right) = (same_padding(n, f, s) for n in t.shape[2:])
    else:
        top = bottom = left = right = padding
    return torch.nn.functional.pad(t, (left, right, top, bottom), value=value)


def _torch_conv(f, s, padding):
    def fn(x, W, b):
        import torch

        x = _torch_pad(x.permute(0, 3, 1, 2), f, s, padding)
        out = torch.nn.functional.conv2d(x, W.permute(3, 2, 0, 1), b, stride=s)
        return out.permute(0, 2, 3, 1)
    return fn


def _torch_max_pool(f, s, padding):
    def fn(x):
        import torch

        x = _torch_pad(x.permute(0, 3, 1, 2), f, s, padding, value=-math.inf)
        return torch.nn.functional.max_pool2d(x, f, s).permute(0, 2, 3, 1)
    return fn


def _torch_avg_pool(f, s, padding):
    def fn(x):
        import torch

        moved = x.permute(0, 3, 1, 2)
        sums = torch.nn.functional.avg_pool2d(_torch_pad(moved, f, s, padding), f, s)
        counts = torch.nn.functional.avg_pool2d(
            _torch_pad(torch.ones_like(moved[:1, :1]), f, s, padding), f, s)
        return (sums / counts).permute(0, 2, 3, 1)
    return fn


def conv_cases() -> list[Case]:
    """All cases of this module."""
    cases = []
    for h, w, c, f, s, p, n_c in CONV_GRID:
        name = f"{h}x{w}x{c}-f{f}-s{s}-{p}-to{n_c}"
        cases.append(Case("conv2d", name, lambda x, W, b, s=s, p=p: strata.conv2d(x, W, b, s, p),
                          _torch_conv(f, s, p), (normal(2, h, w, c), normal(f, f, c, n_c),
                                                 normal(n_c))))
    cases.append(Case("conv2d", "no-bias", lambda x, W: strata.conv2d(x, W, None, 1, "same"),
                      lambda x, W: _torch_conv(3, 1, "same")(x, W, None),
                      (normal(2, 5, 4, 2), normal(3, 3, 2, 3))))
    for h, w, c, f, s, p in POOL_GRID:
        name = f"{h}x{w}x{c}-f{f}-s{s}-{p}"
        cases.append(Case("max_pool2d", name, lambda x, f=f, s=s, p=p: strata.max_pool2d(
            x, f, s, p), _torch_max_pool(f, s, p), (normal(2, h, w, c),)))
        cases.append(Case("avg_pool2d", name, lambda x, f=f, s=s, p=p: strata.avg_pool2d(
            x, f, s, p), _torch_avg_pool(f, s, p), (normal(2, h, w, c),)))
    return cases
