"""The progress bar shown by Model.fit (tqdm), with the loss and metrics of the last epoch."""

from __future__ import annotations

from tqdm.auto import tqdm

from strata.nn.callbacks import Callback


class ProgressBar(Callback):
    """One bar over the epochs; its postfix shows the latest loss and metrics."""

    def __init__(self, epochs: int):
        self.epochs = epochs

    def on_train_begin(self, logs):
        self.bar = tqdm(total=self.epochs, unit="epoch", dynamic_ncols=True)

    def on_epoch_end(self, epoch, logs):
        self.bar.set_postfix({k: f"{v:.4g}" for k, v in logs.items()}, refresh=False)
        self.bar.update(1)

    def on_train_end(self, logs):
        self.bar.close()
