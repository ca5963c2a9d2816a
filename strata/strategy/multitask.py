"""Multi-task learning (course 3 week 2): one network with several sigmoid outputs, one per
task (the course's pedestrians, cars, stop signs, traffic lights), trained with the masked loss
so that examples labelled for only some tasks still teach the others ("?" entries)."""

from __future__ import annotations

import numpy as np

from strata import backend, nn

TASKS = ("pedestrian", "car", "stop sign", "traffic light")


def make_multitask_data(m: int = 1200, n_x: int = 10, missing: float = 0.3, rng=None):
    """(X, Y, Y_full): features (m, n_x), labels (m, tasks) with a ``missing`` share of entries
    set to NaN ("?"), and the complete labels. Tasks share their features, which is what makes
    learning them together pay off."""
    rng = backend.rng() if rng is None else rng
    X = rng.standard_normal((m, n_x))
    shared = np.tanh(X @ rng.standard_normal((n_x, 6)))  # features every task builds on
    logits = shared @ rng.standard_normal((6, len(TASKS))) * 3
    Y_full = (logits > 0).astype(np.float64)
    Y = Y_full.copy()
    Y[rng.random(Y.shape) < missing] = np.nan
    dtype = backend.get_default_dtype()
    return X.astype(dtype), Y.astype(dtype), Y_full.astype(dtype)


def multitask_model(n_tasks: int = len(TASKS), hidden=(32, 32)) -> nn.Sequential:
    """A ReLU network whose last layer has one sigmoid unit per task, as the course's y_hat
    (the masked loss fuses the sigmoid into its stable form)."""
    layers = [nn.Dense(units, "relu", kernel_initializer="he") for units in hidden]
    return nn.Sequential([*layers, nn.Dense(n_tasks, "sigmoid")])


def evaluate_per_task(model, X, Y, tasks=TASKS) -> dict:
    """Task name -> accuracy over the examples labelled for that task (NaN or -1 = no label).
    ``model.predict_proba`` gives the probabilities (sigmoid outputs, or logits of a model
    compiled with ``from_logits=True``)."""
    probabilities = np.asarray(model.predict_proba(X), dtype=np.float64)
    Y = np.asarray(Y, dtype=np.float64)
    if probabilities.shape != Y.shape or Y.shape[1] != len(tasks):
        raise ValueError(f"evaluate_per_task: expected labels of shape {probabilities.shape} "
                         f"for {len(tasks)} tasks, got {Y.shape}")
    scores = {}
    for j, task in enumerate(tasks):
        labelled = ~np.isnan(Y[:, j]) & (Y[:, j] != -1)
        hits = (probabilities[labelled, j] > 0.5) == (Y[labelled, j] > 0.5)
        scores[task] = float(hits.mean()) if labelled.any() else float("nan")
    return scores


def train_multitask(X, Y, epochs: int = 60, lr: float = 0.01, hidden=(32, 32),
                    batch_size: int = 64) -> nn.Sequential:
    """Fit ``multitask_model`` on partially labelled Y with ``masked_binary_crossentropy``."""
    model = multitask_model(Y.shape[1], hidden)
    model.compile(optimizer="adam", lr=lr, loss="masked_binary_crossentropy")
    model.fit(X, Y, epochs=epochs, batch_size=batch_size, verbose=0)
    return model
