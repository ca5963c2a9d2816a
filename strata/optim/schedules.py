"""Learning-rate decay (C2 W2): small callables epoch -> learning rate.

Use one between epochs: ``optimizer.lr = schedule(epoch)``. Epochs count from 0, so epoch 0
gives ``lr0`` for every schedule except ``InverseSqrtDecay`` (see there).
"""

from __future__ import annotations

import bisect
import math
import numbers
from collections.abc import Mapping, Sequence

from strata.optim.optimizer import NON_NEGATIVE, POSITIVE, check_number

#: Allowed range of a decay factor: it may keep the rate (1) but not grow it.
_DECAY_FACTOR = ("(0, 1]", lambda v: 0.0 < v <= 1.0)


def _check_count(owner: str, name: str, value, minimum: int) -> int:
    """``value`` as an int if it is an integer >= ``minimum``, else a ValueError naming it."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{owner}: {name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


class Schedule:
    """Base class of learning-rate schedules: ``schedule(epoch)`` is the rate for that epoch."""

    def __call__(self, epoch: int) -> float:
        return float(self.lr_at(_check_count(type(self).__name__, "epoch", epoch, 0)))

    def lr_at(self, epoch: int) -> float:
        """The learning rate at ``epoch`` (an int >= 0, already checked)."""
        raise NotImplementedError

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({args})"


class InverseTimeDecay(Schedule):
    """lr = lr0 / (1 + decay_rate * floor(epoch / time_interval)) (update_lr, schedule_lr_decay).

    With ``time_interval=1`` (the default) this is the lecture's 1 / (1 + decay_rate * epoch):
    lr0=0.5, decay_rate=1 gives 0.5, 0.25, 0.1667, ... Larger intervals decay in steps.
    """

    def __init__(self, lr0: float, decay_rate: float, time_interval: int = 1):
        self.lr0 = check_number("InverseTimeDecay", "lr0", lr0, POSITIVE)
        self.decay_rate = check_number("InverseTimeDecay", "decay_rate", decay_rate,
                                       NON_NEGATIVE)
        self.time_interval = _check_count("InverseTimeDecay", "time_interval", time_interval, 1)

    def lr_at(self, epoch: int) -> float:
        """lr0 / (1 + decay_rate * floor(epoch / time_interval))."""
        return self.lr0 / (1.0 + self.decay_rate * (epoch // self.time_interval))


class ExponentialDecay(Schedule):
    """lr = base**epoch * lr0 (the lecture's 0.95**epoch_num * alpha0)."""

    def __init__(self, lr0: float, base: float = 0.95):
        self.lr0 = check_number("ExponentialDecay", "lr0", lr0, POSITIVE)
        self.base = check_number("ExponentialDecay", "base", base, _DECAY_FACTOR)

    def lr_at(self, epoch: int) -> float:
        """base**epoch * lr0."""
        return self.base ** epoch * self.lr0


class InverseSqrtDecay(Schedule):
    """lr = k / sqrt(epoch) * lr0 (the lecture's k / sqrt(epoch_num) * alpha0).

    The formula has no value at epoch 0, so epoch 0 uses epoch 1's rate: k * lr0 for the first
    two epochs, then k / sqrt(epoch) * lr0.
    """

    def __init__(self, lr0: float, k: float):
        self.lr0 = check_number("InverseSqrtDecay", "lr0", lr0, POSITIVE)
        self.k = check_number("InverseSqrtDecay", "k", k, POSITIVE)

    def lr_at(self, epoch: int) -> float:
        """k / sqrt(max(epoch, 1)) * lr0."""
        return self.k / math.sqrt(max(epoch, 1)) * self.lr0


class StepDecay(Schedule):
    """Staircase decay: lr = lr0 * factor**floor(epoch / every) (the lecture's discrete steps)."""

    def __init__(self, lr0: float, factor: float = 0.5, *, every: int):
        self.lr0 = check_number("StepDecay", "lr0", lr0, POSITIVE)
        self.factor = check_number("StepDecay", "factor", factor, _DECAY_FACTOR)
        self.every = _check_count("StepDecay", "every", every, 1)

    def lr_at(self, epoch: int) -> float:
        """lr0 * factor**(epoch // every)."""
        return self.lr0 * self.factor ** (epoch // self.every)


class ManualSchedule(Schedule):
    """Piecewise-constant rates set by hand (the lecture's "manual decay").

    ``{0: 0.1, 10: 0.01}`` gives 0.1 for epochs 0-9 and 0.01 from epoch 10 on; a list
    ``[0.1, 0.05, 0.01]`` gives one rate per epoch and keeps the last one afterwards.
    """

    def __init__(self, rates):
        if isinstance(rates, Mapping):
            pairs = sorted((_check_count("ManualSchedule", "an epoch key", e, 0), lr)
                           for e, lr in rates.items())
        elif isinstance(rates, Sequence) and not isinstance(rates, str):
            pairs = list(enumerate(rates))
        else:
            raise ValueError(f"ManualSchedule: expected a dict {{epoch: lr}} or a list of rates, "
                             f"got {type(rates).__name__}")
        if not pairs or pairs[0][0] != 0:
            first = pairs[0][0] if pairs else None
            raise ValueError(f"ManualSchedule: the rates must start at epoch 0 so that every "
                             f"epoch has one, got first epoch {first}")
        self.epochs = [e for e, _ in pairs]
        self.rates = [check_number("ManualSchedule", f"the rate for epoch {e}", lr, POSITIVE)
                      for e, lr in pairs]

    def lr_at(self, epoch: int) -> float:
        """The rate of the last listed epoch <= ``epoch``."""
        return self.rates[bisect.bisect_right(self.epochs, epoch) - 1]
