"""Every op case of the registry and every layer, run on the strict CPU stand-in for CuPy
(tests/standin.py): the results must equal the NumPy path's, stay on the "device" (no
StrictArray comes back as an ndarray), and no stray ``np.*`` call may touch device data
(the stand-in raises where CuPy would)."""

from __future__ import annotations

import numpy as np
import pytest
from op_cases import ALL_CASES, case_id
from standin import IMPLICIT, StrictArray, standin_xp, wrap
from test_layer_build import CASES as BUILD_CASES
from test_nn_layers import LAYER_CASES

import strata
import strata.nn as nn
from strata import Tensor, backend
from strata.autograd import Function
from strata.extras import MissingExtra

#: float64 on both paths: only the order of additions differs (numba loops vs expressions).
RTOL, ATOL = 1e-9, 1e-12


def _on_device(a) -> bool:
    return type(a) is StrictArray


def run_case(case, device=None):
    """Forward and backward of an op case, its inputs (and the upstream gradient) on
    ``device`` ("standin"; "gpu" in benchmarks/gpu.py; None: NumPy). Returns the output and
    each input's gradient, as arrays of that device."""
    leaves = [strata.tensor(x, requires_grad=True, device=device) for x in case.inputs]
    out = case.fn(*leaves)
    upstream = np.random.default_rng(0).standard_normal(out.shape)
    out.backward(backend.to_device(upstream, device or "cpu"))
    return out.data, [leaf.grad for leaf in leaves]


@pytest.mark.parametrize("case", ALL_CASES, ids=case_id)
def test_op_case_through_the_standin(case):
    out, grads = run_case(case, "standin")
    ref_out, ref_grads = run_case(case)
    assert _on_device(out), f"the output came back as {type(out).__name__}"
    np.testing.assert_allclose(out.get(), ref_out, rtol=RTOL, atol=ATOL)
    for i, (grad, ref) in enumerate(zip(grads, ref_grads, strict=True)):
        assert _on_device(grad), f"input {i}: gradient {type(grad).__name__}"
        assert grad.dtype == ref.dtype
        np.testing.assert_allclose(grad.get(), ref, rtol=RTOL, atol=ATOL,
                                   err_msg=f"gradient of input {i}")


# --- layers ---------------------------------------------------------------------------------

class _DeviceTokens(nn.Module):
    """test_nn_layers' _Tokens with the ids computed by the input's array module."""

    def __init__(self, layer, vocab_size):
        self.layer, self.vocab_size = layer, vocab_size

    def forward(self, x):
        xp = backend.array_module(x.data)
        ids = (xp.abs(x.data) * 10).astype(np.int64) % self.vocab_size
        return self.layer(ids) * strata.reshape(x, (*x.shape, 1))


_FACTORIES = {**{name: factory for name, (factory, _) in LAYER_CASES.items()},
              "Embedding": lambda: _DeviceTokens(nn.Embedding(6, 3), 6),
              "OneHot": lambda: _DeviceTokens(nn.OneHot(4), 4)}


def make_layer(name):
    """The layer of LAYER_CASES[name], built in float64 on the CPU, and its input."""
    shape = LAYER_CASES[name][1]
    strata.seed(0)
    x = np.random.default_rng(1).standard_normal(shape)
    with strata.default_dtype(np.float64):
        layer = _FACTORIES[name]()
        layer(x)
    if name.endswith("_eval"):
        layer.train()(x)
        layer.eval()
    return layer, x


def forward_backward(layer, x, device=None):
    """Output, input gradient, parameter gradients and state after one step of ``layer`` moved
    to ``device`` (None: left on the CPU)."""
    if device:
        layer.to(device)
    leaf = strata.tensor(x, requires_grad=True, device=device)
    strata.seed(3)  # the same dropout draws on both paths
    out = layer(leaf)
    upstream = np.random.default_rng(2).standard_normal(out.shape)
    (out * backend.to_device(upstream, device or "cpu")).sum().backward()
    grads = {name: p.grad for name, p in layer.named_parameters()}
    return out.data, leaf.grad, grads, layer.state_dict()


def _assert_same(got, ref, what, rtol=RTOL, atol=ATOL):
    assert _on_device(got), f"{what}: {type(got).__name__}, not on the device"
    np.testing.assert_allclose(got.get(), ref, rtol=rtol, atol=atol, err_msg=what)


@pytest.mark.parametrize("name", sorted(LAYER_CASES))
def test_layer_through_the_standin(name):
    out, dx, grads, state = forward_backward(*make_layer(name), "standin")
    ref_out, ref_dx, ref_grads, ref_state = forward_backward(*make_layer(name))
    _assert_same(out, ref_out, "output")
    _assert_same(dx, ref_dx, "input gradient")
    assert grads.keys() == ref_grads.keys()
    for key, grad in grads.items():
        _assert_same(grad, ref_grads[key], f"gradient of {key}")
    for key, value in state.items():  # running averages updated on the device
        _assert_same(value, ref_state[key], key)


@pytest.mark.parametrize("name, i", [(n, i) for n in BUILD_CASES
                                     for i in range(len(BUILD_CASES[n]))])
def test_layer_built_lazily_on_the_standin(name, i):
    """test_layer_build's cases: a layer moved to the device before its first call builds
    its weights there (and takes NumPy batches, moved in), computing what the CPU does."""
    make, _, x = BUILD_CASES[name][i]
    results = []
    for device in ("standin", "cpu"):
        strata.seed(0)
        layer = make().to(device)
        out = layer(x)  # a NumPy batch: moved to the layer's device
        out.sum().backward()
        tensors = dict(layer._named_tensors())
        results.append((out.data, {k: t.grad for k, t in tensors.items() if t.grad is not None},
                        {k: t.data for k, t in tensors.items()}))
    (out, grads, data), (ref_out, ref_grads, ref_data) = results
    _assert_same(out, ref_out, "output", rtol=1e-4, atol=1e-5)
    for key, value in data.items():
        _assert_same(value, ref_data[key], key, rtol=1e-5, atol=1e-6)
    assert grads.keys() == ref_grads.keys()
    for key, grad in grads.items():
        _assert_same(grad, ref_grads[key], f"gradient of {key}", rtol=1e-3, atol=1e-4)


# --- the stand-in catches leaks -------------------------------------------------------------

def test_the_standin_refuses_implicit_conversion():
    a = wrap(np.arange(6.0).reshape(2, 3))
    assert not isinstance(a, np.ndarray)
    with pytest.raises(TypeError, match="Implicit conversion to a NumPy array"):
        np.asarray(a)
    assert "Implicit conversion" in IMPLICIT
    with pytest.raises(TypeError):
        np.exp(a)  # a ufunc
    with pytest.raises(TypeError):
        np.concatenate([a, a])  # an array function
    with pytest.raises(TypeError, match="Unsupported type"):
        a + np.ones(3)  # noqa: B018 -- mixing with host arrays, as CuPy refuses
    with pytest.raises(TypeError, match="Unsupported type"):
        np.ones(3) * a  # noqa: B018
    np.testing.assert_array_equal(standin_xp.asnumpy(a + 1.0), np.arange(1.0, 7.0).reshape(2, 3))
    assert _on_device(a.sum()) and a.sum().ndim == 0  # reductions stay arrays, as CuPy's


class _Leaky(Function):
    """An op written against NumPy instead of its inputs' array module."""

    def forward(self, a):
        self.out = np.tanh(a)
        return self.out

    def backward(self, g):
        return (g * (1 - self.out**2),)


def test_a_leaky_op_fails_on_the_standin():
    x = np.random.default_rng(0).standard_normal((3, 4))
    assert _Leaky.apply(Tensor(x)).shape == (3, 4)  # fine on the CPU
    with pytest.raises(TypeError):
        _Leaky.apply(Tensor(wrap(x)))


def test_a_leak_of_a_host_array_into_device_math_fails():
    def leaky_loss(y):  # a constant made with NumPy and mixed in without a move
        return (y * Tensor(np.ones(y.shape))).sum()

    x = Tensor(wrap(np.ones((2, 3))), requires_grad=True)
    with pytest.raises(TypeError, match="Unsupported type"):
        leaky_loss(x)


# --- devices --------------------------------------------------------------------------------

def _cupy_installed() -> bool:
    try:
        import cupy  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.mark.skipif(_cupy_installed(), reason="CuPy is installed: the GPU is available")
def test_asking_for_the_gpu_without_cupy_names_the_extra():
    with pytest.raises(MissingExtra, match=r"pip install 'strata\[gpu\]'"):
        strata.tensor([1.0, 2.0], device="gpu")
    with pytest.raises(MissingExtra, match=r"strata\[gpu\]"):
        nn.Dense(3).to("gpu")
    with pytest.raises(MissingExtra, match=r"strata\[gpu\]"):
        strata.tensor([1.0]).to("gpu")
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        strata.tensor([1.0]).to("tpu")


def test_tensors_and_modules_move_between_devices():
    t = strata.tensor([1.0, 2.0], device="standin")
    assert _on_device(t.data) and t.device == "standin" and t.dtype == np.float32
    assert t.to("standin") is t
    back = t.to("cpu")
    assert type(back.data) is np.ndarray and back.device == "cpu"
    np.testing.assert_array_equal(back.numpy(), [1.0, 2.0])
    assert "device='standin'" in repr(t)

    model = nn.Sequential([nn.Dense(4, "relu"), nn.BatchNorm(), nn.Dense(2)])
    x = np.random.default_rng(0).standard_normal((5, 3))
    model(x)
    model.to("standin")
    assert model.device == "standin"
    assert all(_on_device(t.data) for _, t in model._named_tensors())
    model.to("cpu")
    assert model.device == "cpu"
    assert all(type(t.data) is np.ndarray for _, t in model._named_tensors())


@pytest.mark.parametrize("optimizer", ["gd", "momentum", "rmsprop", "adam"])
def test_training_moved_to_the_standin_midway_matches_the_cpu(optimizer):
    """Two steps on the CPU, then model.to(device) (parameters and the optimizer's v, s) and
    two more there: the weights equal four steps on the CPU."""
    rng = np.random.default_rng(0)
    x, labels = rng.standard_normal((16, 5)), rng.integers(0, 3, 16)

    def train(device):
        strata.seed(0)
        with strata.default_dtype(np.float64):
            model = nn.Sequential([nn.Dense(8, "relu"), nn.BatchNorm(), nn.Dense(3)])
            model(x)
        model.compile(optimizer=optimizer, lr=0.05)
        model._bind_optimizer()
        for step in range(4):
            if step == 2:
                model.to(device)
            model.zero_grad()
            strata.softmax_cross_entropy(model(x), labels).backward()
            model.optimizer.step()
        return model

    moved, reference = train("standin"), train("cpu")
    assert all(_on_device(v) for state in moved.optimizer.state.values()
               for v in state.values() if hasattr(v, "shape"))
    for (key, t), (_, ref) in zip(moved._named_tensors(), reference._named_tensors(),
                                  strict=True):
        _assert_same(t.data, ref.data, key)
