"""The Tensor API: construction and dtype rules, attributes, detach/numpy/item, repr,
comparisons, Python operators (including reflected ones) and the shared random Generator."""

import numpy as np
import pytest

import strata


# --- construction and dtypes ----------------------------------------------------------------
@pytest.mark.parametrize("data", [1.5, [1.0, 2.0], [[0.5], [2.5]]])
def test_python_floats_get_float32_by_default(data):
    t = strata.tensor(data)
    assert t.dtype == np.float32
    np.testing.assert_array_equal(t.numpy(), np.asarray(data, dtype=np.float32))


def test_arrays_keep_their_dtype_and_dtype_argument_overrides():
    assert strata.tensor(np.ones(3)).dtype == np.float64
    assert strata.tensor(np.ones(3, dtype=np.float16)).dtype == np.float16
    assert strata.tensor([1, 2]).dtype.kind == "i"
    assert strata.tensor(np.ones(3), dtype=np.float32).dtype == np.float32
    assert strata.tensor([1.0, 2.0], dtype=np.float64).dtype == np.float64
    assert strata.tensor([1, 2], dtype=np.float32).dtype == np.float32


def test_default_dtype_context_changes_and_restores():
    assert strata.get_default_dtype() == np.float32
    with strata.default_dtype(np.float64):
        assert strata.get_default_dtype() == np.float64
        assert strata.tensor([1.0, 2.0]).dtype == np.float64
    assert strata.tensor([1.0, 2.0]).dtype == np.float32
    with pytest.raises(ZeroDivisionError), strata.default_dtype(np.float64):
        _ = 1 / 0
    assert strata.get_default_dtype() == np.float32


def test_requires_grad_on_integer_dtype_raises():
    with pytest.raises(TypeError, match="int"):
        strata.tensor([1, 2, 3], requires_grad=True)
    with pytest.raises(TypeError):
        strata.tensor(np.array([True, False]), requires_grad=True)


# --- attributes -----------------------------------------------------------------------------
def test_shape_dtype_ndim_size_and_transpose():
    data = np.arange(24, dtype=np.float64).reshape(2, 3, 4)
    t = strata.tensor(data)
    assert t.shape == (2, 3, 4) and t.ndim == 3 and t.size == 24 and len(t) == 2
    assert t.dtype == np.float64
    assert t.T.shape == (4, 3, 2)
    np.testing.assert_array_equal(t.T.numpy(), data.T)


def test_transpose_property_is_differentiable():
    rng = np.random.default_rng(0)
    x = strata.tensor(rng.standard_normal((2, 3)), requires_grad=True)
    upstream = rng.standard_normal((3, 2))
    x.T.backward(upstream)
    np.testing.assert_allclose(x.grad, upstream.T)


def test_detach_cuts_graph_and_shares_data():
    x = strata.tensor(np.array([1.0, 2.0]), requires_grad=True)
    y = x * 2.0
    d = y.detach()
    assert not d.requires_grad and d.is_leaf
    assert np.shares_memory(d.numpy(), y.numpy())
    (x * d).sum().backward()  # d acts as a constant: d(x * d)/dx = d
    np.testing.assert_allclose(x.grad, [2.0, 4.0])


def test_numpy_returns_the_underlying_array():
    data = np.array([1.0, 2.0, 3.0])
    t = strata.tensor(data)
    assert isinstance(t.numpy(), np.ndarray)
    t.numpy()[0] = 10.0
    assert t.data[0] == 10.0


def test_item_for_single_element_and_error_otherwise():
    value = strata.tensor([[2.5]]).item()
    assert value == 2.5 and isinstance(value, float)
    with pytest.raises(ValueError, match=r"\(2,\)"):
        strata.tensor([1.0, 2.0]).item()


def test_repr_includes_requires_grad_only_when_set():
    assert "requires_grad=True" in repr(strata.tensor([1.0], requires_grad=True))
    text = repr(strata.tensor([1.0, 2.0]))
    assert "requires_grad" not in text and "float32" in text


# --- comparisons ----------------------------------------------------------------------------
def test_comparisons_return_boolean_tensors_without_grad():
    data = np.array([-1.0, 0.0, 2.0])
    x = strata.tensor(data, requires_grad=True)
    other = np.array([0.0, 0.0, 0.0])
    cases = [(x < 0, data < 0), (x <= 0, data <= 0), (x > 0, data > 0),
             (x >= 0, data >= 0), (x == other, data == other), (x != 0, data != 0),
             (x > strata.tensor(other), data > other)]
    for result, expected in cases:
        assert isinstance(result, strata.Tensor)
        assert result.dtype == np.bool_ and not result.requires_grad
        np.testing.assert_array_equal(result.numpy(), expected)


# --- operators ------------------------------------------------------------------------------
def test_python_operators_and_reflected_ones_with_numbers():
    data = np.array([1.0, 2.0, 4.0])
    t = strata.tensor(data)
    cases = [(t + 2, data + 2), (2 + t, 2 + data), (t - 1, data - 1), (1 - t, 1 - data),
             (t * 3, data * 3), (3 * t, 3 * data), (t / 2, data / 2), (2 / t, 2 / data),
             (t**2, data**2), (2**t, 2**data), (-t, -data), (abs(-t), data)]
    for result, expected in cases:
        assert isinstance(result, strata.Tensor)
        np.testing.assert_allclose(result.numpy(), expected)


def test_numpy_array_on_the_left_returns_tensor():
    data = np.array([1.0, 2.0, 3.0])
    t = strata.tensor(data, requires_grad=True)
    cases = [(np.ones(3) + t, 1 + data), (np.full(3, 5.0) - t, 5 - data),
             (np.arange(3.0) * t, np.arange(3.0) * data), (np.ones(3) / t, 1 / data),
             (np.eye(3) @ t, data)]
    for result, expected in cases:
        assert isinstance(result, strata.Tensor) and result.requires_grad
        np.testing.assert_allclose(result.numpy(), expected)
    (np.full(3, 5.0) - t).sum().backward()
    np.testing.assert_allclose(t.grad, -np.ones(3))


def test_matmul_operator_and_indexing():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((2, 3)), rng.standard_normal((3, 4))
    ta = strata.tensor(a, requires_grad=True)
    out = ta @ strata.tensor(b)
    np.testing.assert_allclose(out.numpy(), a @ b)
    out[1].sum().backward()  # only row 1 of the product: grad of a's row 1 is b's row sums
    expected = np.zeros((2, 3))
    expected[1] = b.sum(axis=1)
    np.testing.assert_allclose(ta.grad, expected)


def test_scalar_operands_do_not_upcast_float32():
    t = strata.tensor([1.0, 2.0])
    results = [t + 1.5, 1.5 + t, t - 2, 2 - t, t * 0.1, 0.1 * t, t / 3.0, 3.0 / t, t**2.0,
               2.0**t, t * np.float64(0.5), strata.maximum(t, 1.5), strata.where(t > 1, t, 0.0)]
    for r in results:
        assert r.dtype == np.float32


# --- random numbers -------------------------------------------------------------------------
def test_seed_makes_draws_repeatable():
    strata.seed(7)
    first = strata.rng().standard_normal(5)
    strata.seed(7)
    np.testing.assert_array_equal(strata.rng().standard_normal(5), first)
    strata.seed(8)
    assert not np.array_equal(strata.rng().standard_normal(5), first)


@pytest.mark.parametrize("bad", [-1, 1.5, "3", None, True])
def test_seed_rejects_negative_and_non_integers(bad):
    with pytest.raises(ValueError, match="seed"):
        strata.seed(bad)
