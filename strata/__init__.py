"""strata: deep learning from first principles on NumPy, in the Deep Learning Specialization's
notation. This file is the public table of contents."""

from strata import data, losses, metrics, models, nn, optim, strategy, text

# strata.tune (hyperparameter search) is imported on use: it brings in Optuna.
from strata.autograd import ShapeError, detect_anomaly, is_grad_enabled, no_grad
from strata.backend import default_dtype, get_default_dtype, rng, seed, set_default_dtype
from strata.gradcheck import (
    GradientReport,
    check_model,
    check_model_gradients,
    gradcheck,
    parameters_to_vector,
    relative_difference,
    vector_to_parameters,
)
from strata.io import load_model, save_model
from strata.ops import (
    abs,
    add,
    astype,
    avg_pool2d,
    batch_norm,
    broadcast_to,
    clip,
    concatenate,
    conv2d,
    div,
    dropout,
    embedding,
    exp,
    expand_dims,
    getitem,
    gru,
    gru_cell,
    leaky_relu,
    linear,
    log,
    log_softmax,
    lstm,
    lstm_cell,
    matmul,
    max,
    max_pool2d,
    maximum,
    mean,
    min,
    minimum,
    mul,
    neg,
    pad,
    permute,
    pow,
    relu,
    reshape,
    rnn,
    rnn_cell,
    sigmoid,
    softmax,
    softmax_cross_entropy,
    space_to_depth,
    sqrt,
    squeeze,
    stack,
    sub,
    sum,
    tanh,
    transpose,
    var,
    where,
)
from strata.tensor import Tensor, tensor

__version__ = "0.1.0"

__all__ = [
    "nn", "data", "optim", "losses", "metrics", "models", "strategy", "text", "save_model",
    "load_model",
    "add", "sub", "mul", "div", "neg", "pow", "exp", "log", "sqrt", "abs", "maximum", "minimum",
    "where", "clip", "astype", "tanh", "sigmoid", "relu", "leaky_relu", "softmax", "log_softmax",
    "softmax_cross_entropy", "dropout", "batch_norm", "conv2d", "max_pool2d", "avg_pool2d",
    "matmul", "linear", "sum", "mean", "max", "min", "var", "reshape", "transpose", "permute",
    "broadcast_to", "expand_dims", "squeeze", "getitem", "concatenate", "stack", "pad",
    "space_to_depth", "rnn", "lstm", "gru", "rnn_cell", "lstm_cell", "gru_cell", "embedding",
    "Tensor", "tensor", "no_grad", "is_grad_enabled", "ShapeError", "detect_anomaly",
    "seed", "rng", "get_default_dtype", "set_default_dtype", "default_dtype",
    "gradcheck", "check_model", "check_model_gradients", "GradientReport", "relative_difference",
    "parameters_to_vector", "vector_to_parameters",
]
