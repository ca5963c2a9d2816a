"""The autograd engine: graph traversal, accumulation, broadcasting, no_grad, deep graphs and
graph release. Expected values are derived by hand or with plain NumPy."""

import gc
import weakref

import numpy as np
import pytest

import strata


def leaf(values, dtype=np.float64):
    return strata.tensor(np.asarray(values, dtype=dtype), requires_grad=True)


# --- shared subgraphs -----------------------------------------------------------------------
def test_tensor_used_several_times_accumulates():
    values = np.array([-1.5, 0.0, 2.0, 3.25])
    x = leaf(values)
    (x * x + x).sum().backward()
    np.testing.assert_allclose(x.grad, 2 * values + 1)


def test_diamond_graph_sums_both_paths():
    values = np.array([[0.3, -0.7], [1.2, 2.0]])
    a = leaf(values)
    b = strata.exp(a)  # a -> b
    c = a * a * 3.0  # a -> c
    (b + c).sum().backward()
    np.testing.assert_allclose(a.grad, np.exp(values) + 6 * values)


def test_intermediate_reused_downstream():
    values = np.array([0.5, -2.0, 1.5])
    x = leaf(values)
    h = strata.tanh(x)
    (h * h * h + h).sum().backward()  # d/dx (t^3 + t) = (3 t^2 + 1)(1 - t^2)
    t = np.tanh(values)
    np.testing.assert_allclose(x.grad, (3 * t**2 + 1) * (1 - t**2))


# --- accumulation across calls ------------------------------------------------------------
def test_grads_accumulate_across_backward_calls_and_zero_grad_resets():
    values = np.array([1.0, -2.0, 0.5])
    x = leaf(values)
    (x * x).sum().backward()
    first = x.grad.copy()
    np.testing.assert_allclose(first, 2 * values)
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad, 2 * first)
    x.zero_grad()
    assert x.grad is None
    (x * 3.0).sum().backward()
    np.testing.assert_allclose(x.grad, np.full(3, 3.0))


# --- broadcasting -------------------------------------------------------------------------
def test_broadcasting_in_both_directions():
    rng = np.random.default_rng(0)
    a, b = leaf(rng.standard_normal((3, 1))), leaf(rng.standard_normal((1, 4)))
    upstream = rng.standard_normal((3, 4))
    (a + b).backward(upstream)
    assert a.grad.shape == (3, 1) and b.grad.shape == (1, 4)
    np.testing.assert_allclose(a.grad, upstream.sum(axis=1, keepdims=True))
    np.testing.assert_allclose(b.grad, upstream.sum(axis=0, keepdims=True))


def test_broadcasting_product_gradients():
    rng = np.random.default_rng(1)
    av, bv = rng.standard_normal((3, 1)), rng.standard_normal((1, 4))
    a, b = leaf(av), leaf(bv)
    (a * b).sum().backward()
    np.testing.assert_allclose(a.grad, np.full((3, 1), bv.sum()))
    np.testing.assert_allclose(b.grad, np.full((1, 4), av.sum()))


def test_bias_like_broadcast():
    rng = np.random.default_rng(2)
    z, bias = leaf(rng.standard_normal((128, 5))), leaf(rng.standard_normal(5))
    upstream = rng.standard_normal((128, 5))
    (z + bias).backward(upstream)
    assert bias.grad.shape == (5,)
    np.testing.assert_allclose(bias.grad, upstream.sum(axis=0))
    np.testing.assert_allclose(z.grad, upstream)


@pytest.mark.parametrize("shape, bias_shape", [((0, 5), (5,)), ((3, 0), (1, 0)), ((0,), ())])
def test_broadcasting_with_empty_tensors(shape, bias_shape):
    z, bias = leaf(np.ones(shape)), leaf(np.full(bias_shape, 2.0))
    (z * bias).sum().backward()
    assert z.grad.shape == shape and bias.grad.shape == bias_shape
    np.testing.assert_array_equal(bias.grad, np.zeros(bias_shape))  # a sum over no elements
    np.testing.assert_array_equal(z.grad, np.full(shape, 2.0))


# --- unused inputs ------------------------------------------------------------------------
def test_unused_leaf_and_constant_inputs_get_no_grad():
    x, unused = leaf([1.0, 2.0]), leaf([3.0, 4.0])
    const = strata.tensor(np.array([5.0, 6.0]))
    (x * const).sum().backward()
    np.testing.assert_allclose(x.grad, [5.0, 6.0])
    assert unused.grad is None
    assert const.grad is None and not const.requires_grad


# --- no_grad ------------------------------------------------------------------------------
def test_no_grad_block_records_nothing():
    x = leaf([1.0, 2.0])
    with strata.no_grad():
        assert not strata.is_grad_enabled()
        y = x * 2.0 + 1.0
    assert strata.is_grad_enabled()
    assert not y.requires_grad and y.is_leaf
    np.testing.assert_allclose(y.numpy(), [3.0, 5.0])
    with pytest.raises(RuntimeError, match="requires_grad"):
        y.sum().backward()


def test_no_grad_as_decorator():
    @strata.no_grad()
    def double(t):
        assert not strata.is_grad_enabled()
        return t * 2.0

    out = double(leaf([1.0]))
    assert not out.requires_grad
    assert strata.is_grad_enabled()


def test_no_grad_restores_after_exception_and_nesting():
    with pytest.raises(KeyError), strata.no_grad():
        raise KeyError("boom")
    assert strata.is_grad_enabled()
    with strata.no_grad():
        with strata.no_grad():
            pass
        assert not strata.is_grad_enabled()  # the inner block restores "off", not "on"
    assert strata.is_grad_enabled()

    @strata.no_grad()
    def fail():
        raise ValueError("inside")

    with pytest.raises(ValueError, match="inside"):
        fail()
    assert strata.is_grad_enabled()


# --- deep graphs --------------------------------------------------------------------------
def run_recurrence(h0, W, xs):
    h = h0
    for x_t in xs:
        h = strata.tanh(h @ W + x_t)
    return h


def numpy_bptt(h0, W, xs):
    """Reference forward and backward of sum(h_T) for h = tanh(h @ W + x_t), in plain NumPy."""
    hs = [h0]
    for x_t in xs:
        hs.append(np.tanh(hs[-1] @ W + x_t))
    dh, dW, dxs = np.ones_like(h0), np.zeros_like(W), [None] * len(xs)
    for t in reversed(range(len(xs))):
        dz = dh * (1 - hs[t + 1] ** 2)
        dW += hs[t].T @ dz
        dxs[t] = dz
        dh = dz @ W.T
    return dh, dW, dxs


def make_recurrence(steps, seed=0, batch=2, hidden=6):
    rng = np.random.default_rng(seed)
    h0 = rng.standard_normal((batch, hidden))
    W = rng.standard_normal((hidden, hidden)) * 1.2 / np.sqrt(hidden)
    xs = [rng.standard_normal((batch, hidden)) * 0.5 for _ in range(steps)]
    return h0, W, xs


@pytest.mark.parametrize("steps", [1000, 5000])
def test_deep_recurrence_backward_matches_numpy_bptt(steps):
    h0, W, xs = make_recurrence(steps)
    th0, tW, txs = leaf(h0), leaf(W), [leaf(x) for x in xs]
    run_recurrence(th0, tW, txs).sum().backward()
    dh0, dW, dxs = numpy_bptt(h0, W, xs)
    np.testing.assert_allclose(tW.grad, dW, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(th0.grad, dh0, rtol=1e-9, atol=1e-12)
    for t in (0, steps // 2, steps - 1):
        np.testing.assert_allclose(txs[t].grad, dxs[t], rtol=1e-9, atol=1e-12)


def test_short_recurrence_passes_gradcheck():
    h0, W, xs = make_recurrence(12, seed=3)

    def fn(h, w, x):
        return run_recurrence(h, w, [x[t] for t in range(x.shape[0])])

    differences = strata.gradcheck(fn, h0, W, np.stack(xs))
    assert len(differences) == 3
    assert max(differences) < 1e-7


def test_chain_of_20000_additions():
    x = leaf([1.0, -1.0])
    y = x
    for _ in range(20000):
        y = y + x
    y.sum().backward()
    np.testing.assert_allclose(x.grad, [20001.0, 20001.0])


# --- retained vs released graphs ----------------------------------------------------------
def test_second_backward_without_retain_graph_raises():
    x = leaf([1.0, 2.0])
    loss = (strata.exp(x) * x).sum()
    loss.backward()
    with pytest.raises(RuntimeError, match="retain_graph"):
        loss.backward()


def test_retain_graph_allows_second_backward_which_accumulates():
    values = np.array([0.5, -1.0])
    x = leaf(values)
    loss = (strata.exp(x) * x).sum()
    loss.backward(retain_graph=True)
    np.testing.assert_allclose(x.grad, np.exp(values) * (1 + values))
    loss.backward()
    np.testing.assert_allclose(x.grad, 2 * np.exp(values) * (1 + values))


def _loss_with_big_intermediate(x):
    """Return the loss and a weak reference to an intermediate array only the graph keeps."""
    big = strata.exp(x)  # its array is saved by Mul below; the Tensor itself is dropped here
    probe = weakref.ref(big.data)
    return (big * 2.0).sum(), probe


@pytest.mark.parametrize("retain", [False, True])
def test_backward_releases_saved_arrays_unless_retained(retain):
    x = leaf(np.ones((256, 256)))
    loss, probe = _loss_with_big_intermediate(x)
    gc.collect()
    assert probe() is not None  # the graph holds it until backward
    loss.backward(retain_graph=retain)
    gc.collect()
    assert (probe() is not None) == retain
    np.testing.assert_allclose(x.grad, 2 * np.e * np.ones((256, 256)))


# --- retain_grad --------------------------------------------------------------------------
def test_retain_grad_keeps_intermediate_grad_only_where_asked():
    values = np.array([0.2, -0.4, 1.0])
    x = leaf(values)
    z = (x * 3.0).retain_grad()
    a = strata.tanh(z)
    a.sum().backward()
    np.testing.assert_allclose(z.grad, 1 - np.tanh(3 * values) ** 2)
    np.testing.assert_allclose(x.grad, 3 * (1 - np.tanh(3 * values) ** 2))
    assert a.grad is None
    assert not z.is_leaf and x.is_leaf


def test_leaf_backward_copies_the_callers_gradient():
    x = strata.tensor(np.zeros(3), requires_grad=True)
    g = np.ones(3)
    x.backward(g)
    x.grad *= 5
    assert (g == 1).all()


def test_accumulated_grads_keep_the_leaf_dtype():
    x = strata.tensor(np.ones(3, dtype=np.float32), requires_grad=True)
    for _ in range(2):
        (x * np.ones(3)).sum().backward()  # float64 array on the other side
    assert x.grad.dtype == np.float32 and (x.grad == 2).all()
