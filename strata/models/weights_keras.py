"""Keras applications' .h5 weight files (VGG16, VGG19, ResNet50; "notop" or full), read with
h5py into strata's vgg16/vgg19 and keras_resnet50.

The layout Keras's ``save_weights`` writes (and ``model.save`` under "model_weights"): the
root's attribute ``layer_names`` lists every layer; each layer's group has the attribute
``weight_names`` (``block1_conv1/kernel:0``, ``block1_conv1/bias:0``; Keras 1's files
``block1_conv1_W_1:0``...) naming its datasets in order: kernel (f, f, n_C_prev, n_C) or
(n_prev, units), bias; batch norm's gamma, beta, moving_mean, moving_variance. Keras 3's
``.weights.h5`` keeps them under ``layers/<name>/vars/0, 1, ...``. The layouts are strata's
(channels last, H, W, C flatten order): nothing is transposed. Images: vgg_preprocess "caffe".
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from strata.models.named import NamedSequential
from strata.models.pretrained import WeightsError, assign_all, missing_layers, weighted_layers
from strata.nn import BatchNorm, Conv2D, Dense

#: strata's VGG names -> Keras's: conv<s>_<i> -> block<s>_conv<i>, fc6-fc8 -> fc1, fc2,
#: predictions.
VGG_HEAD = {"fc6": "fc1", "fc7": "fc2", "fc8": "predictions"}
BN_ORDER = ("gamma", "beta", "running_mean", "running_var")


def _decode(names) -> list[str]:
    return [n.decode() if isinstance(n, bytes) else str(n) for n in np.asarray(names).ravel()]


class KerasFile:
    """An open Keras weights file: ``names`` (layers in the file) and ``arrays(name)`` (that
    layer's weights in order)."""

    def __init__(self, h5, where: str):
        self.where = where
        root = h5["model_weights"] if "model_weights" in h5 else h5
        if "layer_names" in root.attrs:
            self.groups = {n: root[n] for n in _decode(root.attrs["layer_names"]) if n in root}
            self.keras3 = False
        elif "layers" in root:
            self.groups, self.keras3 = dict(root["layers"].items()), True
        else:
            raise WeightsError(f"{where}: expected Keras weights (the attribute layer_names or "
                               f"a 'layers' group), found {sorted(root.keys())[:8]}")
        self.names = set(self.groups)

    def arrays(self, name: str) -> list:
        group = self.groups[name]
        if self.keras3:
            values = group.get("vars", {})
            return [np.asarray(values[str(i)]) for i in range(len(values))]
        return [np.asarray(group[w]) for w in _decode(group.attrs.get("weight_names", []))]


def _roles(layer, values: list, name: str, where: str) -> dict:
    keys = BN_ORDER if isinstance(layer, BatchNorm) else ("W", "b")[:len(values)]
    if len(values) != len(keys) or (isinstance(layer, (Conv2D, Dense)) and
                                    len(values) != 1 + bool(layer.use_bias)):
        want = 4 if isinstance(layer, BatchNorm) else 1 + bool(layer.use_bias)
        raise WeightsError(f"{where}: layer {name}: expected {want} weight arrays for "
                           f"{type(layer).__name__}, found {len(values)}")
    return dict(zip(keys, values))


def _vgg_pairs(model) -> list:
    pairs = []
    for name, layer in model.named_layers():
        if isinstance(layer, (Conv2D, Dense)):
            stage, _, i = name.removeprefix("conv").partition("_")
            pairs.append((layer, VGG_HEAD.get(name) or f"block{stage}_conv{i}"))
    return pairs


def _resnet_pairs(model, names: set) -> list:
    from strata.models.resnet_imagenet import keras_name, resnet_roles

    old = "res2a_branch2a" in names
    return [(layer, keras_name(role, old)) for layer, role in resnet_roles(model)]


def load_keras_h5(model, path) -> str:
    """Assign a Keras applications .h5 file's weights to ``model`` (vgg16/vgg19 by layer name,
    keras_resnet50 by its blocks); returns the preprocessing mode, "caffe"."""
    import h5py

    where = f"Keras file {Path(path).name}"
    weighted_layers(model)  # builds the parameters from the input shape
    try:
        h5 = h5py.File(path, "r")
    except OSError as e:
        raise WeightsError(f"{where} is not a readable HDF5 file ({e})") from None
    with h5:
        file = KerasFile(h5, where)
        pairs = (_vgg_pairs(model) if isinstance(model, NamedSequential)
                 else _resnet_pairs(model, file.names))
        missing_layers([n for _, n in pairs], file.names, where)
        assign_all([(layer, _roles(layer, file.arrays(n), n, where), n) for layer, n in pairs],
                   where)
    return "caffe"
