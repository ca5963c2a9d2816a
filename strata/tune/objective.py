"""Objectives for ``strata tune``: functions ``f(params, report) -> score``.

``params`` holds the trial's hyperparameters (searched and fixed); ``report(step, value)`` hands
intermediate scores (per epoch) to the pruner and may raise ``optuna.TrialPruned`` to stop a
hopeless trial early. An objective lists the names it understands in ``f.hyperparameters`` so
that a search file naming anything else is refused with its line.
"""

from __future__ import annotations

from functools import lru_cache

import strata
from strata import nn

MLP_HYPERPARAMETERS = ("dataset", "epochs", "seed", "optimizer", "lr", "beta", "beta1",
                       "beta2", "epsilon", "layers", "units", "hidden", "batch_size", "l2",
                       "keep_prob")


@lru_cache(maxsize=4)
def _splits(dataset: str, seed: int):
    from strata import runs

    return runs.splits(runs.RunConfig(dataset=dataset, seed=seed))


class _Reporter(nn.Callback):
    """Hands each epoch's dev accuracy to ``report``."""

    def __init__(self, report):
        self.report = report

    def on_epoch_end(self, epoch, logs):
        self.report(epoch, logs["val_accuracy"])


def _hidden(params: dict) -> list:
    if "hidden" in params:
        hidden = params["hidden"]
        return [int(u) for u in (hidden.split(",") if isinstance(hidden, str) else hidden)]
    if "layers" in params or "units" in params:
        return [int(params.get("units", 64))] * int(params.get("layers", 2))
    return [64, 32]


def mlp_config(params: dict):
    """The RunConfig of a trial: ``layers`` x ``units`` (or ``hidden``) ReLU layers, etc."""
    from strata import runs
    from strata.optim import OPTIMIZERS

    keys = ("dataset", "optimizer", "lr", "epochs", "batch_size", "l2", "keep_prob", "seed")
    given = {k: params[k] for k in keys if k in params}
    rule = OPTIMIZERS.get(str(given.get("optimizer", runs.RunConfig.optimizer)).lower())
    own = rule.hyperparameters if rule else {}  # an unknown name: RunConfig says so
    given.update({k: params[k] for k in ("beta", "beta1", "beta2", "epsilon")
                  if k in params and k in own})  # a trial of another optimizer ignores them
    return runs.RunConfig(hidden=_hidden(params), **given)


def train_mlp(params: dict, report=None) -> float:
    """Train ``strata train``'s MLP with these hyperparameters; returns the dev accuracy.

    The optimizer receives the hyperparameters it has among beta, beta1, beta2 and epsilon.
    """
    from strata import runs

    config = mlp_config(params)
    train_set, dev_set, _, n_classes = _splits(config.dataset, config.seed)
    strata.seed(config.seed)
    model = runs.build_model(config, n_classes, train_set[0].shape[1:])
    model.compile(optimizer=config.optimizer, lr=config.lr, loss=runs._loss_name(n_classes),
                  metrics=["accuracy"], l2=config.l2, **config.optimizer_options())
    callbacks = [] if report is None else [_Reporter(report)]
    history = model.fit(*train_set, epochs=config.epochs, batch_size=config.batch_size,
                        validation_data=dev_set, verbose=0, callbacks=callbacks)
    return float(history["val_accuracy"][-1])


train_mlp.hyperparameters = MLP_HYPERPARAMETERS
