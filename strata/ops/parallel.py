"""Batch-parallel work for the convolution ops: the images of a batch are split into one
contiguous part per thread, and each thread copies its own patches and multiplies them with
single-threaded BLAS (as PyTorch's and Caffe's im2col convolutions do).

Why not one multi-threaded GEMM per block of patches: a block copied by one core and then
read by both BLAS threads moves half of it between the cores' caches, and the next copy into
the same buffer moves it back. On this project's 2-core machines that traffic doubled the time
of a 32-channel 3x3 convolution (one 1.2 GFLOP forward: 24-35 ms against 14-17 ms split by
images; docs/ARCHITECTURE.md). Split by images, each core reads only what it wrote.

Work under ``MIN_FLOPS`` is not split: its parts are too small to gain, and after a
multi-threaded GEMM elsewhere (a Dense layer's) OpenBLAS's idle threads keep spinning for a
while and compete with the split's threads for the cores (LeNet-5's 61 MFLOP convolution lost
4-5 ms a step that way). The limit is measured on 2 cores; MAX_THREADS is a guess, untried.

The work runs on a small pool of Python threads; NumPy's copies, BLAS and the numba kernels
(compiled with nogil) release the GIL, so the parts run at the same time. The number of
threads is BLAS's own thread count at the time of the call (so a ``threadpoolctl`` limit set
by the user applies), at most ``MAX_THREADS``; BLAS is held to one thread while the parts run.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

MIN_ELEMENTS = 1 << 20  # per over_rows call: the small ResNet's 2M splits, LeNet-5's 0.6M not
MIN_FLOPS = 64e6  # per call: a 1x1 ResNet shortcut (67 MFLOP) splits, LeNet-5's conv (61) not
MAX_THREADS = 8  # beyond this the Python between the GEMMs would contend for the GIL

_lock = threading.Lock()
_state = {}  # "blas": threadpoolctl's controller of the loaded BLAS libraries, "pool"


def _after_fork_in_child() -> None:
    """A forked child (multiprocessing's default on Linux) has none of the parent's threads:
    it starts its own pool, and its own lock in case another thread held it at the fork."""
    global _lock
    _lock = threading.Lock()
    _state.pop("pool", None)


os.register_at_fork(after_in_child=_after_fork_in_child)


def _blas():
    with _lock:
        if "blas" not in _state:
            from threadpoolctl import ThreadpoolController
            _state["blas"] = ThreadpoolController().select(user_api="blas")
        return _state["blas"]


def threads() -> int:
    """How many parts a batch is split into: BLAS's current thread count, at most MAX_THREADS."""
    libraries = _blas().lib_controllers
    if not libraries:
        return 1
    return max(1, min(MAX_THREADS, *(library.num_threads for library in libraries)))


def _pool() -> ThreadPoolExecutor:
    with _lock:
        if "pool" not in _state:
            _state["pool"] = ThreadPoolExecutor(MAX_THREADS - 1, thread_name_prefix="strata")
        return _state["pool"]


def split(m: int, parts: int) -> list[slice]:
    """``parts`` contiguous slices of range(m), sizes differing by at most one."""
    return [slice(k * m // parts, (k + 1) * m // parts) for k in range(parts)]


def over_images(work, m: int, flops: float = float("inf"), serial_if_small: bool = False) -> list:
    """[work(images) for each part] where the parts are contiguous slices of range(m), one per
    thread; the calling thread runs the first part. Exceptions propagate to the caller.
    Work too small to split runs on one BLAS thread if ``serial_if_small``."""
    n = min(threads(), m) if flops >= MIN_FLOPS else 1
    if n <= 1:
        if not serial_if_small or flops >= MIN_FLOPS:
            return [work(slice(0, m))]
        with serial():
            return [work(slice(0, m))]
    first, *rest = split(m, n)
    with _blas().limit(limits=1):
        futures = [_pool().submit(work, part) for part in rest]
        try:
            head = work(first)
        except BaseException:
            for future in futures:  # every part ends before BLAS gets its threads back
                future.exception()
            raise
        return [head, *(future.result() for future in futures)]


def over_rows(work, rows: int, elements: int) -> list:
    """[work(start, stop) for each part] of range(rows), split like over_images when the
    arrays hold at least MIN_ELEMENTS: for the memory-bound numba loops (batch norm, ReLU) on
    large batches, whose parts run at once since the loops release the GIL."""
    n = min(threads(), rows) if elements >= MIN_ELEMENTS else 1
    if n <= 1:
        return [work(0, rows)]
    first, *rest = split(rows, n)
    futures = [_pool().submit(work, part.start, part.stop) for part in rest]
    try:
        head = work(first.start, first.stop)
    except BaseException:
        for future in futures:
            future.exception()
        raise
    return [head, *(future.result() for future in futures)]


def serial():
    """Context holding BLAS to one thread, for small products: a multi-threaded one wakes
    OpenBLAS's workers, which then spin for about 2**28 cycles (OpenBLAS's THREAD_TIMEOUT,
    tens of milliseconds) and take a core from every split that follows. In the digit
    detector's step (benchmarks/yolo.py) a 33 MFLOP first convolution and a bias gradient did
    that, and its 3x3 convolutions ran about 2x slower than alone."""
    return _blas().limit(limits=1)


def sum_over_images(work, m: int, flops: float = float("inf"), serial_if_small: bool = False):
    """The sum of ``over_images(work, m)``'s results (None if ``work`` returns None)."""
    first, *rest = over_images(work, m, flops, serial_if_small)
    if first is None:
        return None
    for result in rest:
        first += result
    return first
