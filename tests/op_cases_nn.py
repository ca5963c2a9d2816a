"""Registry cases of the neural-network ops: dropout and batch_norm (softmax_cross_entropy and
linear live in op_cases_math.py)."""

from __future__ import annotations

import numpy as np
from op_cases_common import Case, normal, positive

import strata

KEEP_PROB = 0.7


def _seeded_dropout(x):
    strata.seed(5)  # the same draws as the torch side below
    return strata.dropout(x, KEEP_PROB)


def _torch_dropout(t):
    import torch

    mask = np.random.default_rng(5).random(tuple(t.shape)) < KEEP_PROB
    return t * torch.from_numpy(mask / KEEP_PROB)


def _torch_batch_norm(x, gamma, beta, running=None, relu=False):
    """torch wants channels on axis 1: move our last axis there and back. With ``relu``, torch
    normalizes and the course's gamma * Z_norm + beta follows, then ReLU: PyTorch's own
    affine step (x * gamma / sigma + (beta - mu * gamma / sigma)) makes an infinite gamma's
    outputs NaN, which ReLU then tells apart from strata's -inf -> 0 (see test_nonfinite)."""
    import torch

    moved = x.movedim(-1, 1)
    mean, var = (None, None) if running is None else (torch.from_numpy(s) for s in running)
    affine = (None, None) if relu else (gamma, beta)
    out = torch.nn.functional.batch_norm(moved, mean, var, *affine,
                                         training=running is None, eps=1e-3).movedim(1, -1)
    return torch.relu(out * gamma + beta) if relu else out


def _batch_norm(name, shape, running=None, relu=False):
    n = shape[-1]
    return Case("batch_norm", name,
                lambda x, g, b: strata.batch_norm(x, g, b, running=running, relu=relu)[0],
                lambda x, g, b: _torch_batch_norm(x, g, b, running, relu),
                (normal(*shape), positive(n), normal(n)))


def nn_cases() -> list[Case]:
    """All cases of this module."""
    stats = (normal(3), positive(3))
    return [
        Case("dropout", "matrix", _seeded_dropout, _torch_dropout, (normal(6, 5),)),
        Case("dropout", "images", _seeded_dropout, _torch_dropout, (normal(2, 3, 3, 2),)),
        _batch_norm("features", (8, 3)),
        _batch_norm("nhwc", (2, 3, 4, 3)),
        _batch_norm("test_time", (5, 3), running=stats),
        _batch_norm("relu_features", (8, 3), relu=True),
        _batch_norm("relu_nhwc", (2, 3, 4, 3), relu=True),
        _batch_norm("relu_test_time", (5, 3), running=stats, relu=True),
    ]
