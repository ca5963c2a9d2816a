"""Optimizer hyperparameter and parameter checks, and state_dict / load_state_dict."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
from optim_cases import CASES, case_id

import strata
from strata.optim import GD, Adam, Momentum, RMSprop


def _params(seed=0):
    rng = np.random.default_rng(seed)
    return [strata.tensor(rng.standard_normal(s), requires_grad=True) for s in [(3, 2), (2,)]]


def _run(opt, params, steps, first=0):
    for step in range(first, first + steps):
        rng = np.random.default_rng(step)
        for p in params:
            p.grad = rng.standard_normal(p.shape)
        opt.step()


BAD = [
    (GD, {}, "lr", 0, "(0, inf)"), (GD, {}, "lr", -0.1, "(0, inf)"),
    (GD, {}, "lr", math.nan, "(0, inf)"), (GD, {}, "lr", math.inf, "(0, inf)"),
    (GD, {}, "lr", "0.1", "(0, inf)"), (GD, {}, "lr", None, "(0, inf)"),
    (GD, {}, "lr", True, "(0, inf)"),
    (Momentum, {"lr": 0.1}, "beta", 1.0, "[0, 1)"), (Momentum, {"lr": 0.1}, "beta", -0.1, "[0, 1)"),
    (Momentum, {"lr": 0.1}, "beta", math.nan, "[0, 1)"),
    (RMSprop, {"lr": 0.1}, "beta2", 1, "[0, 1)"), (RMSprop, {"lr": 0.1}, "epsilon", 0, "(0, inf)"),
    (RMSprop, {"lr": 0.1}, "epsilon", -1e-8, "(0, inf)"),
    (Adam, {}, "lr", -0.001, "(0, inf)"), (Adam, {}, "beta1", 1.0, "[0, 1)"),
    (Adam, {}, "beta1", -0.5, "[0, 1)"), (Adam, {}, "beta2", 1.5, "[0, 1)"),
    (Adam, {}, "beta2", np.float32(math.nan), "[0, 1)"), (Adam, {}, "epsilon", 0.0, "(0, inf)"),
    (Adam, {}, "epsilon", [1e-8], "(0, inf)"),
]


@pytest.mark.parametrize("cls, base, name, bad, interval", BAD,
                         ids=[f"{c.__name__}-{n}-{b!r}" for c, _, n, b, _ in BAD])
def test_invalid_hyperparameter_is_named(cls, base, name, bad, interval):
    with pytest.raises(ValueError) as info:
        cls(_params(), **{**base, name: bad})
    message = str(info.value)
    is_number = isinstance(bad, (int, float, np.floating)) and not isinstance(bad, bool)
    shown = repr(float(bad)) if is_number else repr(bad)
    assert message.startswith(f"{cls.__name__}: {name} must be")
    assert interval in message and f"got {shown}" in message


def test_momentum_bias_correction_must_be_a_bool():
    with pytest.raises(ValueError, match=r"Momentum: bias_correction must be True or False, "
                                         r"got 'yes'"):
        Momentum(_params(), lr=0.1, bias_correction="yes")


def test_invalid_parameters_are_reported():
    a, _ = _params()
    with pytest.raises(ValueError, match="Adam: got an empty parameter list"):
        Adam([])
    with pytest.raises(TypeError, match="Adam: expected parameters to be strata.Tensors, got "
                                        "ndarray at position 1"):
        Adam([a, np.zeros(3)])
    frozen = strata.tensor(np.zeros(3))
    with pytest.raises(ValueError, match="requires_grad=True, got dtype float64 and "
                                         "requires_grad=False at position 0"):
        GD([frozen], lr=0.1)
    with pytest.raises(ValueError, match="got dtype int64"):
        GD([strata.tensor(np.arange(3))], lr=0.1)


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_state_dict_round_trip_continues_identically(case):
    params = _params()
    opt = case.make(params)
    _run(opt, params, 3)
    checkpoint = opt.state_dict()
    assert all(isinstance(v, (int, float, np.ndarray)) for v in checkpoint.values())
    copies = [strata.tensor(p.data.copy(), requires_grad=True) for p in params]
    restored = case.make(copies)
    restored.lr = 123.0  # overwritten by the checkpoint
    restored.load_state_dict(checkpoint)
    assert restored.lr == opt.lr
    _run(opt, params, 3, first=3)
    _run(restored, copies, 3, first=3)
    for p, q in zip(params, copies):
        np.testing.assert_array_equal(p.data, q.data)


def test_state_dict_holds_copies_with_plain_keys():
    params = _params()
    opt = Adam(params, lr=0.01)
    _run(opt, params, 2)
    checkpoint = opt.state_dict()
    assert sorted(checkpoint) == ["beta1", "beta2", "epsilon", "lr", "state.0.s", "state.0.t",
                                  "state.0.v", "state.1.s", "state.1.t", "state.1.v"]
    assert checkpoint["state.1.t"] == 2
    v = checkpoint["state.0.v"].copy()
    _run(opt, params, 1, first=2)
    np.testing.assert_array_equal(checkpoint["state.0.v"], v)


def test_load_state_dict_rejects_mismatches():
    params = _params()
    opt = Adam(params, lr=0.01)
    _run(opt, params, 1)
    good = opt.state_dict()
    fresh = Adam(_params(seed=1), lr=0.02)
    with pytest.raises(ValueError, match=re.escape("state.0.v should have shape (3, 2) (the "
                                                   "parameter's), got (2, 3)")):
        fresh.load_state_dict({**good, "state.0.v": np.zeros((2, 3))})
    with pytest.raises(ValueError, match="unexpected key 'state.5.v'"):
        fresh.load_state_dict({**good, "state.5.v": np.zeros(2)})
    with pytest.raises(ValueError, match=r"missing hyperparameters \['beta2'\]"):
        fresh.load_state_dict({k: v for k, v in good.items() if k != "beta2"})
    with pytest.raises(ValueError, match=r"parameter 1 expects state \['s', 't', 'v'\], got "
                                         r"\['s', 'v'\]"):
        fresh.load_state_dict({k: v for k, v in good.items() if k != "state.1.t"})
    with pytest.raises(ValueError, match="state.0.t should be a number of type int, got 1.5"):
        fresh.load_state_dict({**good, "state.0.t": 1.5})
    with pytest.raises(ValueError, match="Adam: beta1 must be in"):
        fresh.load_state_dict({**good, "beta1": 2.0})
    with pytest.raises(TypeError, match="expected a dict, got list"):
        fresh.load_state_dict([])
    # a failed load leaves the optimizer as it was
    assert fresh.lr == 0.02 and fresh.state == {}
