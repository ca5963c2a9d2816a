"""Callbacks for Model.fit: hooks at the start and end of training, epochs and batches."""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

import numpy as np


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
