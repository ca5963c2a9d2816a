"""NaN and inf propagate as in NumPy through every op and layer (DESIGN: never a silent wrong
result). The fast kernels (strata/ops/*kernels.py) are where they used to get lost: the float32
recurrent tanh turned NaN into 0.995, max pooling skipped NaN, a relu RNN turned it into 0.

Ops come from the registry (tests/op_cases.py), so a new op is covered by its case. One input
element at a time (the one with the largest float64 gradient: the output depends on it) is set
to NaN, +inf or -inf; then, in float32 and float64:
- for NaN, every output element that depends on it (that changes when it is nudged) is NaN;
- the non-finite pattern (NaN, +inf, -inf per element) of the output and of every input's
  gradient is the same in float32 as in float64 (a float32 fast path, such as the recurrent
  kernels' rational tanh, must not differ from NumPy's float64 functions);
- with PyTorch installed, it is the pattern of the registry's PyTorch reference in float64.

The expectations this holds ops to where a NaN or inf might seem free to vanish:
- maximum/minimum, max/min, clip, relu and max_pool2d propagate NaN as np.maximum, np.max and
  np.clip do (not np.fmax): a NaN is never "beaten" by a larger number. maximum, minimum and
  max_pool2d send the gradient to the NaN; max/min give their whole slice a NaN gradient, as
  PyTorch's amax/amin do.
- where passes a NaN only from the branch its condition picks. A masked (padded) recurrent step
  keeps the previous state, so its NaN reaches no output; it does reach the weight gradients,
  since dW = X^T dZ multiplies it by a zero dZ (NaN * 0 = NaN), as in PyTorch.
- dropout multiplies, so a dropped NaN stays NaN (NaN * 0), as ``x * mask`` does in NumPy.
- softmax, log_softmax, softmax_cross_entropy, var and batch_norm spread a NaN or inf over what
  they normalize (a row, the batch): its max or mean is non-finite, and inf - inf is NaN.
- tanh and sigmoid map +-inf to finite values (+-1; 1 and 0), the float32 rational tanh
  included, so a recurrent layer's states stay finite for an infinite input.
- Integer inputs (class labels, token ids, masks, where's condition) cannot hold NaN and are not
  registry inputs; the embedding is checked through a NaN in its matrix E.

Layers: every case of tests/test_nn_layers.py's registry, with a NaN in its input and in each
parameter, and with an inf. The kernels are also tested directly, with values no registry
case feeds them, in test_nonfinite_kernels.py (with the optimizers' update loops).
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from op_cases import ALL_CASES, case_id
from op_cases_common import torch
from test_nn_layers import LAYER_CASES, _build, _Tokens

import strata
import strata.nn as nn
from strata import Tensor

VALUES = {"nan": np.nan, "inf": np.inf, "-inf": -np.inf}
NUDGE = 0.25  # moves an input enough to change every output that depends on it


def _upstream(shape, dtype):
    return np.random.default_rng(0).standard_normal(shape).astype(dtype)


def _run(fn, inputs, dtype):
    """Output and input gradients of ``fn`` at ``inputs`` cast to ``dtype``."""
    leaves = [Tensor(np.asarray(x, dtype=dtype), requires_grad=True) for x in inputs]
    with np.errstate(all="ignore"):  # inf - inf and friends are the point here
        out = fn(*leaves)
        out.backward(_upstream(out.shape, out.dtype))
    return out.data, [leaf.grad for leaf in leaves]


def _targets(case):
    """Per input, the flat index of the element with the largest float64 gradient."""
    _, grads = _run(case.fn, case.inputs, np.float64)
    return [int(np.argmax(np.abs(g))) for g in grads]


def _with(inputs, i, k, value):
    changed = [np.array(x, copy=True) for x in inputs]
    changed[i].reshape(-1)[k] = value
    return changed


def _pattern(a):
    a = np.asarray(a)
    return np.stack([np.isnan(a), np.isposinf(a), np.isneginf(a)])


def _assert_same_pattern(got, expected, what):
    p, q = _pattern(got), _pattern(expected)
    if not np.array_equal(p, q):
        where = np.argwhere((p != q).any(axis=0))[:4].tolist()
        shown = [(tuple(w), np.asarray(got)[tuple(w)], np.asarray(expected)[tuple(w)])
                 for w in where]
        pytest.fail(f"{what}: non-finite pattern differs at (index, got, expected) {shown}")


@pytest.mark.parametrize("case", ALL_CASES, ids=case_id)
def test_nan_reaches_every_output_that_depends_on_it(case):
    clean, _ = _run(case.fn, case.inputs, np.float64)
    for i, k in enumerate(_targets(case)):
        nudged, _ = _run(case.fn, _with(case.inputs, i, k, case.inputs[i].flat[k] + NUDGE),
                         np.float64)
        depends = nudged != clean
        assert depends.any(), f"input {i}: the output does not depend on element {k}"
        for dtype in (np.float32, np.float64):
            out, _ = _run(case.fn, _with(case.inputs, i, k, np.nan), dtype)
            lost = np.argwhere(depends & ~np.isnan(out))[:4].tolist()
            assert not lost, (f"{np.dtype(dtype)}, NaN in input {i} at {k}: finite outputs at "
                              f"{lost} that depend on it")


@pytest.mark.parametrize("value", VALUES)
@pytest.mark.parametrize("case", ALL_CASES, ids=case_id)
def test_float32_nonfinite_pattern_is_float64s(case, value):
    for i, k in enumerate(_targets(case)):
        poisoned = _with(case.inputs, i, k, VALUES[value])
        out32, grads32 = _run(case.fn, poisoned, np.float32)
        out64, grads64 = _run(case.fn, poisoned, np.float64)
        _assert_same_pattern(out32, out64, f"{value} in input {i}: output")
        for j, (g32, g64) in enumerate(zip(grads32, grads64, strict=True)):
            _assert_same_pattern(g32, g64, f"{value} in input {i}: gradient of input {j}")


def _run_torch(torch_fn, inputs):
    leaves = [torch.from_numpy(np.array(x, dtype=np.float64)).requires_grad_() for x in inputs]
    out = torch_fn(*leaves)
    out.backward(torch.from_numpy(_upstream(tuple(out.shape), np.float64)))
    return out.detach().numpy(), [t.grad.numpy() for t in leaves]


# Where strata's pattern may differ from the PyTorch reference's, and the weaker relation that
# still holds between the sets of non-finite elements ("more": strata's is a superset, "less":
# a subset, "finiteness": the same set, NaN and inf aside):
# (ops, part of the case name, injected values, "output" or "gradients", relation, why).
TORCH_DIFFERENCES = [
    (("abs",), "", ("nan",), "gradients", "more",
     "the gradient at NaN is g * np.sign(NaN) = NaN; torch.sign(NaN) is 0"),
    (("batch_norm",), "relu", ("inf", "-inf"), "gradients", "finiteness",
     "an infinite gamma makes scale = gamma / sigma infinite: strata's fused dx is scale / M *"
     " (M g - dbeta - Z_norm dgamma) = +-inf; the reference's chain multiplies relu's zero "
     "gradients by gamma first: 0 * inf = NaN"),
    (("batch_norm",), "", ("inf", "-inf"), "output", "finiteness",
     "an infinite gamma gives the course's gamma * Z_norm + beta = +-inf; PyTorch computes "
     "x * (gamma / sigma) + (beta - mu * gamma / sigma): inf - inf = NaN"),
    (("maximum", "minimum"), "", ("nan",), "gradients", "routing",
     "np.maximum passes a NaN on and strata sends the gradient to it (to a's if both are "
     "NaN), as max pooling does; PyTorch sends the whole gradient to both inputs"),
    (("rnn", "lstm", "gru"), "masked", tuple(VALUES), "gradients", "less",
     "the reference computes each padded step and discards it with torch.where, whose zero "
     "gradient times the step's non-finite local derivative is NaN; strata skips padded "
     "steps, so their inputs get exactly 0 and the weights see no 0 * inf"),
]


def _relation(case, value, what):
    for ops, part, values, where, relation, _ in TORCH_DIFFERENCES:
        if case.op in ops and part in case.name and value in values and where == what:
            return relation
    return "same"


def _assert_matches(got, expected, relation, what):
    """``got``'s non-finite pattern relates to ``expected``'s as ``relation`` says, and
    where both are finite the values agree (unless the gradient is routed differently)."""
    bad, ref = ~np.isfinite(got), ~np.isfinite(expected)
    if relation in ("same", "routing"):
        _assert_same_pattern(got, expected, what)
    else:
        wrong = {"more": ref & ~bad, "less": bad & ~ref, "finiteness": bad != ref}[relation]
        assert not wrong.any(), f"{what}: not {relation} non-finite at {np.argwhere(wrong)[:4]}"
    if relation != "routing":
        np.testing.assert_allclose(got[~bad & ~ref], expected[~bad & ~ref], rtol=1e-7,
                                   atol=1e-9, err_msg=what)


@pytest.mark.skipif(torch is None, reason="torch not installed: PyTorch comparisons skipped")
@pytest.mark.parametrize("value", VALUES)
@pytest.mark.parametrize("case", ALL_CASES, ids=case_id)
def test_nonfinite_pattern_is_pytorchs(case, value):
    out_relation, grad_relation = (_relation(case, value, w) for w in ("output", "gradients"))
    for i, k in enumerate(_targets(case)):
        poisoned = _with(case.inputs, i, k, VALUES[value])
        out, grads = _run(case.fn, poisoned, np.float64)
        expected, expected_grads = _run_torch(case.torch_fn, poisoned)
        _assert_matches(out, expected, out_relation, f"{value} in input {i}: output")
        for j, (g, e) in enumerate(zip(grads, expected_grads, strict=True)):
            _assert_matches(g, e, grad_relation, f"{value} in input {i}: gradient of input {j}")


@pytest.mark.parametrize("op", [strata.maximum, strata.minimum])
def test_maximum_and_minimum_send_the_gradient_to_the_nan(op):
    a = Tensor(np.array([np.nan, 1.0, np.nan, 2.0]), requires_grad=True)
    b = Tensor(np.array([0.0, np.nan, np.nan, 1.0]), requires_grad=True)
    op(a, b).backward(np.ones(4))
    winner = float(op is strata.maximum)
    np.testing.assert_array_equal(a.grad, [1, 0, 1, winner])
    np.testing.assert_array_equal(b.grad, [0, 1, 0, 1 - winner])


# --- layers: every case of tests/test_nn_layers.py's registry -------------------------------

def _layer_grads(name):
    """The float64 layer's input and parameter gradients for a random upstream gradient."""
    layer, x = _build(name)
    out = layer(x := Tensor(x, requires_grad=True))
    out.backward(_upstream(out.shape, out.dtype))
    return x.grad, [p.grad for p in layer.parameters()]


def _poisoned_layer_output(name, dtype, value, k, param=None):
    layer, x = _build(name, dtype)
    target = x if param is None else layer.parameters()[param].data
    np.put(target, k, value)
    with np.errstate(all="ignore"):
        return layer(x).data, k // (x.size // len(x)) if param is None else None


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", sorted(LAYER_CASES))
def test_nan_input_gives_nan_output(name, dtype):
    if isinstance(_build(name)[0], _Tokens):
        pytest.skip("takes integer token ids, which cannot be NaN: see the parameter test")
    dx, _ = _layer_grads(name)
    out, example = _poisoned_layer_output(name, dtype, np.nan, int(np.argmax(np.abs(dx))))
    assert np.isnan(out[example]).any(), f"no NaN in the output of example {example}"


@pytest.mark.parametrize("name", sorted(LAYER_CASES))
def test_nan_parameter_gives_nan_output(name):
    _, grads = _layer_grads(name)
    if not grads:
        pytest.skip("no parameters")
    for (p, g), dtype in itertools.product(enumerate(grads), (np.float32, np.float64)):
        out, _ = _poisoned_layer_output(name, dtype, np.nan, int(np.argmax(np.abs(g))), p)
        assert np.isnan(out).any(), f"{np.dtype(dtype)}: NaN in parameter {p} got lost"


@pytest.mark.parametrize("value", ["inf", "-inf"])
@pytest.mark.parametrize("name", sorted(LAYER_CASES))
def test_infinite_input_gives_float64s_pattern(name, value):
    if isinstance(_build(name)[0], _Tokens):
        pytest.skip("takes integer token ids, which cannot be infinite")
    k = int(np.argmax(np.abs(_layer_grads(name)[0])))
    out32, _ = _poisoned_layer_output(name, np.float32, VALUES[value], k)
    out64, _ = _poisoned_layer_output(name, np.float64, VALUES[value], k)
    _assert_same_pattern(out32, out64, f"{value} in the input")


RECURRENT = {
    "SimpleRNN": lambda: nn.SimpleRNN(4, return_sequences=True),
    "SimpleRNN_relu": lambda: nn.SimpleRNN(4, activation="relu", return_sequences=True),
    "GRU": lambda: nn.GRU(4, return_sequences=True),
    "GRU_reset_after": lambda: nn.GRU(4, reset_after=True, return_sequences=True),
    "LSTM": lambda: nn.LSTM(4, return_sequences=True),
    "Bidirectional_LSTM": lambda: nn.Bidirectional(nn.LSTM(3, return_sequences=True)),
}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", sorted(RECURRENT))
def test_recurrent_layers_keep_nan_and_saturate_at_inf(name, dtype):
    """The reported bug: a float32 LSTM of all-NaN input gave 0.995 everywhere. A NaN at step
    t of one example makes its states from t on NaN (both ways for Bidirectional) and leaves
    the other example alone; an inf saturates tanh and the gates: finite states, except
    through relu."""
    strata.seed(0)
    with strata.default_dtype(dtype):
        layer = RECURRENT[name]()
    x = np.random.default_rng(0).standard_normal((2, 4, 5)).astype(dtype)
    layer(x)
    assert np.isnan(layer(np.full_like(x, np.nan)).data).all()
    x[0, 1, 2] = np.nan
    out = layer(x).data
    expected = np.zeros(out.shape[1:], bool)  # example 0's NaN states: from step 1 on...
    n = out.shape[2] // 2 if name.startswith("Bidirectional") else out.shape[2]
    expected[1:, :n] = expected[:2, n:] = True  # ...and, running backwards, up to step 1
    np.testing.assert_array_equal(np.isnan(out[0]), expected)
    assert np.isfinite(out[1]).all()
    x[0, 1, 2] = np.inf
    with np.errstate(all="ignore"):
        assert np.isfinite(layer(x).data).all() != name.endswith("relu")
