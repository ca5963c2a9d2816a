"""Transfer learning: freezing, a new head, and features computed once and cached on disk."""

from __future__ import annotations

import numpy as np
import pytest

import strata
from strata import nn
from strata.data import load_digits


def _pretrained():
    """A small ConvNet trained on the digits 0-4 (the "large source task")."""
    X, Y = load_digits(flatten=False)
    source = Y < 5
    strata.seed(0)
    model = nn.Sequential([nn.Conv2D(8, 3, padding="same", activation="relu",
                                     kernel_initializer="he"),
                           nn.MaxPool2D(2), nn.Flatten(), nn.Dense(32, "relu"),
                           nn.Dense(5, "softmax")])
    model.compile(optimizer="adam", lr=0.01, loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(X[source], Y[source], epochs=8, batch_size=64, verbose=0)
    return model, X[~source], Y[~source] - 5


def test_new_head_on_cached_features_learns_the_target_task(tmp_path, monkeypatch):
    pretrained, X, Y = _pretrained()
    weights = {k: v.copy() for k, v in pretrained.state_dict().items()}
    model = replace_head(pretrained, classes=5)
    assert [p.shape for p in model.parameters()] == [(32, 5), (5,)]
    body = nn.Sequential(model.layers[:-1])
    path = tmp_path / "features.safetensors"
    features = nn.precompute_features(body, X[:600], path, verbose=False)
    assert features.shape == (600, 32) and path.is_file()
    np.testing.assert_allclose(features, body.predict(X[:600]), rtol=1e-5, atol=1e-5)

    calls = []
    monkeypatch.setattr(body, "forward", lambda x: calls.append(x) or None)
    again = nn.precompute_features(body, X[:600], path, verbose=False)  # read from disk
    assert calls == [] and np.array_equal(again, features)
    monkeypatch.undo()

    head = nn.Sequential([model.layers[-1]])  # the new head alone, trained on the features
    head.compile(optimizer="adam", lr=0.01, loss="sparse_categorical_crossentropy",
                 metrics=["accuracy"])
    head.fit(features, Y[:600], epochs=60, batch_size=64, verbose=0)
    model.compile(loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    accuracy = model.evaluate(X[600:], Y[600:])["accuracy"]  # body + new head, unseen images
    assert accuracy > 0.85, accuracy
    for name, value in model.state_dict().items():  # the shared body did not move
        if not name.startswith(f"layers.{len(model.layers) - 1}."):
            np.testing.assert_array_equal(value, weights[name])


def test_changed_body_or_data_recomputes_the_cache(tmp_path, capsys):
    strata.seed(1)
    body = nn.Sequential([nn.Dense(4, "tanh")])
    X = np.random.default_rng(0).standard_normal((10, 3)).astype(np.float32)
    path = tmp_path / "f.safetensors"
    first = nn.precompute_features(body, X, path, verbose=False)
    body.layers[0].W.data += 1.0  # new weights: the cached features are stale
    second = nn.precompute_features(body, X, path)
    assert "computed from another body or other data" in capsys.readouterr().err
    assert not np.allclose(first, second)
    np.testing.assert_allclose(second, body.predict(X), rtol=1e-6)
    third = nn.precompute_features(body, X[:5], path, verbose=False)  # other data
    assert third.shape == (5, 4)
    path.write_bytes(b"not a safetensors file")
    np.testing.assert_array_equal(nn.precompute_features(body, X[:5], path), third)
    assert "unreadable" in capsys.readouterr().err
    with pytest.raises(ValueError, match="ending in .safetensors"):
        nn.precompute_features(body, X, tmp_path / "f.npy")


def test_freeze_counts_and_errors():
    strata.seed(2)
    model = nn.Sequential([nn.Dense(4, "relu"), nn.Dense(3, "relu"), nn.Dense(2)])
    model.build((5,))
    assert nn.freeze(model) is model
    assert [p.shape for p in model.parameters()] == [(3, 2), (2,)]
    nn.freeze(model, 1)  # with more data: train the top layers too
    assert [p.shape for p in model.parameters()] == [(4, 3), (3,), (3, 2), (2,)]
    nn.freeze(model, 0)
    assert len(model.parameters()) == 6
    with pytest.raises(ValueError, match="between 0 and 3"):
        nn.freeze(model, 4)
    with pytest.raises(ValueError, match="between 1 and 2 layers"):
        nn.replace_head(model, 3, remove=3)
    with pytest.raises(ValueError, match="positive int"):
        nn.replace_head(model, 0)
    with pytest.raises(TypeError, match="expected a strata Sequential"):
        nn.freeze(nn.Dense(3))


def replace_head(model, classes):
    new = nn.replace_head(model, classes, activation="softmax")  # probabilities, for the loss
    assert new.layers[:-1] == model.layers[:-1] and new.layers[-1] is not model.layers[-1]
    assert all(not layer.trainable for layer in new.layers[:-1])
    return new
