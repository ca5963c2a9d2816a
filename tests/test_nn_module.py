"""Module, Sequential and initializers."""

from __future__ import annotations

import numpy as np
import pytest

import strata
import strata.nn as nn


def _mlp():
    strata.seed(0)
    model = nn.Sequential([nn.Dense(4, "relu"), nn.BatchNorm(), nn.Dropout(0.9), nn.Dense(1)])
    model(np.ones((3, 2), dtype=np.float32))
    return model


def test_parameters_are_found_by_walking_attributes():
    model = _mlp()
    names = [n for n, _ in model.named_parameters()]
    assert names == ["layers.0.W", "layers.0.b", "layers.1.gamma", "layers.1.beta",
                     "layers.3.W", "layers.3.b"]
    assert all(p.requires_grad for p in model.parameters())
    # running averages are state, not parameters
    assert "layers.1.running_mean" in model.state_dict()


def test_train_and_eval_reach_every_submodule():
    model = _mlp()
    model.eval()
    assert not any(m.training for m in model.modules())
    model.train()
    assert all(m.training for m in model.modules())


def test_state_dict_round_trip_restores_outputs():
    model, other = _mlp(), None
    x = np.random.default_rng(0).standard_normal((5, 2)).astype(np.float32)
    model.eval()
    expected = model(x).data
    strata.seed(1)
    other = nn.Sequential([nn.Dense(4, "relu"), nn.BatchNorm(), nn.Dropout(0.9), nn.Dense(1)])
    other(x)
    other.load_state_dict(model.state_dict())
    other.eval()
    np.testing.assert_array_equal(other(x).data, expected)
    state = model.state_dict()
    state["layers.0.W"][...] = 0  # a copy: changing it leaves the model alone
    assert model.layers[0].W.data.any()


def test_load_state_dict_names_what_does_not_fit():
    model = _mlp()
    state = model.state_dict()
    state.pop("layers.3.b")
    with pytest.raises(KeyError, match="missing.*layers.3.b"):
        model.load_state_dict(state)
    state = model.state_dict()
    state["layers.0.W"] = np.zeros((3, 3))
    with pytest.raises(ValueError, match=r"layers.0.W has shape \(2, 4\), got \(3, 3\)"):
        model.load_state_dict(state)


def test_zero_grad_and_repr():
    model = _mlp()
    model(np.ones((3, 2), dtype=np.float32)).sum().backward()
    assert all(p.grad is not None for p in model.parameters())
    model.zero_grad()
    assert all(p.grad is None for p in model.parameters())
    text = repr(model)
    assert "(0): Dense(4, activation='relu')" in text and "Dropout(keep_prob=0.9)" in text


def test_sequential_rejects_non_modules():
    with pytest.raises(TypeError, match="layer 1 must be a Module, got function"):
        nn.Sequential([nn.Dense(2), lambda x: x])
    seq = nn.Sequential()
    seq.add(nn.Dense(3))
    assert len(seq) == 1 and isinstance(seq[0], nn.Dense)


@pytest.mark.parametrize("name, std", [
    ("xavier", np.sqrt(1 / 400)), ("glorot", np.sqrt(2 / 500)), ("he", np.sqrt(2 / 400)),
    ("random", 0.01)])
def test_initializer_scales_follow_the_course(name, std):
    strata.seed(0)
    W = nn.get_initializer(name)((400, 100))
    assert W.shape == (400, 100) and W.dtype == np.float32
    assert abs(W.std() / std - 1) < 0.02 and abs(W.mean()) < 3 * std / 200


def test_conv_kernel_fans_and_zeros():
    strata.seed(0)
    W = nn.he((5, 5, 3, 64))  # fan_in = 5 * 5 * 3
    assert abs(W.std() / np.sqrt(2 / 75) - 1) < 0.03
    assert not nn.zeros((3, 2)).any()
    with pytest.raises(ValueError, match="unknown initializer 'uniform'"):
        nn.get_initializer("uniform")
    with pytest.raises(ValueError, match="scale > 0"):
        nn.RandomNormal(0)


def test_zeros_init_fails_to_break_symmetry():
    strata.seed(0)
    layer = nn.Dense(3, "tanh", kernel_initializer="zeros")
    x = np.random.default_rng(0).standard_normal((8, 2)).astype(np.float32)
    out = nn.Dense(1, kernel_initializer="zeros")(layer(x))
    out.sum().backward()
    # every hidden unit computes and receives the same thing
    assert np.allclose(layer.W.grad, layer.W.grad[:, :1])
