"""The one seam between strata and its array library, its dtype policy and its random numbers.

Everything else asks this module for the array module (``xp``), the default floating dtype and
the shared random Generator, so that swapping NumPy for a NumPy-compatible library such as CuPy
later touches this file only.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np

#: The array module strata computes with. Ops call ``array_module(x)`` on their inputs instead of
#: naming NumPy, so arrays of another NumPy-compatible library can flow through later.
xp = np

_default_dtype: np.dtype = np.dtype(np.float32)
_rng: np.random.Generator = np.random.default_rng()


def array_module(*arrays) -> object:
    """Return the array module (NumPy, or CuPy when given CuPy arrays) that owns ``arrays``."""
    for a in arrays:
        module = type(a).__module__
        if module.startswith("cupy"):
            import cupy  # noqa: PLC0415 -- optional, only when CuPy arrays are present

            return cupy
    return xp


def get_default_dtype() -> np.dtype:
    """The floating dtype new tensors get when none is given (float32 unless changed)."""
    return _default_dtype


def set_default_dtype(dtype) -> None:
    """Set the floating dtype new tensors get when none is given (float32 or float64)."""
    global _default_dtype
    dt = np.dtype(dtype)
    if dt not in (np.float16, np.float32, np.float64):
        raise ValueError(f"set_default_dtype: expected a floating dtype (float16, float32 or "
                         f"float64), got {dt}")
    _default_dtype = dt


@contextlib.contextmanager
def default_dtype(dtype) -> Iterator[None]:
    """Context manager: use ``dtype`` as the default floating dtype inside the block."""
    previous = _default_dtype
    set_default_dtype(dtype)
    try:
        yield
    finally:
        set_default_dtype(previous)


def seed(n: int) -> None:
    """Seed strata's single random Generator (initializers, dropout, shuffling, augmentation)."""
    global _rng
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 0:
        raise ValueError(f"seed: expected a non-negative integer, got {n!r}")
    _rng = np.random.default_rng(int(n))


def rng() -> np.random.Generator:
    """The shared random Generator; call ``strata.seed(n)`` to make runs repeatable."""
    return _rng


def is_float(dtype) -> bool:
    """True for floating dtypes (the only ones that can carry gradients)."""
    return np.issubdtype(np.dtype(dtype), np.floating)


# glibc's malloc returns every freed block above 128 KiB to the operating system (munmap, heap
# trimming), so each training step's activations come back as fresh pages that the kernel must
# fault in and zero: about 4000 page faults (16 MB) per LeNet-5 step and 26000 (100 MB) per
# step of a small ResNet, 10-25 % of their CPU time. Serving every block from the heap and
# keeping freed memory for reuse, as PyTorch's allocators do, removes them; the process keeps
# its peak heap size. Explicit MALLOC_* settings in the environment win.
_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4  # mallopt parameter numbers (malloc.h)
_TRIM_THRESHOLD = 1 << 30  # give memory back only when a whole GiB at the heap's top is free


def _keep_freed_memory() -> bool:
    """Ask glibc to keep freed memory for reuse; True when it was set (glibc Linux only)."""
    import ctypes
    import os
    import sys

    if sys.platform != "linux" or any(k.startswith("MALLOC_") for k in os.environ):
        return False
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):  # musl or another C library: nothing to tune
        return False
    return bool(mallopt(_M_MMAP_MAX, 0) and mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD))


_keep_freed_memory()
