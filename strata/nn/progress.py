"""What Model.fit shows while it trains: ``verbose=1`` a progress bar (tqdm) that moves every
batch, ``verbose=2`` one line per epoch, as Keras does."""

from __future__ import annotations

import time

from tqdm.auto import tqdm

from strata.nn.callbacks import Callback


def _metrics(logs: dict) -> str:
    return " - ".join(f"{k}: {v:.4f}" for k, v in logs.items())


class ProgressBar(Callback):
    """One bar over every batch of every epoch, so that a long epoch shows it is moving; its
    postfix shows the epoch, the cost of the latest batch and the last epoch's metrics.
    ``done`` batches are already behind (a resumed run)."""

    def __init__(self, epochs: int, steps_per_epoch: int, done: int = 0):
        self.epochs, self.steps, self.done = epochs, steps_per_epoch, done

    def on_train_begin(self, logs):
        self.bar = tqdm(total=self.epochs * self.steps, initial=self.done, unit="batch",
                        dynamic_ncols=True)
        self.epoch, self.last = 0, {}

    def on_epoch_begin(self, epoch, logs):
        self.epoch = epoch

    def on_batch_end(self, iteration, logs):
        self.bar.set_postfix({"epoch": f"{self.epoch + 1}/{self.epochs}",
                              "cost": f"{logs['cost']:.4g}",
                              **{k: f"{v:.4g}" for k, v in self.last.items()}}, refresh=False)
        self.bar.update(1)

    def on_epoch_end(self, epoch, logs):
        self.last = logs

    def on_train_end(self, logs):
        self.bar.close()


class EpochLines(Callback):
    """Keras's ``verbose=2``: "Epoch 3/10 - 0.4s - loss: 0.1234 - accuracy: 0.9700 - ..."."""

    def __init__(self, epochs: int, print_fn=print):
        self.epochs, self.print_fn = epochs, print_fn

    def on_epoch_begin(self, epoch, logs):
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch, logs):
        seconds = time.perf_counter() - self.started
        self.print_fn(f"Epoch {epoch + 1}/{self.epochs} - {seconds:.1f}s - {_metrics(logs)}")
