"""The networks of courses 1 and 2, as Sequential models ready to compile and fit."""

from __future__ import annotations

from strata.nn.initializers import RandomNormal
from strata.nn.layers import Dense
from strata.nn.sequential import Sequential


def logistic_regression(n_x: int | None = None) -> Sequential:
    """Course 1 week 2: y_hat = sigmoid(X w + b), w and b initialized to zeros (logistic
    regression has no symmetry to break). Train with loss="binary_crossentropy"."""
    model = Sequential([Dense(1, "sigmoid", kernel_initializer="zeros")])
    if n_x is not None:
        model.build((n_x,))
    return model


def shallow_network(n_x: int | None = None, n_h: int = 4) -> Sequential:
    """Course 1 week 3's planar-data network: one tanh hidden layer of n_h units, a sigmoid
    output, weights randn * 0.01."""
    model = Sequential([Dense(n_h, "tanh", kernel_initializer=RandomNormal(0.01)),
                        Dense(1, "sigmoid", kernel_initializer=RandomNormal(0.01))])
    if n_x is not None:
        model.build((n_x,))
    return model


def deep_network(layer_dims=(12288, 20, 7, 5, 1), hidden_activation: str = "relu",
                 initializer="xavier") -> Sequential:
    """Course 1 week 4's L-layer network: layer_dims[0] inputs, ReLU hidden layers, a sigmoid
    output (softmax when the last size is above 1); weights randn / sqrt(n_prev) as the course's
    initialize_parameters_deep (use initializer="he" for deeper ReLU nets)."""
    dims = [int(d) for d in layer_dims]
    if len(dims) < 2 or min(dims) < 1:
        raise ValueError(f"deep_network: expected at least two positive layer sizes (inputs, "
                         f"outputs), got {list(layer_dims)}")
    out_activation = "sigmoid" if dims[-1] == 1 else "softmax"
    layers = [Dense(n, hidden_activation, kernel_initializer=initializer) for n in dims[1:-1]]
    model = Sequential([*layers, Dense(dims[-1], out_activation, kernel_initializer=initializer)])
    model.build((dims[0],))
    return model
