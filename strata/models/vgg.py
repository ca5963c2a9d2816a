"""VGG-16 and VGG-19 (Simonyan and Zisserman, 2014): only 3x3 "same" convolutions and 2x2 max
pools, with named layers (conv1_1 ... conv5_4, pool1 ... pool5, fc6, fc7, fc8) so that neural
style transfer and transfer learning can take the activations of any of them, and pretrained
weights load from MatConvNet, Keras and torchvision files (strata.models.pretrained).

Pixels: the weights expect images preprocessed as they were trained; ``vgg_preprocess(images,
mode)`` and ``vgg_deprocess`` hold the constants in one place (``model.preprocessing`` names the
mode of loaded weights).
"""

from __future__ import annotations

import numpy as np

from strata.models.arithmetic import _image_shape, classifier, count_parameters
from strata.models.named import NamedSequential
from strata.nn import AvgPool2D, Conv2D, Dense, Dropout, Flatten, MaxPool2D
from strata.nn.module import Module
from strata.tensor import Tensor

#: (filters, convolutions) of each of VGG-16's five stages, each ending in a 2x2/2 max pool.
VGG16_STAGES = ((64, 2), (128, 2), (256, 3), (512, 3), (512, 3))
#: VGG-19: four convolutions in each of the last three stages.
VGG19_STAGES = ((64, 2), (128, 2), (256, 4), (512, 4), (512, 4))

#: ImageNet's mean pixel, RGB, on 0-255 pixels (the course's MatConvNet VGG-19 and Keras's
#: "caffe" mode, which subtracts it in BGR order).
IMAGENET_MEAN_RGB = (123.68, 116.779, 103.939)
#: torchvision's mean and standard deviation, RGB, on 0-1 pixels.
TORCH_MEAN, TORCH_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
#: Preprocessing modes: "matconvnet" (RGB - mean, the course's nst_utils), "caffe" (Keras
#: applications' VGG/ResNet50: BGR - mean), "torch" (x / 255 - mean) / std), None (as given).
PREPROCESSING_MODES = ("matconvnet", "caffe", "torch", None)


def _vgg_layers(stages, pool: str) -> list:
    pool_layer = {"max": MaxPool2D, "avg": AvgPool2D}.get(pool)
    if pool_layer is None:
        raise ValueError(f"vgg: expected pool 'max' or 'avg' (the course's style transfer "
                         f"averages), got {pool!r}")
    layers = []
    for stage, (filters, convs) in enumerate(stages, start=1):
        layers += [(f"conv{stage}_{i}", Conv2D(filters, 3, padding="same", activation="relu",
                                               kernel_initializer="he"))
                   for i in range(1, convs + 1)]
        layers.append((f"pool{stage}", pool_layer(2, 2)))
    return layers


def _vgg(stages, where, input_shape, classes, classifier_activation, include_top, weights,
         pool, fc_units=4096) -> NamedSequential:
    layers = _vgg_layers(stages, pool)
    if include_top:
        layers += [("flatten", Flatten()),
                   ("fc6", Dense(fc_units, "relu", kernel_initializer="he")),
                   ("drop6", Dropout(0.5)),
                   ("fc7", Dense(fc_units, "relu", kernel_initializer="he")),
                   ("drop7", Dropout(0.5)),
                   ("fc8", classifier(classes, classifier_activation, where))]
    model = NamedSequential(layers)
    if input_shape is not None or include_top:
        if input_shape is None:
            raise ValueError(f"{where}: include_top=True needs an input_shape (the dense "
                             f"layers' size depends on it; (224, 224, 3) for ImageNet weights)")
        model.input_shape = _image_shape(input_shape, where)
        count_parameters(model, model.input_shape)  # a too-small input fails here
    if weights is not None:
        from strata.models.pretrained import load_weights

        load_weights(model, weights)
    return model


def vgg16(input_shape=(224, 224, 3), classes: int = 1000, classifier_activation="softmax",
          include_top: bool = True, weights=None, pool: str = "max") -> NamedSequential:
    """VGG-16: five stages of 3x3 "same" ReLU convolutions conv1_1 ... conv5_3 (64, 64 |
    128, 128 | 256 x 3 | 512 x 3 | 512 x 3), each followed by a 2x2/2 pool pool1 ... pool5
    (224 -> 7), then flatten (25,088), fc6 4096, drop6 (keep_prob=0.5), fc7 4096, drop7, fc8
    ``classes`` with ``classifier_activation`` (softmax probabilities; None for logits).
    He initialization; ``include_top=False`` keeps conv1_1 ... pool5 only, for any input of at
    least 32x32 (``input_shape=None`` leaves it open). ``weights``: a path to pretrained
    weights (Keras .h5, torchvision-layout .safetensors, or strata's own; see
    strata.models.pretrained). ``pool="avg"`` swaps the max pools for average pools.

    138,357,544 parameters at 224x224x3 with 1000 classes (14,714,688 in the 13 convolutions,
    123,642,856 in the three dense layers): about 550 MB in float32, created on the first call.

    >>> from strata.models import count_parameters
    >>> count_parameters(vgg16(), (224, 224, 3)).total
    138357544
    """
    return _vgg(VGG16_STAGES, "vgg16", input_shape, classes, classifier_activation,
                include_top, weights, pool)


def vgg19(input_shape=(224, 224, 3), classes: int = 1000, classifier_activation="softmax",
          include_top: bool = True, weights=None, pool: str = "max") -> NamedSequential:
    """VGG-19, the network of the course's neural style transfer: as ``vgg16`` with four
    convolutions in stages 3-5 (conv1_1 ... conv5_4). ``weights`` also reads the course's
    MatConvNet file imagenet-vgg-verydeep-19.mat.

    143,667,240 parameters at 224x224x3 with 1000 classes (20,024,384 in the 16 convolutions).

    >>> from strata.models import count_parameters
    >>> count_parameters(vgg19(), (224, 224, 3)).total
    143667240
    """
    return _vgg(VGG19_STAGES, "vgg19", input_shape, classes, classifier_activation,
                include_top, weights, pool)


def vgg(stages, input_shape=(224, 224, 3), classes: int = 1000, classifier_activation="softmax",
        include_top: bool = True, weights=None, pool: str = "max",
        fc_units: int = 4096) -> NamedSequential:
    """A VGG of any ``stages`` ((filters, convolutions) per stage, e.g. VGG19_STAGES) and
    ``fc_units`` in fc6 and fc7, with vgg16's names and options: small copies for tests."""
    stages = tuple(tuple(s) for s in stages)
    if not stages or not all(len(s) == 2 and all(isinstance(n, int) and n >= 1 for n in s)
                             for s in stages):
        raise ValueError(f"vgg: expected stages as (filters, convolutions) pairs of positive "
                         f"ints, got {stages!r}")
    return _vgg(stages, "vgg", input_shape, classes, classifier_activation, include_top,
                weights, pool, fc_units)


class FeatureExtractor(Module):
    """The activations of named layers of a NamedSequential, from one forward pass that stops
    at the deepest of them: ``extractor(x)`` -> {name: Tensor}, differentiable (style
    transfer backpropagates them to the pixels). The layers are the model's, shared."""

    def __init__(self, model: NamedSequential, layer_names):
        if not isinstance(model, NamedSequential):
            raise TypeError(f"feature_extractor: expected a model with named layers (vgg16, "
                            f"vgg19, a NamedSequential), got {type(model).__name__}")
        names = [layer_names] if isinstance(layer_names, str) else list(layer_names)
        if not names:
            raise ValueError("feature_extractor: expected at least one layer name, got none")
        positions = [model.index(name) for name in names]  # a KeyError lists the names
        self.layer_names = names
        self.layers = model.layers[:max(positions) + 1]
        self._wanted = {model.layer_names[p]: p for p in positions}

    def forward(self, x) -> dict:
        wanted = {p: name for name, p in self._wanted.items()}
        out = {}
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i in wanted:
                out[wanted[i]] = x
        return {name: out[name] for name in self.layer_names}


def feature_extractor(model: NamedSequential, layer_names) -> FeatureExtractor:
    """A callable giving {name: activation} for ``layer_names`` of ``model`` (e.g.
    ``["conv1_1", ..., "conv5_1", "conv4_2"]``), running the model once up to the deepest. To
    backpropagate only to the input, freeze the model first (``model.trainable = False``)."""
    return FeatureExtractor(model, layer_names)


def _check_mode(mode, where: str):
    if mode not in PREPROCESSING_MODES:
        raise ValueError(f"{where}: expected mode one of {PREPROCESSING_MODES}, got {mode!r}")


def _images(images, where: str):
    x = images if isinstance(images, Tensor) else np.asarray(images)
    if x.ndim not in (3, 4) or x.shape[-1] != 3:
        raise ValueError(f"{where}: expected RGB images (m, n_H, n_W, 3) or one (n_H, n_W, 3), "
                         f"got shape {x.shape}")
    if not isinstance(x, Tensor):
        if not np.issubdtype(x.dtype, np.number) or np.issubdtype(x.dtype, np.complexfloating):
            raise TypeError(f"{where}: expected numeric pixels, got dtype {x.dtype}")
        x = x.astype(x.dtype if np.issubdtype(x.dtype, np.floating) else np.float32)
    return x


def _constants(mode, dtype):
    if mode == "torch":
        return (255.0 * np.asarray(TORCH_MEAN, dtype), 255.0 * np.asarray(TORCH_STD, dtype))
    return np.asarray(IMAGENET_MEAN_RGB, dtype), np.ones(3, dtype)


def vgg_preprocess(images, mode="matconvnet"):
    """RGB pixels 0-255 (m, n_H, n_W, 3) -> the network's input for ``mode``: "matconvnet"
    x - IMAGENET_MEAN_RGB; "caffe" (Keras) the same in BGR order (channels reversed); "torch"
    (x / 255 - TORCH_MEAN) / TORCH_STD; None unchanged. A Tensor stays differentiable."""
    _check_mode(mode, "vgg_preprocess")
    x = _images(images, "vgg_preprocess")
    if mode is None:
        return x
    mean, std = _constants(mode, x.dtype)
    x = (x - mean) / std if mode == "torch" else x - mean
    return x[..., ::-1] if mode == "caffe" else x


def vgg_deprocess(x, mode="matconvnet", clip: bool = True):
    """The inverse of ``vgg_preprocess``: network inputs -> RGB pixels 0-255 (an array; rounded
    and clipped to uint8 when ``clip``, to save or show the generated image)."""
    _check_mode(mode, "vgg_deprocess")
    x = _images(x.data if isinstance(x, Tensor) else x, "vgg_deprocess")
    if mode is not None:
        mean, std = _constants(mode, x.dtype)
        x = x[..., ::-1] if mode == "caffe" else x
        x = x * std + mean
    return np.clip(np.rint(x), 0, 255).astype(np.uint8) if clip else x
