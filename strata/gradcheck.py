"""Gradient checking, as taught in course 2 week 1: compare backpropagation with two-sided
numerical differences, in float64, by the relative difference

    difference = ||grad_approx - grad|| / (||grad_approx|| + ||grad||)

Around 1e-7 or below the backward pass is right; above about 1e-3 it is almost surely wrong.
``gradcheck`` and ``check_model_gradients`` replay the random Generator, so a random op such as
dropout draws the same mask in every evaluation and can itself be checked. ``check_model`` checks
a compiled model as the course does, and refuses active dropout layers: turn dropout off first.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from strata import backend
from strata.autograd import no_grad
from strata.tensor import Tensor

#: The course's verdict threshold: a correct backward pass gives a difference below it.
THRESHOLD = 2e-7


def relative_difference(approx: np.ndarray, grad: np.ndarray) -> float:
    """||approx - grad|| / (||approx|| + ||grad||), and 0 when both are zero."""
    denominator = np.linalg.norm(approx) + np.linalg.norm(grad)
    return 0.0 if denominator == 0 else float(np.linalg.norm(approx - grad) / denominator)


def _as_float64_leaf(x, position: int) -> Tensor:
    data = x.data if isinstance(x, Tensor) else np.asarray(x)
    if not backend.is_float(data.dtype):
        raise TypeError(f"gradcheck: input {position} has dtype {data.dtype}; only floating "
                        f"inputs can be checked (close over integer inputs such as labels in fn)")
    return Tensor(np.array(data, dtype=np.float64), requires_grad=True)


class _Repeatable:
    """Calls fn in float64, replaying the shared random Generator so every call draws alike."""

    def __init__(self, fn, *args):
        self.fn, self.args = fn, args
        self.state = backend.rng().bit_generator.state

    def __call__(self) -> Tensor:
        backend.rng().bit_generator.state = self.state
        with backend.default_dtype(np.float64):
            out = self.fn(*self.args)
        if not isinstance(out, Tensor):
            raise TypeError(f"gradcheck: fn must return a Tensor, got {type(out).__name__}")
        if out.dtype != np.float64:
            raise TypeError(f"gradcheck: fn returned a {out.dtype} tensor from float64 inputs; "
                            f"gradients can only be checked in float64, so fn must not cast its "
                            f"inputs down (create constants with the default dtype instead)")
        return out


def _numeric_directional(objective, x: np.ndarray, direction: np.ndarray, eps: float) -> float:
    """(J(x + eps d) - J(x - eps d)) / (2 eps), restoring x afterwards."""
    original = x.copy()
    x += eps * direction
    plus = objective()
    x[...] = original - eps * direction
    minus = objective()
    x[...] = original
    return (plus - minus) / (2 * eps)


def gradcheck(fn, *inputs, eps: float = 1e-7, seed: int = 0, max_elements: int = 2048,
              directions: int = 64) -> tuple[float, ...]:
    """Relative difference between backprop and numerical gradients of ``fn`` for each input.

    ``fn(*inputs)`` must return a Tensor. Inputs are copied to float64; a random upstream
    gradient weighs every output so all of them are checked. Inputs with more than
    ``max_elements`` elements are checked along ``directions`` random directions instead of one
    coordinate at a time.

    >>> import strata
    >>> x = strata.tensor([[0.5, -1.0], [2.0, 0.3]])
    >>> max(strata.gradcheck(lambda t: strata.tanh(t) * t, x)) < 1e-7
    True
    """
    if eps <= 0:
        raise ValueError(f"gradcheck: expected eps > 0, got {eps}")
    if not inputs:
        raise ValueError("gradcheck: expected at least one input tensor, got none")
    leaves = [_as_float64_leaf(x, i) for i, x in enumerate(inputs)]
    evaluate = _Repeatable(fn, *leaves)
    out = evaluate()
    local = np.random.default_rng(seed)
    upstream = local.standard_normal(out.shape)
    if out.requires_grad:
        out.backward(upstream)

    def objective() -> float:
        with no_grad():
            return float(np.sum(evaluate().data * upstream))

    differences = []
    for leaf in leaves:
        analytic = leaf.grad if leaf.grad is not None else np.zeros(leaf.shape)
        if leaf.size <= max_elements:
            basis = np.eye(leaf.size).reshape((leaf.size, *leaf.shape))
        else:
            basis = local.standard_normal((directions, *leaf.shape))
        numeric = np.array([_numeric_directional(objective, leaf.data, d, eps) for d in basis])
        projected = np.array([np.sum(analytic * d) for d in basis])
        differences.append(relative_difference(numeric, projected))
    return tuple(differences)


def _named_parameters(parameters) -> list[tuple[str, Tensor]]:
    if hasattr(parameters, "named_parameters"):
        named = list(parameters.named_parameters())
    elif isinstance(parameters, dict):
        named = list(parameters.items())
    else:
        named = [(f"param{i}", p) for i, p in enumerate(parameters)]
    for name, p in named:
        if not isinstance(p, Tensor) or not backend.is_float(p.dtype):
            raise TypeError(f"check_model_gradients: parameter {name!r} must be a floating "
                            f"Tensor, got {type(p).__name__}")
    if not named:
        raise ValueError("check_model_gradients: expected at least one parameter, got none")
    return named


def parameters_to_vector(parameters) -> np.ndarray:
    """Flatten parameters into one column vector (the course's dictionary_to_vector)."""
    return np.concatenate([p.data.reshape(-1) for _, p in _named_parameters(parameters)])


def vector_to_parameters(vector: np.ndarray, parameters) -> None:
    """Copy a flat vector back into the parameters' arrays (the course's vector_to_dictionary)."""
    named = _named_parameters(parameters)
    total = sum(p.size for _, p in named)
    if vector.size != total:
        raise ValueError(f"vector_to_parameters: expected a vector of {total} values, got "
                         f"{vector.size}")
    offset = 0
    for _, p in named:
        p.data[...] = vector[offset:offset + p.size].reshape(p.shape)
        offset += p.size


@dataclass
class GradientReport:
    """Outcome of ``check_model_gradients``: overall difference and one row per parameter."""

    difference: float
    rows: list[dict] = field(default_factory=list)
    threshold: float = THRESHOLD

    @property
    def passed(self) -> bool:
        """True when the overall difference is below the threshold."""
        return self.difference < self.threshold

    @property
    def worst(self) -> dict:
        """The row of the parameter with the largest difference (look there for a bug)."""
        return max(self.rows, key=lambda r: r["difference"])

    def __str__(self) -> str:
        lines = [f"{'parameter':<16}{'shape':<16}{'checked':>9}{'difference':>14}"
                 f"{'max |error|':>14}"]
        for r in self.rows:
            mark = "  <-- worst" if r is self.worst and not self.passed else ""
            lines.append(f"{r['name']:<16}{str(r['shape']):<16}{r['checked']:>9}"
                         f"{r['difference']:>14.3e}{r['max_error']:>14.3e}{mark}")
        if self.passed:
            lines.append(f"Your backward propagation works perfectly fine! "
                         f"difference = {self.difference:.3e}")
        else:
            lines.append(f"There is a mistake in the backward propagation! difference = "
                         f"{self.difference:.3e}; worst parameter: {self.worst['name']}")
        return "\n".join(lines)


def check_model_gradients(loss_fn, parameters, eps: float = 1e-7, max_per_parameter=None,
                          seed: int = 0, threshold: float = THRESHOLD) -> GradientReport:
    """Gradient-check a whole network: ``loss_fn()`` returns the scalar cost J(parameters).

    ``parameters`` is a dict name -> Tensor (the course's parameters dictionary), a list of
    Tensors, or a model with ``named_parameters()``. They are checked in float64 (and restored
    afterwards, gradients included). ``max_per_parameter`` checks at most that many randomly
    chosen entries of each parameter, for big networks.
    """
    named = _named_parameters(parameters)
    saved = [(p.data, p.grad) for _, p in named]
    try:
        for _, p in named:
            p.data, p.grad = np.array(p.data, dtype=np.float64), None
        evaluate = _Repeatable(loss_fn)
        loss = evaluate()
        if loss.size != 1:
            raise ValueError(f"check_model_gradients: loss_fn must return a scalar cost, got "
                             f"shape {loss.shape}")
        loss.backward()
        return _compare(named, evaluate, eps, max_per_parameter, seed, threshold)
    finally:
        for (_, p), (data, grad) in zip(named, saved, strict=True):
            p.data, p.grad = data, grad


def _entry(array: np.ndarray, i: int) -> np.ndarray:
    """A view of the entry at C-order flat index ``i``. Slicing always aliases the array,
    whatever its strides; ``reshape(-1)`` copies a Fortran-ordered or strided parameter, and
    perturbing that copy would leave the parameter unchanged."""
    index = np.unravel_index(i, array.shape)
    return array[(*(slice(j, j + 1) for j in index), ...)]


def _compare(named, evaluate, eps, max_per_parameter, seed, threshold) -> GradientReport:
    local = np.random.default_rng(seed)

    def objective() -> float:
        with no_grad():
            return float(evaluate().data.reshape(()))

    rows, all_numeric, all_analytic = [], [], []
    for name, p in named:
        analytic = (p.grad if p.grad is not None else np.zeros(p.shape)).reshape(-1)
        picked = np.arange(p.size)
        if max_per_parameter is not None and p.size > max_per_parameter:
            picked = np.sort(local.choice(p.size, size=max_per_parameter, replace=False))
        numeric = np.empty(len(picked))
        for k, i in enumerate(picked):
            numeric[k] = _numeric_directional(objective, _entry(p.data, i), np.ones(()), eps)
        chosen = analytic[picked]
        rows.append({"name": name, "shape": p.shape, "checked": len(picked),
                     "difference": relative_difference(numeric, chosen),
                     "max_error": float(np.max(np.abs(numeric - chosen), initial=0.0))})
        all_numeric.append(numeric)
        all_analytic.append(chosen)
    overall = relative_difference(np.concatenate(all_numeric), np.concatenate(all_analytic))
    return GradientReport(difference=overall, rows=rows, threshold=threshold)


def check_model(model, X, Y, eps: float = 1e-7, max_per_parameter=None, seed: int = 0,
                threshold: float = THRESHOLD) -> GradientReport:
    """Gradient-check a compiled model's cost on (X, Y): its loss plus its L2/L1 terms.

    Dropout must be off (the course: J must be the same function at every evaluation, so turn
    dropout off, check, then turn it back on); active Dropout layers raise a ValueError naming
    them. Batch norm uses the batch's statistics as in training; its running averages are
    restored afterwards, like the parameters.
    """
    if getattr(model, "loss", None) is None:
        raise RuntimeError("check_model: compile the model first (its loss defines the cost J)")
    active = [repr(m) for m in model.modules() if m.training and getattr(m, "keep_prob", 1) < 1]
    if active:
        raise ValueError(f"check_model: dropout must be off for gradient checking, but "
                         f"{', '.join(active)} is on; call .eval() on those layers (or build the "
                         f"model with keep_prob=1), check, then .train() them again")
    X = np.asarray(X, dtype=np.float64)
    if not model.parameters() and hasattr(model, "build"):
        model.build(X.shape[1:])  # create lazily built weights
    state = model.state_dict()
    try:
        return check_model_gradients(lambda: model._cost(model(X), Y), model, eps,
                                     max_per_parameter, seed, threshold)
    finally:
        model.load_state_dict(state)
