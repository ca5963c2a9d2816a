"""Feature extractors for style transfer: each maps a preprocessed NHWC image to named layer
activations, ``extractor(x, layers) -> {name: activation}``, and carries its ``layer_names``,
its ``preprocessing`` and its default ``style_layers`` and ``content_layer``.

- ``random_features``: no pretrained weights needed. One layer of random filters at several
  scales (3x3 ... 23x23), ReLU, as in Ustyuzhaninov et al., "What does it take to generate
  natural textures?" (ICLR 2017): such features synthesize textures well. It is a stand-in:
  style transfer with a pretrained VGG-19 gives the course's quality.
- ``vgg_features``: a VGG-16/19 of ``strata.models`` (layers named conv1_1 ... conv5_4), e.g.
  ``strata.models.vgg19(weights=PATH)`` with the course's imagenet-vgg-verydeep-19.mat.
"""

from __future__ import annotations

import numpy as np

from strata import ops
from strata.autograd import ShapeError
from strata.tensor import Tensor
from strata.vision.style import CONTENT_LAYER, STYLE_LAYERS, Preprocessing

#: Said by every command and document that uses random features instead of a pretrained VGG.
RANDOM_FEATURES_NOTE = ("random multi-scale features (no pretrained weights): they transfer "
                        "colours and textures; style transfer with a pretrained VGG-19 "
                        "(--weights imagenet-vgg-verydeep-19.mat) gives the course's quality")


def _check_layers(extractor, layers) -> list[str]:
    layers = list(extractor.layer_names if layers is None else layers)
    unknown = [name for name in layers if name not in extractor.layer_names]
    if unknown:
        raise KeyError(f"{type(extractor).__name__}: no layer(s) {unknown}; the layers are "
                       f"{', '.join(extractor.layer_names)}")
    return layers


def _check_input(x, where: str) -> Tensor:
    x = x if isinstance(x, Tensor) else Tensor(np.asarray(x))
    if x.ndim != 4 or x.shape[3] != 3:
        raise ShapeError(f"{where}: expected preprocessed RGB images (m, n_H, n_W, 3), received "
                         f"shape {x.shape}")
    return x


class RandomFeatures:
    """One layer of random filters at several scales, each ReLU(conv(x, W_k)) with ``filters``
    He-normal f x f filters (f in ``kernels``), "valid" padding, stride about f / 4 for the
    larger ones (a Gram matrix needs no full resolution). Deterministic by ``seed``. Layers
    are named ``conv3x3``, ``conv5x5``...; the style uses them all, equally weighted; the
    content is ``content_layer`` (default: the third-smallest scale, conv7x7: coarse enough to
    leave the fine texture to the style)."""

    def __init__(self, kernels=(3, 5, 7, 11, 15, 23), filters: int = 64, seed: int = 0,
                 content_layer: str | None = None, preprocessing: Preprocessing | None = None):
        kernels = tuple(kernels)
        if not kernels or any(not isinstance(f, (int, np.integer)) or f < 1 for f in kernels) \
                or len(set(kernels)) != len(kernels):
            raise ValueError(f"RandomFeatures: expected distinct positive kernel sizes, "
                             f"received {kernels!r}")
        if not isinstance(filters, (int, np.integer)) or filters < 1:
            raise ValueError(f"RandomFeatures: expected filters >= 1, received {filters!r}")
        rng = np.random.default_rng(seed)
        self.kernels = tuple(sorted(int(f) for f in kernels))
        self.filters, self.seed = filters, seed
        self.layer_names = tuple(f"conv{f}x{f}" for f in self.kernels)
        self.W = {name: (rng.standard_normal((f, f, 3, filters)) * np.sqrt(2 / (f * f * 3)))
                  .astype(np.float32) for name, f in zip(self.layer_names, self.kernels)}
        self.strides = {name: max(1, f // 4) for name, f in zip(self.layer_names, self.kernels)}
        self.style_layers = tuple((name, 1 / len(self.kernels)) for name in self.layer_names)
        self.content_layer = content_layer or self.layer_names[min(2, len(self.kernels) - 1)]
        _check_layers(self, [self.content_layer])
        self.preprocessing = preprocessing or Preprocessing()

    def __call__(self, x, layers=None) -> dict:
        """{name: ReLU(conv(x, W_name))} for ``layers`` (default all)."""
        layers, x = _check_layers(self, layers), _check_input(x, "RandomFeatures")
        if min(x.shape[1:3]) < self.kernels[-1]:
            raise ShapeError(f"RandomFeatures: images of {x.shape[1]}x{x.shape[2]} pixels are "
                             f"smaller than the largest filter ({self.kernels[-1]}x"
                             f"{self.kernels[-1]}); pass smaller kernels or a larger image")
        return {name: ops.relu(ops.conv2d(x, ops.astype(Tensor(self.W[name]), x.dtype),
                                          stride=self.strides[name]))
                for name in layers}

    def __repr__(self) -> str:
        return (f"RandomFeatures(kernels={self.kernels}, filters={self.filters}, "
                f"seed={self.seed})")


def random_features(seed: int = 0, **options) -> RandomFeatures:
    """The default extractor without pretrained weights: ``RandomFeatures(seed=seed, ...)``."""
    return RandomFeatures(seed=seed, **options)


def _preprocessings() -> dict:
    """strata.models.vgg's preprocessing modes as Preprocessing (constants from vgg.py)."""
    from strata.models.vgg import IMAGENET_MEAN_RGB, TORCH_MEAN, TORCH_STD

    course = Preprocessing(mean=tuple(IMAGENET_MEAN_RGB))
    return {"matconvnet": course, "caffe": Preprocessing(tuple(IMAGENET_MEAN_RGB),
                                                         channels="BGR"),
            "torch": Preprocessing(tuple(255 * m for m in TORCH_MEAN),
                                   tuple(255 * s for s in TORCH_STD)),
            None: course}  # random weights: the course's mean subtraction


class VGGFeatures:
    """A frozen VGG of strata.models (conv1_1 ... conv5_4; strata.models.vgg.feature_extractor)
    as a style-transfer extractor: one forward pass up to the deepest requested layer, pixels
    preprocessed as its weights expect (``model.preprocessing``: matconvnet, caffe, torch).
    The course's defaults: STYLE_LAYERS (conv1_1 ... conv5_1), CONTENT_LAYER (conv4_2)."""

    def __init__(self, model, preprocessing: Preprocessing | str | None = None):
        names = getattr(model, "layer_names", None)
        if not names or CONTENT_LAYER not in names:
            raise ValueError(f"VGGFeatures: expected a VGG with named layers (conv1_1 ... "
                             f"conv5_4, as strata.models.vgg19 builds), received "
                             f"{type(model).__name__} with layers {names}")
        self.model, self.layer_names = model, tuple(names)
        if any(getattr(layer, "W", 0) is None for layer in model.layers):
            model.build((32, 32, 3))  # create the lazy kernels now, so that they get frozen
        model.trainable = False  # frozen: backward computes d/dG only
        model.eval()
        if not isinstance(preprocessing, Preprocessing):
            modes = _preprocessings()
            key = preprocessing or getattr(model, "preprocessing", None)
            if key not in modes:
                raise ValueError(f"VGGFeatures: unknown preprocessing {key!r}; expected one of "
                                 f"{[k for k in modes if k]} or a Preprocessing")
            preprocessing = modes[key]
        self.preprocessing = preprocessing
        self.style_layers, self.content_layer = STYLE_LAYERS, CONTENT_LAYER
        self._extractors = {}

    def __call__(self, x, layers=None) -> dict:
        """{name: activation} of ``layers`` (default all) in one forward pass."""
        from strata.models.vgg import feature_extractor

        layers, x = _check_layers(self, layers), _check_input(x, "VGGFeatures")
        key = tuple(layers)
        if key not in self._extractors:
            self._extractors[key] = feature_extractor(self.model, list(key))
        return self._extractors[key](x)


def vgg_features(model=None, weights=None, preprocessing=None) -> VGGFeatures:
    """VGGFeatures of ``model``, or of ``strata.models.vgg19(weights=weights)`` without its
    classifier (the course's imagenet-vgg-verydeep-19.mat, a Keras .h5 or a safetensors file;
    see strata.models.pretrained)."""
    if model is None:
        from strata.models.vgg import vgg19

        model = vgg19(input_shape=None, include_top=False, weights=weights)
    return VGGFeatures(model, preprocessing)
