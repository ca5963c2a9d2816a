"""Core layers of courses 1 and 2: Dense, Activation, Flatten, Dropout, BatchNorm."""

from __future__ import annotations

import numpy as np

from strata import backend, ops
from strata.autograd import ShapeError
from strata.naming import lookup
from strata.nn.initializers import get_initializer
from strata.nn.module import Module
from strata.tensor import Tensor


def _as_tensor(x) -> Tensor:
    return x if isinstance(x, Tensor) else Tensor(x)


def check_regularization(l2, l1, where: str):
    """Validate a layer's or model's (l2, l1) strengths: None or a number >= 0."""
    for name, value in (("l2", l2), ("l1", l1)):
        if value is not None and not (isinstance(value, (int, float)) and value >= 0):
            raise ValueError(f"{where}: expected {name} >= 0 or None, got {value!r}")
    return l2, l1


def linear(x):
    """The identity activation g(z) = z."""
    return x


ACTIVATIONS = {"sigmoid": ops.sigmoid, "tanh": ops.tanh, "relu": ops.relu,
               "leaky_relu": ops.leaky_relu, "softmax": ops.softmax, "linear": linear}


def get_activation(activation):
    """An activation from its name (sigmoid, tanh, relu, leaky_relu, softmax, linear), None
    (linear), or a callable on Tensors, returned as is."""
    return linear if activation is None else lookup(ACTIVATIONS, activation, "activation")


class Activation(Module):
    """Applies an activation function: ``Activation("relu")``."""

    def __init__(self, activation):
        self.config = {"activation": activation}
        self.name = activation if isinstance(activation, str) else getattr(
            activation, "__name__", repr(activation))
        self.fn = get_activation(activation)

    def forward(self, x):
        return self.fn(_as_tensor(x))

    def extra_repr(self) -> str:
        return repr(self.name)


class LeakyReLU(Activation):
    """Leaky ReLU with slope ``alpha`` for z < 0: ``LeakyReLU(0.1)`` is Darknet's (YOLO's)
    "leaky" activation; the default 0.01 is the course's, as ``Activation("leaky_relu")``
    (Keras's LeakyReLU defaults to 0.3)."""

    def __init__(self, alpha: float = 0.01):
        if isinstance(alpha, bool) or not (isinstance(alpha, (int, float)) and 0 <= alpha < 1):
            raise ValueError(f"LeakyReLU: expected 0 <= alpha < 1, got {alpha!r}")
        self.alpha, self.name = float(alpha), "leaky_relu"
        self.config = {"alpha": self.alpha}

    def fn(self, x):
        return ops.leaky_relu(x, self.alpha)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}"


class Dense(Module):
    """Fully connected layer: Z = A_prev W + b, then the activation (A = g(Z)).

    W has shape (n_prev, units) and is created on the first call, when n_prev is known.
    ``use_bias=False`` drops b, as when BatchNorm follows (its beta plays b's role).
    ``l2``/``l1`` regularize this layer's W (see ``Model.compile``); None uses the model's.
    """

    def __init__(self, units: int, activation=None, use_bias: bool = True,
                 kernel_initializer="glorot", bias_initializer="zeros", l2=None, l1=None):
        if not isinstance(units, (int, np.integer)) or units <= 0:
            raise ValueError(f"Dense: expected a positive number of units, got {units!r}")
        self.config = {"units": int(units), "activation": activation, "use_bias": use_bias,
                       "kernel_initializer": kernel_initializer,
                       "bias_initializer": bias_initializer, "l2": l2, "l1": l1}
        self.l2, self.l1 = check_regularization(l2, l1, f"Dense({units})")
        self.units, self.use_bias = int(units), use_bias
        self.activation = get_activation(activation)
        self.kernel_initializer = get_initializer(kernel_initializer)
        self.bias_initializer = get_initializer(bias_initializer)
        self.W = self.b = None

    def build(self, n_prev: int) -> None:
        """Create W (n_prev, units) and b (units,)."""
        self.W = Tensor(self.kernel_initializer((n_prev, self.units)), requires_grad=True)
        if self.use_bias:
            self.b = Tensor(self.bias_initializer((self.units,)), requires_grad=True)

    def forward(self, x):
        x = _as_tensor(x)
        if x.ndim < 1:
            raise ShapeError(f"Dense({self.units}): expected input (m, n_prev), got a scalar")
        if self.W is None:
            self.build(x.shape[-1])
        elif x.shape[-1] != self.W.shape[0]:
            raise ShapeError(f"Dense({self.units}): expected inputs with {self.W.shape[0]} "
                             f"features on the last axis, got shape {x.shape}")
        z = ops.linear(x, self.W, self.b) if self.use_bias else ops.matmul(x, self.W)
        return self.activation(z)

    def extra_repr(self) -> str:
        name = getattr(self.activation, "__name__", "custom")
        return f"{self.units}, activation={name!r}" + ("" if self.use_bias else ", use_bias=False")


class Flatten(Module):
    """Reshape (m, ...) to (m, n): images (m, n_H, n_W, n_C) become rows of n_H*n_W*n_C."""

    def forward(self, x):
        x = _as_tensor(x)
        if x.ndim < 1:
            raise ShapeError("Flatten: expected input with a batch axis, got a scalar")
        return ops.reshape(x, (x.shape[0], -1))


class Dropout(Module):
    """Inverted dropout: in training keep each unit with probability ``keep_prob`` and scale by
    1/keep_prob; in eval mode (``model.eval()``) the identity."""

    def __init__(self, keep_prob: float):
        if not 0 < keep_prob <= 1:
            raise ValueError(f"Dropout: expected 0 < keep_prob <= 1, got {keep_prob}")
        self.config = {"keep_prob": keep_prob}
        self.keep_prob = keep_prob

    def forward(self, x):
        return ops.dropout(_as_tensor(x), self.keep_prob, training=self.training)

    def extra_repr(self) -> str:
        return f"keep_prob={self.keep_prob}"


class BatchNorm(Module):
    """Batch normalization of the last axis (features of Dense outputs, channels of NHWC).

    Training: normalize Z with the mini-batch mean and variance, then gamma * Z_norm + beta,
    and update the running averages mu <- momentum * mu + (1 - momentum) * mu_batch (likewise
    sigma^2, the batch's population variance). Eval mode: normalize with the running averages.
    ``activation`` (as Dense's) is applied to the result: ``BatchNorm(activation="relu")`` is
    ``BatchNorm()`` then ``Activation("relu")`` in one fused pass, the usual conv -> batch
    norm -> ReLU unit at a lower cost.
    """

    state_names = ("running_mean", "running_var")

    def __init__(self, momentum: float = 0.9, epsilon: float = 1e-3, activation=None):
        if not 0 <= momentum < 1:
            raise ValueError(f"BatchNorm: expected 0 <= momentum < 1, got {momentum}")
        if not epsilon > 0:
            raise ValueError(f"BatchNorm: expected epsilon > 0, got {epsilon}")
        self.config = {"momentum": momentum, "epsilon": epsilon, "activation": activation}
        self.momentum, self.epsilon = momentum, epsilon
        self.activation = get_activation(activation)
        self.gamma = self.beta = self.running_mean = self.running_var = None

    def build(self, n: int) -> None:
        """Create gamma (ones), beta (zeros) and the running averages for n features."""
        dtype = backend.get_default_dtype()
        self.gamma = Tensor(np.ones(n, dtype), requires_grad=True)
        self.beta = Tensor(np.zeros(n, dtype), requires_grad=True)
        self.running_mean = Tensor(np.zeros(n, dtype))
        self.running_var = Tensor(np.ones(n, dtype))

    def forward(self, x):
        x = _as_tensor(x)
        if self.gamma is None:
            self.build(x.shape[-1])
        elif x.shape[-1] != self.gamma.shape[0]:
            raise ShapeError(f"BatchNorm: expected {self.gamma.shape[0]} features/channels on "
                             f"the last axis, got shape {x.shape}")
        fused = self.activation is ops.relu
        if not self.training:
            running = (self.running_mean.data, self.running_var.data)
            out = ops.batch_norm(x, self.gamma, self.beta, self.epsilon, running, fused)[0]
            return out if fused else self.activation(out)
        out, (mean, var) = ops.batch_norm(x, self.gamma, self.beta, self.epsilon, relu=fused)
        m = self.momentum
        self.running_mean.data = (m * self.running_mean.data + (1 - m) * mean).astype(
            self.running_mean.dtype)
        self.running_var.data = (m * self.running_var.data + (1 - m) * var).astype(
            self.running_var.dtype)
        return out if fused else self.activation(out)

    def extra_repr(self) -> str:
        name = self.config["activation"]
        return f"momentum={self.momentum}, epsilon={self.epsilon}" + (
            "" if name is None else f", activation={getattr(name, '__name__', name)!r}")
