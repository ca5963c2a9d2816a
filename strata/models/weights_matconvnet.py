"""MatConvNet's "simplenn" .mat files, as the course's imagenet-vgg-verydeep-19.mat, read with
scipy.io.loadmat (no code runs) into strata's vgg16/vgg19.

The layout, as the course's nst_utils reads it: ``mat["layers"]`` is a 1 x L cell array of
1 x 1 structs with fields name, type, weights, ... (``mat["layers"][0][i][0][0][0][0]`` the
name, ``[2][0][0]`` the kernel and ``[2][0][1]`` the bias); conv layers (type "conv") have
weights = {kernel (f, f, n_C_prev, n_C), bias (n_C, 1) or (1, n_C)}; fc6-fc8 are conv layers
too, with 7x7 and 1x1 kernels over the pool5 map. Kernels index (height, width, channel in,
channel out) like strata's, and images are RGB minus the mean pixel (``meta.normalization``
or ``normalization`` holds averageImage): vgg_preprocess mode "matconvnet".
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from strata.models.named import NamedSequential
from strata.models.pretrained import WeightsError, assign_all, missing_layers, weighted_layers
from strata.nn import Conv2D, Dense


def _text(value) -> str:
    return str(np.asarray(value).ravel()[0]) if np.asarray(value).size else ""


def _field(record, key: str, where: str):
    names = record.dtype.names or ()
    if key not in names:
        raise WeightsError(f"{where}: expected a struct with field {key!r}, found fields "
                           f"{list(names)}")
    return record[key]


def read_matconvnet(path) -> dict:
    """{layer name: (kernel, bias)} of the conv layers of a MatConvNet simplenn .mat file."""
    try:
        from scipy.io import loadmat
    except ImportError:
        raise ImportError("reading MatConvNet .mat files needs SciPy: pip install scipy "
                          "(installed with scikit-learn)") from None
    where = f"MatConvNet file {path}"
    try:
        mat = loadmat(str(path))
    except NotImplementedError:
        raise WeightsError(f"{where} is a MATLAB v7.3 (HDF5) file; save it again with "
                           f"save(..., '-v7') in MATLAB") from None
    except Exception as e:  # scipy raises ValueError, TypeError or OSError on corrupt files
        raise WeightsError(f"{where} is not a readable .mat file ({e})") from None
    cells = mat.get("layers")
    if cells is None or cells.dtype != object:
        keys = sorted(k for k in mat if not k.startswith("__"))
        raise WeightsError(f"{where}: expected a 'layers' cell array of structs (a simplenn "
                           f"network), found keys {keys}")
    found = {}
    for i, cell in enumerate(cells.ravel()):
        record = np.asarray(cell).ravel()[0]
        if not isinstance(record, np.void):
            raise WeightsError(f"{where}: layers{{{i + 1}}} is not a struct")
        name = _text(_field(record, "name", f"{where}: layers{{{i + 1}}}"))
        if _text(_field(record, "type", f"{where}: layer {name}")) != "conv":
            continue
        weights = np.asarray(_field(record, "weights", f"{where}: layer {name}")).ravel()
        if len(weights) != 2:
            raise WeightsError(f"{where}: layer {name}: expected weights {{kernel, bias}}, "
                               f"found {len(weights)} arrays")
        found[name] = (np.asarray(weights[0]), np.asarray(weights[1]))
    return found


def load_matconvnet(model, path) -> str:
    """Assign a MatConvNet VGG file's conv1_1 ... fc8 to ``model``'s layers of the same names;
    returns the preprocessing mode, "matconvnet"."""
    where = f"MatConvNet file {Path(path).name}"
    if not isinstance(model, NamedSequential):
        raise TypeError(f"{where}: expected a model with named layers (vgg16, vgg19), got "
                        f"{type(model).__name__}")
    weighted_layers(model)  # builds the parameters from the input shape
    found = read_matconvnet(path)
    named = [(n, layer) for n, layer in model.named_layers() if isinstance(layer, (Conv2D, Dense))]
    missing_layers([n for n, _ in named], found, where)
    pairs = []
    for name, layer in named:
        kernel, bias = found[name]
        if isinstance(layer, Dense):  # fc6-fc8: (f, f, c, k) kernels, rows in H, W, C order
            if kernel.ndim != 4 or np.prod(kernel.shape[:3]) != layer.W.shape[0]:
                raise WeightsError(f"{where}: layer {name}: expected a kernel of "
                                   f"{layer.W.shape[0]} x {layer.W.shape[1]} values (flattened "
                                   f"to {layer.W.shape}), found shape {kernel.shape}")
            kernel = kernel.reshape(-1, kernel.shape[-1])
        arrays = {"W": kernel, "b": bias.reshape(-1)} if layer.use_bias else {"W": kernel}
        pairs.append((layer, arrays, name))
    assign_all(pairs, where)
    return "matconvnet"
