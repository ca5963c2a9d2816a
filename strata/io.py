"""Saving and loading models: weights as safetensors, the architecture as JSON in the same
file's metadata. Never pickle: loading a file cannot run code.

Writes go through strata.files.atomic_write (fsynced, renamed over the target, nothing left
behind on a crash), so an interrupted save never destroys the previous good file.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load_file, save

from strata import backend
from strata.files import atomic_write, write_text_atomic  # noqa: F401 -- public here too

FORMAT = "strata-model/1"


def save_model(model, path, include_optimizer: bool = True) -> Path:
    """Write ``model`` to ``path`` (.safetensors): weights, running averages, architecture
    (classes by registered name, constructor arguments as JSON), the shapes of its inputs when
    it is not Sequential, and, when it is compiled and ``include_optimizer``, the compile
    settings with the optimizer's state, so ``load_model`` returns a model that evaluates and
    trains on exactly where it was. A model on a device (``model.to("gpu")``) is saved as it
    is: its weights and optimizer state are copied to the host to be written."""
    import warnings

    from strata.nn.compiled import compile_state
    from strata.nn.module import Module
    from strata.nn.registry import config_of, registered_name

    if not isinstance(model, Module):
        raise TypeError(f"save_model: expected a strata Module, got {type(model).__name__}")
    path = Path(path)
    if path.suffix != ".safetensors":
        raise ValueError(f"save_model: expected a path ending in .safetensors, got {path}")
    state = model.state_dict()
    if not state:
        raise ValueError("save_model: the model has no weights yet; call it on a batch (or "
                         "build(input_shape)) first")
    try:
        architecture = {"class": registered_name(model), "config": config_of(model)}
    except TypeError as e:
        raise TypeError(f"save_model: {e}") from None
    metadata = {"format": FORMAT, "architecture": json.dumps(architecture)}
    inputs = getattr(model, "_input_specs", None)
    if inputs is not None and not hasattr(model, "layers"):
        metadata["inputs"] = json.dumps(inputs)
    tensors = {k: np.ascontiguousarray(backend.to_numpy(v)) for k, v in state.items()}
    if include_optimizer:
        settings, arrays, reason = compile_state(model)
        if reason:
            warnings.warn(f"save_model: {path} keeps the weights but not the compile settings: "
                          f"{reason}; compile the loaded model again", stacklevel=2)
        elif settings is not None:
            metadata["compile"] = json.dumps(settings)
            tensors.update({k: np.ascontiguousarray(backend.to_numpy(v))
                            for k, v in arrays.items()})
    atomic_write(path, save(tensors, metadata))
    return path


def _read(path: Path) -> tuple[dict, dict, dict]:
    """(architecture, {tensor name: shape}, metadata) of a model file, from its header alone:
    the safetensors layout and the architecture JSON are checked before anything is
    allocated."""
    from strata.io_checks import ArchitectureError, parse_architecture
    from strata.safetensors_header import HeaderError, read_header

    if not path.is_file():
        raise FileNotFoundError(f"load_model: no model file at {path}")
    try:
        tensors, metadata = read_header(path)
    except HeaderError as e:
        raise ValueError(f"load_model: {path} is not a readable safetensors file: {e}") from None
    if metadata.get("format") != FORMAT:
        raise ValueError(f"load_model: {path} was not written by strata.save_model (format "
                         f"{metadata.get('format')!r}, expected {FORMAT!r})")
    if "architecture" not in metadata:
        raise ValueError(f"load_model: {path} has no architecture in its metadata (expected "
                         f"the JSON save_model writes), got keys {sorted(metadata)}")
    try:
        architecture = parse_architecture(metadata["architecture"])
    except ArchitectureError as e:
        raise ValueError(f"load_model: {path} holds an architecture strata cannot rebuild: "
                         f"{e}") from None
    return architecture, {name: info.shape for name, info in tensors.items()}, metadata


def load_model(path, compile: bool = True):  # noqa: A002 -- Keras's name
    """Rebuild a model saved by ``save_model``: weights and running averages restored, and
    compiled with its optimizer's state when the file holds compile settings (unless
    ``compile=False``). The model is on the CPU, whatever device it was saved from: call
    ``model.to("gpu")`` to train it there (its optimizer state moves along).

    Only registered classes (strata.nn.LAYERS: strata's own and those decorated with
    ``@strata.nn.register``) are built, and none creates more values than the file's tensors
    hold, so a crafted file cannot run code or exhaust memory."""
    from strata.io_checks import ArchitectureError, build, parse_inputs

    path = Path(path)
    architecture, shapes, metadata = _read(path)
    try:
        inputs = parse_inputs(metadata.get("inputs"))
        model = build(architecture, shapes, inputs)
    except ArchitectureError as e:
        raise ValueError(f"load_model: the architecture in {path} does not fit its weights or "
                         f"cannot be built: {e}") from None
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError) as e:
        raise ValueError(f"load_model: {path} is not a readable safetensors file ({e})") from None
    weights = {k: v for k, v in tensors.items() if not k.startswith("optimizer/")}
    try:
        model.load_state_dict(weights)
    except (KeyError, ValueError) as e:
        raise ValueError(f"load_model: the weights in {path} do not fit its architecture: "
                         f"{e.args[0] if e.args else e}") from None
    if compile and "compile" in metadata:
        from strata.nn.compiled import restore

        restore(model, _settings(metadata["compile"], path),
                {k: v for k, v in tensors.items() if k.startswith("optimizer/")}, str(path))
    return model


def _settings(text: str, path: Path) -> dict:
    from strata.nn.compiled import is_plain

    try:
        settings = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as e:
        raise ValueError(f"load_model: the compile settings in {path} are not JSON ({e})") \
            from None
    if not isinstance(settings, dict) or not is_plain(settings):
        raise ValueError(f"load_model: the compile settings in {path} are not a JSON object "
                         f"of plain values")
    return settings
