"""torchvision-layout .safetensors files (the Hugging Face hub's VGG and ResNet weights, or a
``safetensors.torch.save_file`` of a torchvision state dict) read into strata's vgg16/vgg19
and torchvision_resnet; a .safetensors file strata wrote loads as the model's state dict.

torchvision's names: VGG ``features.<i>.weight`` / ``.bias`` (i counts every module of
``features``: conv, ReLU and pool), ``classifier.0``, ``.3``, ``.6`` (Linear, ReLU and Dropout
between them); ResNet ``conv1``, ``bn1``, ``layer<s>.<b>.conv<k>`` / ``.bn<k>``,
``layer<s>.<b>.downsample.0`` / ``.1``, ``fc``. Layouts: Conv2d weights (n_C, n_C_prev, f, f)
are transposed to (f, f, n_C_prev, n_C), Linear weights (out, in) to (in, out), and the first
Linear after the flatten has its input rows reordered from torch's C, H, W flatten order to
strata's H, W, C. BatchNorm: weight, bias, running_mean, running_var (num_batches_tracked is
ignored). torchvision's VGG pools adaptively to 7x7 before its classifier, which is the
identity at 224x224 inputs only. Images: vgg_preprocess mode "torch".
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from strata.models.arithmetic import count_parameters
from strata.models.named import NamedSequential
from strata.models.pretrained import WeightsError, assign_all, missing_layers, weighted_layers
from strata.nn import BatchNorm, Conv2D, Dense, Flatten, Residual, Sequential

BN_KEYS = {"gamma": "weight", "beta": "bias", "running_mean": "running_mean",
           "running_var": "running_var"}


def read_safetensors(path, where: str) -> dict:
    """{name: array} of a .safetensors file (read, never executed)."""
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError, TypeError) as e:
        raise WeightsError(f"{where} is not a readable safetensors file of NumPy dtypes ({e}); "
                           f"bfloat16 files must be converted to float32 first") from None


def _vgg_names(model: NamedSequential) -> list:
    pairs, feature, dense = [], 0, 0
    for _, layer in model.named_layers():
        if isinstance(layer, Conv2D):
            pairs.append((layer, f"features.{feature}"))
            feature += 2  # Conv2d, then ReLU
        elif isinstance(layer, Dense):
            pairs.append((layer, f"classifier.{3 * dense}"))  # Linear, ReLU, Dropout
            dense += 1
        elif not isinstance(layer, Flatten) and type(layer).__name__ != "Dropout":
            feature += 1  # a pool
    return pairs


def _flatten_input(model) -> tuple | None:
    """(n_H, n_W, n_C) that the model's Flatten receives, None without one."""
    shape = tuple(model.input_shape or ())
    for layer in model.layers:
        if isinstance(layer, Flatten):
            return shape if len(shape) == 3 else None
        shape = count_parameters(layer, shape).output_shape
    return None


def _arrays(layer, tensors: dict, name: str, flatten) -> dict:
    get = tensors.get
    if isinstance(layer, BatchNorm):
        return {k: get(f"{name}.{v}") for k, v in BN_KEYS.items() if f"{name}.{v}" in tensors}
    W = get(f"{name}.weight")
    if W is not None and isinstance(layer, Conv2D) and W.ndim == 4:
        W = W.transpose(2, 3, 1, 0)  # (n_C, n_C_prev, f, f) -> (f, f, n_C_prev, n_C)
    elif W is not None and W.ndim == 2:
        if flatten is not None and W.shape[1] == np.prod(flatten):
            n_h, n_w, n_c = flatten  # torch's rows are C, H, W; strata's H, W, C
            W = W.reshape(-1, n_c, n_h, n_w).transpose(2, 3, 1, 0).reshape(-1, W.shape[0])
        else:
            W = W.T
    arrays = {} if W is None else {"W": W}
    if f"{name}.bias" in tensors:
        arrays["b"] = tensors[f"{name}.bias"]
    return arrays


def load_safetensors(model, path) -> str | None:
    """Assign a torchvision-layout (or strata-written) .safetensors file to ``model``;
    returns the preprocessing mode, "torch" (strata's own files: the model's own)."""
    where = f"safetensors file {Path(path).name}"
    weighted_layers(model)  # builds the parameters from the input shape
    tensors = read_safetensors(path, where)
    own = model.state_dict()
    if own.keys() <= tensors.keys():  # written by strata (save_model or save_file(state_dict))
        model.load_state_dict({k: tensors[k] for k in own})
        return getattr(model, "preprocessing", None)
    if isinstance(model, NamedSequential):
        pairs = _vgg_names(model)
    elif isinstance(model, Sequential) and any(isinstance(m, Residual) for m in model.layers):
        from strata.models.resnet_imagenet import resnet_roles, torch_name

        pairs = [(layer, torch_name(role)) for layer, role in resnet_roles(model)]
    else:
        raise TypeError(f"{where}: expected vgg16/vgg19 or torchvision_resnet for torchvision "
                        f"weights, got {type(model).__name__}")
    prefixes = {key.rsplit(".", 1)[0] for key in tensors}
    missing_layers([n for _, n in pairs], prefixes, where)
    used = {n for _, n in pairs} | {"classifier", "fc"}  # a full file fits include_top=False
    extra = sorted(k for k in tensors if not k.endswith("num_batches_tracked") and
                   not any(k.startswith(f"{u}.") for u in used))
    if extra:
        raise WeightsError(f"{where}: found tensors that no layer of the model takes: "
                           f"{extra[:6]}; is the file for this architecture?")
    first_dense = next((layer for layer, _ in pairs if isinstance(layer, Dense)), None)
    flatten = _flatten_input(model)
    assign_all([(layer, _arrays(layer, tensors, name, flatten if layer is first_dense else None),
                 name) for layer, name in pairs], where)
    return "torch"
