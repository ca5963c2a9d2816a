"""The Optimizer base class: gathers the parameters, checks hyperparameters, keeps one state dict
per parameter (the course's ``v`` and ``s``) and applies one update rule to each parameter."""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Mapping

import numpy as np

from strata import backend
from strata.autograd import ShapeError
from strata.tensor import Tensor

#: Allowed ranges of hyperparameters: (how the range is written in errors, the test).
POSITIVE = ("(0, inf)", lambda v: 0.0 < v < math.inf)
FRACTION = ("[0, 1)", lambda v: 0.0 <= v < 1.0)
NON_NEGATIVE = ("[0, inf)", lambda v: 0.0 <= v < math.inf)


def check_number(owner: str, name: str, value, allowed: tuple) -> float:
    """Return ``value`` as a float if it is a real number in the ``allowed`` range, else raise."""
    interval, test = allowed
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{owner}: {name} must be a real number in {interval}, got {value!r} "
                         f"({type(value).__name__})")
    value = float(value)
    if not test(value):  # NaN fails every comparison, so it lands here too
        raise ValueError(f"{owner}: {name} must be in {interval}, got {value!r}")
    return value


def iter_parameters(params) -> list:
    """Flatten what users pass as parameters into a list: a Module (``.parameters()``), a dict
    such as the course's ``parameters`` (its values), a single Tensor, or an iterable."""
    if isinstance(params, Tensor):  # iterating a Tensor would yield its rows
        return [params]
    if callable(getattr(params, "parameters", None)):
        params = params.parameters()
    if isinstance(params, Mapping):
        params = params.values()
    return list(params)


class Optimizer:
    """Base class: ``step()`` calls ``update(param, grad, state)`` for each parameter with a grad.

    Subclasses list their hyperparameters and ranges in ``hyperparameters``, create the
    per-parameter state in ``init_state`` and change ``param.data`` in place in ``update``.
    """

    #: Name -> allowed range of every numeric hyperparameter (saved by ``state_dict``).
    hyperparameters: dict = {"lr": POSITIVE}

    def __init__(self, params, lr, **hyperparameters):
        self.lr = lr
        for name, value in hyperparameters.items():
            setattr(self, name, self._check(name, value))
        self.params: list[Tensor] = _checked_parameters(type(self).__name__, params)
        self.state: dict[int, dict] = {}  # id(param) -> the rule's state (v, s, t...)
        self._buffers: dict[tuple, np.ndarray] = {}  # scratch space, one per (shape, dtype)

    @property
    def lr(self) -> float:
        """The learning rate alpha; a schedule may assign a new one between epochs."""
        return self._lr

    @lr.setter
    def lr(self, value) -> None:
        self._lr = self._check("lr", value)

    def _check(self, name: str, value) -> float:
        return check_number(type(self).__name__, name, value, self.hyperparameters[name])

    def init_state(self, param: Tensor) -> dict:
        """The state a parameter starts with (e.g. ``{"v": zeros}``); empty by default."""
        return {}

    def update(self, param: Tensor, grad: np.ndarray, state: dict) -> None:
        """Apply the update rule to one parameter, changing ``param.data`` in place."""
        raise NotImplementedError(f"{type(self).__name__} must define update()")

    def step(self) -> None:
        """Update every parameter that has a gradient (the course's update_parameters_with_*)."""
        for param in self.params:
            grad = param.grad
            if grad is None:
                continue
            if grad.shape != param.data.shape:
                raise ShapeError(f"{type(self).__name__}.step: a parameter of shape "
                                 f"{param.shape} has a gradient of shape {grad.shape}")
            state = self.state.get(id(param))
            if state is None:
                state = self.state[id(param)] = self.init_state(param)
            self.update(param, grad, state)

    def zero_grad(self) -> None:
        """Forget every parameter's gradient (set ``.grad`` to None) before the next backward."""
        for param in self.params:
            param.grad = None

    def _buffer(self, param: Tensor) -> np.ndarray:
        """Scratch array shaped like ``param`` so updates make no temporaries; parameters of the
        same shape and dtype share one (updates run one at a time)."""
        key = (param.data.shape, param.data.dtype.str)
        buf = self._buffers.get(key)
        if buf is None:
            buf = self._buffers[key] = backend.array_module(param.data).empty_like(param.data)
        return buf

    def to(self, device: str) -> Optimizer:
        """Move the state arrays (v, s) to ``device``, as ``Model.to`` does with the model's
        parameters; returns the optimizer."""
        module = backend.device_module(device)
        for state in self.state.values():
            for key, value in state.items():
                if _is_array(value):
                    state[key] = backend.to_device(value, module)
        self._buffers = {}
        return self

    def state_dict(self) -> dict:
        """A checkpoint: hyperparameters as numbers, and ``"state.<i>.<name>"`` -> a copy of the
        i-th parameter's state (arrays and numbers). Plain values only, no pickle needed."""
        out: dict = {name: getattr(self, name) for name in self.hyperparameters}
        for i, param in enumerate(self.params):
            for key, value in self.state.get(id(param), {}).items():
                out[f"state.{i}.{key}"] = value.copy() if _is_array(value) else value
        return out

    def load_state_dict(self, state_dict: Mapping) -> None:
        """Restore a ``state_dict()`` taken from an optimizer of the same kind and parameters."""
        name = type(self).__name__
        if not isinstance(state_dict, Mapping):
            raise TypeError(f"{name}.load_state_dict: expected a dict, got "
                            f"{type(state_dict).__name__}")
        missing = [k for k in self.hyperparameters if k not in state_dict]
        if missing:
            raise ValueError(f"{name}.load_state_dict: missing hyperparameters {missing}; got "
                             f"keys {sorted(state_dict)}")
        hyper = {k: self._check(k, state_dict[k]) for k in self.hyperparameters}
        grouped: dict[int, dict] = {}
        for key, value in state_dict.items():
            if key in self.hyperparameters:
                continue
            match = re.fullmatch(r"state\.(\d+)\.(\w+)", str(key))
            if match is None or int(match[1]) >= len(self.params):
                raise ValueError(f"{name}.load_state_dict: unexpected key {key!r}; expected "
                                 f"{list(self.hyperparameters)} or 'state.<i>.<name>' with i < "
                                 f"{len(self.params)}")
            grouped.setdefault(int(match[1]), {})[match[2]] = value
        states = {id(self.params[i]): self._restored(i, entries) for i, entries in grouped.items()}
        for k, value in hyper.items():
            setattr(self, k, value)
        self.state = states

    def _restored(self, i: int, entries: dict) -> dict:
        """Parameter i's state rebuilt from checkpoint entries, checked against a fresh one."""
        param, name = self.params[i], type(self).__name__
        template = self.init_state(param)
        if set(entries) != set(template):
            raise ValueError(f"{name}.load_state_dict: parameter {i} expects state "
                             f"{sorted(template)}, got {sorted(entries)}")
        state = {}
        for key, fresh in template.items():
            value = entries[key]
            if _is_array(fresh):
                shape = getattr(value, "shape", None)
                if shape != fresh.shape:
                    raise ShapeError(f"{name}.load_state_dict: state.{i}.{key} should have "
                                     f"shape {fresh.shape} (the parameter's), got {shape}")
                value = (np.array(value, dtype=fresh.dtype, copy=True)
                         if backend.array_module(value) is np
                         else value.astype(fresh.dtype, copy=True))
                state[key] = backend.to_device(value, backend.array_module(fresh))
            elif isinstance(value, type(fresh)) or (  # an int step counter must stay an int
                    isinstance(value, numbers.Integral) and not isinstance(value, bool)):
                state[key] = type(fresh)(value)
            else:
                raise ValueError(f"{name}.load_state_dict: state.{i}.{key} should be a number "
                                 f"of type {type(fresh).__name__}, got {value!r}")
        return state

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={getattr(self, k)!r}" for k in self.hyperparameters)
        return f"{type(self).__name__}({args})"


def _is_array(value) -> bool:
    """An array of state (NumPy's, or a device's), as opposed to a number such as t."""
    return isinstance(value, np.ndarray) or backend.array_module(value) is not np


def _checked_parameters(owner: str, params) -> list[Tensor]:
    """The distinct parameters in ``params``, each a floating Tensor that requires grad."""
    result, seen = [], set()
    for i, p in enumerate(iter_parameters(params)):
        if not isinstance(p, Tensor):
            raise TypeError(f"{owner}: expected parameters to be strata.Tensors, got "
                            f"{type(p).__name__} at position {i}")
        if not (p.requires_grad and backend.is_float(p.dtype)):
            raise ValueError(f"{owner}: expected parameters to be floating Tensors with "
                             f"requires_grad=True, got dtype {p.dtype} and requires_grad="
                             f"{p.requires_grad} at position {i}")
        if id(p) not in seen:  # a weight shared by two layers is updated once
            seen.add(id(p))
            result.append(p)
    if not result:
        raise ValueError(f"{owner}: got an empty parameter list; pass model.parameters() or a "
                         f"list of Tensors created with requires_grad=True")
    return result
