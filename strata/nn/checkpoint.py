"""Training checkpoints: one safetensors file holding everything ``fit`` needs to continue a run
exactly where it stopped — weights and running averages, the optimizer's state, the random
Generator's state, epoch, batch and iteration, the epoch's partial loss and predictions, the
history and the state of every callback that carries one.

The file is written through strata.files.atomic_write, so a kill at any moment leaves the
previous checkpoint whole. Arrays are safetensors tensors; everything else is JSON in the
file's metadata (nested values name their tensors as ``{"__array__": key}``). Loading runs no
code. Arrays on a device (a model trained on the GPU) are copied to the host to be written, and
come back as NumPy arrays, which ``fit`` moves to the model's device when it resumes.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from strata import backend

FORMAT = "strata-checkpoint/1"
_ARRAY = "__array__"


def _split(value, key: str, tensors: dict):
    """``value`` as JSON-able data, its arrays moved into ``tensors`` under path-like keys
    (a device's arrays copied to the host)."""
    if _on_device(value):
        value = backend.to_numpy(value)
    if isinstance(value, np.ndarray):
        tensors[key] = np.ascontiguousarray(value)
        return {_ARRAY: key}
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {str(k): _split(v, f"{key}/{k}", tensors) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_split(v, f"{key}/{i}", tensors) for i, v in enumerate(value)]
    return value


def _on_device(value) -> bool:
    """True for an array of a device (CuPy's): not NumPy's, nor a number, string or container."""
    return (hasattr(value, "shape") and not isinstance(value, (np.ndarray, np.generic))
            and backend.array_module(value) is not np)


def _join(value, tensors: dict, path: Path):
    if isinstance(value, dict):
        if set(value) == {_ARRAY}:
            if value[_ARRAY] not in tensors:
                raise ValueError(f"load_checkpoint: {path} names a tensor "
                                 f"{value[_ARRAY]!r} that it does not hold")
            return tensors[value[_ARRAY]]
        return {k: _join(v, tensors, path) for k, v in value.items()}
    if isinstance(value, list):
        return [_join(v, tensors, path) for v in value]
    return value


def save_checkpoint(path, model, progress: dict) -> Path:
    """Write ``model``'s weights, its optimizer's state, and ``progress`` (fit's loop state: any
    nesting of dicts, lists, numbers, strings and arrays) to ``path`` atomically."""
    from safetensors.numpy import save

    from strata.files import atomic_write

    tensors: dict = {}
    payload = {"model": _split(model.state_dict(), "model", tensors),
               "optimizer": _split(model.optimizer.state_dict(), "optimizer", tensors),
               "progress": _split(progress, "progress", tensors)}
    architecture = {"class": type(model).__name__, "config": model.get_config()}
    metadata = {"format": FORMAT, "state": json.dumps(payload),
                "architecture": json.dumps(architecture, default=str)}
    return atomic_write(Path(path), save(tensors, metadata))


def load_checkpoint(path) -> dict:
    """The payload of a checkpoint: {"model": state dict, "optimizer": state dict,
    "progress": fit's loop state}. Raises a ValueError naming the file if it is not one."""
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    from strata.safetensors_header import read_header

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"load_checkpoint: no checkpoint at {path}")
    try:  # the header is checked against the file's size before any tensor is read
        _, metadata = read_header(path)
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise ValueError(f"load_checkpoint: {path} is not a readable safetensors file "
                         f"({e})") from None
    if metadata.get("format") != FORMAT:
        raise ValueError(f"load_checkpoint: {path} is not a strata checkpoint (format "
                         f"{metadata.get('format')!r}, expected {FORMAT!r})")
    try:
        payload = json.loads(metadata["state"])
    except (KeyError, json.JSONDecodeError) as e:
        raise ValueError(f"load_checkpoint: {path} has no readable state ({e})") from None
    if not isinstance(payload, dict) or set(payload) != {"model", "optimizer", "progress"}:
        raise ValueError(f"load_checkpoint: {path}: expected the state to hold model, "
                         f"optimizer and progress")
    return _join(payload, tensors, path)


def rng_state() -> dict:
    """The shared random Generator's state (JSON-able: big integers are kept exactly)."""
    from strata import backend

    return backend.rng().bit_generator.state


def set_rng_state(state: dict) -> None:
    """Put the shared random Generator back in a state taken by ``rng_state``."""
    from strata import backend

    generator = backend.rng().bit_generator
    if state.get("bit_generator") != type(generator).__name__:
        raise ValueError(f"checkpoint: the random state is of a {state.get('bit_generator')} "
                         f"Generator, expected {type(generator).__name__}")
    generator.state = state
