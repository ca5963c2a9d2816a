"""Layers and models: Module, Sequential, the core layers, initializers."""

from strata.nn.initializers import RandomNormal, get_initializer, glorot, he, xavier, zeros
from strata.nn.layers import (
    Activation,
    BatchNorm,
    Dense,
    Dropout,
    Flatten,
    get_activation,
)
from strata.nn.module import Module, Sequential

#: Layer class names -> classes, for rebuilding saved models.
LAYERS = {cls.__name__: cls for cls in (Sequential, Dense, Activation, Flatten, Dropout,
                                        BatchNorm)}

__all__ = [
    "Module", "Sequential", "Dense", "Activation", "Flatten", "Dropout", "BatchNorm",
    "get_activation", "get_initializer", "zeros", "RandomNormal", "xavier", "glorot", "he",
]
