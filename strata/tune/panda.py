"""Panda mode (course 2 week 3): babysit one model. Train a few epochs, look at the dev
accuracy, change the learning rate (or beta, l2...) and carry on from where the model is.

Each session is one trial of an Optuna study in the folder's SQLite database (or the storage
given), with the dev accuracy of every epoch as its intermediate values. After every epoch one
checkpoint file (strata.nn.save_checkpoint: weights, optimizer state, random state, and panda's
hyperparameters and history) is replaced atomically, so a session that is killed resumes from its
last finished epoch with all of them consistent; the architecture (layers, units, dataset) stays
fixed for the model's life. A session holds the folder's lock: a second one stops at once.
"""

from __future__ import annotations

from pathlib import Path

import optuna
from optuna.trial import TrialState

import strata
from strata import nn
from strata.nn.checkpoint import rng_state, set_rng_state
from strata.tune.objective import MLP_HYPERPARAMETERS, _splits, mlp_config

FIXED_FOR_LIFE = ("dataset", "layers", "units", "hidden", "keep_prob", "seed")
OPTIMIZER_KEYS = ("lr", "beta", "beta1", "beta2", "epsilon")


def check_params(params: dict) -> None:
    """Refuse hyperparameters panda does not know (listing those it does) and values the run
    settings refuse (a keep_prob of 1.5, a negative lr...), before anything is done."""
    unknown = sorted(set(params) - set(MLP_HYPERPARAMETERS), key=str)
    if unknown:
        raise ValueError(f"panda: unknown hyperparameter {unknown[0]!r}; expected among "
                         f"{', '.join(MLP_HYPERPARAMETERS)}")
    try:
        mlp_config(params)
    except (TypeError, ValueError) as e:
        raise ValueError(f"panda: {e}") from None


CHECKPOINT = "checkpoint.safetensors"


class _Checkpoint(nn.Callback):
    """After each epoch: report to the trial, save the model and panda's state in one file."""

    def __init__(self, panda, trial, first_epoch: int):
        self.panda, self.trial, self.first = panda, trial, first_epoch

    def on_epoch_end(self, epoch, logs):
        step = self.first + epoch + 1
        self.trial.report(float(logs["val_accuracy"]), step)
        self.panda._save(self.model, step, logs["val_accuracy"])


class Panda:
    """One model babysat across sessions in ``folder``; ``train(epochs, **changes)``."""

    def __init__(self, folder, params: dict | None = None, storage: str | None = None):
        check_params(params or {})
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        url = storage or f"sqlite:///{(self.folder / 'study.db').resolve()}"
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.study = optuna.create_study(storage=url, study_name="panda", direction="maximize",
                                         load_if_exists=True)
        for t in self.study.get_trials(states=(TrialState.RUNNING,)):  # a killed session
            self.study.tell(t.number, state=TrialState.FAIL)
        saved = self._saved()
        state = saved["progress"]["panda"] if saved else {}
        self.params = {**state.get("params", {}), **(params or {})}
        self.epoch = state.get("epoch", 0)
        self._history = [tuple(row) for row in state.get("history", [])]

    def _saved(self) -> dict | None:
        path = self.folder / CHECKPOINT
        if not path.is_file():
            return None
        saved = nn.load_checkpoint(path)
        if not isinstance(saved["progress"].get("panda"), dict):
            raise ValueError(f"panda: {path} is a checkpoint, but not of a panda session")
        return saved

    def _save(self, model, epoch: int, dev_accuracy: float) -> None:
        self.epoch = epoch
        self._history.append((epoch, float(dev_accuracy)))
        nn.save_checkpoint(self.folder / CHECKPOINT, model, {"rng": rng_state(), "panda": {
            "params": self.params, "epoch": epoch, "history": self._history,
            "optimizer": mlp_config(self.params).optimizer}})

    def _model(self, n_classes, input_shape, saved):
        from strata import runs

        config = mlp_config(self.params)
        strata.seed(config.seed)
        model = runs.build_model(config, n_classes, input_shape)
        model.build(input_shape)  # the optimizer needs the weights now, to take saved state
        if saved is not None:
            model.load_state_dict(saved["model"])
            set_rng_state(saved["progress"]["rng"])
        return model, config

    def _compile(self, model, config, n_classes, saved) -> None:
        from strata import runs
        from strata.optim import OPTIMIZERS

        own = OPTIMIZERS[config.optimizer].hyperparameters
        extra = {k: self.params[k] for k in OPTIMIZER_KEYS[1:] if k in self.params and k in own}
        model.compile(optimizer=config.optimizer, lr=config.lr, metrics=["accuracy"],
                      loss=runs._loss_name(n_classes), l2=config.l2, **extra)
        model._bind_optimizer()
        if saved is not None and saved["progress"]["panda"]["optimizer"] == config.optimizer:
            state = dict(saved["optimizer"])
            state.update({k: getattr(model.optimizer, k) for k in own})  # the new values
            model.optimizer.load_state_dict(state)

    def train(self, epochs: int, **changes) -> float:
        """Train ``epochs`` more epochs with the hyperparameters changed as given (the
        architecture cannot change); returns the dev accuracy. Holds the folder's lock."""
        from strata.files import FolderLock

        fixed = [k for k in changes if k in FIXED_FOR_LIFE and self.epoch > 0
                 and changes[k] != self.params.get(k)]
        if fixed:
            raise ValueError(f"panda: {fixed} cannot change on a trained model; only "
                             f"{', '.join(OPTIMIZER_KEYS)}, optimizer, batch_size, epochs, l2")
        check_params({**self.params, **changes})
        with FolderLock(self.folder, purpose="strata babysit"):
            saved = self._saved()  # what the last session left, read under the lock
            self.params.update(changes)
            config = mlp_config(self.params)
            train_set, dev_set, _, n_classes = _splits(config.dataset, config.seed)
            model, config = self._model(n_classes, train_set[0].shape[1:], saved)
            self._compile(model, config, n_classes, saved)
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
        return list(self._history)
