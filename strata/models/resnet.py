"""Residual networks (He et al., 2015) of course 4 week 2: the course's ResNet-50 for the SIGNS
data set, built from its identity and convolutional blocks, and ResNet-34 from basic blocks."""

from __future__ import annotations

from strata.models.arithmetic import classifier, with_input_shape
from strata.nn import (
    Activation,
    AvgPool2D,
    BatchNorm,
    Conv2D,
    Flatten,
    GlobalAveragePooling2D,
    MaxPool2D,
    Residual,
    Sequential,
    ZeroPadding2D,
)


def _bottleneck_path(f: int, filters, s: int) -> list:
    F1, F2, F3 = _three(filters)
    return [Conv2D(F1, 1, s, "valid"), BatchNorm(), Activation("relu"),
            Conv2D(F2, f, 1, "same"), BatchNorm(), Activation("relu"),
            Conv2D(F3, 1, 1, "valid"), BatchNorm()]


def _three(filters) -> tuple[int, int, int]:
    filters = tuple(filters)
    if len(filters) != 3:
        raise ValueError(f"expected filters [F1, F2, F3], got {filters!r}")
    return filters


def identity_block(f: int, filters) -> Residual:
    """The course's identity block, for an input that already has F3 channels:
    1x1 conv F1 -> BN -> ReLU -> fxf conv F2 "same" -> BN -> ReLU -> 1x1 conv F3 -> BN,
    plus the input itself, then ReLU. ``filters`` is [F1, F2, F3]."""
    return Residual(_bottleneck_path(f, filters, 1), None, "relu")


def convolutional_block(f: int, filters, s: int = 2) -> Residual:
    """The course's convolutional block: the identity block's main path with stride ``s`` in its
    first 1x1 conv, and a shortcut 1x1 conv F3 with stride s -> BN that resizes the input."""
    F3 = _three(filters)[2]
    return Residual(_bottleneck_path(f, filters, s), [Conv2D(F3, 1, s, "valid"), BatchNorm()],
                    "relu")


#: ResNet-50's stages: (filters [F1, F2, F3], stride of the conv block, identity blocks).
RESNET50_STAGES = (((64, 64, 256), 1, 2), ((128, 128, 512), 2, 3),
                   ((256, 256, 1024), 2, 5), ((512, 512, 2048), 2, 2))


def resnet50(input_shape=(64, 64, 3), classes: int = 6,
             classifier_activation="softmax", weights=None) -> Sequential:
    """The course's ResNet-50 (Keras assignment, SIGNS hand signs: 64x64x3, 6 classes):
    ZeroPadding2D(3) -> conv 7x7/2 64 -> BN -> ReLU -> max pool 3/2, then stages 2-5, each a
    convolutional block followed by identity blocks (3x3 middle convs):
    [64, 64, 256] s=1 + 2, [128, 128, 512] s=2 + 3, [256, 256, 1024] s=2 + 5,
    [512, 512, 2048] s=2 + 2, then AvgPool2D(2) -> Flatten -> Dense ``classes`` with
    ``classifier_activation`` (softmax, as the course: train with
    sparse_categorical_crossentropy or categorical_crossentropy; None for logits, to train with
    ``from_logits=True``). Convolutions keep their biases and use Glorot initialization, as the
    course's Keras code.

    At 64x64x3 and 6 classes: 23,600,006 parameters = 23,546,886 trainable + 53,120
    non-trainable (the running mean and variance of 26,560 batch-norm channels), as Keras's
    summary of the assignment. Parameters are created on the first call.

    >>> from strata.models import count_parameters
    >>> count_parameters(resnet50(), (64, 64, 3))
    ParameterCount(output_shape=(6,), trainable=23546886, non_trainable=53120)

    ``weights``: a path to ImageNet weights (pass classes=1000, or the error says so), which
    builds the file's own variant: a Keras .h5 gives ``keras_resnet50``, a torchvision-layout
    .safetensors ``torchvision_resnet(50)``; a file strata saved loads into this network.
    """
    if weights is not None:
        from strata.models.pretrained import resnet50_from_file

        return resnet50_from_file(weights, input_shape, classes, classifier_activation)
    layers = [ZeroPadding2D(3), Conv2D(64, 7, strides=2), BatchNorm(), Activation("relu"),
              MaxPool2D(3, strides=2)]
    for filters, s, identities in RESNET50_STAGES:
        layers.append(convolutional_block(3, filters, s))
        layers += [identity_block(3, filters) for _ in range(identities)]
    layers += [AvgPool2D(2), Flatten(), classifier(classes, classifier_activation, "resnet50")]
    return with_input_shape(Sequential(layers), input_shape)


def _conv_bn(filters: int, f: int, s: int = 1) -> list:
    # torchvision's explicit paddings (f // 2) and no bias: batch norm's beta replaces it.
    return [Conv2D(filters, f, s, f // 2, use_bias=False, kernel_initializer="he"), BatchNorm()]


def basic_block(filters: int, s: int = 1, projection: bool | None = None) -> Residual:
    """ResNet-18/34's block: 3x3 conv (stride s) -> BN -> ReLU -> 3x3 conv -> BN, plus the
    shortcut, then ReLU. The shortcut is the identity, or a 1x1 conv (stride s) -> BN
    projection when ``projection`` is True; None (default) projects exactly when s != 1,
    which is when ResNet-34's shape changes (pass True if only the channels change)."""
    if projection is None:
        projection = s != 1
    main = [*_conv_bn(filters, 3, s), Activation("relu"), *_conv_bn(filters, 3)]
    return Residual(main, _conv_bn(filters, 1, s) if projection else None, "relu")


#: ResNet-34's stages: (filters, basic blocks); every stage but the first starts with stride 2.
RESNET34_STAGES = ((64, 3), (128, 4), (256, 6), (512, 3))


def resnet34(input_shape=(224, 224, 3), classes: int = 1000,
             classifier_activation="softmax") -> Sequential:
    """ResNet-34 as torchvision builds it: conv 7x7/2 64 (padding 3) -> BN -> ReLU -> max pool
    3/2 (padding 1), then basic blocks [3, 4, 6, 3] with 64, 128, 256, 512 filters (stride 2
    and a projection shortcut at the start of stages 3-5), global average pooling, Dense
    ``classes`` with ``classifier_activation`` (softmax; None for logits). Convolutions have no
    bias (batch norm follows) and He initialization.

    At 224x224x3 and 1000 classes: 21,797,672 trainable parameters, torchvision's count, plus
    17,024 non-trainable (running averages of 8,512 batch-norm channels): 21,814,696 in all.

    >>> from strata.models import count_parameters
    >>> count_parameters(resnet34(), (224, 224, 3))
    ParameterCount(output_shape=(1000,), trainable=21797672, non_trainable=17024)
    """
    layers = [*_conv_bn(64, 7, 2), Activation("relu"), MaxPool2D(3, 2, padding=1)]
    for i, (filters, blocks) in enumerate(RESNET34_STAGES):
        layers.append(basic_block(filters, 1 if i == 0 else 2))
        layers += [basic_block(filters) for _ in range(blocks - 1)]
    layers += [GlobalAveragePooling2D(),
               classifier(classes, classifier_activation, "resnet34")]
    return with_input_shape(Sequential(layers), input_shape)
