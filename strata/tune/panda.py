"""Panda mode (course 2 week 3): babysit one model. Train a few epochs, look at the dev
accuracy, change the learning rate (or beta, l2...) and carry on from where the model is.

Each session is one trial of an Optuna study in the folder's SQLite database (or the storage
given), with the dev accuracy of every epoch as its intermediate values. The weights and the
optimizer's state are saved after every epoch, so a session that is killed resumes from its
last finished epoch; the architecture (layers, units, dataset) stays fixed for the model's life.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import optuna
from optuna.trial import TrialState

import strata
from strata import nn
from strata.tune.objective import _splits, mlp_config

FIXED_FOR_LIFE = ("dataset", "layers", "units", "hidden", "keep_prob", "seed")
OPTIMIZER_KEYS = ("lr", "beta", "beta1", "beta2", "epsilon")


class _Checkpoint(nn.Callback):
    """After each epoch: report to the trial, save weights, optimizer state and progress."""

    def __init__(self, panda, trial, first_epoch: int):
        self.panda, self.trial, self.first = panda, trial, first_epoch

    def on_epoch_end(self, epoch, logs):
        step = self.first + epoch + 1
        self.trial.report(float(logs["val_accuracy"]), step)
        self.panda._save(self.model, step, logs["val_accuracy"])


class Panda:
    """One model babysat across sessions in ``folder``; ``train(epochs, **changes)``."""

    def __init__(self, folder, params: dict | None = None, storage: str | None = None):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        url = storage or f"sqlite:///{(self.folder / 'study.db').resolve()}"
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.study = optuna.create_study(storage=url, study_name="panda", direction="maximize",
                                         load_if_exists=True)
        for t in self.study.get_trials(states=(TrialState.RUNNING,)):  # a killed session
            self.study.tell(t.number, state=TrialState.FAIL)
        state = self._state()
        self.params = {**state.get("params", {}), **(params or {})}
        self.epoch = state.get("epoch", 0)

    def _state(self) -> dict:
        path = self.folder / "panda.json"
        return json.loads(path.read_text()) if path.is_file() else {}

    def _save(self, model, epoch: int, dev_accuracy: float) -> None:
        from strata.io import write_text_atomic

        strata.save_model(model, self.folder / "model.safetensors")
        arrays = {k: np.asarray(v) for k, v in model.optimizer.state_dict().items()}
        np.savez(self.folder / "optimizer.tmp.npz", **arrays)
        (self.folder / "optimizer.tmp.npz").replace(self.folder / "optimizer.npz")
        self.epoch = epoch
        history = self._state().get("history", []) + [[epoch, float(dev_accuracy)]]
        write_text_atomic(self.folder / "panda.json", json.dumps(
            {"params": self.params, "epoch": epoch, "history": history,
             "optimizer": mlp_config(self.params).optimizer}, indent=1) + "\n")

    def _model(self, n_classes, input_shape):
        from strata import runs

        config = mlp_config(self.params)
        if (self.folder / "model.safetensors").is_file():
            return strata.load_model(self.folder / "model.safetensors"), config
        strata.seed(config.seed)
        model = runs.build_model(config, n_classes, input_shape)
        model.build(input_shape)  # the optimizer needs the weights now, to take saved state
        return model, config

    def _compile(self, model, config, n_classes) -> None:
        from strata import runs
        from strata.optim import OPTIMIZERS

        own = OPTIMIZERS[config.optimizer].hyperparameters
        extra = {k: self.params[k] for k in OPTIMIZER_KEYS[1:] if k in self.params and k in own}
        model.compile(optimizer=config.optimizer, lr=config.lr, metrics=["accuracy"],
                      loss=runs._loss_name(n_classes), l2=config.l2, **extra)
        model._bind_optimizer()
        saved = self.folder / "optimizer.npz"
        if saved.is_file() and self._state().get("optimizer") in (None, config.optimizer):
            with np.load(saved) as f:
                state = {k: (f[k].item() if f[k].ndim == 0 else f[k]) for k in f.files}
            state.update({k: getattr(model.optimizer, k) for k in own})  # the new values
            model.optimizer.load_state_dict(state)

    def train(self, epochs: int, **changes) -> float:
        """Train ``epochs`` more epochs with the hyperparameters changed as given (the
        architecture cannot change); returns the dev accuracy."""
        fixed = [k for k in changes if k in FIXED_FOR_LIFE and self.epoch > 0
                 and changes[k] != self.params.get(k)]
        if fixed:
            raise ValueError(f"panda: {fixed} cannot change on a trained model; only "
                             f"{', '.join(OPTIMIZER_KEYS)}, optimizer, batch_size, epochs, l2")
        self.params.update(changes)
        config = mlp_config(self.params)
        train_set, dev_set, _, n_classes = _splits(config.dataset, config.seed)
        model, config = self._model(n_classes, train_set[0].shape[1:])
        self._compile(model, config, n_classes)
        trial = self.study.ask()
        trial.set_user_attr("params", self.params)
        trial.set_user_attr("first_epoch", self.epoch)
        history = model.fit(*train_set, epochs=epochs, batch_size=config.batch_size,
                            validation_data=dev_set, verbose=0,
                            callbacks=[_Checkpoint(self, trial, self.epoch)])
        value = float(history["val_accuracy"][-1])
        self.study.tell(trial, value)
        return value

    def history(self) -> list:
        """[(epoch, dev accuracy)] over every session so far."""
        return [tuple(row) for row in self._state().get("history", [])]
