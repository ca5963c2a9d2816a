"""The one seam between strata and its array library, its dtype policy and its random numbers.

Everything else asks this module for the array module (``xp``), the default floating dtype and
the shared random Generator, so that swapping NumPy for a NumPy-compatible library such as CuPy
later touches this file only.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np

#: The array module strata computes with on the CPU. Ops call ``array_module(x)`` on their
#: inputs instead of naming NumPy, so arrays of another NumPy-compatible library (CuPy on a GPU)
#: flow through them.
xp = np

_default_dtype: np.dtype = np.dtype(np.float32)
_rng: np.random.Generator = np.random.default_rng()

#: array type -> the module that computes with it (``register_array_module``).
_ARRAY_MODULES: dict[type, object] = {np.ndarray: np}
#: device name -> a function returning its array module (importing it on first use).
_DEVICES: dict = {}


def register_array_module(array_type: type, module) -> None:
    """Make ``array_module`` return ``module`` for arrays of ``array_type`` (CuPy registers
    itself on first sight; the test suite registers its strict CPU stand-in for CuPy)."""
    _ARRAY_MODULES[array_type] = module


def array_module(*arrays) -> object:
    """Return the array module (NumPy, or CuPy when given CuPy arrays) that owns ``arrays``;
    numbers, None and NumPy scalars do not count."""
    for a in arrays:
        module = _ARRAY_MODULES.get(type(a))  # one dict lookup on the NumPy fast path
        if module is None:
            module = _unseen_type(type(a))
        if module is not np:
            return module
    return xp


def _unseen_type(array_type: type):
    """The module of a type met for the first time: CuPy for CuPy's arrays (imported then),
    NumPy for anything else (numbers, NumPy scalars, lists), remembered either way."""
    module = np
    if array_type.__module__.startswith("cupy"):
        import cupy  # noqa: PLC0415 -- optional, only when CuPy arrays are present

        module = cupy
    register_array_module(array_type, module)
    return module


def to_numpy(a) -> np.ndarray:
    """``a`` as a NumPy array: itself if it is one, else an explicit copy to the host."""
    if type(a) is np.ndarray:
        return a
    module = array_module(a)
    return np.asarray(a) if module is np else module.asnumpy(a)


def _cupy():
    from strata.extras import require  # noqa: PLC0415 -- only when a GPU is asked for

    cupy = require("cupy", "gpu", "training on a GPU")
    register_array_module(cupy.ndarray, cupy)
    return cupy


def register_device(name: str, module_loader) -> None:
    """Name a device: ``module_loader()`` returns its array module (which needs ``asarray``
    from NumPy arrays and ``asnumpy``). "cpu" (NumPy) and "gpu" (CuPy) are built in; the test
    suite adds its CuPy stand-in this way."""
    _DEVICES[name] = module_loader
    _LOADED.pop(name, None)


_LOADED: dict = {}  # device name -> its array module, once loaded


register_device("cpu", lambda: np)
register_device("gpu", _cupy)
register_device("cuda", _cupy)


def device_module(device: str):
    """The array module of a device name ("cpu", "gpu"/"cuda", or one registered); asking for
    the GPU without CuPy raises an error naming the ``strata[gpu]`` extra."""
    name = device.split(":")[0] if isinstance(device, str) else device
    module = _LOADED.get(name)
    if module is None:
        if name not in _DEVICES:
            raise ValueError(f"unknown device {device!r}: expected one of {sorted(_DEVICES)}")
        module = _LOADED[name] = _DEVICES[name]()
    return module


def device_of(a) -> str:
    """The name of the device that holds the array ``a`` ("cpu" for NumPy arrays)."""
    module = array_module(a)
    if module is np:
        return "cpu"
    for name in _DEVICES:
        try:
            if device_module(name) is module:
                return name
        except ImportError:  # CuPy missing: that device holds nothing
            continue
    return getattr(module, "__name__", "device")


#: The array module new tensors go to (Tensor() moves NumPy data there), or None: set while a
#: module moved by ``Module.to`` runs, so that layers built on their first call, and the NumPy
#: batches they are given, land on the module's device.
_placement = None


@contextlib.contextmanager
def placing(module) -> Iterator[None]:
    """Context manager: tensors created inside go to the array module ``module`` (None: stay)."""
    global _placement
    previous, _placement = _placement, module
    try:
        yield
    finally:
        _placement = previous


def to_device(a, device):
    """The array ``a`` on ``device`` (a name or an array module): ``a`` itself when it is
    there already, else an explicit copy through the host."""
    module = device_module(device) if isinstance(device, str) else device
    if array_module(a) is module:
        return a
    host = to_numpy(a)
    return host if module is np else module.asarray(host)


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
