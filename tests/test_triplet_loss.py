"""The triplet loss (course 4 week 4): hand-computed values and gradients, gradient checks in
float64, PyTorch's formula, bad inputs, and the TripletLoss class with in-batch mining."""

import numpy as np
import pytest

import strata
from strata.losses import TripletLoss, triplet_loss

# Two triplets: ||A-P||^2 = 1 and 1, ||A-N||^2 = 4 and 0.25.
A = np.array([[0.0, 0.0], [1.0, 0.0]])
P = np.array([[1.0, 0.0], [1.0, 1.0]])
N = np.array([[0.0, 2.0], [1.0, 0.5]])


@pytest.mark.parametrize("alpha, expected", [
    (0.2, 0.0 + 0.95),  # the first triplet already satisfies the margin
    (0.0, 0.0 + 0.75),
    (3.5, 0.5 + 4.25),  # a wide margin makes both count
])
def test_hand_computed_sum_over_the_batch(alpha, expected):
    assert triplet_loss(A, P, N, alpha).item() == pytest.approx(expected, abs=1e-12)
    assert triplet_loss(A, P, N, alpha, reduction="mean").item() == pytest.approx(
        expected / 2, abs=1e-12)
    each = triplet_loss(A, P, N, alpha, reduction="none").numpy()
    assert each.shape == (2,) and each.sum() == pytest.approx(expected)


def test_default_alpha_is_the_course_s_and_one_triplet_may_be_a_vector():
    assert triplet_loss(A, P, N).item() == pytest.approx(0.95)
    assert triplet_loss(A[1], P[1], N[1]).item() == pytest.approx(0.95)


def test_all_zero_encodings_cost_alpha_per_triplet():
    zeros = np.zeros((3, 4))
    assert triplet_loss(zeros, zeros, zeros, alpha=0.2).item() == pytest.approx(0.6)
    assert triplet_loss(zeros, zeros, zeros, alpha=0.0).item() == 0.0


def test_hand_computed_gradients():
    a, p, n = (strata.tensor(x, requires_grad=True) for x in (A, P, N))
    triplet_loss(a, p, n, 0.2).backward()
    # Only triplet 2 is active: dJ/dA = 2(N - P), dJ/dP = -2(A - P), dJ/dN = 2(A - N).
    np.testing.assert_allclose(a.grad, [[0, 0], [0, -1]], atol=1e-12)
    np.testing.assert_allclose(p.grad, [[0, 0], [0, 2]], atol=1e-12)
    np.testing.assert_allclose(n.grad, [[0, 0], [0, -1]], atol=1e-12)


def test_satisfied_triplets_give_zero_loss_and_zero_gradient():
    a = strata.tensor(A[:1], requires_grad=True)
    loss = triplet_loss(a, P[:1], N[:1], 0.2)
    loss.backward()
    assert loss.item() == 0.0 and not a.grad.any()


@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_gradient_check_float64(reduction):
    rng = np.random.default_rng(0)
    a, p, n = (rng.normal(size=(5, 3)) for _ in range(3))
    diffs = strata.gradcheck(lambda x, y, z: triplet_loss(x, y, z, 1.0, reduction), a, p, n)
    assert max(diffs) < 1e-7


def test_float32_stays_float32():
    a = strata.tensor(A.astype(np.float32), requires_grad=True)
    loss = triplet_loss(a, P.astype(np.float32), N.astype(np.float32))
    loss.backward()
    assert loss.dtype == np.float32 and a.grad.dtype == np.float32


def test_matches_pytorch_formula():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    arrays = [rng.normal(size=(8, 6)) for _ in range(3)]
    ours = [strata.tensor(x, requires_grad=True) for x in arrays]
    loss = triplet_loss(*ours, alpha=0.7)
    loss.backward()
    theirs = [torch.tensor(x, requires_grad=True) for x in arrays]
    a, p, n = theirs
    ref = torch.clamp(((a - p) ** 2).sum(1) - ((a - n) ** 2).sum(1) + 0.7, min=0).sum()
    ref.backward()
    assert loss.item() == pytest.approx(ref.item(), rel=1e-12)
    for mine, other in zip(ours, theirs):
        np.testing.assert_allclose(mine.grad, other.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="alpha >= 0"):
        triplet_loss(A, P, N, alpha=-0.1)
    with pytest.raises(ValueError, match="reduction"):
        triplet_loss(A, P, N, reduction="max")
    with pytest.raises(strata.ShapeError, match=r"\(2, 2\), \(2, 2\) and \(2, 3\)"):
        triplet_loss(A, P, np.zeros((2, 3)))
    with pytest.raises(ValueError, match="negative encodings hold NaN"):
        triplet_loss(A, P, np.full((2, 2), np.nan))
    with pytest.raises(ValueError, match="mining"):
        TripletLoss(mining="hardest")


# A batch whose right triplets are known (see test_faces.py for the mining itself).
E = np.array([[0.0], [0.3], [0.5], [2.0]])
LABELS = np.array([0, 0, 1, 1])


def test_triplet_loss_class_mines_the_batch():
    loss = TripletLoss(alpha=0.2, mining="semi-hard")
    value = loss(E, LABELS).item()
    a, p, n = [0, 1, 2], [1, 0, 3], [2, 2, 0]  # worked out by hand in test_faces.py
    assert loss.last_triplets == 3
    assert value == pytest.approx(triplet_loss(E[a], E[p], E[n], 0.2, "mean").item())
    every = TripletLoss(alpha=0.2, mining="batch-all", reduction="sum")(E, LABELS).item()
    assert every == pytest.approx(0.04 + 0.25 + 2.2 + 2.41)


def test_triplet_loss_class_without_positives_is_a_zero_in_the_graph():
    e = strata.tensor(E, requires_grad=True)
    loss = TripletLoss()(e, np.arange(4))
    loss.backward()
    assert loss.item() == 0.0 and not e.grad.any()


def test_compile_and_fit_with_triplet_loss():
    strata.seed(0)
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(4, 6))
    X = np.repeat(centres, 16, axis=0) + 0.3 * rng.normal(size=(64, 6))
    Y = np.repeat(np.arange(4), 16)
    from strata.vision import L2Normalize

    model = strata.nn.Sequential([strata.nn.Dense(8), L2Normalize()])
    model.compile("adam", TripletLoss(alpha=0.5, mining="batch-all"), lr=0.01)
    history = model.fit(X.astype(np.float32), Y, epochs=15, batch_size=32, verbose=0)
    assert history.history["loss"][-1] < 0.5 * history.history["loss"][0]
