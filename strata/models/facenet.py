"""Face encoders of course 4 week 4: the course's FaceNet (the Inception network NN4-small2 of
OpenFace that its ``inception_blocks_v2.py`` builds, 96 x 96 x 3 in, 128-d L2-normalized out,
3,743,280 parameters) and a small ConvNet encoder that trains on a CPU in minutes.

Both are Sequential models built NHWC (the course's Keras code is channels-first); the course's
asymmetric paddings and 1x1 pooled branches are kept exactly, so every shape and parameter count
matches its ``faceRecoModel``.
"""

from __future__ import annotations

from strata.nn import (
    Activation,
    AvgPool2D,
    BatchNorm,
    Conv2D,
    Dense,
    Flatten,
    GlobalAveragePooling2D,
    MaxPool2D,
    Parallel,
    Sequential,
    ZeroPadding2D,
)
from strata.vision.faces import L2Normalize

#: The course's published parameter count of faceRecoModel((3, 96, 96)), batch norm's running
#: averages included (Keras counts them as non-trainable).
FACENET_PARAMETERS = 3_743_280


def conv_bn(filters: int, f: int = 1, s: int = 1, epsilon: float = 1e-5) -> list:
    """Conv f x f / s ("valid") -> BatchNorm -> ReLU, the course's ``conv2d_bn`` unit."""
    return [Conv2D(filters, f, s), BatchNorm(momentum=0.99, epsilon=epsilon), Activation("relu")]


def _two(reduce: int, filters: int, f: int, s: int = 1) -> list:
    """1x1 reduce -> pad -> f x f conv (stride s), each with batch norm and ReLU."""
    return [*conv_bn(reduce), ZeroPadding2D(f // 2), *conv_bn(filters, f, s)]


def _pad(pads) -> ZeroPadding2D:
    return ZeroPadding2D(pads)


def facenet_blocks() -> list:
    """The course's seven inception blocks (1a, 1b, 1c, 2a, 2b, 3a, 3b) as Parallel layers,
    each branch as in inception_blocks_v2.py, concatenated in the course's order."""
    return [
        Parallel([_two(96, 128, 3), _two(16, 32, 5),  # 1a: 12x12x192 -> 12x12x256
                  [MaxPool2D(3, 2), *conv_bn(32), _pad(((3, 4), (3, 4)))], conv_bn(64)]),
        Parallel([_two(96, 128, 3), _two(32, 64, 5),  # 1b: -> 12x12x320
                  [AvgPool2D(3, 3), *conv_bn(64), _pad(4)], conv_bn(64)]),
        Parallel([_two(128, 256, 3, 2), _two(32, 64, 5, 2),  # 1c: -> 6x6x640
                  [MaxPool2D(3, 2), _pad(((0, 1), (0, 1)))]]),
        Parallel([_two(96, 192, 3), _two(32, 64, 5),  # 2a: -> 6x6x640
                  [AvgPool2D(3, 3), *conv_bn(128), _pad(2)], conv_bn(256)]),
        Parallel([_two(160, 256, 3, 2), _two(64, 128, 5, 2),  # 2b: -> 3x3x1024
                  [MaxPool2D(3, 2), _pad(((0, 1), (0, 1)))]]),
        Parallel([_two(96, 384, 3), [AvgPool2D(3, 3), *conv_bn(96), _pad(1)],  # 3a: 3x3x736
                  conv_bn(256)]),
        Parallel([_two(96, 384, 3), [MaxPool2D(3, 2), *conv_bn(96), _pad(1)],  # 3b: 3x3x736
                  conv_bn(256)]),
    ]


def facenet(encoding_size: int = 128) -> Sequential:
    """The course's FaceNet (``faceRecoModel``): 96 x 96 x 3 NHWC images -> conv 7x7/2 64,
    max pool 3/2, conv 1x1 64, conv 3x3 192, max pool 3/2 (each conv with batch norm and
    ReLU), the seven inception blocks, average pool 3x3, Dense ``encoding_size``,
    L2-normalized. 3,743,280 parameters with the default 128-d encoding (3,733,968 trainable,
    9,312 batch-norm running averages).

    >>> from strata.models import count_parameters
    >>> count_parameters(facenet(), (96, 96, 3)).total
    3743280
    """
    stem = [ZeroPadding2D(3), *conv_bn(64, 7, 2, epsilon=1e-3), ZeroPadding2D(1),
            MaxPool2D(3, 2), *conv_bn(64), ZeroPadding2D(1), *conv_bn(192, 3), ZeroPadding2D(1),
            MaxPool2D(3, 2)]
    top = [AvgPool2D(3, 1), Flatten(), Dense(encoding_size), L2Normalize()]
    return Sequential([*stem, *facenet_blocks(), *top])


def face_encoder(widths=(32, 64, 128, 128), encoding_size: int = 128,
                 head: str = "flatten") -> Sequential:
    """A small face encoder that trains on a CPU in minutes: per width a 3x3 "same" conv
    (He init, no bias) with batch norm and ReLU, then a 2x2 max pool; then ``head``: "flatten"
    (keeps where each feature is: faces are aligned, so position matters) or "average" (global
    average pooling); Dense ``encoding_size``, L2-normalized. The faces task feeds it 56 x 46
    grey images."""
    widths = [int(w) for w in widths]
    if not widths or min(widths) < 1:
        raise ValueError(f"face_encoder: expected positive widths, got {widths!r}")
    if isinstance(encoding_size, bool) or not isinstance(encoding_size, int) \
            or encoding_size < 1:
        raise ValueError(f"face_encoder: expected a positive encoding_size, got "
                         f"{encoding_size!r}")
    if head not in ("flatten", "average"):
        raise ValueError(f"face_encoder: expected head 'flatten' or 'average', got {head!r}")
    layers = []
    for width in widths:
        layers += [Conv2D(width, 3, padding="same", use_bias=False, kernel_initializer="he"),
                   BatchNorm(activation="relu"), MaxPool2D(2)]
    layers.append(Flatten() if head == "flatten" else GlobalAveragePooling2D())
    return Sequential([*layers, Dense(encoding_size), L2Normalize()])
