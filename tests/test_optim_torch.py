"""Each update rule against torch.optim for several steps on the same random gradients.
Skipped, with the reason shown, when torch is not installed."""

from __future__ import annotations

import numpy as np
import pytest
from optim_cases import CASES, case_id

import strata
from strata.optim import Adam

torch = pytest.importorskip(
    "torch", reason="torch not installed: PyTorch comparisons skipped (pip install torch==2.13.0)")

TOLERANCE = {np.float64: {"rtol": 1e-12, "atol": 1e-14}, np.float32: {"rtol": 2e-6, "atol": 1e-6}}


def _torch_sgd(params, lr):
    return torch.optim.SGD(params, lr=lr)


def _torch_momentum(params, lr, beta=0.9):
    # torch keeps u = beta*u + dW (no (1 - beta) factor) and starts u at the first gradient,
    # which is beta*0 + dW: the same as starting at zeros. By induction the course's
    # v = beta*v + (1 - beta)*dW equals (1 - beta)*u, so W -= lr*v is torch's step with
    # lr*(1 - beta). (torch's dampening would not do: it skips the first step's factor.)
    return torch.optim.SGD(params, lr=lr * (1 - beta), momentum=beta)


def _torch_rmsprop(params, lr, beta2=0.999, epsilon=1e-8):
    # torch's RMSprop adds eps outside the square root, as the course does.
    return torch.optim.RMSprop(params, lr=lr, alpha=beta2, eps=epsilon)


def _torch_adam(params, lr=0.001, beta1=0.9, beta2=0.999, epsilon=1e-8):
    return torch.optim.Adam(params, lr=lr, betas=(beta1, beta2), eps=epsilon)


# Momentum with bias_correction has no torch counterpart; the course formula covers it
# (tests/test_optim.py).
TORCH = {"gd": _torch_sgd, "momentum": _torch_momentum, "rmsprop": _torch_rmsprop,
         "adam": _torch_adam, "adam_defaults": _torch_adam}
TORCH_CASES = [c for c in CASES if c.name in TORCH]


def test_every_case_without_torch_counterpart_is_known():
    assert {c.name for c in CASES} - set(TORCH) == {"momentum_bias_corrected"}


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("case", TORCH_CASES, ids=case_id)
def test_matches_torch_optim(case, dtype):
    rng = np.random.default_rng(0)
    initial = [rng.standard_normal(s).astype(dtype) for s in [(5, 3), (3,), (2, 2, 2)]]
    params = [strata.tensor(w.copy(), requires_grad=True) for w in initial]
    torch_params = [torch.from_numpy(w.copy()).requires_grad_() for w in initial]
    opt = case.make(params)
    torch_opt = TORCH[case.name](torch_params, **case.kwargs)
    for step in range(6):
        for p, tp in zip(params, torch_params):
            g = rng.standard_normal(p.shape).astype(dtype)
            p.grad, tp.grad = g.copy(), torch.from_numpy(g.copy())
        opt.step()
        torch_opt.step()
        for i, (p, tp) in enumerate(zip(params, torch_params)):
            assert p.data.dtype == dtype
            np.testing.assert_allclose(p.data, tp.detach().numpy(), **TOLERANCE[dtype],
                                       err_msg=f"{case.name}: parameter {i}, step {step + 1}")


def test_changing_lr_matches_torch():
    w = np.array([1.0, -1.0, 0.5])
    p, tp = strata.tensor(w.copy(), requires_grad=True), torch.tensor(w, requires_grad=True)
    opt, torch_opt = Adam([p], lr=0.1), torch.optim.Adam([tp], lr=0.1)
    for step, lr in enumerate([0.1, 0.05, 0.01]):
        opt.lr = lr
        torch_opt.param_groups[0]["lr"] = lr
        g = np.array([0.3, -0.2, 0.1]) * (step + 1)
        p.grad, tp.grad = g.copy(), torch.from_numpy(g.copy())
        opt.step()
        torch_opt.step()
    np.testing.assert_allclose(p.data, tp.detach().numpy(), rtol=1e-12)
