"""Which implementation of the compiled kernels an op runs: chosen here, in one place, from the
array module of the op's inputs.

NumPy arrays get the numba loops (strata/ops/cpu_kernels.py gathers them, with the batch
splitting of strata/ops/parallel.py); arrays of any other module (CuPy on a GPU, the test
suite's strict stand-in for it) get the same computations written as array-module expressions
(strata/ops/xp_kernels.py). Both offer the same names with the same arguments, so an op asks
``kernels_for(array_module(x))`` and never tests which library it runs on. The NumPy path
costs one dict lookup.
"""

from __future__ import annotations

import numpy as np

_TABLE: dict = {}


def kernels_for(xp):
    """The kernel families for arrays of the module ``xp``: ReLU, batch norm, pooling,
    convolution (a Function, ``Conv2D``), the recurrent steps and the embedding's scatter."""
    try:
        return _TABLE[xp]
    except KeyError:
        pass
    if xp is np:
        from strata.ops import cpu_kernels as kernels  # noqa: PLC0415 -- imports conv.py
    else:
        from strata.ops.xp_kernels import XpKernels  # noqa: PLC0415

        kernels = XpKernels(xp)
    _TABLE[xp] = kernels
    return kernels
