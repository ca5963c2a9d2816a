"""space_to_depth: each b x b block of pixels becomes one pixel with b*b times the channels
(NHWC (m, n_H, n_W, n_C) -> (m, n_H/b, n_W/b, b*b*n_C)). YOLOv2's passthrough layer uses it to
stack 26x26 (38x38 at 608) features onto the 13x13 (19x19) grid. Backward is the inverse
rearrangement, depth_to_space, so the gradient moves exactly as the values did.

Two channel orders, for the two places YOLOv2's weights come from:

- ``"tensorflow"``: out[..., (dy*b + dx)*n_C + c] = x[i*b + dy, j*b + dx, c], as
  ``tf.nn.space_to_depth`` and ONNX's SpaceToDepth. The course's Keras YOLOv2 (YAD2K's
  ``space_to_depth_x2``) and the ``[reorg]`` of AlexeyAB's Darknet fork compute this.
  PyTorch's ``pixel_unshuffle`` (NCHW) orders the channels (c, dy, dx) instead.
- ``"darknet"``: the ``[reorg]`` of pjreddie's Darknet (AlexeyAB's ``[reorg_old]``), which
  trained the published yolov2.weights. Its reorg_cpu is called with the *input's* w, h, c, so
  it reads its (n_C, n_H, n_W) input buffer as (n_C/b^2, b*n_H, b*n_W), applies the
  "tensorflow" rearrangement to that, and its (n_C, n_H, n_W) result is read as
  (b^2*n_C, n_H/b, n_W/b): a fixed permutation that also moves values between pixels. Needs
  n_C divisible by b*b.
"""

from __future__ import annotations

import numpy as np

from strata.autograd import Function, ShapeError
from strata.ops.common import lift

ORDERS = ("tensorflow", "darknet")


def _to_depth(a, b):
    """"tensorflow" order: (m, H, W, C) -> (m, H/b, W/b, b*b*C)."""
    m, h, w, c = a.shape
    return (a.reshape(m, h // b, b, w // b, b, c).transpose(0, 1, 3, 2, 4, 5)
            .reshape(m, h // b, w // b, b * b * c))


def _to_space(g, b):
    """The inverse of _to_depth: (m, H, W, b*b*C) -> (m, b*H, b*W, C)."""
    m, h, w, c = g.shape
    c //= b * b
    return (g.reshape(m, h, w, b, b, c).transpose(0, 1, 3, 2, 4, 5)
            .reshape(m, h * b, w * b, c))


def _view_nchw(a, shape):
    """Darknet's reading of an NHWC array's NCHW buffer as the NCHW ``shape``, back as NHWC."""
    return a.transpose(0, 3, 1, 2).reshape(shape).transpose(0, 2, 3, 1)


class SpaceToDepth(Function):
    def forward(self, a, block, order):
        self.block, self.order, self.shape = block, order, a.shape
        if order == "tensorflow":
            return _to_depth(a, block)
        m, h, w, c = a.shape
        b2 = block * block
        out = _to_depth(_view_nchw(a, (m, c // b2, h * block, w * block)), block)
        return _view_nchw(out, (m, c * b2, h // block, w // block))

    def backward(self, g):
        b = self.block
        if self.order == "tensorflow":
            return (_to_space(g, b),)
        m, h, w, c = self.shape
        g = _to_space(_view_nchw(g, (m, c, h, w)), b)
        return (_view_nchw(g, (m, c, h, w)),)


def space_to_depth(x, block: int = 2, order: str = "tensorflow"):
    """Move each ``block`` x ``block`` patch of an NHWC image into the channels:
    (m, n_H, n_W, n_C) -> (m, n_H/block, n_W/block, block*block*n_C). ``order`` is
    "tensorflow" (tf.nn.space_to_depth's channel order, the course's YOLOv2) or "darknet"
    (pjreddie's Darknet reorg); see strata/ops/space.py."""
    x = lift(x)
    if order not in ORDERS:
        raise ValueError(f"space_to_depth: expected order 'tensorflow' or 'darknet', got "
                         f"{order!r}")
    if not isinstance(block, (int, np.integer)) or isinstance(block, bool) or block < 1:
        raise ValueError(f"space_to_depth: expected block to be a positive int, got {block!r}")
    if x.ndim != 4:
        raise ShapeError(f"space_to_depth: expected a 4-D NHWC input (m, n_H, n_W, n_C), got "
                         f"shape {x.shape}")
    _, h, w, c = x.shape
    if h % block or w % block:
        raise ShapeError(f"space_to_depth(block={block}): expected n_H and n_W divisible by "
                         f"{block}, got input of shape {x.shape}")
    if order == "darknet" and c % (block * block):
        raise ShapeError(f"space_to_depth(block={block}, order='darknet'): expected n_C "
                         f"divisible by {block * block}, got input of shape {x.shape}")
    return SpaceToDepth.apply(x, block=int(block), order=order)
