"""Differentiable primitives, grouped by topic. Each has a hand-written, vectorized backward."""

from strata.ops.activation import leaky_relu, log_softmax, relu, sigmoid, softmax, tanh
from strata.ops.conv import avg_pool2d, conv2d, max_pool2d
from strata.ops.elementwise import (
    abs,
    add,
    astype,
    clip,
    div,
    exp,
    log,
    maximum,
    minimum,
    mul,
    neg,
    pow,
    sqrt,
    sub,
    where,
)
from strata.ops.linalg import linear, matmul
from strata.ops.nn import batch_norm, dropout, softmax_cross_entropy
from strata.ops.recurrent import embedding, gru, gru_cell, lstm, lstm_cell, rnn, rnn_cell
from strata.ops.reduce import max, mean, min, sum, var
from strata.ops.shape import (
    broadcast_to,
    concatenate,
    expand_dims,
    getitem,
    pad,
    permute,
    reshape,
    squeeze,
    stack,
    transpose,
)
from strata.ops.space import space_to_depth

__all__ = [
    # elementwise
    "add", "sub", "mul", "div", "neg", "pow", "exp", "log", "sqrt", "abs", "maximum", "minimum",
    "where", "clip", "astype",
    # activations
    "tanh", "sigmoid", "relu", "leaky_relu", "softmax", "log_softmax",
    # linear algebra
    "matmul", "linear",
    # fused neural-network ops
    "softmax_cross_entropy", "dropout", "batch_norm",
    # convolution and pooling (NHWC)
    "conv2d", "max_pool2d", "avg_pool2d",
    # recurrent (sequences (m, T_x, n_x)) and embeddings
    "rnn", "lstm", "gru", "rnn_cell", "lstm_cell", "gru_cell", "embedding",
    # reductions
    "sum", "mean", "max", "min", "var",
    # shape
    "reshape", "transpose", "permute", "broadcast_to", "expand_dims", "squeeze", "getitem",
    "concatenate", "stack", "pad", "space_to_depth",
]
