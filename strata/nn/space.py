"""SpaceToDepth: YOLOv2's passthrough ("reorg") layer, on NHWC images (see strata.ops.space)."""

from __future__ import annotations

from strata import ops
from strata.autograd import ShapeError
from strata.nn.conv import _check_nhwc, _size
from strata.nn.module import Module
from strata.ops.space import ORDERS


class SpaceToDepth(Module):
    """Stack each ``block`` x ``block`` patch into the channels: (m, n_H, n_W, n_C) ->
    (m, n_H/block, n_W/block, block*block*n_C), no parameters. ``order`` "tensorflow" is
    tf.nn.space_to_depth's channel order (the course's Keras YOLOv2); "darknet" is pjreddie's
    Darknet reorg, which the published yolov2.weights were trained with."""

    def __init__(self, block: int = 2, order: str = "tensorflow"):
        self.block = _size(block, "block", "SpaceToDepth")
        if order not in ORDERS:
            raise ValueError(f"SpaceToDepth: expected order 'tensorflow' or 'darknet', got "
                             f"{order!r}")
        self.order = order
        self.config = {"block": self.block, "order": order}

    def forward(self, x):
        return ops.space_to_depth(_check_nhwc(x, "SpaceToDepth"), self.block, self.order)

    def count_parameters(self, input_shape):
        """The output shape of one (n_H, n_W, n_C) image, and no parameters (for
        strata.models.count_parameters)."""
        from strata.models.arithmetic import ParameterCount, _image_shape

        n_h, n_w, n_c = _image_shape(input_shape, "SpaceToDepth")
        b = self.block
        if n_h % b or n_w % b or (self.order == "darknet" and n_c % (b * b)):
            raise ShapeError(f"SpaceToDepth(block={b}, order={self.order!r}): expected n_H and "
                             f"n_W divisible by {b}" + (f" and n_C by {b * b}" if
                                                        self.order == "darknet" else "")
                             + f", got input shape {tuple(input_shape)}")
        return ParameterCount((n_h // b, n_w // b, n_c * b * b), 0, 0)

    def extra_repr(self) -> str:
        return f"block={self.block}, order={self.order!r}"
