"""Transfer learning (course 4 week 2): reuse a trained network's layers for a new task.

With little data, freeze the whole body and train only a new softmax head; since the frozen
body never changes, its activations can be computed once, saved to disk, and the head trained
on them (much faster than running the body every epoch). With more data, freeze fewer layers.

>>> import numpy as np, strata
>>> from strata import nn
>>> strata.seed(0)
>>> pretrained = nn.Sequential([nn.Dense(8, "relu"), nn.Dense(4, "relu"), nn.Dense(10)])
>>> pretrained.build((5,))
>>> model = replace_head(pretrained, classes=3)          # body frozen, new softmax head
>>> [p.shape for p in model.parameters()]                # only the head trains
[(4, 3), (3,)]
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np

from strata.autograd import no_grad
from strata.data.batches import iterate_minibatches
from strata.nn.layers import Dense
from strata.nn.module import Module
from strata.nn.sequential import Sequential

FORMAT = "strata-features/1"


def freeze(model: Sequential, n_layers: int | None = None) -> Sequential:
    """Freeze the first ``n_layers`` layers of ``model`` (all but the last when None) and make
    the others trainable; returns ``model``. Compile again after changing what is frozen."""
    layers = _layers(model, "freeze")
    n = len(layers) - 1 if n_layers is None else n_layers
    if not 0 <= n <= len(layers):
        raise ValueError(f"freeze: expected n_layers between 0 and {len(layers)} (the model's "
                         f"layer count), got {n_layers}")
    for i, layer in enumerate(layers):
        layer.trainable = i >= n
    return model


def replace_head(model: Sequential, classes: int, activation="softmax",
                 remove: int = 1) -> Sequential:
    """A new model: ``model``'s layers without its last ``remove`` layers (the old softmax head),
    all frozen, followed by a new ``Dense(classes, activation)`` head (softmax by default, as
    Keras's classifier heads: train with sparse_categorical_crossentropy; ``activation=None``
    gives logits, for a loss with ``from_logits=True``). The layers are shared, not copied;
    with more data, unfreeze the top of the body with ``freeze(new_model, n_layers)``."""
    layers = _layers(model, "replace_head")
    if not 1 <= remove < len(layers):
        raise ValueError(f"replace_head: expected to remove between 1 and {len(layers) - 1} "
                         f"layers (the model has {len(layers)}), got {remove}")
    if not isinstance(classes, (int, np.integer)) or classes < 1:
        raise ValueError(f"replace_head: expected classes to be a positive int, got {classes!r}")
    body = layers[:-remove]
    for layer in body:
        layer.trainable = False
    new = Sequential([*body, Dense(int(classes), activation)])
    if hasattr(model, "layer_names"):  # a NamedSequential (vgg16, vgg19) keeps its names
        new = type(model)(new.layers, [*model.layer_names[:-remove], "head"],
                          getattr(model, "preprocessing", None))
    if model.input_shape is not None:
        new.build(model.input_shape)
    return new


def precompute_features(body: Module, X, path, batch_size: int = 256,
                        verbose: bool = True) -> np.ndarray:
    """``body(X)`` in eval mode, computed once and saved to ``path`` (.safetensors).

    The file records a fingerprint of the body (architecture and weights) and of X; a later
    call with the same body and data reads the file instead of recomputing, and any change
    (new weights, other data) recomputes and replaces it. Train the new head on the result.
    """
    from safetensors import SafetensorError, safe_open
    from safetensors.numpy import load_file, save

    from strata.io import atomic_write

    path = Path(path)
    if path.suffix != ".safetensors":
        raise ValueError(f"precompute_features: expected a path ending in .safetensors, "
                         f"got {path}")
    X = np.asarray(X)
    fingerprint = _fingerprint(body, X)
    if path.is_file():
        try:
            with safe_open(str(path), framework="numpy") as f:
                metadata = f.metadata() or {}
            if metadata.get("format") == FORMAT and metadata.get("fingerprint") == fingerprint:
                return load_file(str(path))["features"]
            reason = "was computed from another body or other data"
        except (SafetensorError, OSError, KeyError) as e:
            reason = f"is unreadable ({e})"
        if verbose:
            print(f"precompute_features: {path} {reason}; recomputing it", file=sys.stderr)
    features = _forward(body, X, batch_size, verbose)
    metadata = {"format": FORMAT, "fingerprint": fingerprint}
    atomic_write(path, save({"features": features}, metadata))
    return features


def _forward(body: Module, X: np.ndarray, batch_size: int, verbose: bool) -> np.ndarray:
    from tqdm.auto import tqdm

    was_training = body.training
    body.eval()
    batches = iterate_minibatches(X, None, batch_size, shuffle=False)
    total = -(-len(X) // batch_size)
    with no_grad():
        out = [body(xb).data for xb, _ in tqdm(batches, total=total, desc="features",
                                               unit="batch", disable=not verbose)]
    body.train(was_training)
    return np.ascontiguousarray(np.concatenate(out))


def _fingerprint(body: Module, X: np.ndarray) -> str:
    """SHA-256 of the body's layers (classes and constructor arguments) and weights, and of the
    data's shape, dtype and bytes."""
    digest = hashlib.sha256()
    layers = [(type(m).__name__, getattr(m, "config", None)) for m in body.modules()]
    digest.update(json.dumps(layers, sort_keys=True, default=str).encode())
    for name, value in sorted(body.state_dict().items()):
        digest.update(name.encode())
        digest.update(np.ascontiguousarray(value).tobytes())
    digest.update(f"{X.shape}{X.dtype.str}".encode())
    digest.update(np.ascontiguousarray(X).tobytes())
    return digest.hexdigest()


def _layers(model, where: str) -> list:
    if not isinstance(model, Sequential):
        raise TypeError(f"{where}: expected a strata Sequential, got {type(model).__name__}")
    if not model.layers:
        raise ValueError(f"{where}: the model has no layers")
    return model.layers
