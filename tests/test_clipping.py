"""Gradient clipping by value (the course's clip) and by global L2 norm."""

from __future__ import annotations

import numpy as np
import pytest

import strata
from strata.optim import clip_grad_norm, clip_grad_value


def _params_with_grads(grads):
    params = []
    for g in grads:
        p = strata.tensor(np.zeros_like(g), requires_grad=True)
        p.grad = g
        params.append(p)
    return params


def test_clip_grad_value_clips_every_entry_in_place():
    grads = [np.array([[-12.0, 3.0], [0.5, 7.0]]), np.array([-0.2, 20.0, -5.0])]
    params = _params_with_grads(grads)
    clip_grad_value(params, 5.0)
    assert params[0].grad is grads[0]
    np.testing.assert_array_equal(grads[0], [[-5.0, 3.0], [0.5, 5.0]])
    np.testing.assert_array_equal(grads[1], [-0.2, 5.0, -5.0])


def test_clip_grad_value_takes_the_course_gradients_dict():
    # The C5 W1 notebook: clip(gradients, maxValue) on a dict of arrays, e.g. maxValue = 10.
    rng = np.random.default_rng(3)
    gradients = {"dWax": rng.standard_normal((5, 3)) * 10, "db": rng.standard_normal((5, 1)) * 10}
    expected = {k: np.clip(v, -10, 10) for k, v in gradients.items()}
    clip_grad_value(gradients, 10)
    for k in gradients:
        np.testing.assert_array_equal(gradients[k], expected[k])
    assert max(np.abs(g).max() for g in gradients.values()) <= 10


def test_clipping_skips_parameters_without_grad_and_keeps_dtype():
    p = strata.tensor(np.zeros(3, dtype=np.float32), requires_grad=True)
    q = strata.tensor(np.zeros(2, dtype=np.float32), requires_grad=True)
    q.grad = np.array([30.0, -40.0], dtype=np.float32)
    clip_grad_value([p, q], 1.0)
    assert p.grad is None
    assert q.grad.dtype == np.float32 and q.grad.tolist() == [1.0, -1.0]
    assert clip_grad_norm([p, q], 5.0) == pytest.approx(np.sqrt(2))


def test_clip_grad_norm_scales_all_gradients_together():
    grads = [np.array([3.0, 0.0]), np.array([[0.0], [4.0]])]  # global norm 5
    originals = [g.copy() for g in grads]
    norm = clip_grad_norm(_params_with_grads(grads), 1.0)
    assert norm == pytest.approx(5.0)
    for g, original in zip(grads, originals):
        np.testing.assert_allclose(g, original / 5.0)  # same direction, global norm 1
    assert np.sqrt(sum((g ** 2).sum() for g in grads)) == pytest.approx(1.0)


def test_clip_grad_norm_leaves_small_gradients_alone():
    rng = np.random.default_rng(0)
    grads = [rng.standard_normal((4, 3)), rng.standard_normal(3)]
    originals = [g.copy() for g in grads]
    expected = np.sqrt(sum((g ** 2).sum() for g in grads))
    norm = clip_grad_norm(_params_with_grads(grads), expected + 1e-3)
    assert norm == pytest.approx(expected, rel=1e-12)
    for g, original in zip(grads, originals):
        np.testing.assert_array_equal(g, original)


def test_clip_grad_norm_survives_float32_overflow():
    # Squares of these entries overflow float32, yet the norm is representable: the gradients
    # exploding is exactly when clipping must work.
    grad = np.array([3e20, -4e20], dtype=np.float32)
    norm = clip_grad_norm(_params_with_grads([grad]), 1.0)
    assert norm == pytest.approx(5e20, rel=1e-6)
    np.testing.assert_allclose(grad, [0.6, -0.8], rtol=1e-6)
    assert grad.dtype == np.float32


def test_clip_grad_norm_leaves_non_finite_gradients_for_the_caller():
    grad = np.array([np.inf, 1.0])
    assert clip_grad_norm(_params_with_grads([grad]), 1.0) == np.inf
    assert grad[1] == 1.0
    nan_grad = np.array([np.nan, 1.0])
    assert np.isnan(clip_grad_norm(_params_with_grads([nan_grad]), 1.0))


def test_clip_grad_norm_matches_torch():
    torch = pytest.importorskip(
        "torch",
        reason="torch not installed: PyTorch comparisons skipped (pip install torch==2.13.0)")
    rng = np.random.default_rng(1)
    grads = [rng.standard_normal((6, 4)), rng.standard_normal(4)]
    torch_params = [torch.zeros(g.shape, dtype=torch.float64, requires_grad=True) for g in grads]
    for tp, g in zip(torch_params, grads):
        tp.grad = torch.from_numpy(g.copy())
    expected = torch.nn.utils.clip_grad_norm_(torch_params, 2.0).item()
    assert clip_grad_norm(_params_with_grads(grads), 2.0) == pytest.approx(expected, rel=1e-12)
    for g, tp in zip(grads, torch_params):  # torch divides by norm + 1e-6, hence rtol
        np.testing.assert_allclose(g, tp.grad.numpy(), rtol=1e-6)


@pytest.mark.parametrize("fn, name", [(clip_grad_value, "value"), (clip_grad_norm, "max_norm")])
@pytest.mark.parametrize("bad", [0, -1.0, float("nan"), "5"])
def test_thresholds_must_be_positive(fn, name, bad):
    shown = repr(bad) if isinstance(bad, str) else repr(float(bad))
    with pytest.raises(ValueError) as info:
        fn(_params_with_grads([np.ones(2)]), bad)
    message = str(info.value)
    assert message.startswith(f"{fn.__name__}: {name} must be") and "(0, inf)" in message
    assert f"got {shown}" in message


def test_non_float_gradients_are_reported():
    with pytest.raises(TypeError, match="clip_grad_value: expected Tensors or floating gradient "
                                        "arrays, got ndarray int64 at position 0"):
        clip_grad_value([np.arange(3)], 1.0)
