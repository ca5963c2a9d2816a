"""Learning-rate schedules give the course's numbers, and reject bad arguments by name."""

from __future__ import annotations

import math

import numpy as np
import pytest

import strata
from strata.optim import (
    GD,
    ExponentialDecay,
    InverseSqrtDecay,
    InverseTimeDecay,
    ManualSchedule,
    StepDecay,
)


def test_inverse_time_decay_gives_the_course_numbers():
    schedule = InverseTimeDecay(0.5, decay_rate=1)  # update_lr(0.5, epoch_num, 1)
    assert [schedule(e) for e in range(3)] == pytest.approx([0.5, 0.25, 0.1666667])
    assert schedule(2) == 0.5 / 3


def test_inverse_time_decay_with_time_interval_is_schedule_lr_decay():
    schedule = InverseTimeDecay(0.5, decay_rate=1, time_interval=100)
    assert schedule(10) == 0.5 and schedule(99) == 0.5  # floor(epoch / 100) is still 0
    assert schedule(100) == 0.25 and schedule(250) == pytest.approx(0.5 / 3)
    assert InverseTimeDecay(0.3, decay_rate=0)(1000) == 0.3


def test_exponential_decay():
    schedule = ExponentialDecay(0.2)
    assert schedule(0) == 0.2
    assert schedule(3) == pytest.approx(0.95 ** 3 * 0.2)
    assert ExponentialDecay(1.0, base=0.5)(4) == 1 / 16


def test_inverse_sqrt_decay_treats_epoch_zero_as_one():
    schedule = InverseSqrtDecay(0.1, k=2.0)
    assert schedule(0) == schedule(1) == pytest.approx(0.2)
    assert schedule(4) == pytest.approx(2.0 / 2 * 0.1)
    assert schedule(9) == pytest.approx(2.0 / 3 * 0.1)


def test_step_decay_is_a_staircase():
    schedule = StepDecay(1.0, factor=0.5, every=3)
    assert [schedule(e) for e in range(8)] == [1, 1, 1, 0.5, 0.5, 0.5, 0.25, 0.25]
    assert StepDecay(0.1, every=10)(25) == pytest.approx(0.025)


def test_manual_schedule_is_piecewise_constant():
    by_epoch = ManualSchedule({10: 0.01, 0: 0.1, 20: 0.001})
    assert [by_epoch(e) for e in (0, 9, 10, 19, 20, 1000)] == [0.1, 0.1, 0.01, 0.01, 0.001, 0.001]
    listed = ManualSchedule([0.1, 0.05, 0.01])
    assert [listed(e) for e in range(5)] == [0.1, 0.05, 0.01, 0.01, 0.01]


def test_schedules_return_floats_and_accept_numpy_epochs():
    for schedule in (InverseTimeDecay(1, 1), ExponentialDecay(1), InverseSqrtDecay(1, 1),
                     StepDecay(1, every=2), ManualSchedule([1])):
        value = schedule(np.int64(3))
        assert type(value) is float and value > 0


def test_a_schedule_drives_an_optimizer():
    w = strata.tensor(np.array([0.0]), requires_grad=True)
    opt, schedule = GD([w], lr=1.0), InverseTimeDecay(1.0, decay_rate=1.0)
    for epoch in range(3):
        opt.lr = schedule(epoch)
        w.grad = np.array([-1.0])
        opt.step()
    assert w.data[0] == pytest.approx(1 + 1 / 2 + 1 / 3)


@pytest.mark.parametrize("make, message", [
    (lambda: InverseTimeDecay(0, 1), "InverseTimeDecay: lr0 must be in (0, inf), got 0.0"),
    (lambda: InverseTimeDecay(0.1, -1), "InverseTimeDecay: decay_rate must be in [0, inf), "
                                        "got -1.0"),
    (lambda: InverseTimeDecay(0.1, 1, time_interval=0),
     "InverseTimeDecay: time_interval must be an integer >= 1, got 0"),
    (lambda: InverseTimeDecay(0.1, 1, time_interval=2.5),
     "InverseTimeDecay: time_interval must be an integer >= 1, got 2.5"),
    (lambda: ExponentialDecay(0.1, base=1.5), "ExponentialDecay: base must be in (0, 1], got 1.5"),
    (lambda: ExponentialDecay(math.nan), "ExponentialDecay: lr0 must be in (0, inf), got nan"),
    (lambda: InverseSqrtDecay(0.1, k=0), "InverseSqrtDecay: k must be in (0, inf), got 0.0"),
    (lambda: StepDecay(0.1, factor=0, every=2), "StepDecay: factor must be in (0, 1], got 0.0"),
    (lambda: StepDecay(0.1, every=0), "StepDecay: every must be an integer >= 1, got 0"),
    (lambda: StepDecay("0.1", every=2), "StepDecay: lr0 must be a real number in (0, inf), "
                                        "got '0.1' (str)"),
    (lambda: ManualSchedule({}), "ManualSchedule: the rates must start at epoch 0 so that every "
                                 "epoch has one, got first epoch None"),
    (lambda: ManualSchedule({5: 0.1}), "got first epoch 5"),
    (lambda: ManualSchedule({0: 0.1, -1: 0.2}), "an epoch key must be an integer >= 0, got -1"),
    (lambda: ManualSchedule([0.1, -0.1]), "ManualSchedule: the rate for epoch 1 must be in "
                                          "(0, inf), got -0.1"),
    (lambda: ManualSchedule("0.1"), "expected a dict {epoch: lr} or a list of rates, got str"),
])
def test_bad_arguments_are_named(make, message):
    with pytest.raises(ValueError) as info:
        make()
    assert message in str(info.value)


@pytest.mark.parametrize("epoch", [-1, 1.5, True, "3"])
def test_bad_epochs_are_named(epoch):
    with pytest.raises(ValueError, match=f"StepDecay: epoch must be an integer >= 0, got "
                                         f"{epoch!r}"):
        StepDecay(0.1, every=2)(epoch)
