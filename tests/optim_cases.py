"""The optimizer registry: every update rule in ``strata.optim`` -> the course's formula for it,
written here again in plain NumPy (never by calling strata), as in the C2 W2 notebook.

A reference takes the parameter W, its gradient dW, a dict it keeps its own state in (v, s, t)
and the case's hyperparameters, and returns the new W. tests/test_optim.py checks that no
optimizer is left without a case.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from strata import optim


def gd_reference(W, dW, state, lr):
    """update_parameters_with_gd."""
    return W - lr * dW


def momentum_reference(W, dW, state, lr, beta=0.9, bias_correction=False):
    """initialize_velocity + update_parameters_with_momentum (optionally bias-corrected)."""
    state["t"] = state.get("t", 0) + 1
    state["v"] = beta * state.get("v", np.zeros_like(W)) + (1 - beta) * dW
    v = state["v"] / (1 - beta ** state["t"]) if bias_correction else state["v"]
    return W - lr * v


def rmsprop_reference(W, dW, state, lr, beta2=0.999, epsilon=1e-8):
    """The lecture's RMSprop: s = beta2 s + (1 - beta2) dW^2, W -= lr dW / (sqrt(s) + eps)."""
    state["s"] = beta2 * state.get("s", np.zeros_like(W)) + (1 - beta2) * dW ** 2
    return W - lr * dW / (np.sqrt(state["s"]) + epsilon)


def adam_reference(W, dW, state, lr=0.001, beta1=0.9, beta2=0.999, epsilon=1e-8):
    """initialize_adam + update_parameters_with_adam, t counting from 1."""
    t = state["t"] = state.get("t", 0) + 1
    state["v"] = beta1 * state.get("v", np.zeros_like(W)) + (1 - beta1) * dW
    state["s"] = beta2 * state.get("s", np.zeros_like(W)) + (1 - beta2) * dW ** 2
    v_corrected = state["v"] / (1 - beta1 ** t)
    s_corrected = state["s"] / (1 - beta2 ** t)
    return W - lr * v_corrected / (np.sqrt(s_corrected) + epsilon)


@dataclass
class OptimizerCase:
    """One optimizer configuration and the course formula it must follow."""

    name: str
    cls: type
    kwargs: dict
    reference: object

    def make(self, params):
        """The strata optimizer of this case on ``params``."""
        return self.cls(params, **self.kwargs)

    def reference_step(self, W, dW, state):
        """The course's new W after one step."""
        return self.reference(W, dW, state, **self.kwargs)


CASES = [
    OptimizerCase("gd", optim.GD, {"lr": 0.1}, gd_reference),
    OptimizerCase("momentum", optim.Momentum, {"lr": 0.1, "beta": 0.8}, momentum_reference),
    OptimizerCase("momentum_bias_corrected", optim.Momentum,
                  {"lr": 0.1, "beta": 0.9, "bias_correction": True}, momentum_reference),
    OptimizerCase("rmsprop", optim.RMSprop, {"lr": 0.01, "beta2": 0.9, "epsilon": 1e-6},
                  rmsprop_reference),
    OptimizerCase("adam", optim.Adam, {"lr": 0.01, "beta1": 0.8, "beta2": 0.99,
                                       "epsilon": 1e-7}, adam_reference),
    OptimizerCase("adam_defaults", optim.Adam, {}, adam_reference),
]


def case_id(case: OptimizerCase) -> str:
    """pytest id of a case."""
    return case.name
