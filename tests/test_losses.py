"""Losses and regularization terms: float64 gradient checks, PyTorch comparisons, Keras's
formulas, float32 behaviour, stability for large logits, the course's numbers and the error
messages. Probabilities by default, logits with from_logits=True, and the fused path (predictions
made by strata.sigmoid / strata.softmax) in every comparison; see also test_loss_fusion.py."""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest

import strata
from strata import Tensor
from strata.losses import (
    EPSILON,
    BinaryCrossentropy,
    CategoricalCrossentropy,
    MaskedBinaryCrossentropy,
    SequenceCrossentropy,
    SparseCategoricalCrossentropy,
    binary_crossentropy,
    binary_crossentropy_from_logits,
    categorical_crossentropy,
    get_loss,
    l1_penalty,
    l2_penalty,
    masked_binary_crossentropy,
    mean_squared_error,
    sequence_crossentropy,
    sparse_categorical_crossentropy,
)

M, N = 6, 3
_rng = np.random.default_rng(0)
Z = _rng.standard_normal((M, N))
A = 0.05 + 0.9 * _rng.random((M, N))  # probabilities well inside [EPSILON, 1 - EPSILON]
Y = (_rng.random((M, N)) > 0.5).astype(np.float64)
SOFT = _rng.random((M, N))
CLASSES = _rng.integers(0, N, M)
ONE_HOT = np.eye(N)[CLASSES]
ROWS = np.exp(Z) / np.exp(Z).sum(axis=1, keepdims=True)  # softmax rows, none near 0 or 1
SOFT_ROWS = SOFT / SOFT.sum(axis=1, keepdims=True)  # soft labels that sum to 1
Y_MISSING = Y.copy()
Y_MISSING[0, 0], Y_MISSING[2, 1], Y_MISSING[3, :2] = np.nan, -1, [np.nan, -1]
LABELLED = ~np.isnan(Y_MISSING) & (Y_MISSING != -1)
W1, W2 = _rng.standard_normal((4, 3)), _rng.standard_normal((3, 1))
LAMBD = 0.7
TORCH_MISSING = "torch not installed: PyTorch comparisons skipped (pip install torch==2.13.0)"


def _masked_torch(loss_fn, x):
    weight = x.new_tensor(LABELLED)
    return loss_fn(x, x.new_tensor(np.where(LABELLED, Y_MISSING, 0)), weight=weight,
                   reduction="sum") / weight.sum()


def _keras_log_torch(a):
    """Keras's log of probabilities in PyTorch: rows renormalized, clipped, then log."""
    return (a / a.sum(dim=-1, keepdim=True)).clamp(EPSILON, 1 - EPSILON).log()


S, SM = strata.sigmoid, strata.softmax


# name -> (strata loss of the inputs, the same in PyTorch as fn(torch.nn.functional, *inputs),
# inputs); labels enter PyTorch through new_tensor, which takes the input's dtype.
CASES = {
    "bce": (lambda a: binary_crossentropy(a, Y),
            lambda F, a: F.binary_cross_entropy(a, a.new_tensor(Y)), [A]),
    "bce_soft_labels": (lambda a: binary_crossentropy(a, SOFT),
                        lambda F, a: F.binary_cross_entropy(a, a.new_tensor(SOFT)), [A]),
    "bce_logits": (lambda z: binary_crossentropy(z, Y, from_logits=True),
                   lambda F, z: F.binary_cross_entropy_with_logits(z, z.new_tensor(Y)), [Z]),
    "bce_logits_alias": (lambda z: binary_crossentropy_from_logits(z, Y),
                         lambda F, z: F.binary_cross_entropy_with_logits(z, z.new_tensor(Y)),
                         [Z]),
    "bce_fused": (lambda z: binary_crossentropy(S(z), Y),
                  lambda F, z: F.binary_cross_entropy_with_logits(z, z.new_tensor(Y)), [Z]),
    "bce_logits_soft": (lambda z: binary_crossentropy_from_logits(z, SOFT),
                        lambda F, z: F.binary_cross_entropy_with_logits(z, z.new_tensor(SOFT)),
                        [Z]),
    "cce_logits": (lambda z: categorical_crossentropy(z, ONE_HOT, from_logits=True),
                   lambda F, z: F.cross_entropy(z, z.new_tensor(ONE_HOT)), [Z]),
    "cce_fused": (lambda z: categorical_crossentropy(SM(z), ONE_HOT),
                  lambda F, z: F.cross_entropy(z, z.new_tensor(ONE_HOT)), [Z]),
    "cce_probabilities": (lambda a: categorical_crossentropy(a, ONE_HOT),
                          lambda F, a: -(a.new_tensor(ONE_HOT) * _keras_log_torch(a)).sum() / M,
                          [ROWS]),
    "cce_unnormalized": (lambda a: categorical_crossentropy(a, SOFT_ROWS),  # Keras renormalizes
                         lambda F, a: -(a.new_tensor(SOFT_ROWS) * _keras_log_torch(a)).sum() / M,
                         [A]),
    "sparse_cce": (lambda z: sparse_categorical_crossentropy(z, CLASSES, from_logits=True),
                   lambda F, z: F.cross_entropy(z, z.new_tensor(CLASSES).long()), [Z]),
    "sparse_cce_fused": (lambda z: sparse_categorical_crossentropy(SM(z), CLASSES),
                         lambda F, z: F.cross_entropy(z, z.new_tensor(CLASSES).long()), [Z]),
    "sparse_cce_probabilities": (
        lambda a: sparse_categorical_crossentropy(a, CLASSES),
        lambda F, a: F.nll_loss(_keras_log_torch(a), a.new_tensor(CLASSES).long()), [A]),
    "mse": (lambda a: mean_squared_error(a, SOFT),
            lambda F, a: F.mse_loss(a, a.new_tensor(SOFT)), [Z]),
    "mse_learned_target": (mean_squared_error, lambda F, a, y: F.mse_loss(a, y), [Z, SOFT]),
    "masked_logits": (lambda z: masked_binary_crossentropy(z, Y_MISSING, from_logits=True),
                      lambda F, z: _masked_torch(F.binary_cross_entropy_with_logits, z), [Z]),
    "masked_probabilities": (lambda a: masked_binary_crossentropy(a, Y_MISSING),
                             lambda F, a: _masked_torch(F.binary_cross_entropy, a), [A]),
    "masked_fused": (lambda z: masked_binary_crossentropy(S(z), Y_MISSING),
                     lambda F, z: _masked_torch(F.binary_cross_entropy_with_logits, z), [Z]),
    "l2_penalty": (lambda w1, w2: l2_penalty([w1, w2], LAMBD, M),
                   lambda F, w1, w2: LAMBD / (2 * M) * ((w1**2).sum() + (w2**2).sum()), [W1, W2]),
    "l1_penalty": (lambda w1, w2: l1_penalty({"W1": w1, "W2": w2}, LAMBD, M),
                   lambda F, w1, w2: LAMBD / M * (w1.abs().sum() + w2.abs().sum()), [W1, W2]),
}


@pytest.mark.parametrize("name", CASES)
def test_gradcheck_float64(name):
    fn, _, inputs = CASES[name]
    assert max(strata.gradcheck(fn, *inputs)) < 1e-7


@pytest.mark.parametrize("name", CASES)
def test_matches_torch_forward_and_backward(name):
    torch = pytest.importorskip("torch", reason=TORCH_MISSING)
    fn, torch_fn, inputs = CASES[name]
    leaves = [Tensor(x.copy(), requires_grad=True) for x in inputs]
    torch_leaves = [torch.from_numpy(x.copy()).requires_grad_() for x in inputs]
    out, expected = fn(*leaves), torch_fn(torch.nn.functional, *torch_leaves)
    assert out.shape == () and out.dtype == np.float64
    np.testing.assert_allclose(out.item(), expected.item(), rtol=1e-12)
    out.backward(np.asarray(1.7))
    (expected * 1.7).backward()
    for leaf, torch_leaf in zip(leaves, torch_leaves, strict=True):
        np.testing.assert_allclose(leaf.grad, torch_leaf.grad.numpy(), rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("name", CASES)
def test_float32_in_float32_out(name):
    fn, _, inputs = CASES[name]
    leaves = [Tensor(x.astype(np.float32), requires_grad=True) for x in inputs]
    out = fn(*leaves)
    assert out.dtype == np.float32
    out.backward()
    for leaf in leaves:
        assert leaf.grad.dtype == np.float32 and np.isfinite(leaf.grad).all()
    expected = fn(*inputs).item()  # the same loss in float64
    np.testing.assert_allclose(out.item(), expected, rtol=1e-5)
    with strata.no_grad():  # evaluation skips the gradient but not the value
        assert fn(*leaves).item() == out.item()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("loss", [
    binary_crossentropy_from_logits,
    functools.partial(masked_binary_crossentropy, from_logits=True),
    lambda z, y: binary_crossentropy(strata.sigmoid(z), y),  # fused: sigmoid(1e4) = 1 exactly
    lambda z, y: masked_binary_crossentropy(strata.sigmoid(z), y),
], ids=["logits", "masked_logits", "fused", "masked_fused"])
def test_binary_losses_exact_at_logits_of_1e4(loss, dtype):
    z = Tensor(np.array([[1e4], [-1e4], [1e4], [-1e4]], dtype=dtype), requires_grad=True)
    out = loss(z, [[1.0], [0.0], [0.0], [1.0]])  # two right, two wrong by 1e4
    out.backward()
    assert out.item() == 5000.0  # (0 + 0 + 1e4 + 1e4) / 4, no overflow and no NaN
    np.testing.assert_array_equal(z.grad, np.array([[0.0], [0.0], [0.25], [-0.25]], dtype))


def test_bce_from_logits_keeps_tiny_losses():
    # log(1 + e^-30) ~ 9.4e-14 would round to 0 as log(1 + x); log1p keeps it to the last digit.
    out = binary_crossentropy_from_logits(np.array([[30.0], [-40.0]]), [[1.0], [0.0]])
    expected = (math.log1p(math.exp(-30.0)) + math.log1p(math.exp(-40.0))) / 2
    np.testing.assert_allclose(out.item(), expected, rtol=1e-14)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("loss", [
    lambda z: categorical_crossentropy(z, [[1.0, 0.0, 0.0], [1.0, 0.0, 0.0]], from_logits=True),
    lambda z: sparse_categorical_crossentropy(z, [0, 0], from_logits=True),
    lambda z: categorical_crossentropy(strata.softmax(z), [[1.0, 0.0, 0.0], [1.0, 0.0, 0.0]]),
    lambda z: sparse_categorical_crossentropy(strata.softmax(z), [0, 0]),
], ids=["categorical", "sparse", "categorical_fused", "sparse_fused"])
def test_softmax_losses_stable_at_logits_of_1e4(loss, dtype):
    z = Tensor(np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 0.0]], dtype=dtype), requires_grad=True)
    out = loss(z)
    out.backward()
    assert out.item() == 1e4  # (0 + 2e4) / 2
    np.testing.assert_array_equal(z.grad, np.array([[0, 0, 0], [-0.5, 0.5, 0]], dtype))


@pytest.mark.parametrize("loss", [
    lambda: binary_crossentropy(np.full((4, 1), 0.5), [[1], [0], [0], [1]]),
    lambda: binary_crossentropy_from_logits(np.zeros((4, 2)), np.eye(4)[:, :2]),
    lambda: masked_binary_crossentropy(np.zeros((2, 2)), [[1, np.nan], [-1, 0]],
                                       from_logits=True),
    lambda: categorical_crossentropy(np.zeros((3, 2)), np.eye(2)[[0, 1, 1]], from_logits=True),
    lambda: categorical_crossentropy(np.full((3, 2), 0.5), np.eye(2)[[0, 1, 1]]),
    lambda: sparse_categorical_crossentropy(np.zeros((3, 2)), [0, 1, 1], from_logits=True),
    lambda: sparse_categorical_crossentropy(strata.softmax(np.zeros((3, 2))), [0, 1, 1]),
], ids=["bce", "bce_logits", "masked", "cce", "cce_probabilities", "sparse", "sparse_fused"])
def test_a_half_everywhere_costs_log_2(loss):
    # The course's first printed cost: tiny weights give sigmoid(0) = 0.5 and J = log 2 = 0.6931.
    np.testing.assert_allclose(loss().item(), math.log(2), rtol=1e-12)


def test_course_compute_cost_with_regularization():
    # C2 W1 "Regularization": compute_cost_with_regularization_test_case, lambd = 0.1.
    rs = np.random.RandomState(1)
    W1, _, W2, _, W3 = (rs.randn(2, 3), rs.randn(2, 1), rs.randn(3, 2), rs.randn(3, 1),
                        rs.randn(1, 3))
    a3 = np.array([[0.40682402, 0.01629284, 0.16722898, 0.10118111, 0.40682402]])
    Y_assess = np.array([[1, 1, 0, 1, 0]])
    cost = binary_crossentropy(a3.T, Y_assess.T) + l2_penalty([W1, W2, W3], 0.1, 5)
    np.testing.assert_allclose(cost.item(), 1.78648594516, rtol=1e-10)


def test_l2_penalty_value_and_weight_decay_gradient():
    w1, w2 = Tensor(W1, requires_grad=True), Tensor(W2, requires_grad=True)
    penalty = l2_penalty({"W1": w1, "W2": w2}, LAMBD, M)
    penalty.backward()
    frobenius = np.linalg.norm(W1) ** 2 + np.linalg.norm(W2) ** 2
    np.testing.assert_allclose(penalty.item(), LAMBD / (2 * M) * frobenius, rtol=1e-13)
    # backward_propagation_with_regularization's extra term: dW += lambd / m * W
    np.testing.assert_allclose(w1.grad, LAMBD / M * W1, rtol=1e-13)
    np.testing.assert_allclose(w2.grad, LAMBD / M * W2, rtol=1e-13)
    single = l2_penalty(Tensor(W2), LAMBD, M)
    np.testing.assert_allclose(single.item(), LAMBD / (2 * M) * np.sum(W2**2), rtol=1e-13)


def test_l1_penalty_value_and_gradient():
    w = Tensor(np.array([[-2.0, 0.0], [0.5, 1.0]]), requires_grad=True)
    penalty = l1_penalty([w], 0.6, 3)
    penalty.backward()
    assert penalty.item() == pytest.approx(0.6 / 3 * 3.5)
    np.testing.assert_allclose(w.grad, 0.2 * np.array([[-1.0, 0.0], [1.0, 1.0]]))


def test_masked_entries_get_zero_gradient_and_do_not_count():
    z = Tensor(Z.copy(), requires_grad=True)
    masked = MaskedBinaryCrossentropy(from_logits=True)
    loss = masked(z, Y_MISSING)
    loss.backward()
    assert (z.grad[~LABELLED] == 0).all() and (z.grad[LABELLED] != 0).all()
    changed = np.where(LABELLED, Z, 1e4)
    assert masked(changed, Y_MISSING).item() == loss.item()
    with_nan = np.where(LABELLED, Z, np.nan)
    assert masked(with_nan, Y_MISSING).item() == loss.item()
    # probabilities: out-of-range values at missing entries are not looked at either
    a = np.where(LABELLED, A, 7.0)
    assert masked_binary_crossentropy(a, Y_MISSING).item() == masked_binary_crossentropy(
        np.where(LABELLED, A, 0.5), Y_MISSING).item()
    # sum over labelled entries / their count: the plain loss of the labelled entries alone
    only_labelled = binary_crossentropy_from_logits(Z[LABELLED], Y_MISSING[LABELLED])
    np.testing.assert_allclose(loss.item(), only_labelled.item(), rtol=1e-14)


def test_masked_loss_without_missing_labels_is_plain_bce():
    for from_logits, x, plain in [(True, Z, binary_crossentropy_from_logits),
                                  (False, A, binary_crossentropy)]:
        masked = masked_binary_crossentropy(x, Y, from_logits=from_logits)
        np.testing.assert_allclose(masked.item(), plain(x, Y).item(), rtol=1e-14)


def test_probabilities_are_clipped_so_log_0_never_happens():
    a = Tensor(np.array([[0.0], [1.0], [0.0], [1.0]]), requires_grad=True)
    out = binary_crossentropy(a, [[0.0], [1.0], [1.0], [0.0]])
    out.backward()
    np.testing.assert_allclose(out.item(), -math.log(EPSILON) / 2, rtol=1e-6)
    assert (a.grad == 0).all()  # clipped entries, as for strata.clip
    cce = categorical_crossentropy(np.array([[0.0, 1.0]]), [[1.0, 0.0]], from_logits=False)
    np.testing.assert_allclose(cce.item(), -math.log(EPSILON), rtol=1e-12)


def test_label_conveniences():
    by_column = sparse_categorical_crossentropy(ROWS, CLASSES[:, None])  # Keras-style (m, 1)
    as_float = sparse_categorical_crossentropy(ROWS, CLASSES.astype(np.float64))
    plain = sparse_categorical_crossentropy(ROWS, CLASSES).item()
    assert by_column.item() == as_float.item() == plain
    integer_one_hot = categorical_crossentropy(ROWS, ONE_HOT.astype(np.int64))
    assert integer_one_hot.item() == plain
    integer_labels = binary_crossentropy(A, Y.astype(np.int64))
    assert integer_labels.item() == binary_crossentropy(A, Y).item()


@pytest.mark.parametrize("loss", [binary_crossentropy, binary_crossentropy_from_logits,
                                  masked_binary_crossentropy, categorical_crossentropy,
                                  mean_squared_error])
def test_shape_mismatch_names_the_loss_and_both_shapes(loss):
    with pytest.raises(strata.ShapeError, match=rf"{loss.__name__}.*\(6, 1\).*\(6,\)"):
        loss(A[:, :1], Y[:, 0])


@pytest.mark.parametrize("loss", [binary_crossentropy, binary_crossentropy_from_logits,
                                  masked_binary_crossentropy])
@pytest.mark.parametrize("bad", [2.0, -0.5])
def test_bce_labels_must_lie_in_0_1(loss, bad):
    with pytest.raises(ValueError, match=rf"{loss.__name__}: labels must lie in \[0, 1\]"):
        loss(A[:2, :1], [[bad], [0.0]])


@pytest.mark.parametrize("sentinel", [np.nan, -1.0])
def test_missing_label_sentinels_only_for_the_masked_loss(sentinel):
    with pytest.raises(ValueError, match="use masked_binary_crossentropy"):
        binary_crossentropy_from_logits(Z[:2, :1], [[sentinel], [0.0]])
    masked_binary_crossentropy(A[:2, :1], [[sentinel], [0.0]])  # accepted
    with pytest.raises(ValueError, match="all 2 labels are missing"):
        masked_binary_crossentropy(A[:2, :1], [[sentinel], [sentinel]])


@pytest.mark.parametrize("loss", [
    lambda x: binary_crossentropy(x, Y), lambda x: binary_crossentropy_from_logits(x, Y),
    lambda x: masked_binary_crossentropy(x, Y_MISSING), lambda x: mean_squared_error(x, Y),
    lambda x: categorical_crossentropy(x, ONE_HOT),
    lambda x: sparse_categorical_crossentropy(x, CLASSES),
])
def test_nan_predictions_raise(loss):
    x = A.copy()
    x[1, 1] = np.nan
    with pytest.raises(ValueError, match="predictions contain 1 NaN"):
        loss(x)
    with pytest.raises(FloatingPointError, match="lower the learning rate"):  # as fit's check
        loss(x)


def test_sparse_labels_are_checked():
    with pytest.raises(ValueError, match=r"sparse_categorical_crossentropy: labels must be class "
                                         r"indices in \[0, 2\] for 3 classes.*\b3\b"):
        sparse_categorical_crossentropy(Z, [0, 1, 2, 3, 0, 1])
    with pytest.raises(ValueError, match="-1"):
        sparse_categorical_crossentropy(Z, [0, 1, 2, -1, 0, 1])
    with pytest.raises(TypeError, match="integer class labels"):
        sparse_categorical_crossentropy(Z, np.full(M, 0.5))
    with pytest.raises(strata.ShapeError, match=r"must have shape \(6,\)"):
        sparse_categorical_crossentropy(Z, CLASSES[:4])
    with pytest.raises(ValueError, match="use sparse_categorical_crossentropy"):
        categorical_crossentropy(Z, CLASSES)


def test_penalties_check_their_arguments():
    with pytest.raises(ValueError, match="lambd >= 0"):
        l2_penalty([W1], -0.1, 5)
    with pytest.raises(ValueError, match="positive integer"):
        l1_penalty([W1], 0.1, 0)
    with pytest.raises(ValueError, match="at least one weight"):
        l2_penalty([], 0.1, 5)


def test_get_loss():
    assert get_loss("mse") is strata.losses.mse is mean_squared_error
    assert mean_squared_error(np.zeros((2, 3)), np.full((2, 3), 2.0)).item() == 4.0  # all entries
    assert get_loss("binary_crossentropy_from_logits") is binary_crossentropy_from_logits
    assert get_loss(masked_binary_crossentropy) is masked_binary_crossentropy
    for name in ["binary_crossentropy", "categorical_crossentropy",
                 "sparse_categorical_crossentropy", "masked_binary_crossentropy"]:
        assert get_loss(name).__name__ == name
    with pytest.raises(ValueError, match="unknown loss 'hinge'; valid names: binary_crossentropy"):
        get_loss("hinge")


# --- Keras's formulas, written in NumPy (float64) ----------------------------------------------

def _keras_bce(a, y):  # keras.losses.binary_crossentropy on probabilities
    a = np.clip(a, EPSILON, 1 - EPSILON)
    return -(y * np.log(a) + (1 - y) * np.log(1 - a))


def _keras_bce_logits(z, y):  # from_logits=True (tf.nn.sigmoid_cross_entropy_with_logits)
    return np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z)))


def _keras_cce(a, y):  # keras.losses.categorical_crossentropy on probabilities
    a = np.clip(a / a.sum(axis=-1, keepdims=True), EPSILON, 1 - EPSILON)
    return -(y * np.log(a)).sum(axis=-1).mean()


def _keras_cce_logits(z, y):  # from_logits=True: log_softmax
    shifted = z - z.max(axis=-1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    return -(y * log_p).sum(axis=-1).mean()


def _keras_masked(per_entry):  # the mean over labelled entries
    return per_entry[LABELLED].mean()


# Probabilities with saturated entries (0, 1 and beyond the clip), where the clip matters.
A_SAT = A.copy()
A_SAT[0, :], A_SAT[1, 0], A_SAT[2, 2] = [0.0, 1.0, 1e-9], 1 - 1e-9, 0.0
ROWS_SAT = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.2, 0.3, 0.5], [1e-9, 0.5, 0.5 - 1e-9],
                     [0.1, 0.1, 0.8], [0.0, 1.0, 0.0]])
Z_BIG = Z * 30  # logits far into saturation
KERAS = {  # name -> (strata's loss of x, Keras's formula of x, inputs x)
    "bce": (lambda x: binary_crossentropy(x, Y), lambda x: _keras_bce(x, Y).mean(), [A, A_SAT]),
    "bce_logits": (lambda x: binary_crossentropy(x, Y, from_logits=True),
                   lambda x: _keras_bce_logits(x, Y).mean(), [Z, Z_BIG]),
    "masked": (lambda x: masked_binary_crossentropy(x, Y_MISSING),
               lambda x: _keras_masked(_keras_bce(x, np.nan_to_num(Y_MISSING))), [A, A_SAT]),
    "masked_logits": (lambda x: masked_binary_crossentropy(x, Y_MISSING, from_logits=True),
                      lambda x: _keras_masked(_keras_bce_logits(x, np.nan_to_num(Y_MISSING))),
                      [Z, Z_BIG]),
    "cce": (lambda x: categorical_crossentropy(x, ONE_HOT), lambda x: _keras_cce(x, ONE_HOT),
            [ROWS, A, ROWS_SAT]),
    "cce_soft": (lambda x: categorical_crossentropy(x, SOFT_ROWS),
                 lambda x: _keras_cce(x, SOFT_ROWS), [ROWS, ROWS_SAT]),
    "cce_logits": (lambda x: categorical_crossentropy(x, ONE_HOT, from_logits=True),
                   lambda x: _keras_cce_logits(x, ONE_HOT), [Z, Z_BIG]),
    "sparse": (lambda x: sparse_categorical_crossentropy(x, CLASSES),
               lambda x: _keras_cce(x, ONE_HOT), [ROWS, A, ROWS_SAT]),
    "sparse_logits": (lambda x: sparse_categorical_crossentropy(x, CLASSES, from_logits=True),
                      lambda x: _keras_cce_logits(x, ONE_HOT), [Z, Z_BIG]),
    "mse": (lambda x: mean_squared_error(x, SOFT), lambda x: ((x - SOFT) ** 2).mean(), [Z]),
}


@pytest.mark.parametrize("name", KERAS)
def test_values_equal_keras_formulas(name):
    loss, keras, inputs = KERAS[name]
    for x in inputs:
        np.testing.assert_allclose(loss(x).item(), keras(x), rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("probabilities, logits, kind", [
    (binary_crossentropy, BinaryCrossentropy(from_logits=True), strata.sigmoid),
    (lambda a, y: masked_binary_crossentropy(a, y), MaskedBinaryCrossentropy(from_logits=True),
     strata.sigmoid),
    (categorical_crossentropy, CategoricalCrossentropy(from_logits=True), strata.softmax),
    (lambda a, y: sparse_categorical_crossentropy(a, y.argmax(axis=1)),
     lambda z, y: SparseCategoricalCrossentropy(from_logits=True)(z, y.argmax(axis=1)),
     strata.softmax),
], ids=["binary", "masked", "categorical", "sparse"])
def test_fused_value_is_kerass_logits_value_and_its_probability_value_unsaturated(
        probabilities, logits, kind):
    labels = ONE_HOT if kind is strata.softmax else Y
    fused = probabilities(kind(Z), labels).item()
    assert fused == pytest.approx(logits(Z, labels).item(), rel=1e-14)
    # the same probabilities as a plain array (no softmax/sigmoid behind them): Keras's clip
    unfused = probabilities(kind(Z).data, labels).item()
    assert fused == pytest.approx(unfused, rel=1e-12)


def test_sequence_crossentropy_takes_logits_by_default_and_probabilities_on_request():
    z = _rng.standard_normal((2, 4, 5))
    labels = np.array([[1, 4, 0, -1], [2, 2, 3, 1]])
    log_p = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
    keep = labels != -1
    picked = np.take_along_axis(log_p, np.where(keep, labels, 0)[..., None], -1)[..., 0]
    expected = -(picked * keep).sum() / keep.sum()
    assert sequence_crossentropy(z, labels).item() == pytest.approx(expected, rel=1e-13)
    fused = sequence_crossentropy(strata.softmax(z), labels, from_logits=False)
    assert fused.item() == pytest.approx(expected, rel=1e-13)
    p = np.exp(log_p)
    clipped = sequence_crossentropy(p, labels, from_logits=False).item()
    assert clipped == pytest.approx(expected, rel=1e-12)
    per_name = SequenceCrossentropy(reduction="sequence")(z, labels).item()
    assert per_name == pytest.approx(-(picked * keep).sum() / 2, rel=1e-13)
    assert max(strata.gradcheck(lambda t: sequence_crossentropy(
        strata.softmax(t), labels, from_logits=False), z)) < 1e-7
    assert max(strata.gradcheck(lambda t: sequence_crossentropy(t, labels, from_logits=False),
                                p)) < 1e-7
    with pytest.raises(ValueError, match="from_logits=True, but the predictions are the output "
                                         "of a softmax"):
        sequence_crossentropy(strata.softmax(z), labels)


def test_loss_classes_fix_from_logits_for_compile():
    assert repr(SparseCategoricalCrossentropy(from_logits=True)) == (
        "SparseCategoricalCrossentropy(from_logits=True)")
    assert BinaryCrossentropy().from_logits is False
    assert SequenceCrossentropy().from_logits is True  # strata's exception: logits by default
    assert SequenceCrossentropy(reduction="sequence").get_config() == {
        "from_logits": True, "reduction": "sequence"}
    assert CategoricalCrossentropy(from_logits=True)(Z, ONE_HOT).item() == (
        categorical_crossentropy(Z, ONE_HOT, from_logits=True).item())
    assert get_loss(BinaryCrossentropy()).__name__ == "binary_crossentropy"
    which = strata.losses.logits_activation
    assert which("sparse_categorical_crossentropy") is None  # names take probabilities
    assert which(SparseCategoricalCrossentropy(from_logits=True)) == "softmax"
    assert which(MaskedBinaryCrossentropy(from_logits=True)) == "sigmoid"
    assert which("binary_crossentropy_from_logits") == "sigmoid"
    assert which("sequence_crossentropy") == "softmax"
    assert which(lambda out, y: out.sum()) is None


def test_loss_classes_check_their_options_at_once():
    with pytest.raises(TypeError, match="SequenceCrossentropy: .*'reductio'"):
        SequenceCrossentropy(reductio="sequence")
    with pytest.raises(TypeError, match="from_logits True or False"):
        SparseCategoricalCrossentropy("yes")
