"""Mean squared error, the regression cost (course 1's linear regression, course 4's boxes)."""

from __future__ import annotations

from strata.backend import array_module
from strata.losses.checks import _checked, _label_array, _per_example, _prediction, _sample_weights
from strata.tensor import Tensor


def mean_squared_error(A, Y, *, sample_weight=None) -> Tensor:
    """J = mean over all m * n_y entries of (a - y)^2 (Keras's and PyTorch's normalization).
    ``sample_weight`` (m,): J = (1/m) sum_i w_i l_i, l_i the mean over example i's entries."""
    name = "mean_squared_error"
    A = _prediction(A, name)
    w = None if sample_weight is None else _sample_weights(sample_weight, A.shape, A.dtype, name,
                                                           array_module(A.data))
    if isinstance(Y, Tensor) and Y.requires_grad:  # a learned target: keep it in the graph
        _label_array(Y.detach(), A, name)  # only to check the shape
        Y = Y if Y.dtype == A.dtype else Y.astype(A.dtype)
    else:
        Y = Tensor._wrap(_label_array(Y, A, name), False)
    diff = A - Y
    if w is None:
        return _checked((diff * diff).mean(), A, name, Y)
    weighted = diff * diff * Tensor._wrap(_per_example(w, A.ndim), False)
    return _checked(weighted.mean(), A, name, Y)


mse = mean_squared_error
