"""Callbacks for Model.fit: hooks at the start and end of training, epochs and batches."""

from __future__ import annotations

import csv
import io
import itertools
import math
import os
from pathlib import Path

import numpy as np

from strata import backend


class Callback:
    """Base class: override the hooks you need. ``self.model`` is set by fit."""

    model = None

    def on_train_begin(self, logs: dict) -> None:
        """Before the first epoch."""

    def on_epoch_begin(self, epoch: int, logs: dict) -> None:
        """Before each epoch (epochs count from 0)."""

    def on_batch_end(self, iteration: int, logs: dict) -> None:
        """After each optimizer step; ``logs["cost"]`` is the mini-batch cost."""

    def on_epoch_end(self, epoch: int, logs: dict) -> None:
        """After each epoch; ``logs`` holds loss, metrics and their val_ versions."""

    def on_train_end(self, logs: dict) -> None:
        """After the last epoch, an early stop, an error or an interruption."""

    def state_dict(self) -> dict:
        """What a checkpoint keeps of this callback to continue exactly (numbers, strings,
        lists, dicts and arrays); stateless callbacks keep nothing."""
        return {}

    def load_state_dict(self, state: dict) -> None:
        """Restore ``state_dict()``'s output (called after ``on_train_begin`` on resume)."""


class History(Callback):
    """What fit returns: ``history[name]`` is one value per epoch; ``costs`` one per iteration."""

    def __init__(self):
        self.history: dict[str, list] = {}
        self.costs: list[float] = []

    def on_batch_end(self, iteration, logs):
        self.costs.append(logs["cost"])

    def on_epoch_end(self, epoch, logs):
        for key, value in logs.items():
            self.history.setdefault(key, []).append(value)

    def __getitem__(self, key):
        return self.history[key]

    def state_dict(self):
        return {"history": self.history, "costs": self.costs}

    def load_state_dict(self, state):
        self.history = {k: list(v) for k, v in state["history"].items()}
        self.costs = list(state["costs"])


class CostPrinter(Callback):
    """The course's "Cost after iteration N: cost" (or "epoch N") every ``every`` steps."""

    def __init__(self, every: int = 100, per: str = "iteration"):
        if per not in ("iteration", "epoch"):
            raise ValueError(f"CostPrinter: expected per='iteration' or 'epoch', got {per!r}")
        if every < 1:
            raise ValueError(f"CostPrinter: expected every >= 1, got {every}")
        self.every, self.per = every, per

    def on_batch_end(self, iteration, logs):
        if self.per == "iteration" and iteration % self.every == 0:
            print(f"Cost after iteration {iteration}: {logs['cost']:f}")

    def on_epoch_end(self, epoch, logs):
        if self.per == "epoch" and epoch % self.every == 0:
            print(f"Cost after epoch {epoch}: {logs['loss']:f}")


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved for ``patience`` epochs; optionally restore the
    weights of the best epoch (the course's early stopping, with the caveat it discusses:
    it couples optimizing J and not overfitting)."""

    def __init__(self, monitor: str = "val_loss", patience: int = 0, min_delta: float = 0.0,
                 mode: str = "auto", restore_best_weights: bool = False):
        if patience < 0 or min_delta < 0:
            raise ValueError(f"EarlyStopping: expected patience >= 0 and min_delta >= 0, got "
                             f"{patience} and {min_delta}")
        if mode == "auto":
            mode = "min" if "loss" in monitor or "error" in monitor else "max"
        if mode not in ("min", "max"):
            raise ValueError(f"EarlyStopping: expected mode 'min', 'max' or 'auto', got {mode!r}")
        self.monitor, self.patience, self.min_delta = monitor, patience, min_delta
        self.sign = 1 if mode == "min" else -1
        self.restore_best_weights = restore_best_weights

    def on_train_begin(self, logs):
        self.best, self.wait, self.best_state, self.stopped_epoch = math.inf, 0, None, None

    def on_epoch_end(self, epoch, logs):
        if self.monitor not in logs:
            raise KeyError(f"EarlyStopping: no {self.monitor!r} in the epoch's logs; available: "
                           f"{sorted(logs)} (val_ values need validation_data)")
        value = self.sign * logs[self.monitor]
        if value < self.best - self.min_delta:
            self.best, self.wait = value, 0
            if self.restore_best_weights:
                self.best_state = self.model.state_dict()
            return
        self.wait += 1
        if self.wait > self.patience:
            self.model.stop_training, self.stopped_epoch = True, epoch

    def on_train_end(self, logs):
        if self.restore_best_weights and self.best_state is not None:
            self.model.load_state_dict(self.best_state)

    def state_dict(self):
        return {"best": self.best, "wait": self.wait, "best_state": self.best_state,
                "stopped_epoch": self.stopped_epoch}

    def load_state_dict(self, state):
        self.best, self.wait = float(state["best"]), int(state["wait"])
        self.best_state, self.stopped_epoch = state["best_state"], state["stopped_epoch"]


class ModelCheckpoint(Callback):
    """Save the model (strata.save_model) after each epoch, or only when ``monitor`` improves."""

    def __init__(self, path, monitor: str = "val_loss", save_best_only: bool = False):
        self.path, self.monitor, self.save_best_only = Path(path), monitor, save_best_only
        self.sign = 1 if "loss" in monitor or "error" in monitor else -1
        self.best = math.inf

    def on_epoch_end(self, epoch, logs):
        from strata.io import save_model

        if self.save_best_only:
            if self.monitor not in logs:
                raise KeyError(f"ModelCheckpoint: no {self.monitor!r} in the epoch's logs; "
                               f"available: {sorted(logs)}")
            value = self.sign * logs[self.monitor]
            if value >= self.best:
                return
            self.best = value
        save_model(self.model, self.path)

    def state_dict(self):
        return {"best": self.best}

    def load_state_dict(self, state):
        self.best = float(state["best"])


class CSVLogger(Callback):
    """One row per epoch (epoch, loss, metrics, val_...) in a CSV file, rewritten atomically
    after every epoch: readable at any moment, and a resumed run continues the same rows."""

    def __init__(self, path):
        self.path = Path(path)

    def on_train_begin(self, logs):
        self.rows = []

    def on_epoch_end(self, epoch, logs):
        from strata.files import write_text_atomic

        self.rows.append({"epoch": epoch, **logs})
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=list(dict.fromkeys(
            k for row in self.rows for k in row)))
        writer.writeheader()
        writer.writerows(self.rows)
        write_text_atomic(self.path, out.getvalue())

    def state_dict(self):
        return {"rows": self.rows}

    def load_state_dict(self, state):
        self.rows = [dict(row) for row in state["rows"]]


class LearningRateScheduler(Callback):
    """Set the optimizer's learning rate from ``schedule(epoch)`` before every epoch."""

    def __init__(self, schedule):
        if not callable(schedule):
            raise TypeError(f"LearningRateScheduler: expected a callable epoch -> lr, got "
                            f"{type(schedule).__name__}")
        self.schedule = schedule

    def on_epoch_begin(self, epoch, logs):
        self.model.optimizer.lr = float(self.schedule(epoch))

    def on_epoch_end(self, epoch, logs):
        logs["lr"] = float(np.float64(self.model.optimizer.lr))


class TensorBoard(Callback):
    """Event files for TensorBoard (``pip install 'strata[tensorboard]'``), written with
    tensorboardX into ``log_dir``: every epoch the logs (loss, metrics, val_ metrics) under
    their History names and the learning rate as ``lr``; every ``histogram_freq`` epochs (0:
    never) histograms ``weights/<name>`` of the parameters and ``gradients/<name>`` of their
    gradients from the epoch's last step; once, ``images`` (an NHWC batch, floats in [0, 1] or
    uint8) as ``images/<i>``. View them with ``tensorboard --logdir log_dir``.

    The files are append-only logs flushed after every epoch and closed when training ends,
    however it ends. A fit that starts past epoch 0 (a resumed run) purges the events of its
    epochs and later that an earlier writer left, so TensorBoard shows each epoch once."""

    def __init__(self, log_dir, histogram_freq: int = 1, images=None):
        from strata.extras import require

        tensorboardX = require("tensorboardX", "tensorboard", "TensorBoard logging")
        if isinstance(histogram_freq, bool) or not isinstance(
                histogram_freq, (int, np.integer)) or histogram_freq < 0:
            raise ValueError(f"TensorBoard: expected histogram_freq to be an integer >= 0 (0: "
                             f"no histograms), got {histogram_freq!r}")
        self.log_dir, self.histogram_freq = Path(log_dir), int(histogram_freq)
        self.images = None if images is None else _sample_images(images)
        self._writer_class, self.writer = tensorboardX.SummaryWriter, None
        self.images_written = False

    def on_train_begin(self, logs):
        self.images_written = False

    def _open(self, epoch: int):
        if self.writer is None:
            # tensorboardX names files by the second: a suffix keeps two writers of one second
            # (a fit resumed at once) from overwriting each other, and sorts them in order.
            suffix = f".{os.getpid()}.{next(_WRITERS):06d}"
            self.writer = self._writer_class(str(self.log_dir), purge_step=epoch or None,
                                             filename_suffix=suffix)
        return self.writer

    def on_epoch_begin(self, epoch, logs):
        self._open(epoch)

    def on_epoch_end(self, epoch, logs):
        writer = self._open(epoch)
        scalars = {k: v for k, v in logs.items() if isinstance(v, (int, float, np.number))}
        optimizer = getattr(self.model, "optimizer", None)
        if "lr" not in scalars and optimizer is not None:
            scalars["lr"] = float(optimizer.lr)
        for name, value in scalars.items():
            writer.add_scalar(name, float(value), epoch)
        if self.histogram_freq and epoch % self.histogram_freq == 0:
            for name, p in self.model.named_parameters():
                writer.add_histogram(f"weights/{name}", _host(p.data), epoch)
                if p.grad is not None:  # None for frozen parameters
                    writer.add_histogram(f"gradients/{name}", _host(p.grad), epoch)
        if self.images is not None and not self.images_written:
            for i, image in enumerate(self.images):
                writer.add_image(f"images/{i}", image, epoch, dataformats="HWC")
            self.images_written = True
        writer.flush()

    def on_train_end(self, logs):
        if self.writer is None:
            return
        writer, self.writer = self.writer, None
        writer.close()
        from strata.files import fsync_folder

        for path in self.log_dir.glob("events.out.tfevents.*"):  # durable before a publish
            with open(path, "rb") as f:
                os.fsync(f.fileno())
        fsync_folder(self.log_dir)


_WRITERS = itertools.count()


def _host(a) -> np.ndarray:
    """A NumPy array of ``a`` (an explicit copy from a device's array)."""
    return backend.to_numpy(a) if hasattr(a, "shape") else np.asarray(a)


def _sample_images(images) -> np.ndarray:
    """The images TensorBoard shows: uint8 as given, floats clipped into [0, 1]."""
    images = _host(images)
    kind = images.dtype == np.uint8 or np.issubdtype(images.dtype, np.floating)
    if images.ndim != 4 or images.shape[-1] not in (1, 3, 4) or not len(images) or not kind:
        raise ValueError(f"TensorBoard: expected images as an NHWC array (m, n_H, n_W, n_C) "
                         f"of uint8 or floats in [0, 1], with m >= 1 and n_C 1, 3 or 4, got "
                         f"{images.dtype} {images.shape}")
    if images.dtype == np.uint8:
        return images
    if not np.isfinite(images).all():
        raise ValueError("TensorBoard: the images hold NaN or inf; expected values in [0, 1]")
    return np.clip(images.astype(np.float32), 0.0, 1.0)
