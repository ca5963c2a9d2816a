"""Per-example weights, Keras's ``sample_weight`` with its "sum_over_batch_size" reduction:
J = (1/m) sum_i w_i l_i. Every loss, on logits, on fused sigmoid/softmax outputs and on plain
probabilities, against a NumPy formula and PyTorch's reduction="none" losses (float64, value and
gradient), float64 gradient checks, weights of 1 giving the unweighted loss bit for bit, integer
weights giving repeated examples, the Loss classes, and the errors."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest

import strata
from strata import Tensor
from strata.losses import (
    EPSILON,
    LOSSES,
    BinaryCrossentropy,
    CategoricalCrossentropy,
    MaskedBinaryCrossentropy,
    SequenceCrossentropy,
    SparseCategoricalCrossentropy,
    binary_crossentropy,
    binary_crossentropy_from_logits,
    categorical_crossentropy,
    masked_binary_crossentropy,
    mean_squared_error,
    sequence_crossentropy,
    sparse_categorical_crossentropy,
)

M, N, T = 6, 3, 4
_rng = np.random.default_rng(11)
Z = _rng.standard_normal((M, N))
A = 0.05 + 0.9 * _rng.random((M, N))  # probabilities inside [EPSILON, 1 - EPSILON], rows not 1
Y = (_rng.random((M, N)) > 0.5).astype(np.float64)
SOFT = _rng.random((M, N))
SOFT_ROWS = SOFT / SOFT.sum(axis=1, keepdims=True)
CLASSES = _rng.integers(0, N, M)
Y_MISSING = Y.copy()
Y_MISSING[0, 0], Y_MISSING[2, 1], Y_MISSING[3, :2] = np.nan, -1, [np.nan, -1]
Z_SEQ = _rng.standard_normal((M, T, N))
A_SEQ = np.exp(Z_SEQ) / np.exp(Z_SEQ).sum(axis=-1, keepdims=True)
LABELS_SEQ = _rng.integers(0, N, (M, T))
LABELS_SEQ[1, 2:], LABELS_SEQ[4, 1:] = -1, -1  # padding
WEIGHTS = np.array([0.5, 2.0, 0.0, 1.5, 3.0, 0.25])
REPEATS = np.array([2, 0, 1, 3, 1, 1])  # integer weights
TORCH_MISSING = "torch not installed: PyTorch comparisons skipped (pip install torch==2.13.0)"
S, SM = strata.sigmoid, strata.softmax


def _sigmoid(z):
    return 1 / (1 + np.exp(-z))


def _bce(a, y):
    return -(y * np.log(a) + (1 - y) * np.log(1 - a))


def _log_softmax(z):
    shifted = z - z.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def _keras_log(a):
    """Keras's log of probabilities: rows renormalized, clipped, then log."""
    return np.log(np.clip(a / a.sum(axis=-1, keepdims=True), EPSILON, 1 - EPSILON))


def _keras_log_torch(a):
    return (a / a.sum(dim=-1, keepdim=True)).clamp(EPSILON, 1 - EPSILON).log()


def _labelled(y):
    return ~np.isnan(y) & (y != -1)


def _picked(log_probs, classes):
    return np.take_along_axis(log_probs, np.maximum(classes, 0)[..., None], axis=-1)[..., 0]


@dataclass
class Case:
    """loss(x, y, **kw); each example's entries of the loss as NumPy numpy(x, y) and PyTorch
    torch(F, x, y) (reduction="none", 0 where unlabelled) and J's divisor(y): the weighted J
    is sum(w_i * entries of i) / divisor (m, m * n_y, or the number of labelled entries)."""

    loss: Callable
    x: np.ndarray
    y: np.ndarray
    numpy: Callable
    torch: Callable
    divisor: Callable = len


def _weighted(entries, w, divisor):
    """sum_i w_i * (example i's entries) / divisor, in NumPy or PyTorch."""
    return (entries * w.reshape((-1,) + (1,) * (entries.ndim - 1))).sum() / divisor


def _masked_torch(F, a, y, logits):
    fn = F.binary_cross_entropy_with_logits if logits else F.binary_cross_entropy
    mask = _labelled(y.numpy())
    return fn(a, y.nan_to_num(0).clamp(min=0), reduction="none") * a.new_tensor(mask)


def _masked_numpy(a, y):
    mask = _labelled(y)
    return np.where(mask, _bce(a, np.where(mask, y, 0)), 0)


def _sequence_torch(F, log_probs, y):
    """Token losses from log-probabilities (m, T, V), 0 at padding (label -1)."""
    return F.nll_loss(log_probs.reshape(-1, N), y.reshape(-1).long(), ignore_index=-1,
                      reduction="none").reshape(y.shape)


def _sequence_numpy(log_probs, y):
    return -_picked(log_probs, y) * (y != -1)


def _labelled_count(y):
    return int(_labelled(y).sum())


def _tokens(y):
    return int((y != -1).sum())


def _cross_entropy(F, z, y):
    return F.cross_entropy(z, y if y.is_floating_point() else y.long(), reduction="none")


_BCE_LOGITS = (lambda z, y: _bce(_sigmoid(z), y),
               lambda F, z, y: F.binary_cross_entropy_with_logits(z, y, reduction="none"), np.size)
_MASKED_LOGITS = (lambda z, y: _masked_numpy(_sigmoid(z), y),
                  lambda F, z, y: _masked_torch(F, z, y, True), _labelled_count)
_SOFTMAX_ROWS = (lambda z, y: -(y * _log_softmax(z)).sum(-1), _cross_entropy)
_SOFTMAX_CLASSES = (lambda z, y: -_picked(_log_softmax(z), y), _cross_entropy)
_SEQUENCE = (lambda z, y: _sequence_numpy(_log_softmax(z), y),
             lambda F, z, y: _sequence_torch(F, F.log_softmax(z, -1), y))


def _keyword(fn, **fixed):
    return lambda x, y, **k: fn(x, y, **fixed, **k)


def _fused(fn, activation, **fixed):
    return lambda z, y, **k: fn(activation(z), y, **fixed, **k)


CASES = {
    "bce": Case(binary_crossentropy, A, Y, _bce,
                lambda F, a, y: F.binary_cross_entropy(a, y, reduction="none"), np.size),
    "bce_logits": Case(_keyword(binary_crossentropy, from_logits=True), Z, Y, *_BCE_LOGITS),
    "bce_logits_alias": Case(binary_crossentropy_from_logits, Z, SOFT, *_BCE_LOGITS),
    "bce_fused": Case(_fused(binary_crossentropy, S), Z, Y, *_BCE_LOGITS),
    "masked": Case(masked_binary_crossentropy, A, Y_MISSING, _masked_numpy,
                   lambda F, a, y: _masked_torch(F, a, y, False), _labelled_count),
    "masked_logits": Case(_keyword(masked_binary_crossentropy, from_logits=True), Z, Y_MISSING,
                          *_MASKED_LOGITS),
    "masked_fused": Case(_fused(masked_binary_crossentropy, S), Z, Y_MISSING, *_MASKED_LOGITS),
    "cce_logits": Case(_keyword(categorical_crossentropy, from_logits=True), Z, SOFT_ROWS,
                       *_SOFTMAX_ROWS),
    "cce_fused": Case(_fused(categorical_crossentropy, SM), Z, np.eye(N)[CLASSES],
                      *_SOFTMAX_ROWS),
    "cce_probabilities": Case(  # the rows of A do not sum to 1: Keras renormalizes them
        categorical_crossentropy, A, SOFT_ROWS, lambda a, y: -(y * _keras_log(a)).sum(-1),
        lambda F, a, y: -(y * _keras_log_torch(a)).sum(-1)),
    "sparse_logits": Case(_keyword(sparse_categorical_crossentropy, from_logits=True), Z,
                          CLASSES, *_SOFTMAX_CLASSES),
    "sparse_fused": Case(_fused(sparse_categorical_crossentropy, SM), Z, CLASSES,
                         *_SOFTMAX_CLASSES),
    "sparse_probabilities": Case(
        sparse_categorical_crossentropy, A, CLASSES, lambda a, y: -_picked(_keras_log(a), y),
        lambda F, a, y: F.nll_loss(_keras_log_torch(a), y.long(), reduction="none")),
    "mse": Case(mean_squared_error, Z, SOFT, lambda a, y: (a - y) ** 2,
                lambda F, a, y: F.mse_loss(a, y, reduction="none"), np.size),
    "sequence_token": Case(sequence_crossentropy, Z_SEQ, LABELS_SEQ, *_SEQUENCE, _tokens),
    "sequence_per_sequence": Case(_keyword(sequence_crossentropy, reduction="sequence"), Z_SEQ,
                                  LABELS_SEQ, *_SEQUENCE),
    "sequence_fused": Case(_fused(sequence_crossentropy, SM, from_logits=False), Z_SEQ,
                           LABELS_SEQ, *_SEQUENCE, _tokens),
    "sequence_probabilities": Case(
        _keyword(sequence_crossentropy, from_logits=False), A_SEQ, LABELS_SEQ,
        lambda a, y: _sequence_numpy(_keras_log(a), y),
        lambda F, a, y: _sequence_torch(F, _keras_log_torch(a), y), _tokens),
}


def _run(case: Case, x, y, dtype=np.float64, upstream=1.0, **kw):
    """(J, dJ/dx) of the case's loss at x."""
    leaf = Tensor(np.array(x, dtype=dtype), requires_grad=True)
    out = case.loss(leaf, y, **kw)
    out.backward(np.asarray(upstream, dtype))
    return out, leaf.grad


@pytest.mark.parametrize("name", CASES)
def test_weighted_loss_matches_numpy_formula(name):
    case = CASES[name]
    out, _ = _run(case, case.x, case.y, sample_weight=WEIGHTS)
    expected = _weighted(case.numpy(case.x, case.y), WEIGHTS, case.divisor(case.y))
    np.testing.assert_allclose(out.item(), expected, rtol=1e-12)


@pytest.mark.parametrize("name", CASES)
def test_weighted_loss_matches_torch_forward_and_backward(name):
    torch = pytest.importorskip("torch", reason=TORCH_MISSING)
    case = CASES[name]
    out, grad = _run(case, case.x, case.y, upstream=1.7, sample_weight=WEIGHTS)
    x = torch.from_numpy(case.x.copy()).requires_grad_()
    entries = case.torch(torch.nn.functional, x, torch.from_numpy(case.y.copy()))
    expected = _weighted(entries, torch.from_numpy(WEIGHTS), case.divisor(case.y))
    (expected * 1.7).backward()
    np.testing.assert_allclose(out.item(), expected.item(), rtol=1e-12)
    np.testing.assert_allclose(grad, x.grad.numpy(), rtol=1e-10, atol=1e-14)
    assert not grad[2].any()  # the example of weight 0 gets no gradient


@pytest.mark.parametrize("name", CASES)
def test_weighted_gradcheck_float64(name):
    case = CASES[name]
    assert max(strata.gradcheck(lambda x: case.loss(x, case.y, sample_weight=WEIGHTS),
                                case.x)) < 1e-7


def test_weighted_mse_gradcheck_with_a_learned_target():
    loss = lambda a, y: mean_squared_error(a, y, sample_weight=WEIGHTS)  # noqa: E731
    assert max(strata.gradcheck(loss, Z, SOFT)) < 1e-7


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("ones", [np.ones(M), np.ones((M, 1)), np.ones(M, dtype=np.int64),
                                  np.ones(M, dtype=bool), [1] * M, Tensor(np.ones(M))],
                         ids=["float", "column", "int", "bool", "list", "tensor"])
@pytest.mark.parametrize("name", CASES)
def test_weights_of_one_give_the_unweighted_loss_bit_for_bit(name, ones, dtype):
    case = CASES[name]
    plain, plain_grad = _run(case, case.x, case.y, dtype)
    weighted, grad = _run(case, case.x, case.y, dtype, sample_weight=ones)
    assert weighted.dtype == plain.dtype == dtype and grad.dtype == dtype
    assert weighted.item() == plain.item()
    np.testing.assert_array_equal(grad, plain_grad)


@pytest.mark.parametrize("name", CASES)
def test_integer_weights_repeat_examples(name):
    """Weight k = the example k times. Both sums of w_i l_i agree; J divides them by the batch
    (m, or m * n_y), or by the labelled entries (masked BCE, token-averaged sequences), so the
    values agree after multiplying each by its divisor: equal J when sum(w) = m for the losses
    divided by the batch (next test), not in general for those divided by labelled entries."""
    case = CASES[name]
    repeated = np.repeat(np.arange(M), REPEATS)
    weighted, grad = _run(case, case.x, case.y, sample_weight=REPEATS)
    leaf = Tensor(case.x.copy(), requires_grad=True)
    plain = case.loss(leaf[repeated], case.y[repeated])
    plain.backward()
    scale = case.divisor(case.y[repeated]) / case.divisor(case.y)
    np.testing.assert_allclose(weighted.item(), plain.item() * scale, rtol=1e-13)
    np.testing.assert_allclose(grad, leaf.grad * scale, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("name", ["bce", "cce_fused", "sparse_probabilities", "mse",
                                  "sequence_per_sequence"])
def test_integer_weights_summing_to_m_equal_repeated_examples(name):
    case, weights = CASES[name], np.array([2, 0, 1, 1, 0, 2])
    repeated = np.repeat(np.arange(M), weights)
    weighted, _ = _run(case, case.x, case.y, sample_weight=weights)
    plain = case.loss(case.x[repeated], case.y[repeated])
    np.testing.assert_allclose(weighted.item(), plain.item(), rtol=1e-13)


@pytest.mark.parametrize("name", CASES)
def test_weighted_float32_matches_float64_and_evaluation(name):
    case = CASES[name]
    out32, grad32 = _run(case, case.x, case.y, np.float32, sample_weight=WEIGHTS)
    out64, grad64 = _run(case, case.x, case.y, sample_weight=WEIGHTS.astype(np.float32))
    assert out32.dtype == grad32.dtype == np.float32
    np.testing.assert_allclose(out32.item(), out64.item(), rtol=1e-5)
    np.testing.assert_allclose(grad32, grad64, rtol=1e-4, atol=1e-6)
    with strata.no_grad():  # evaluation skips the gradient but not the weights
        evaluated = case.loss(Tensor(case.x.astype(np.float32)), case.y, sample_weight=WEIGHTS)
    assert evaluated.item() == out32.item()


@pytest.mark.parametrize("cls, name", [
    (BinaryCrossentropy, "bce"), (MaskedBinaryCrossentropy, "masked"),
    (CategoricalCrossentropy, "cce_probabilities"),
    (SparseCategoricalCrossentropy, "sparse_probabilities"),
    (SequenceCrossentropy, "sequence_token")])
def test_loss_classes_take_sample_weight(cls, name):
    case, loss = CASES[name], cls()
    expected = case.loss(case.x, case.y, sample_weight=WEIGHTS).item()
    assert loss(case.x, case.y, sample_weight=WEIGHTS).item() == expected
    assert loss(case.x, case.y, WEIGHTS).item() == expected  # Keras's order: third argument
    assert loss(case.x, case.y).item() == case.loss(case.x, case.y).item()


def test_logits_loss_class_takes_sample_weight():
    loss = SparseCategoricalCrossentropy(from_logits=True)
    expected = CASES["sparse_logits"].loss(Z, CLASSES, sample_weight=WEIGHTS).item()
    assert loss(Z, CLASSES, sample_weight=WEIGHTS).item() == expected


def test_sample_weight_is_not_a_loss_option():
    with pytest.raises(TypeError, match="BinaryCrossentropy: sample_weight belongs to each "
                                        "batch.*loss\\(y_pred, y_true, sample_weight=w\\)"):
        BinaryCrossentropy(sample_weight=WEIGHTS)


# name of the loss -> a call with the given weights
ERROR_CALLS = {
    "binary_crossentropy": lambda w: binary_crossentropy(A, Y, sample_weight=w),
    "binary_crossentropy_from_logits": lambda w: binary_crossentropy_from_logits(
        Z, Y, sample_weight=w),
    "masked_binary_crossentropy": lambda w: masked_binary_crossentropy(
        S(Tensor(Z)), Y_MISSING, sample_weight=w),
    "categorical_crossentropy": lambda w: categorical_crossentropy(A, SOFT_ROWS, sample_weight=w),
    "sparse_categorical_crossentropy": lambda w: SparseCategoricalCrossentropy(from_logits=True)(
        Z, CLASSES, sample_weight=w),
    "mean_squared_error": lambda w: mean_squared_error(Z, SOFT, sample_weight=w),
    "sequence_crossentropy": lambda w: sequence_crossentropy(Z_SEQ, LABELS_SEQ, sample_weight=w),
}

BAD_WEIGHTS = {
    "short": (np.ones(M - 1), r"got shape \(5,\)"),
    "long": (np.ones(M + 1), r"got shape \(7,\)"),
    "two_columns": (np.ones((M, 2)), r"got shape \(6, 2\)"),
    "row": (np.ones((1, M)), r"got shape \(1, 6\)"),
    "scalar": (2.0, r"got shape \(\)"),
    "negative": (np.array([1, -0.5, 1, 1, -2, 1]), r"got 2 negative value\(s\) \(e.g. -0.5\)"),
    "negative_int": (np.array([1, -3, 1, 1, 1, 1]), r"got 1 negative value\(s\) \(e.g. -3\)"),
    "nan": (np.array([1, np.nan, 1, 1, 1, 1]), r"got 1 non-finite value\(s\) \(e.g. nan\)"),
    "inf": (np.array([1, 1, 1, np.inf, 1, 1]), r"got 1 non-finite value\(s\) \(e.g. inf\)"),
    "strings": (np.array(list("abcdef")), r"got dtype <U1 \(numbers expected\)"),
    "objects": ([None] * M, r"got dtype object \(numbers expected\)"),
    "complex": (np.ones(M) * 1j, r"got dtype complex128 \(numbers expected\)"),
    "ragged": ([[1.0, 2.0], [3.0]], r"got list \("),
}


def test_every_registered_loss_takes_sample_weight_and_is_covered():
    assert set(ERROR_CALLS) == {fn.__name__ for fn in LOSSES.values()}
    for fn in LOSSES.values():
        assert inspect.signature(fn).parameters["sample_weight"].default is None, fn.__name__


@pytest.mark.parametrize("bad", BAD_WEIGHTS)
@pytest.mark.parametrize("name", ERROR_CALLS)
def test_bad_weights_raise_naming_the_loss_and_the_shape(name, bad):
    weights, received = BAD_WEIGHTS[bad]
    expected = rf"^{name}: expected sample_weight of shape \(6,\) \(one finite weight >= 0 per " \
               rf"example\), {received}"
    with pytest.raises(ValueError, match=expected):
        ERROR_CALLS[name](weights)


def test_weights_need_a_batch_axis():
    with pytest.raises(ValueError, match="sparse_categorical_crossentropy: sample_weight needs "
                                         "batch-first predictions"):
        sparse_categorical_crossentropy(np.zeros(3), np.array(1), from_logits=True,
                                        sample_weight=[1.0])
