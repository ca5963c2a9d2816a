"""Layers and models: Module, Sequential, the core layers, initializers."""

from strata.nn.blocks import Add, Concatenate, Parallel, Residual
from strata.nn.callbacks import (
    Callback,
    CostPrinter,
    CSVLogger,
    EarlyStopping,
    History,
    LearningRateScheduler,
    ModelCheckpoint,
    TensorBoard,
)
from strata.nn.checkpoint import load_checkpoint, save_checkpoint
from strata.nn.conv import AvgPool2D, Conv2D, GlobalAveragePooling2D, MaxPool2D, ZeroPadding2D
from strata.nn.fitloop import TrainingInterrupted
from strata.nn.initializers import (
    RandomNormal,
    get_initializer,
    glorot,
    he,
    orthogonal,
    xavier,
    zeros,
)
from strata.nn.layers import (
    Activation,
    BatchNorm,
    Dense,
    Dropout,
    Flatten,
    LeakyReLU,
    get_activation,
)
from strata.nn.module import Module
from strata.nn.recurrent import GRU, LSTM, Bidirectional, SimpleRNN
from strata.nn.registry import REGISTRY, register
from strata.nn.sequence import Embedding, OneHot, TimeDistributed
from strata.nn.sequential import Sequential
from strata.nn.space import SpaceToDepth
from strata.nn.training import Model
from strata.nn.transfer import freeze, precompute_features, replace_head

#: Class names -> classes, for rebuilding saved models: strata's layers and models, and the
#: classes registered with @strata.nn.register (the same dict as registry.REGISTRY).
LAYERS = REGISTRY
LAYERS.update({cls.__name__: cls for cls in (
    Sequential, Dense, Activation, Flatten, Dropout, BatchNorm, Conv2D, MaxPool2D, AvgPool2D,
    ZeroPadding2D, GlobalAveragePooling2D, Add, Concatenate, Residual, Parallel, SimpleRNN, GRU,
    LSTM, Bidirectional, TimeDistributed, Embedding, OneHot, LeakyReLU, SpaceToDepth)})

__all__ = [
    "Module", "Model", "Sequential", "Callback", "History", "CostPrinter", "EarlyStopping",
    "TrainingInterrupted", "save_checkpoint", "load_checkpoint", "register",
    "ModelCheckpoint", "CSVLogger", "LearningRateScheduler", "TensorBoard",
    "Dense", "Activation", "Flatten", "Dropout", "BatchNorm",
    "Conv2D", "MaxPool2D", "AvgPool2D", "ZeroPadding2D", "GlobalAveragePooling2D",
    "Add", "Concatenate", "Residual", "Parallel",
    "freeze", "replace_head", "precompute_features",
    "SimpleRNN", "GRU", "LSTM", "Bidirectional", "TimeDistributed", "Embedding",
    "OneHot", "LeakyReLU", "SpaceToDepth",
    "get_activation", "get_initializer", "zeros", "RandomNormal", "xavier", "glorot", "he",
    "orthogonal",
]
