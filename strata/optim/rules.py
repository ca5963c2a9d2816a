"""The course's update rules (C2 W2), one class each: gradient descent, momentum, RMSprop, Adam.

Each ``update`` works in place on ``param.data`` with NumPy's ``out=`` arguments and a scratch
buffer, so a step allocates nothing and a float32 parameter stays float32.
"""

from __future__ import annotations

import inspect
import math

from strata.backend import array_module
from strata.optim import kernels
from strata.optim.optimizer import FRACTION, POSITIVE, Optimizer


class GD(Optimizer):
    """Gradient descent (batch, mini-batch or stochastic, by the data you feed): W = W - lr*dW.

    >>> import strata
    >>> w = strata.tensor([1.0, -2.0], requires_grad=True)
    >>> (w * w).sum().backward()  # dW = 2 W
    >>> GD([w], lr=0.1).step()
    >>> w.data
    array([ 0.8, -1.6], dtype=float32)
    """

    def __init__(self, params, lr: float):
        super().__init__(params, lr)

    def update(self, param, grad, state) -> None:
        """W = W - lr * dW."""
        xp = array_module(param.data)  # NumPy, or CuPy for a model on the GPU
        step = self._buffer(param)
        xp.multiply(grad, self.lr, out=step)
        param.data -= step


#: The design's name for the same rule: the "stochastic" is in how the data is batched.
SGD = GD


class Momentum(Optimizer):
    """Gradient descent with momentum: v = beta*v + (1-beta)*dW; W = W - lr*v (v starts at 0).

    With ``bias_correction=True`` the step uses v / (1 - beta**t) instead, t counting from 1;
    the course notes this is rarely needed, so it is off by default.
    """

    hyperparameters = {"lr": POSITIVE, "beta": FRACTION}

    def __init__(self, params, lr: float, beta: float = 0.9,
                 bias_correction: bool = False):
        if not isinstance(bias_correction, bool):
            raise ValueError(f"Momentum: bias_correction must be True or False, got "
                             f"{bias_correction!r}")
        self.bias_correction = bias_correction
        super().__init__(params, lr, beta=beta)

    def init_state(self, param) -> dict:
        """The velocity v (zeros, as initialize_velocity) and the step counter t."""
        return {"v": array_module(param.data).zeros_like(param.data), "t": 0}

    def update(self, param, grad, state) -> None:
        """v = beta*v + (1-beta)*dW; W = W - lr*v."""
        xp = array_module(param.data)  # NumPy, or CuPy for a model on the GPU
        v, tmp, beta = state["v"], self._buffer(param), self.beta
        state["t"] += 1
        v *= beta
        xp.multiply(grad, 1.0 - beta, out=tmp)
        v += tmp
        scale = self.lr
        if self.bias_correction:
            scale /= 1.0 - beta ** state["t"]
        xp.multiply(v, scale, out=tmp)
        param.data -= tmp


class RMSprop(Optimizer):
    """RMSprop: s = beta2*s + (1-beta2)*dW**2; W = W - lr*dW / (sqrt(s) + epsilon)."""

    hyperparameters = {"lr": POSITIVE, "beta2": FRACTION, "epsilon": POSITIVE}

    def __init__(self, params, lr: float, beta2: float = 0.999, epsilon: float = 1e-8):
        super().__init__(params, lr, beta2=beta2, epsilon=epsilon)

    def init_state(self, param) -> dict:
        """The running mean of squared gradients s, starting at zeros."""
        return {"s": array_module(param.data).zeros_like(param.data)}

    def update(self, param, grad, state) -> None:
        """s = beta2*s + (1-beta2)*dW**2; W = W - lr*dW / (sqrt(s) + epsilon)."""
        xp = array_module(param.data)  # NumPy, or CuPy for a model on the GPU
        s, tmp, beta2 = state["s"], self._buffer(param), self.beta2
        s *= beta2
        xp.square(grad, out=tmp)
        tmp *= 1.0 - beta2
        s += tmp
        xp.sqrt(s, out=tmp)
        tmp += self.epsilon
        xp.divide(grad, tmp, out=tmp)
        tmp *= self.lr
        param.data -= tmp


class Adam(Optimizer):
    """Adam: momentum's v and RMSprop's s, both bias-corrected by the step count t (from 1).

    v = beta1*v + (1-beta1)*dW, s = beta2*s + (1-beta2)*dW**2,
    v_corrected = v / (1 - beta1**t), s_corrected = s / (1 - beta2**t),
    W = W - lr * v_corrected / (sqrt(s_corrected) + epsilon).
    """

    hyperparameters = {"lr": POSITIVE, "beta1": FRACTION, "beta2": FRACTION,
                       "epsilon": POSITIVE}

    def __init__(self, params, lr: float = 0.001, beta1: float = 0.9, beta2: float = 0.999,
                 epsilon: float = 1e-8):
        super().__init__(params, lr, beta1=beta1, beta2=beta2, epsilon=epsilon)

    def init_state(self, param) -> dict:
        """v and s at zeros (as initialize_adam) and the step counter t (the first step is 1)."""
        zeros = array_module(param.data).zeros_like
        return {"v": zeros(param.data), "s": zeros(param.data), "t": 0}

    def update(self, param, grad, state) -> None:
        """One Adam step with bias correction at this parameter's step t."""
        xp = array_module(param.data)  # NumPy, or CuPy for a model on the GPU
        v, s = state["v"], state["s"]
        beta1, beta2 = self.beta1, self.beta2
        t = state["t"] = state["t"] + 1
        # lr * v_corrected / (sqrt(s_corrected) + epsilon), with r = sqrt(1 - beta2**t), is
        # (lr * r / (1 - beta1**t)) * v / (sqrt(s) + epsilon * r): the same value, with the
        # corrections folded into two scalars.
        r = math.sqrt(1.0 - beta2 ** t)
        step, eps = self.lr * r / (1.0 - beta1 ** t), self.epsilon * r
        if kernels.fusable(param.data, grad, v, s):
            kernels.adam(param.data, grad, v, s, beta1, beta2, step, eps)
            return
        tmp = self._buffer(param)
        v *= beta1
        xp.multiply(grad, 1.0 - beta1, out=tmp)
        v += tmp
        s *= beta2
        xp.square(grad, out=tmp)
        tmp *= 1.0 - beta2
        s += tmp
        xp.sqrt(s, out=tmp)
        tmp += eps
        xp.divide(v, tmp, out=tmp)
        tmp *= step
        param.data -= tmp


OPTIMIZERS: dict[str, type[Optimizer]] = {
    "gd": GD, "sgd": GD, "momentum": Momentum, "rmsprop": RMSprop, "adam": Adam}


def get_optimizer(name: str, params, **kwargs) -> Optimizer:
    """The optimizer called ``name`` ("adam", "sgd", "gd", "momentum", "rmsprop") on ``params``."""
    valid = ", ".join(repr(k) for k in sorted(OPTIMIZERS))
    cls = OPTIMIZERS.get(name.lower()) if isinstance(name, str) else None
    if cls is None:
        raise ValueError(f"get_optimizer: unknown optimizer {name!r}; expected one of {valid}")
    accepted = list(inspect.signature(cls).parameters)[1:]
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        raise TypeError(f"get_optimizer: {cls.__name__} does not take {unknown}; it takes "
                        f"{accepted}")
    return cls(params, **kwargs)
