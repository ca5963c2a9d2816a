"""Pretrained weights for the zoo, read from the files other frameworks publish, without pickle:

- MatConvNet ``.mat`` (the course's imagenet-vgg-verydeep-19.mat): strata.models.weights_matconvnet
- Keras applications ``.h5`` (VGG16, VGG19, ResNet50; full and "notop"): weights_keras
- torchvision-layout ``.safetensors`` (the Hugging Face hub's VGG and ResNet files):
  weights_torch; a ``.safetensors`` written by strata itself loads as its state dict.

``load_weights(model, path)`` picks the reader by extension (then by content), maps every
weighted layer of ``model`` to the file's names, checks every shape before assigning anything
(an error names the layer, the expected and the found shape) and converts layouts (NCHW
kernels, Linear's (out, in), torch's C,H,W flatten order). Nothing in a file is executed:
PyTorch's ``.pth``/``.pt`` pickles are refused with the way to convert them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from strata.models.arithmetic import count_parameters
from strata.nn import BatchNorm, Conv2D, Dense, Residual, Sequential

#: Extensions of pickled files (PyTorch checkpoints, NumPy pickles), refused.
PICKLE_SUFFIXES = (".pth", ".pt", ".pkl", ".pickle", ".ckpt", ".bin", ".tar")
#: Shape of a model's input when it has none recorded (include_top=False): only channels matter.
NOMINAL_INPUT = (224, 224, 3)

CONVERT_PICKLE = """\
strata never unpickles a file (unpickling runs code the file chooses). Convert it to
safetensors where PyTorch is installed, then load the .safetensors file:

    import torch
    from safetensors.torch import save_file
    state = torch.load("{name}", map_location="cpu", weights_only=True)
    state = state.get("state_dict", state)  # checkpoints that wrap the weights
    save_file({{k: v.contiguous() for k, v in state.items()}}, "{stem}.safetensors")
"""


class WeightsError(ValueError):
    """A weights file that does not fit the model: the message names the layer, the expected
    and the found shape or name."""


def _magic(path: Path) -> bytes:
    with open(path, "rb") as f:
        return f.read(128)


def detect_format(path) -> str:
    """"matconvnet", "keras", "safetensors" or "pickle": by extension, else by content."""
    path = Path(path)
    suffix = path.suffix.lower()
    by_suffix = {".mat": "matconvnet", ".h5": "keras", ".hdf5": "keras",
                 ".safetensors": "safetensors"}
    if suffix in by_suffix:
        return by_suffix[suffix]
    if suffix in PICKLE_SUFFIXES:
        return "pickle"
    head = _magic(path)
    if head.startswith(b"\x89HDF\r\n\x1a\n"):
        return "keras"
    if head.startswith(b"MATLAB 5.0 MAT-file"):
        return "matconvnet"
    if head[:1] == b"\x80" or head.startswith(b"PK\x03\x04"):  # pickle protocol 2+, torch zip
        return "pickle"
    if len(head) >= 9 and head[8:9] == b"{":  # safetensors: 8-byte length, then JSON
        return "safetensors"
    raise WeightsError(f"load_weights: cannot tell the format of {path}: expected a .mat "
                       f"(MatConvNet), .h5 (Keras) or .safetensors file")


def load_weights(model, path, preprocessing: bool = True):
    """Load the pretrained weights at ``path`` into ``model`` (a zoo model of the file's
    architecture: vgg16/vgg19 for VGG files, keras_resnet50/torchvision_resnet for ResNet
    ones); returns ``model``. Sets ``model.preprocessing`` (a ``vgg_preprocess`` mode) to the
    mode the file's weights expect, when the model has the attribute."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"load_weights: no weights file at {path}")
    kind = detect_format(path)
    if kind == "pickle":
        raise WeightsError(f"load_weights: {path} is a pickled file (PyTorch .pth/.pt)\n"
                           + CONVERT_PICKLE.format(name=path.name, stem=path.stem))
    if kind == "matconvnet":
        from strata.models.weights_matconvnet import load_matconvnet as reader
    elif kind == "keras":
        from strata.models.weights_keras import load_keras_h5 as reader
    else:
        from strata.models.weights_torch import load_safetensors as reader
    mode = reader(model, path)
    if preprocessing and hasattr(model, "preprocessing"):
        model.preprocessing = mode
    return model


def build_from_shapes(module, input_shape, found: list | None = None) -> tuple:
    """Create every lazily-built parameter of ``module`` from shapes alone (no forward pass:
    VGG at 224x224 needs none of its 20 GFLOPs to know its shapes); returns the output shape.
    ``found``: a list that receives (layer, input shape) of every Conv2D, Dense and BatchNorm,
    in order."""
    shape = tuple(input_shape)
    if isinstance(module, Sequential):
        for layer in module.layers:
            shape = build_from_shapes(layer, shape, found)
        return shape
    if isinstance(module, Residual):
        out = build_from_shapes(module.main, shape, found)
        if module.shortcut is not None:
            build_from_shapes(module.shortcut, shape, found)
        return out
    if isinstance(module, (Conv2D, Dense)) and module.W is None:
        module.build(shape[-1])
    elif isinstance(module, BatchNorm) and module.gamma is None:
        module.build(shape[-1])
    if found is not None and isinstance(module, (Conv2D, Dense, BatchNorm)):
        found.append((module, shape))
    return count_parameters(module, shape).output_shape


def weighted_layers(model) -> list:
    """(layer, input shape) of every Conv2D, Dense and BatchNorm of ``model`` in order, after
    building it from its input shape (NOMINAL_INPUT when it has none)."""
    found = []
    build_from_shapes(model, getattr(model, "input_shape", None) or NOMINAL_INPUT, found)
    return found


def expected(layer) -> dict:
    """The arrays a layer takes and their shapes: W and b, or gamma, beta and the running
    averages."""
    if isinstance(layer, BatchNorm):
        return {k: getattr(layer, k).shape for k in ("gamma", "beta", "running_mean",
                                                     "running_var")}
    names = ("W", "b") if layer.use_bias else ("W",)
    return {k: getattr(layer, k).shape for k in names}


def check(layer, arrays: dict, name: str, source: str) -> dict:
    """``arrays`` as float arrays after checking they are exactly what ``layer`` takes; a
    WeightsError naming the file's layer, the expected and the found shapes otherwise."""
    want = expected(layer)
    if set(arrays) != set(want):
        raise WeightsError(f"{source}: layer {name}: expected the arrays {sorted(want)} for "
                           f"{type(layer).__name__}, found {sorted(arrays)}")
    out = {}
    for key, shape in want.items():
        value = np.asarray(arrays[key])
        if value.shape != shape:
            raise WeightsError(f"{source}: layer {name}: expected {key} of shape {shape}, "
                               f"found {value.shape}")
        if not np.issubdtype(value.dtype, np.floating):
            raise WeightsError(f"{source}: layer {name}: expected floating {key}, found dtype "
                               f"{value.dtype}")
        out[key] = value
    return out


def assign_all(pairs, source: str) -> None:
    """Check every (layer, arrays, name) first, then assign: a bad file changes nothing."""
    checked = [(layer, check(layer, arrays, name, source)) for layer, arrays, name in pairs]
    for layer, arrays in checked:
        for key, value in arrays.items():
            tensor = getattr(layer, key)
            tensor.data = np.ascontiguousarray(value, dtype=tensor.dtype)


def missing_layers(wanted, available, source: str) -> None:
    """A WeightsError listing the file's layers when some of ``wanted`` are not in it."""
    absent = [name for name in wanted if name not in available]
    if absent:
        hint = (" (a 'notop' file: build the model with include_top=False)"
                if any(n.startswith(("fc", "predictions", "classifier")) for n in absent) else "")
        raise WeightsError(f"{source}: expected layers {absent[:6]} in the file{hint}; it "
                           f"holds {sorted(available)[:12]}{' ...' if len(available) > 12 else ''}")


def resnet50_from_file(path, input_shape=(224, 224, 3), classes: int = 1000,
                       classifier_activation="softmax"):
    """``resnet50(weights=path)``: the ResNet-50 variant of the file's framework (Keras .h5:
    keras_resnet50; torchvision .safetensors: torchvision_resnet(50); strata's own file: the
    course's resnet50) with its weights."""
    from strata.models.resnet import resnet50
    from strata.models.resnet_imagenet import keras_resnet50, torchvision_resnet
    from strata.safetensors_header import HeaderError, read_header

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"resnet50: no weights file at {path}")
    kind, args = detect_format(path), (input_shape, classes, classifier_activation)
    if kind == "keras":
        model = keras_resnet50(*args)
    elif kind == "safetensors":
        try:
            names = read_header(path)[0]
        except HeaderError as e:
            raise WeightsError(f"resnet50: {path} is not a readable safetensors file: {e}") \
                from None
        model = torchvision_resnet(50, *args) if "conv1.weight" in names else resnet50(*args)
    else:
        return load_weights(resnet50(*args), path)  # the errors of .mat and pickled files
    try:
        return load_weights(model, path)
    except WeightsError as e:
        if "fc" in str(e) or "predictions" in str(e):
            raise WeightsError(f"{e}\n(resnet50: pass classes=1000 for ImageNet weights; "
                               f"for a notop file build keras_resnet50(include_top=False) or "
                               f"torchvision_resnet(include_top=False) and call "
                               f"load_weights)") from None
        raise
