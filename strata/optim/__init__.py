"""Optimization (C2 W2): update rules, learning-rate schedules and gradient clipping.

    optimizer = Adam(model.parameters(), lr=0.001)
    schedule = InverseTimeDecay(lr0=0.001, decay_rate=1.0)
    for epoch in range(num_epochs):
        optimizer.lr = schedule(epoch)
        for X, Y in minibatches:
            optimizer.zero_grad()
            cost(model(X), Y).backward()
            optimizer.step()
"""

from strata.optim.clipping import clip_grad_norm, clip_grad_value
from strata.optim.optimizer import Optimizer
from strata.optim.rules import GD, OPTIMIZERS, SGD, Adam, Momentum, RMSprop, get_optimizer
from strata.optim.schedules import (
    ExponentialDecay,
    InverseSqrtDecay,
    InverseTimeDecay,
    ManualSchedule,
    Schedule,
    StepDecay,
)

__all__ = [
    "Optimizer", "GD", "SGD", "Momentum", "RMSprop", "Adam", "OPTIMIZERS", "get_optimizer",
    "Schedule", "InverseTimeDecay", "ExponentialDecay", "InverseSqrtDecay", "StepDecay",
    "ManualSchedule",
    "clip_grad_value", "clip_grad_norm",
]
