"""YOLOv2 (Redmon and Farhadi, 2016, "YOLO9000: Better, Faster, Stronger"): the network whose
pretrained 19x19x5x85 output course 4 week 3 decodes into car boxes.

Darknet's yolov2.cfg (608x608, 80 COCO classes), which the course's Keras model (YAD2K's
yolo.h5) reproduces layer for layer:

- Darknet-19's convolutions (cfg layers 0-16, 608 -> 38): 3x3 and 1x1 convolutions, each
  with batch norm and leaky ReLU (slope 0.1), and 2x2/2 max pools;
- the deep path (layers 17-24, 38 -> 19): max pool, Darknet-19's last stage
  (1024 3x3, 512 1x1, 1024 3x3, 512 1x1, 1024 3x3) and two more 1024 3x3 convolutions;
- the passthrough (layers 25-27): a 1x1 convolution of layer 16's 38x38x512 features to 64
  channels, then space-to-depth ("reorg") to 19x19x256;
- the route (layer 28) concatenating [passthrough, deep path] (256 + 1024 channels), a
  1024 3x3 convolution and a 1x1 convolution with biases and no activation to
  anchors * (5 + classes) channels: for each anchor box, t_x, t_y, t_w, t_h, the objectness
  logit and the class logits.

In strata the route is a ``Parallel`` block of the two paths after layer 16.
"""

from __future__ import annotations

import numpy as np

from strata.models.arithmetic import _image_shape, with_input_shape
from strata.nn import (
    BatchNorm,
    Conv2D,
    LeakyReLU,
    MaxPool2D,
    Parallel,
    Sequential,
    SpaceToDepth,
)
from strata.ops.space import ORDERS

#: Darknet-19 up to the passthrough's source (yolov2.cfg layers 0-16): (filters, f) of each
#: convolution, "M" for a 2x2/2 max pool.
DARKNET19_FRONT = ((32, 3), "M", (64, 3), "M", (128, 3), (64, 1), (128, 3), "M",
                   (256, 3), (128, 1), (256, 3), "M",
                   (512, 3), (256, 1), (512, 3), (256, 1), (512, 3))
#: The deep path (layers 17-24): Darknet-19's last stage and the first two detection layers.
DEEP_PATH = ("M", (1024, 3), (512, 1), (1024, 3), (512, 1), (1024, 3), (1024, 3), (1024, 3))
#: Filters of the passthrough's 1x1 convolution, and of the convolution after the route.
PASSTHROUGH_FILTERS, HEAD_FILTERS = 64, 1024
#: Darknet's leaky ReLU slope and batch norm constants: its rolling averages keep 0.99 of
#: their value each step, and cuDNN and Darknet's GPU code divide by sqrt(var + 1e-5) (its CPU
#: code by sqrt(var) + 1e-6; the course's Keras model kept Keras's epsilon, 1e-3).
LEAKY_ALPHA, BN_MOMENTUM, BN_EPSILON = 0.1, 0.99, 1e-5


def conv_bn_leaky(filters: int, f: int) -> list:
    """Darknet's convolutional layer with ``batch_normalize=1`` and ``activation=leaky``:
    an f x f "same" convolution without bias (batch norm's beta replaces it), batch norm
    (epsilon 1e-5, momentum 0.99) and leaky ReLU with slope 0.1."""
    return [Conv2D(filters, f, 1, "same", use_bias=False, kernel_initializer="he"),
            BatchNorm(momentum=BN_MOMENTUM, epsilon=BN_EPSILON), LeakyReLU(LEAKY_ALPHA)]


def _layers(spec, scale) -> list:
    layers = []
    for item in spec:
        layers += [MaxPool2D(2, 2)] if item == "M" else conv_bn_leaky(scale(item[0]), item[1])
    return layers


def _check(input_shape, anchors, classes, width, reorg) -> tuple[int, int, int]:
    shape = _image_shape(tuple(input_shape), "yolov2")
    if shape[0] % 32 or shape[1] % 32:
        raise ValueError(f"yolov2: expected n_H and n_W divisible by 32 (the network "
                         f"downsamples by 32: 608 -> 19 cells), got input_shape {shape}")
    for name, value in (("anchors", anchors), ("classes", classes)):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
            raise ValueError(f"yolov2: expected {name} to be a positive int, got {value!r}")
    if isinstance(width, bool) or not isinstance(width, (int, float)) or not width > 0:
        raise ValueError(f"yolov2: expected width > 0 (a filter multiplier), got {width!r}")
    if reorg not in ORDERS:
        raise ValueError(f"yolov2: expected reorg 'tensorflow' or 'darknet', got {reorg!r}")
    return shape


def yolov2(input_shape=(608, 608, 3), anchors: int = 5, classes: int = 80,
           width: float = 1.0, reorg: str = "tensorflow") -> Sequential:
    """YOLOv2 as Darknet's yolov2.cfg (see strata/models/yolo.py): an image (n_H, n_W, 3)
    with sides divisible by 32 gives (n_H/32, n_W/32, anchors * (5 + classes)) raw outputs,
    (19, 19, 425) for the course's 608x608 input, 5 anchors and 80 classes.

    ``width`` multiplies every layer's filters but the last (rounded, at least 1: small
    copies of the real structure for tests). ``reorg`` is the passthrough's channel order:
    "tensorflow", the course's Keras model, or "darknet", pjreddie's reorg, which Darknet
    trained the published yolov2.weights with (see strata.space_to_depth); the weights of both
    load from the same file (strata.models.load_darknet_weights). Parameters are created on
    the first call.

    At 608x608x3, 5 anchors and 80 classes: 50,983,561 parameters, 50,962,889 trainable and
    20,672 non-trainable (the running averages of 10,336 batch-norm channels), the counts of
    the course's yolo_model.summary() (Keras, YAD2K's yolo.h5). In Darknet's file they are
    50,983,561 float32 values after a 16-byte header: 203,934,260 bytes, the size of
    pjreddie.com's yolov2.weights.

    >>> from strata.models import count_parameters
    >>> count_parameters(yolov2(), (608, 608, 3))
    ParameterCount(output_shape=(19, 19, 425), trainable=50962889, non_trainable=20672)
    """
    shape = _check(input_shape, anchors, classes, width, reorg)

    def scale(filters: int, multiple: int = 1) -> int:
        return max(multiple, multiple * round(filters * width / multiple))

    # The darknet order regroups the passthrough's channels in fours (block 2: 2 * 2).
    passthrough = [*conv_bn_leaky(scale(PASSTHROUGH_FILTERS, 4 if reorg == "darknet" else 1),
                                  1), SpaceToDepth(2, reorg)]
    layers = [*_layers(DARKNET19_FRONT, scale),
              Parallel([passthrough, _layers(DEEP_PATH, scale)]),  # route 27 24: reorg first
              *conv_bn_leaky(scale(HEAD_FILTERS), 3),
              Conv2D(int(anchors) * (5 + int(classes)), 1)]
    return with_input_shape(Sequential(layers), shape)
