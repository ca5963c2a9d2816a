"""The ImageNet ResNets whose published weights strata reads: Keras applications' ResNet50
(the course's blocks, pretrained) and torchvision's ResNets (ResNet-50 "v1.5": the stride in
the 3x3 convolution), and the names each framework gives their layers.

They differ from the course's resnet50 only where the weights need it: Keras's pads before
its max pool and normalizes with epsilon 1.001e-5; torchvision's convolutions have no bias,
pad explicitly, and normalize with epsilon 1e-5. Both end in global average pooling.
"""

from __future__ import annotations

from strata.models.arithmetic import _image_shape, classifier, count_parameters
from strata.nn import (
    Activation,
    BatchNorm,
    Conv2D,
    Dense,
    GlobalAveragePooling2D,
    MaxPool2D,
    Residual,
    Sequential,
    ZeroPadding2D,
)

#: Blocks per stage of torchvision's ResNets.
RESNET_BLOCKS = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3), 50: (3, 4, 6, 3), 101: (3, 4, 23, 3),
                 152: (3, 8, 36, 3)}


def _finish(layers, where, input_shape, classes, classifier_activation, include_top):
    if include_top:
        layers += [GlobalAveragePooling2D(), classifier(classes, classifier_activation, where)]
    model = Sequential(layers)
    if input_shape is not None:
        model.input_shape = _image_shape(input_shape, where)
        count_parameters(model, model.input_shape)
    return model


def keras_resnet50(input_shape=(224, 224, 3), classes: int = 1000,
                   classifier_activation="softmax", include_top: bool = True) -> Sequential:
    """Keras applications' ResNet50, for its ImageNet weights (vgg_preprocess mode "caffe"):
    the course's identity and convolutional blocks (biases in every convolution, the stride
    in the first 1x1) with batch norm epsilon 1.001e-5, a 1-pixel zero padding before the max
    pool, and global average pooling before the classifier."""

    def bn():
        return BatchNorm(momentum=0.99, epsilon=1.001e-5)

    def block(filters, s, shortcut):
        F1, F2, F3 = filters
        main = [Conv2D(F1, 1, s), bn(), Activation("relu"), Conv2D(F2, 3, 1, "same"), bn(),
                Activation("relu"), Conv2D(F3, 1), bn()]
        return Residual(main, [Conv2D(F3, 1, s), bn()] if shortcut else None, "relu")

    layers = [ZeroPadding2D(3), Conv2D(64, 7, 2), bn(), Activation("relu"), ZeroPadding2D(1),
              MaxPool2D(3, 2)]
    for i, (filters, blocks) in enumerate((((64, 64, 256), 3), ((128, 128, 512), 4),
                                           ((256, 256, 1024), 6), ((512, 512, 2048), 3))):
        layers += [block(filters, (1 if i == 0 else 2) if b == 0 else 1, b == 0)
                   for b in range(blocks)]
    return _finish(layers, "keras_resnet50", input_shape, classes, classifier_activation,
                   include_top)


def torchvision_resnet(depth: int = 50, input_shape=(224, 224, 3), classes: int = 1000,
                       classifier_activation="softmax", include_top: bool = True,
                       blocks=None, width: int = 64) -> Sequential:
    """torchvision's ResNet-``depth`` (18, 34: basic blocks; 50, 101, 152: bottlenecks with
    the stride in the 3x3 convolution), for its weights (vgg_preprocess mode "torch").
    ``blocks`` (per stage) and ``width`` (the first stage's channels) make small copies of
    the same structure, for tests."""
    if depth not in RESNET_BLOCKS:
        raise ValueError(f"torchvision_resnet: expected depth among {sorted(RESNET_BLOCKS)}, "
                         f"got {depth!r}")
    blocks = RESNET_BLOCKS[depth] if blocks is None else tuple(blocks)
    if not blocks or not all(isinstance(n, int) and n >= 1 for n in blocks):
        raise ValueError(f"torchvision_resnet: expected blocks as positive ints per stage, got "
                         f"{blocks!r}")
    bottleneck, channels = depth >= 50, width

    def conv_bn(filters, f, s=1):
        return [Conv2D(filters, f, s, f // 2, use_bias=False, kernel_initializer="he"),
                BatchNorm(momentum=0.9, epsilon=1e-5)]

    def block(planes, s):
        nonlocal channels
        out = planes * 4 if bottleneck else planes
        main = ([*conv_bn(planes, 1), Activation("relu"), *conv_bn(planes, 3, s),
                 Activation("relu"), *conv_bn(out, 1)] if bottleneck else
                [*conv_bn(planes, 3, s), Activation("relu"), *conv_bn(planes, 3)])
        shortcut = conv_bn(out, 1, s) if s != 1 or channels != out else None
        channels = out
        return Residual(main, shortcut, "relu")

    layers = [*conv_bn(width, 7, 2), Activation("relu"), MaxPool2D(3, 2, padding=1)]
    for i, n in enumerate(blocks):
        layers += [block(width * 2 ** i, 2 if i > 0 and b == 0 else 1) for b in range(n)]
    return _finish(layers, "torchvision_resnet", input_shape, classes, classifier_activation,
                   include_top)


def resnet_roles(model: Sequential) -> list:
    """(layer, role) for each Conv2D, BatchNorm and Dense of a ResNet Sequential, in order:
    role ("stem", kind, k), ("block", stage, block, "main" | "shortcut", kind, k) or
    ("head", kind, k); kind "conv", "bn" or "dense", k counts from 1, stages from 1. A stage
    starts at the first block and at each block with a projection shortcut."""
    roles, stage, block, counts = [], 0, -1, {}

    def number(key):
        counts[key] = counts.get(key, 0) + 1
        return counts[key]

    for layer in model.layers:
        if isinstance(layer, Residual):
            if stage == 0 or layer.shortcut is not None:
                stage, block = stage + 1, 0
            else:
                block += 1
            for path, part in (("main", layer.main), ("shortcut", layer.shortcut)):
                for sub in ([] if part is None else part.layers):
                    kind = _kind(sub)
                    if kind:
                        roles.append((sub, ("block", stage, block, path, kind,
                                            number((stage, block, path, kind)))))
        elif kind := _kind(layer):
            roles.append((layer, ("head" if stage else "stem", kind, number((stage, kind)))))
    return roles


def _kind(layer) -> str | None:
    return {Conv2D: "conv", BatchNorm: "bn", Dense: "dense"}.get(type(layer))


def keras_name(role, old: bool) -> str:
    """The Keras applications name of a ResNet50 layer: "conv2_block1_1_conv" (tf.keras), or
    with ``old`` Keras 2.0's "res2a_branch2a" / "bn2a_branch2a"."""
    if role[0] == "stem":
        return {"conv": "conv1", "bn": "bn_conv1"}[role[1]] if old else f"conv1_{role[1]}"
    if role[0] == "head":
        return "fc1000" if old else "predictions"
    _, stage, block, path, kind, k = role
    if old:
        branch = "branch1" if path == "shortcut" else f"branch2{'abc'[k - 1]}"
        return f"{'res' if kind == 'conv' else 'bn'}{stage + 1}{chr(97 + block)}_{branch}"
    return f"conv{stage + 1}_block{block + 1}_{0 if path == 'shortcut' else k}_{kind}"


def torch_name(role) -> str:
    """The torchvision state-dict prefix of a ResNet layer: "conv1", "layer1.0.bn2",
    "layer2.0.downsample.0", "fc"."""
    if role[0] == "stem":
        return f"{role[1]}1"
    if role[0] == "head":
        return "fc"
    _, stage, block, path, kind, k = role
    if path == "shortcut":
        return f"layer{stage}.{block}.downsample.{0 if kind == 'conv' else 1}"
    return f"layer{stage}.{block}.{kind}{k}"
