"""Bad input gets clear errors: the right exception type, naming the op and the shapes."""

import re

import numpy as np
import pytest

import strata
from strata.autograd import Function


def ones(*shape, requires_grad=False):
    return strata.tensor(np.ones(shape), requires_grad=requires_grad)


def raises_shape_error(*fragments):
    """pytest.raises(ShapeError) whose message must contain every fragment literally."""
    return pytest.raises(strata.ShapeError, match=".*".join(re.escape(f) for f in fragments))


def test_shape_error_is_a_value_error():
    assert issubclass(strata.ShapeError, ValueError)


def test_matmul_incompatible_shapes():
    with raises_shape_error("matmul", "(3, 4)", "(5, 6)"):
        strata.matmul(ones(3, 4), ones(5, 6))
    with raises_shape_error("matmul", "(3, 4)", "(5, 6)"):
        _ = ones(3, 4) @ ones(5, 6)


def test_matmul_vectors_of_different_lengths():
    with raises_shape_error("matmul", "(3,)", "(4,)"):
        strata.matmul(ones(3), ones(4))


@pytest.mark.parametrize("a_shape, b_shape", [((3, 4), ()), ((), (3, 4))])
def test_matmul_with_0d_input(a_shape, b_shape):
    with raises_shape_error("matmul", str(a_shape), str(b_shape)):
        strata.matmul(ones(*a_shape), ones(*b_shape))


@pytest.mark.parametrize("op", [strata.add, strata.sub, strata.mul, strata.div,
                                strata.maximum, strata.minimum])
def test_binary_ops_with_non_broadcastable_shapes(op):
    with raises_shape_error(op.__name__, "(3, 4)", "(5,)"):
        op(ones(3, 4), ones(5))


def test_operators_with_non_broadcastable_shapes():
    with raises_shape_error("add", "(3, 4)", "(5,)"):
        _ = ones(3, 4) + ones(5)
    with raises_shape_error("mul", "(3, 4)", "(5,)"):
        _ = ones(3, 4) * np.ones(5)


@pytest.mark.parametrize("shape, target", [((3, 4), (3, 5)), ((3, 4), (4,)), ((3, 1), (1, 4))])
def test_broadcast_to_incompatible_shape(shape, target):
    with raises_shape_error("broadcast_to", str(shape), str(target)):
        strata.broadcast_to(ones(*shape), target)


def test_reshape_to_impossible_shape():
    with raises_shape_error("reshape", "(3, 4)"):
        strata.reshape(ones(3, 4), (5, 2))
    with raises_shape_error("reshape"):
        ones(3, 4).reshape(5, -1)


def test_concatenate_mismatched_shapes():
    with raises_shape_error("concatenate", "(2, 3)", "(2, 4)"):
        strata.concatenate([ones(2, 3), ones(2, 4)], axis=0)
    with raises_shape_error("concatenate"):
        strata.concatenate([ones(2, 3), ones(2, 3, 1)], axis=0)


def test_stack_mismatched_shapes():
    with raises_shape_error("stack", "(2, 3)", "(3, 2)"):
        strata.stack([ones(2, 3), ones(3, 2)])


def test_squeeze_of_axis_that_is_not_1():
    with raises_shape_error("squeeze", "axis 0", "(2, 1)"):
        strata.squeeze(ones(2, 1), axis=0)


@pytest.mark.parametrize("op", [strata.sum, strata.mean, strata.max, strata.var])
def test_reduction_axis_out_of_range(op):
    with pytest.raises(ValueError, match=rf"{op.__name__}.*axis 2"):
        op(ones(3, 4), axis=2)
    with pytest.raises(ValueError, match=rf"{op.__name__}.*axis -3"):
        op(ones(3, 4), axis=-3)


def test_backward_without_grad_on_non_scalar():
    y = ones(2, 3, requires_grad=True) * 2.0
    with raises_shape_error("backward", "(2, 3)"):
        y.backward()


def test_backward_with_wrong_grad_shape():
    y = ones(2, 3, requires_grad=True) * 2.0
    with raises_shape_error("backward", "(2, 3)", "(3, 2)"):
        y.backward(np.ones((3, 2)))


def test_backward_on_tensor_without_grad():
    with pytest.raises(RuntimeError, match="requires_grad"):
        ones(1).backward()


def test_custom_backward_returning_wrong_shape():
    class BadShape(Function):
        def forward(self, a):
            return a * 2

        def backward(self, g):
            return (g.sum(axis=0),)

    y = BadShape.apply(ones(2, 3, requires_grad=True))
    with raises_shape_error("badshape", "(3,)", "(2, 3)"):
        y.sum().backward()


def test_clip_with_low_above_high():
    with pytest.raises(ValueError, match="clip.*low"):
        strata.clip(ones(3), 2.0, 1.0)
    with pytest.raises(ValueError, match="clip"):
        strata.clip(ones(3))


@pytest.mark.parametrize("alpha", [-0.1, 1.0, 2.5])
def test_leaky_relu_alpha_out_of_range(alpha):
    with pytest.raises(ValueError, match=rf"leaky_relu.*{alpha}"):
        strata.leaky_relu(ones(3), alpha=alpha)


@pytest.mark.parametrize("ddof", [4, 5, -1])
def test_var_with_invalid_ddof(ddof):
    with pytest.raises(ValueError, match=rf"var.*ddof={ddof}"):
        strata.var(ones(3, 4), axis=1, ddof=ddof)


@pytest.mark.parametrize("op", [strata.softmax, strata.log_softmax])
def test_softmax_axis_out_of_range(op):
    with pytest.raises(ValueError, match=rf"{op.__name__}.*axis 2"):
        op(ones(3, 4), axis=2)


def test_max_of_empty_tensor():
    with pytest.raises(ValueError, match=r"max.*\(0, 3\)"):
        strata.max(ones(0, 3))


def test_where_with_non_boolean_condition():
    with pytest.raises(TypeError, match="where.*boolean"):
        strata.where(np.array([1, 0]), ones(2), ones(2))


def test_linear_names_all_three_shapes():
    x, W, b = strata.tensor(np.ones((2, 3))), strata.tensor(np.ones((4, 5))), np.ones(5)
    with pytest.raises(strata.ShapeError, match=r"linear.*\(2, 3\).*\(4, 5\).*\(5,\)"):
        strata.linear(x, W, b)
