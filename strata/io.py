"""Saving and loading models: weights as safetensors, the architecture as JSON in the same
file's metadata. Never pickle: loading a file cannot run code.

Writes go to a temporary file in the destination folder that is then renamed over the target,
so an interrupted save never destroys the previous good file.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load_file, save_file

FORMAT = "strata-model/1"


def atomic_write(path: Path, write) -> None:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then rename it over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text_atomic(path, text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary file renamed over it (never half-written)."""
    path = Path(path)
    atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
    return path


def save_model(model, path) -> Path:
    """Write ``model`` (weights, running averages and architecture) to ``path`` (.safetensors)."""
    from strata.nn.module import Module

    if not isinstance(model, Module):
        raise TypeError(f"save_model: expected a strata Module, got {type(model).__name__}")
    path = Path(path)
    if path.suffix != ".safetensors":
        raise ValueError(f"save_model: expected a path ending in .safetensors, got {path}")
    state = model.state_dict()
    if not state:
        raise ValueError("save_model: the model has no weights yet; call it on a batch (or "
                         "build(input_shape)) first")
    architecture = {"class": type(model).__name__, "config": model.get_config()}
    try:
        text = json.dumps(architecture)
    except TypeError as e:
        raise TypeError(f"save_model: the architecture holds a value JSON cannot store ({e}); "
                        f"give activations and initializers by name") from None
    metadata = {"format": FORMAT, "architecture": text}
    atomic_write(path, lambda tmp: save_file({k: np.ascontiguousarray(v)
                                               for k, v in state.items()}, tmp, metadata))
    return path


def _read(path: Path) -> tuple[dict, dict]:
    if not path.is_file():
        raise FileNotFoundError(f"load_model: no model file at {path}")
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="numpy") as f:
            metadata = f.metadata() or {}
        weights = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise ValueError(f"load_model: {path} is not a readable safetensors file ({e})") from None
    if metadata.get("format") != FORMAT:
        raise ValueError(f"load_model: {path} was not written by strata.save_model (format "
                         f"{metadata.get('format')!r}, expected {FORMAT!r})")
    return json.loads(metadata["architecture"]), weights


def load_model(path):
    """Rebuild a model saved by ``save_model``; its weights and running averages restored."""
    from strata.nn import LAYERS

    path = Path(path)
    architecture, weights = _read(path)
    cls = LAYERS.get(architecture.get("class"))
    if cls is None:
        raise ValueError(f"load_model: unknown model class {architecture.get('class')!r} in "
                         f"{path}; known: {sorted(LAYERS)}")
    model = cls.from_config(architecture["config"])
    try:
        model.load_state_dict(weights)
    except (KeyError, ValueError) as e:
        raise ValueError(f"load_model: the weights in {path} do not fit its architecture: "
                         f"{e}") from None
    return model
