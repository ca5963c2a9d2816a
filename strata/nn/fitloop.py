"""The loop behind Model.fit: epochs of mini-batches, callbacks, the non-finite cost check,
checkpoints and resuming, and Ctrl-C.

Everything the loop needs to continue is in ``progress()``: epoch, batch and iteration, the
random Generator's state (now, and at the start of the epoch, from which the epoch's shuffling
order and distortions are drawn again on resume), the epoch's partial loss and predictions, and
the callbacks' state. With it, a resumed run repeats exactly the computations of an
uninterrupted one, so its weights come out bit-identical.

On a device (a model moved by ``Model.to``) the batches arrive there already (fitdata,
strata.data.Pipeline); the loop keeps the epoch's predictions and labels there, computes with
their array module, and copies to the host only the numbers Python needs: the cost of each
step, the finite-gradient flags, the metrics, and the arrays a checkpoint writes.
"""

from __future__ import annotations

import signal
import threading
from pathlib import Path

import numpy as np

from strata import backend
from strata.autograd import detect_anomaly
from strata.nn.checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C during ``fit``: raised at the next batch boundary, once the checkpoint at
    ``checkpoint`` holds the run's state (``epoch`` and ``batch`` say where it stopped)."""

    def __init__(self, checkpoint: Path, epoch: int, batch: int):
        super().__init__(f"training interrupted at epoch {epoch}, batch {batch}; checkpoint "
                         f"written to {checkpoint}")
        self.checkpoint, self.epoch, self.batch = checkpoint, epoch, batch


class _Interrupts:
    """While active in the main thread: the first Ctrl-C (SIGINT) only sets ``requested``, which
    the loop checks between batches, so a checkpoint is never taken halfway through an update;
    a second Ctrl-C interrupts at once."""

    def __init__(self, enabled: bool):
        self.enabled = enabled and threading.current_thread() is threading.main_thread()
        self.requested, self.previous = False, None

    def _handler(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self):
        if self.enabled:
            self.previous = signal.signal(signal.SIGINT, self._handler)
        return self

    def __exit__(self, *exc):
        if self.enabled:
            signal.signal(signal.SIGINT, self.previous)


def _finite(grads) -> bool:
    """True when no gradient holds NaN or inf. One BLAS dot product per gradient (NaN and inf
    propagate through it); only when it overflows are min and max asked, which cannot. Computed
    by each gradient's array module: on a device only the flag comes back."""
    for g in grads:
        if g is None:
            continue
        xp = backend.array_module(g)
        flat = g.reshape(-1)
        with np.errstate(over="ignore", invalid="ignore"):
            square = xp.dot(flat, flat)
        if not xp.isfinite(square) and not (
                xp.isfinite(g.min()) and xp.isfinite(g.max())):
            return False
    return True


def _concatenate(arrays):
    """The arrays (of one device) joined along the first axis, by their array module."""
    return backend.array_module(arrays[0]).concatenate(arrays)


class FitLoop:
    """One call of fit. ``epoch_batches(start)`` draws an epoch's order and yields its batches
    from ``start`` on; ``stateful`` are the callbacks whose state a checkpoint keeps."""

    def __init__(self, model, epoch_batches, epochs: int, hooks: list, stateful: list,
                 validation_data=None, checkpoint=None, every: int = 1, initial_epoch: int = 0):
        self.model, self.epoch_batches, self.epochs = model, epoch_batches, epochs
        self.hooks, self.stateful, self.validation_data = hooks, stateful, validation_data
        self.checkpoint = None if checkpoint is None else Path(checkpoint)
        self.every = every
        self.epoch, self.batch, self.iteration = initial_epoch, 0, 0
        self.epoch_rng = None
        self._reset_partial()
        self.restored = None

    def _reset_partial(self):
        self.total, self.count, self.predictions, self.labels = 0.0, 0, [], []

    # --- checkpoints -------------------------------------------------------------------------
    def progress(self) -> dict:
        """The loop's state, as a checkpoint keeps it."""
        partial = {"total": self.total, "count": self.count}
        if self.predictions:  # device arrays are copied to the host by save_checkpoint
            partial["predictions"] = _concatenate(self.predictions)
            partial["labels"] = _concatenate(self.labels)
        return {"epoch": self.epoch, "batch": self.batch, "iteration": self.iteration,
                "stop_training": bool(self.model.stop_training), "rng": rng_state(),
                "epoch_rng": self.epoch_rng, "partial": partial,
                "callbacks": [{"class": type(cb).__name__, "state": cb.state_dict()}
                              for cb in self.stateful]}

    def save(self) -> Path:
        return save_checkpoint(self.checkpoint, self.model, self.progress())

    def resume(self) -> bool:
        """Load the checkpoint, if there is one, into the model and the loop; True if so."""
        if not self.checkpoint.is_file():
            return False
        payload = load_checkpoint(self.checkpoint)
        classes = [c["class"] for c in payload["progress"]["callbacks"]]
        own = [type(cb).__name__ for cb in self.stateful]
        if classes != own:
            raise ValueError(f"fit: {self.checkpoint} was written with the stateful callbacks "
                             f"{classes}; resume with the same ones, got {own}")
        self.model.load_state_dict(payload["model"])
        self.model.optimizer.load_state_dict(payload["optimizer"])
        self.restored = p = payload["progress"]
        self.epoch, self.batch, self.iteration = int(p["epoch"]), int(p["batch"]), p["iteration"]
        self.model.stop_training, self.epoch_rng = p["stop_training"], p["epoch_rng"]
        partial = p["partial"]
        self.total, self.count = partial["total"], partial["count"]
        if "predictions" in partial:  # back where the model computes, to join the next ones
            device = self.model.device
            self.predictions = [backend.to_device(partial["predictions"], device)]
            self.labels = [backend.to_device(partial["labels"], device)]
        set_rng_state(p["rng"])
        return True

    # --- the loop ----------------------------------------------------------------------------
    def run(self) -> None:
        for cb in self.hooks:
            cb.on_train_begin({})
        if self.restored is not None:
            for cb, saved in zip(self.stateful, self.restored["callbacks"], strict=True):
                cb.load_state_dict(saved["state"])
        try:
            with _Interrupts(self.checkpoint is not None) as self.interrupts:
                while self.epoch < self.epochs and not self.model.stop_training:
                    self._epoch()
        finally:  # files closed and best weights restored, whatever stopped training
            failures = []
            for cb in self.hooks:
                try:
                    cb.on_train_end({})
                except Exception as e:  # one failing callback must not skip the others
                    failures.append(e)
            self.model.eval()
            if failures:
                raise failures[0]

    def _batches(self):
        if self.batch == 0:
            self.epoch_rng = rng_state()
            return self.epoch_batches(start=0)
        now = rng_state()  # resuming inside an epoch: draw its order again, then carry on
        set_rng_state(self.epoch_rng)
        batches = self.epoch_batches(start=self.batch)
        set_rng_state(now)
        return batches

    def _epoch(self) -> None:
        model = self.model
        for cb in self.hooks:
            cb.on_epoch_begin(self.epoch, {})
        model.train()
        penalties = model._regularized_weights()
        for xb, yb in self._batches():
            yb, wb = yb if isinstance(yb, tuple) else (yb, None)  # labels, example weights
            self._step(xb, yb, wb, penalties)
            if self.interrupts.requested:
                self._interrupt()
        logs = {"loss": self.total / self.count}
        if model.metrics:
            logs.update(model._metric_values(_concatenate(self.labels),
                                             _concatenate(self.predictions)))
        if self.validation_data is not None:
            logs.update({f"val_{k}": v for k, v in
                         model.evaluate(*self.validation_data).items()})
        for cb in self.hooks:
            cb.on_epoch_end(self.epoch, logs)
        self.epoch, self.batch = self.epoch + 1, 0
        self._reset_partial()
        done = self.epoch >= self.epochs or model.stop_training
        if self.checkpoint is not None and (done or self.epoch % self.every == 0):
            self.save()
        if self.interrupts.requested:
            self._interrupt()

    def _step(self, xb, yb, wb, penalties) -> None:
        model = self.model
        before = rng_state()
        model.optimizer.zero_grad()
        try:
            out = model._forward(xb)
            cost = model._cost(out, yb, penalties, wb)
            cost.backward()
            value = cost.item()
        except FloatingPointError:  # a loss that refuses NaN predictions
            value = float("nan")
        if not (np.isfinite(value) and _finite(p.grad for p in model.optimizer.params)):
            self._diverged(value, xb, yb, wb, penalties, before)
        if self.iteration == 0 and model.metrics:  # a metric that cannot work fails now
            model._metric_values(yb, out.data)
        model.optimizer.step()
        self.total, self.count = self.total + value * len(yb), self.count + len(yb)
        self.predictions.append(out.data)
        self.labels.append(yb)
        for cb in self.hooks:
            cb.on_batch_end(self.iteration, {"cost": value})
        self.iteration, self.batch = self.iteration + 1, self.batch + 1

    def _interrupt(self):
        raise TrainingInterrupted(self.save(), self.epoch, self.batch)

    def _diverged(self, value, xb, yb, wb, penalties, rng_before) -> None:
        what = (f"the cost became {value}" if not np.isfinite(value) else
                "a gradient became NaN or inf")
        where = self._locate(xb, yb, wb, penalties, rng_before)
        raise FloatingPointError(
            f"fit: {what} at epoch {self.epoch}, iteration {self.iteration} (batch "
            f"{self.batch} of the epoch), before the update: {where}. Lower the learning rate, "
            f"clip gradients, or check the data")

    def _locate(self, xb, yb, wb, penalties, rng_before) -> str:
        """Run the batch again under detect_anomaly to name where NaN or inf first appears."""
        model, after = self.model, rng_state()
        set_rng_state(rng_before)  # the same dropout masks
        try:
            with detect_anomaly(model):
                from strata import autograd

                autograd._anomaly.append("the cost (loss and regularization)")
                model.optimizer.zero_grad()
                model._cost(model._forward(xb), yb, penalties, wb).backward()
        except FloatingPointError as e:
            return str(e).removeprefix("detect_anomaly: ")
        finally:
            set_rng_state(after)
            model.optimizer.zero_grad()
        return "no op produced it when the batch was run again under strata.detect_anomaly()"
