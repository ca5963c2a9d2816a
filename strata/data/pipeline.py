"""A background data pipeline (course 4 week 2): CPU threads cut and distort the next
mini-batches while training runs on the current one.

``Pipeline`` yields the same batches as ``iterate_minibatches`` (full batches, then a smaller
last one), reshuffled every epoch with the shared Generator, and applies ``transform(xb, rng)`` to
each batch in a worker thread that fills a bounded queue; NumPy releases the GIL inside its
kernels, so the preparation overlaps with the training step. With a ``device`` ("gpu", or any
registered one) the worker also copies each prepared batch there, so the copy overlaps with the
step too; ``fit`` on a model moved to a device asks for its device this way.
"""

from __future__ import annotations

import math
import queue
import threading
from collections.abc import Iterator

import numpy as np

from strata import backend

__all__ = ["Pipeline"]

_DONE = object()  # end-of-epoch marker put on the queue by the worker


class _Failure:
    """An exception caught in the worker, carried to the consumer to be raised there."""

    def __init__(self, error: BaseException):
        self.error = error


def _is_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


class Pipeline:
    """Iterable over one epoch of mini-batches (xb, yb) per ``iter()``, prepared in the background.

    ``transform(xb, rng)`` (e.g. an augmentation from strata.data.augment) runs on each X batch
    with a per-batch Generator seeded from ``strata.rng()`` in the consumer's thread, so
    ``strata.seed(n)`` makes every epoch repeatable whatever the thread timing. ``prefetch`` is
    the number of batches prepared ahead (0: synchronous, no thread). An exception raised in the
    worker is raised again in the consumer with its original traceback; leaving the loop early
    (``break``) stops and joins the worker. ``device`` (None: NumPy batches on the host): the
    device the batches are copied to once prepared, in the worker (X and Y stay on the host).
    """

    def __init__(self, X, Y=None, batch_size: int = 32, transform=None, shuffle: bool = True,
                 prefetch: int = 2, device: str | None = None):
        X, Y = np.asarray(X), (None if Y is None else np.asarray(Y))
        if X.ndim < 2:
            raise ValueError(f"Pipeline: expected X with at least 2 dimensions (m, ...), got "
                             f"shape {X.shape}")
        if Y is not None and len(Y) != len(X):
            raise ValueError(f"Pipeline: X has {len(X)} examples but Y has {len(Y)}; the first "
                             f"axis of both counts examples")
        if not _is_int(batch_size) or batch_size < 1:
            raise ValueError(f"Pipeline: expected a positive integer batch_size, got "
                             f"{batch_size!r}")
        if not _is_int(prefetch) or prefetch < 0:
            raise ValueError(f"Pipeline: expected a non-negative integer prefetch (0 means no "
                             f"background thread), got {prefetch!r}")
        if transform is not None and not callable(transform):
            raise TypeError(f"Pipeline: expected transform to be None or a callable "
                            f"transform(xb, rng), got {transform!r}")
        self.X, self.Y = X, Y
        self.batch_size, self.transform, self.shuffle = int(batch_size), transform, bool(shuffle)
        self.prefetch = int(prefetch)
        self.num_examples = len(X)
        if device is not None:
            backend.device_module(device)  # an unknown device, or the GPU without CuPy, fails now
        self.device = device

    def __len__(self) -> int:
        """Number of mini-batches per epoch: ceil(m / batch_size)."""
        return math.ceil(self.num_examples / self.batch_size)

    def __repr__(self) -> str:
        return (f"Pipeline(num_examples={self.num_examples}, batch_size={self.batch_size}, "
                f"transform={self.transform!r}, shuffle={self.shuffle}, "
                f"prefetch={self.prefetch}"
                + ("" if self.device is None else f", device={self.device!r}") + ")")

    def __iter__(self) -> Iterator[tuple]:
        return self.epoch()

    def epoch(self, start: int = 0, device: str | None = None) -> Iterator[tuple]:
        """One epoch's batches from batch ``start`` on (``iter()`` starts at 0; fit resuming an
        interrupted epoch starts later, with the same batches and distortions), on ``device``
        (None: the pipeline's own ``device``)."""
        # Random draws happen here, in the consumer's thread and in a fixed order, so that
        # results depend on strata.seed only; the epoch's seed is drawn only with a transform
        # so that without one the shared Generator advances exactly as iterate_minibatches does.
        # Batch k distorts with its own Generator, seeded by (epoch seed, k), so that an epoch
        # can resume at any batch.
        shared = backend.rng()
        order = shared.permutation(self.num_examples) if self.shuffle else None
        seed = int(shared.integers(2**63)) if self.transform is not None else None
        device = self.device if device is None else device
        if self.prefetch == 0:
            return self._batches(order, seed, start, device)
        return self._threaded(order, seed, start, device)

    def _batches(self, order, seed, start, device=None) -> Iterator[tuple]:
        for k in range(start, len(self)):
            rows = slice(k * self.batch_size, (k + 1) * self.batch_size)
            picked = order[rows] if order is not None else rows
            xb = self.X[picked]
            yb = None if self.Y is None else self.Y[picked]
            if self.transform is not None:
                xb = self.transform(xb, np.random.default_rng([seed, k]))
            if device is not None:
                xb = backend.to_device(xb, device)
                yb = None if yb is None else backend.to_device(yb, device)
            yield xb, yb

    def _threaded(self, order, seed, start, device) -> Iterator[tuple]:
        q: queue.Queue = queue.Queue(maxsize=self.prefetch)
        stop = threading.Event()
        worker = threading.Thread(target=self._fill, args=(q, stop, order, seed, start, device),
                                  daemon=True, name="strata-pipeline")
        worker.start()
        try:
            while True:
                item = q.get()
                if item is _DONE:
                    return
                if isinstance(item, _Failure):
                    raise item.error  # keeps the worker's traceback, adds the consumer's frames
                yield item
        finally:
            stop.set()
            worker.join()

    def _fill(self, q: queue.Queue, stop: threading.Event, order, seed, start, device) -> None:
        try:
            for item in self._batches(order, seed, start, device):
                if not _put(q, item, stop):
                    return
            _put(q, _DONE, stop)
        except BaseException as error:  # any failure must reach the consumer, not vanish
            if hasattr(error, "add_note"):  # Python >= 3.11
                error.add_note("(raised in strata.data.Pipeline's background thread)")
            _put(q, _Failure(error), stop)


def _put(q: queue.Queue, item, stop: threading.Event) -> bool:
    """Put item on the queue unless the consumer stopped; False when it did."""
    while not stop.is_set():
        try:
            q.put(item, timeout=0.05)
            return True
        except queue.Full:
            continue
    return False
