"""Every update rule against the course's formula (tests/optim_cases.py), hand-computed Adam
steps, dtypes, in-place updates, parameters without gradients, zero_grad and get_optimizer."""

from __future__ import annotations

import numpy as np
import pytest
from optim_cases import CASES, case_id

import strata
from strata import optim
from strata.optim import GD, Adam, Momentum, RMSprop, get_optimizer

SHAPES = [(3, 4), (4,)]  # a W and a b


def _params(dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    return [strata.tensor(rng.standard_normal(s).astype(dtype), requires_grad=True)
            for s in SHAPES]


def _grads(step, dtype=np.float64):
    rng = np.random.default_rng(100 + step)
    return [rng.standard_normal(s).astype(dtype) for s in SHAPES]


def test_every_optimizer_has_a_case():
    exported = [getattr(optim, n) for n in optim.__all__]
    rules = {c for c in exported if isinstance(c, type) and issubclass(c, optim.Optimizer)
             and c is not optim.Optimizer}
    assert rules == {case.cls for case in CASES}


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_steps_follow_the_course_formula(case):
    params = _params()
    opt = case.make(params)
    expected = [p.data.copy() for p in params]
    states = [{} for _ in params]
    for step in range(4):  # the first step, and later ones where v and s have history
        for p, g in zip(params, _grads(step)):
            p.grad = g.copy()
        opt.step()
        expected = [case.reference_step(W, g, st)
                    for W, g, st in zip(expected, _grads(step), states)]
        for i, (p, W) in enumerate(zip(params, expected)):
            np.testing.assert_allclose(p.data, W, rtol=1e-12, atol=1e-14,
                                       err_msg=f"{case.name}: parameter {i} after step {step + 1}")


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_float32_stays_float32_in_place(case):
    params = _params(np.float32)
    arrays = [p.data for p in params]
    alias = params[0].data[0]  # a view, as a layer holding the same array would see
    opt = case.make(params)
    expected, states = [p.data.astype(np.float64) for p in params], [{} for _ in params]
    for step in range(3):
        for p, g in zip(params, _grads(step, np.float32)):
            p.grad = g
        opt.step()
        expected = [case.reference_step(W, g.astype(np.float64), st)
                    for W, g, st in zip(expected, _grads(step, np.float32), states)]
    for p, array, W in zip(params, arrays, expected):
        assert p.data is array and p.data.dtype == np.float32
        np.testing.assert_allclose(p.data, W, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(alias, params[0].data[0])
    for state in opt.state.values():
        assert all(v.dtype == np.float32 for v in state.values() if isinstance(v, np.ndarray))


def test_adam_first_two_steps_by_hand():
    W = strata.tensor(np.array([1.0, -2.0]), requires_grad=True)
    opt = Adam([W], lr=0.01)
    g1, g2 = np.array([0.5, -0.1]), np.array([0.2, 0.3])
    W.grad = g1.copy()
    opt.step()
    # t = 1: v_corrected = dW and s_corrected = dW**2, so every entry moves by about lr.
    first = np.array([1.0, -2.0]) - 0.01 * g1 / (np.abs(g1) + 1e-8)
    np.testing.assert_allclose(W.data, first, rtol=1e-14)
    np.testing.assert_allclose(W.data, [0.99, -1.99], rtol=1e-9)
    W.grad = g2.copy()
    opt.step()
    v = 0.9 * 0.1 * g1 + 0.1 * g2
    s = 0.999 * 0.001 * g1 ** 2 + 0.001 * g2 ** 2
    v_corrected, s_corrected = v / (1 - 0.81), s / (1 - 0.998001)  # 1 - beta**2 at t = 2
    second = first - 0.01 * v_corrected / (np.sqrt(s_corrected) + 1e-8)
    np.testing.assert_allclose(W.data, second, rtol=1e-14)
    assert opt.state[id(W)]["t"] == 2


def test_momentum_and_rmsprop_first_step_by_hand():
    W1 = strata.tensor(np.array([1.0, 1.0]), requires_grad=True)
    W2 = strata.tensor(np.array([1.0, 1.0]), requires_grad=True)
    momentum, rmsprop = Momentum([W1], lr=0.5, beta=0.9), RMSprop([W2], lr=0.5, beta2=0.75)
    W1.grad, W2.grad = np.array([2.0, -4.0]), np.array([2.0, -4.0])
    momentum.step()
    rmsprop.step()
    np.testing.assert_allclose(W1.data, [1 - 0.5 * 0.2, 1 + 0.5 * 0.4])  # v = 0.1 dW
    # s = 0.25 dW**2, sqrt(s) = |dW| / 2: each entry moves by lr * 2 (eps aside)
    np.testing.assert_allclose(W2.data, [0.0, 2.0], atol=1e-7)


def test_adam_counts_steps_per_parameter():
    a, b = _params()
    opt = Adam([a, b], lr=0.1)
    a.grad = np.ones(a.shape)
    opt.step()  # b has no gradient yet: untouched, and no state is made for it
    assert id(b) not in opt.state
    b_before = b.data.copy()
    a.grad, b.grad = np.ones(a.shape), np.full(b.shape, 3.0)
    opt.step()
    assert (opt.state[id(a)]["t"], opt.state[id(b)]["t"]) == (2, 1)
    # b's first step is bias-corrected as t = 1 (as in PyTorch): it moves by lr (eps aside).
    np.testing.assert_allclose(b.data, b_before - 0.1 * 3 / (3 + 1e-8), rtol=1e-14)


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_parameters_without_grad_are_skipped(case):
    a, b = _params()
    before = b.data.copy()
    a.grad = np.ones(a.shape)
    opt = case.make([a, b])
    opt.step()
    np.testing.assert_array_equal(b.data, before)
    assert id(b) not in opt.state and id(a) in opt.state


def test_zero_grad_forgets_every_gradient():
    params = _params()
    opt = GD(params, lr=0.1)
    for p, g in zip(params, _grads(0)):
        p.grad = g
    opt.zero_grad()
    assert all(p.grad is None for p in params)
    before = [p.data.copy() for p in params]
    opt.step()
    assert all((p.data == b).all() for p, b in zip(params, before))


def test_training_step_with_backward():
    X = strata.tensor(np.array([[1.0, 2.0], [3.0, 4.0]]))
    W = strata.tensor(np.array([[0.5], [-0.5]]), requires_grad=True)
    opt = GD([W], lr=0.1)
    loss = ((X @ W) ** 2).mean()
    loss.backward()
    dW = X.data.T @ (2 * (X.data @ W.data)) / 2  # the course's dW = (1/m) X.T dZ
    expected = W.data - 0.1 * dW
    opt.step()
    np.testing.assert_allclose(W.data, expected)


def test_lr_can_be_changed_between_steps():
    W = strata.tensor(np.array([1.0]), requires_grad=True)
    opt = GD([W], lr=0.1)
    opt.lr = 0.5
    W.grad = np.array([1.0])
    opt.step()
    assert W.data[0] == pytest.approx(0.5)
    with pytest.raises(ValueError, match=r"GD: lr must be in \(0, inf\), got -0.5"):
        opt.lr = -0.5
    assert opt.lr == 0.5


class _Model:
    def __init__(self, params):
        self._params = params

    def parameters(self):
        return list(self._params)


def test_accepts_modules_dicts_single_tensors_and_generators():
    a, b = _params()
    assert GD(_Model([a, b]), lr=1.0).params == [a, b]
    assert GD({"W1": a, "b1": b}, lr=1.0).params == [a, b]  # the course's parameters dict
    assert GD(a, lr=1.0).params == [a]
    assert GD((p for p in [a, b]), lr=1.0).params == [a, b]


def test_a_shared_parameter_is_updated_once():
    a, _ = _params()
    before = a.data.copy()
    opt = GD([a, a], lr=0.1)
    a.grad = np.ones(a.shape)
    opt.step()
    np.testing.assert_allclose(a.data, before - 0.1)


def test_gradient_of_the_wrong_shape_is_reported():
    a, _ = _params()
    opt = Adam([a])
    a.grad = np.ones((4, 3))
    with pytest.raises(strata.ShapeError, match=r"Adam.step: .*\(3, 4\).*\(4, 3\)"):
        opt.step()


@pytest.mark.parametrize("name, cls", [("adam", Adam), ("Adam", Adam), ("sgd", GD), ("gd", GD),
                                       ("momentum", Momentum), ("RMSprop", RMSprop)])
def test_get_optimizer_by_name(name, cls):
    opt = get_optimizer(name, _params(), lr=0.05)
    assert type(opt) is cls and opt.lr == 0.05


def test_get_optimizer_reports_valid_names_and_arguments():
    msg = r"unknown optimizer 'adamw'; expected one of 'adam', 'gd', 'momentum', 'rmsprop', 'sgd'"
    with pytest.raises(ValueError, match=msg):
        get_optimizer("adamw", _params())
    with pytest.raises(ValueError, match="unknown optimizer 3"):
        get_optimizer(3, _params())
    with pytest.raises(TypeError, match=r"Adam does not take \['beta'\]; it takes \['lr', 'beta1'"):
        get_optimizer("adam", _params(), beta=0.9)


def test_repr_shows_hyperparameters():
    assert repr(Adam(_params())) == "Adam(lr=0.001, beta1=0.9, beta2=0.999, epsilon=1e-08)"
