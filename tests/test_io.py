"""save_model / load_model: round trip, atomic writes, clear errors, no pickle."""

from __future__ import annotations

import json

import numpy as np
import pytest
from safetensors import safe_open

import strata
import strata.nn as nn


def _model():
    strata.seed(0)
    model = nn.Sequential([nn.Dense(6, "relu", kernel_initializer="he"), nn.BatchNorm(),
                           nn.Dropout(0.8), nn.Dense(2), nn.Activation("softmax")])
    x = np.random.default_rng(0).standard_normal((16, 3)).astype(np.float32)
    model(x)  # builds, and moves batch norm's running averages
    return model.eval(), x


def test_round_trip_restores_outputs_and_running_averages(tmp_path):
    model, x = _model()
    path = strata.save_model(model, tmp_path / "model.safetensors")
    loaded = strata.load_model(path).eval()
    np.testing.assert_array_equal(loaded(x).data, model(x).data)
    np.testing.assert_array_equal(loaded.layers[1].running_var.data,
                                  model.layers[1].running_var.data)
    assert [type(layer) for layer in loaded.layers] == [type(layer) for layer in model.layers]
    assert loaded.layers[0].W.dtype == np.float32 and loaded.layers[0].W.requires_grad


def test_file_is_safetensors_with_json_architecture(tmp_path):
    model, _ = _model()
    path = strata.save_model(model, tmp_path / "model.safetensors")
    with safe_open(str(path), framework="numpy") as f:
        meta = f.metadata()
        assert set(f.keys()) == set(model.state_dict())
    architecture = json.loads(meta["architecture"])
    assert architecture["class"] == "Sequential"
    assert architecture["config"]["input_shape"] == [3]
    assert architecture["config"]["layers"][0]["config"]["units"] == 6


def test_failed_save_keeps_the_previous_file(tmp_path, monkeypatch):
    model, x = _model()
    path = strata.save_model(model, tmp_path / "model.safetensors")
    before = path.read_bytes()

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("strata.io.save", broken)
    with pytest.raises(OSError, match="disk full"):
        strata.save_model(model, path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["model.safetensors"]  # no temp file left


def test_corrupt_missing_and_foreign_files_give_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no model file"):
        strata.load_model(tmp_path / "nothing.safetensors")
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x00garbage" * 10)
    with pytest.raises(ValueError, match="not a readable safetensors file"):
        strata.load_model(bad)
    from safetensors.numpy import save_file

    foreign = tmp_path / "foreign.safetensors"
    save_file({"w": np.zeros(2, dtype=np.float32)}, str(foreign))
    with pytest.raises(ValueError, match="not written by strata.save_model"):
        strata.load_model(foreign)


def test_mismatched_weights_are_reported(tmp_path):
    model, _ = _model()
    path = strata.save_model(model, tmp_path / "model.safetensors")
    with safe_open(str(path), framework="numpy") as f:
        meta = f.metadata()
        weights = {k: f.get_tensor(k) for k in f.keys()}
    weights["layers.0.W"] = np.zeros((4, 6), dtype=np.float32)
    from safetensors.numpy import save_file

    save_file(weights, str(path), meta)
    with pytest.raises(ValueError, match=r"do not fit.*layers.0.W has shape \(3, 6\)"):
        strata.load_model(path)


def test_save_rejects_what_it_cannot_store(tmp_path):
    with pytest.raises(ValueError, match="no weights yet"):
        strata.save_model(nn.Sequential([nn.Dense(2)]), tmp_path / "m.safetensors")
    model, _ = _model()
    with pytest.raises(ValueError, match=r"ending in \.safetensors"):
        strata.save_model(model, tmp_path / "model.pkl")
    custom = nn.Sequential([nn.Dense(2, activation=lambda z: z)])
    custom(np.ones((1, 2), dtype=np.float32))
    with pytest.raises(TypeError, match="by name"):
        strata.save_model(custom, tmp_path / "c.safetensors")
