"""Registry cases of the arithmetic ops: elementwise, activations, matmul and reductions."""

from __future__ import annotations

import numpy as np
from op_cases_common import (
    Case,
    avoiding,
    distinct,
    interleaved,
    mask,
    nonzero,
    normal,
    positive,
    torch,
)

import strata

# name -> (shape of a, shape of b): broadcasting each way, both ways at once, and 0-d operands.
BROADCAST_PAIRS = {
    "same_shape": ((3, 4), (3, 4)),
    "row_right": ((3, 4), (4,)),
    "row_left": ((4,), (3, 4)),
    "outer": ((3, 1), (1, 4)),
    "scalar_right": ((2, 3, 4), ()),
    "scalar_left": ((), (3, 1)),
    "rank3_both": ((2, 1, 4), (3, 1)),
}


def _torch_call(name, **kwargs):
    return lambda *ts: getattr(torch, name)(*ts, **kwargs)


def _binary(op, sample, torch_name=None):
    """One case per broadcast pattern; ``sample(shape_a, shape_b)`` draws the pair."""
    fn, ref = getattr(strata, op), _torch_call(torch_name or op)
    return [Case(op, name, fn, ref, sample(sa, sb)) for name, (sa, sb) in BROADCAST_PAIRS.items()]


def _binary_cases() -> list[Case]:
    cases = []
    for op in ("add", "sub", "mul"):
        cases += _binary(op, lambda sa, sb: (normal(*sa), normal(*sb)))
    cases += _binary("div", lambda sa, sb: (normal(*sa), nonzero(*sb)))
    cases += _binary("maximum", interleaved)
    cases += _binary("minimum", interleaved)
    cases += _binary("pow", lambda sa, sb: (positive(*sa), normal(*sb)))
    return cases + [
        # Python numbers as one operand (they take the tensor's dtype)
        Case("add", "python_number", lambda a: strata.add(a, 2.5), lambda t: t + 2.5,
             (normal(3, 4),)),
        Case("sub", "python_number_left", lambda b: strata.sub(3.0, b), lambda t: 3.0 - t,
             (normal(3, 4),)),
        Case("mul", "python_number", lambda a: strata.mul(a, -1.5), lambda t: t * -1.5,
             (normal(3, 4),)),
        Case("div", "python_number_left", lambda b: strata.div(1.0, b), lambda t: 1.0 / t,
             (nonzero(3, 4),)),
        Case("maximum", "python_number", lambda a: strata.maximum(a, 0.0),
             lambda t: torch.clamp(t, min=0.0), (avoiding(3, 4),)),
        Case("minimum", "python_number", lambda a: strata.minimum(a, 0.5),
             lambda t: torch.clamp(t, max=0.5), (avoiding(3, 4, points=(0.5,)),)),
        Case("pow", "scalar_exponent", lambda a: strata.pow(a, 2.5), lambda t: t**2.5,
             (positive(3, 4),)),
        Case("pow", "integer_exponent", lambda a: strata.pow(a, 3), lambda t: t**3,
             (normal(3, 4),)),
        Case("pow", "negative_exponent", lambda a: strata.pow(a, -1.5), lambda t: t**-1.5,
             (positive(2, 3),)),
        Case("pow", "scalar_base", lambda b: strata.pow(1.7, b), lambda t: 1.7**t,
             (normal(3, 4),)),
    ]


def _unary(op, sample, torch_fn=None, **kwargs):
    """A matrix, a 3-D and a 0-d input for an op of one tensor."""
    fn = getattr(strata, op)
    ref = torch_fn or _torch_call(op)
    shapes = {"matrix": (3, 4), "rank3": (2, 3, 2), "scalar": ()}
    return [Case(op, name, lambda a: fn(a, **kwargs), lambda t: ref(t, **kwargs), (sample(*s),))
            for name, s in shapes.items()]


def _leaky(t, alpha=0.01):
    return torch.nn.functional.leaky_relu(t, negative_slope=alpha)


def _unary_cases() -> list[Case]:
    cases = _unary("neg", normal) + _unary("exp", normal) + _unary("log", positive)
    cases += _unary("sqrt", positive) + _unary("abs", avoiding) + _unary("tanh", normal)
    # relu's 0-d case is below, kept positive: a negative one would get no gradient at all
    cases += _unary("sigmoid", normal) + _unary("relu", avoiding)[:2]
    cases += _unary("leaky_relu", avoiding, _leaky)
    wide = np.concatenate([normal(8), [-30.0, -12.0, 12.0, 30.0]])  # large |x|: no overflow
    return cases + [
        Case("leaky_relu", "alpha_0.2", lambda a: strata.leaky_relu(a, alpha=0.2),
             lambda t: _leaky(t, 0.2), (avoiding(3, 4),)),
        Case("relu", "scalar", strata.relu, _torch_call("relu"), (positive(),)),
        Case("sigmoid", "wide", strata.sigmoid, _torch_call("sigmoid"), (wide,)),
    ]


def _where(name, cond, *inputs, scalar_b=None):
    if scalar_b is not None:
        return Case("where", name, lambda a: strata.where(cond, a, scalar_b),
                    lambda t: torch.where(torch.from_numpy(cond), t, scalar_b), inputs)
    return Case("where", name, lambda a, b: strata.where(cond, a, b),
                lambda ta, tb: torch.where(torch.from_numpy(cond), ta, tb), inputs)


def _clip(name, low, high):
    points = tuple(p for p in (low, high) if p is not None)
    return Case("clip", name, lambda a: strata.clip(a, low, high),
                lambda t: torch.clamp(t, min=low, max=high), (avoiding(3, 4, points=points),))


def _selection_cases() -> list[Case]:
    return [
        _where("same_shape", mask(3, 4), normal(3, 4), normal(3, 4)),
        _where("broadcast_both", mask(3, 4), normal(4), normal(3, 1)),
        _where("scalar_shaped_b", mask(3, 4), normal(3, 4), normal()),
        _where("condition_broadcasts", mask(4), normal(3, 4), normal(3, 4)),
        _where("python_number_b", mask(3, 4), normal(3, 4), scalar_b=0.0),
        _clip("both", -0.5, 0.8),
        _clip("low_only", -0.3, None),
        _clip("high_only", None, 0.4),
        # Down-casting: exact in value but float32, so it has no float64 gradient check.
        Case("astype", "to_float32", lambda a: strata.astype(a, np.float32),
             lambda t: t.to(torch.float32), (normal(3, 4),), out_dtype=np.float32,
             gradcheck=False),
        Case("astype", "to_float64", lambda a: strata.astype(a, np.float64),
             lambda t: t.to(torch.float64), (normal(3, 4),), out_dtype=np.float64),
    ]


def _softmax(op, shape, axis=None):
    kwargs = {} if axis is None else {"axis": axis}
    name = f"{len(shape)}d_axis_{'default' if axis is None else axis}"
    return Case(op, name, lambda a: getattr(strata, op)(a, **kwargs),
                lambda t: getattr(torch, op)(t, dim=-1 if axis is None else axis),
                (normal(*shape),))


def _matmul(name, shape_a, shape_b):
    return Case("matmul", name, strata.matmul, _torch_call("matmul"),
                (normal(*shape_a), normal(*shape_b)))


def _activation_and_linalg_cases() -> list[Case]:
    cases = []
    for op in ("softmax", "log_softmax"):
        cases += [_softmax(op, (3, 4)), _softmax(op, (3, 4), 0), _softmax(op, (3, 4), -1),
                  _softmax(op, (2, 3, 4), 1), _softmax(op, (5,), 0)]
    return cases + [
        _matmul("2d", (3, 4), (4, 5)),
        _matmul("batched_by_2d", (2, 3, 4), (4, 5)),
        _matmul("batched_both", (2, 3, 4), (2, 4, 5)),
        _matmul("broadcast_batch", (2, 1, 3, 4), (5, 4, 2)),
        _matmul("vector_by_matrix", (4,), (4, 5)),
        _matmul("matrix_by_vector", (3, 4), (4,)),
        _matmul("vector_by_vector", (4,), (4,)),
        _matmul("vector_by_batch", (4,), (2, 4, 3)),
        _matmul("batch_by_vector", (2, 3, 4), (4,)),
        _linear("2d", (5, 4), 3),
        _linear("sequence", (2, 3, 4), 6),
        _linear("single_example", (4,), 2),
    ]


def _linear(name, x_shape, units):
    return Case("linear", name, strata.linear, lambda x, W, b: x @ W + b,
                (normal(*x_shape), normal(x_shape[-1], units), normal(units)))


# (name, input shape, axis, keepdims)
REDUCTIONS = [
    ("all", (2, 3, 4), None, False),
    ("all_keepdims", (2, 3, 4), None, True),
    ("axis_1", (2, 3, 4), 1, False),
    ("negative_axis_keepdims", (2, 3, 4), -1, True),
    ("axes_tuple", (2, 3, 4), (0, 2), False),
    ("axes_tuple_negative_keepdims", (2, 3, 4), (0, -1), True),
    ("vector", (5,), 0, False),
]


def _reduce(op, name, x, axis, keepdims, **extra):
    """strata.<op>(x, axis, keepdims) and torch's version (max/min are amax/amin there)."""
    dims = tuple(range(x.ndim)) if axis is None else axis
    torch_name = {"max": "amax", "min": "amin"}.get(op, op)
    # strata's var defaults to ddof=0; torch's to correction=1, so always pass it
    torch_extra = {"correction": extra.get("ddof", 0)} if op == "var" else {}
    return Case(op, name, lambda a: getattr(strata, op)(a, axis=axis, keepdims=keepdims, **extra),
                lambda t: getattr(torch, torch_name)(t, dim=dims, keepdim=keepdims,
                                                     **torch_extra), (x,))


def _reduction_cases() -> list[Case]:
    samplers = {"sum": normal, "mean": normal, "max": distinct, "min": distinct, "var": normal}
    cases = [_reduce(op, name, sample(*shape), axis, keepdims)
             for op, sample in samplers.items() for name, shape, axis, keepdims in REDUCTIONS]
    cases += [_reduce("var", f"{name}_ddof_1", normal(*shape), axis, keepdims, ddof=1)
              for name, shape, axis, keepdims in REDUCTIONS]
    return cases


def _cross_entropy(name, logits, labels):
    """softmax_cross_entropy against fixed labels (not differentiated); torch wants the classes
    on axis 1, so examples are flattened to rows first."""
    classes = logits.shape[-1]
    target = labels.reshape(-1) if labels.dtype.kind in "iu" else labels.reshape(-1, classes)
    return Case("softmax_cross_entropy", name,
                lambda z: strata.softmax_cross_entropy(z, labels),
                lambda t: torch.nn.functional.cross_entropy(t.reshape(-1, classes),
                                                            torch.from_numpy(target)),
                (logits,))


def _loss_cases() -> list[Case]:
    soft = np.exp(normal(4, 5))
    return [
        _cross_entropy("class_indices", normal(4, 3), np.array([2, 0, 1, 2])),
        _cross_entropy("one_hot", normal(4, 3), np.eye(3)[[1, 1, 0, 2]]),
        _cross_entropy("probabilities", normal(4, 5), soft / soft.sum(axis=1, keepdims=True)),
        _cross_entropy("rank3_class_indices", normal(2, 3, 4), np.array([[0, 3, 1], [2, 2, 0]])),
    ]


def math_cases() -> list[Case]:
    """All cases of this module."""
    return (_binary_cases() + _unary_cases() + _selection_cases()
            + _activation_and_linalg_cases() + _reduction_cases() + _loss_cases())
