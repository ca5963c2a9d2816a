"""Model: Keras's four steps, create -> compile -> fit -> evaluate, on any Module."""

from __future__ import annotations

from functools import partial

import numpy as np

from strata.autograd import no_grad
from strata.data.batches import iterate_minibatches
from strata.nn.callbacks import Callback, History
from strata.nn.module import Module
from strata.tensor import Tensor


def _check_data(X, Y, name: str):
    X = np.asarray(X.data if isinstance(X, Tensor) else X)
    if X.ndim < 2 or len(X) == 0:
        raise ValueError(f"{name}: expected X of shape (m, ...) with m >= 1, got {X.shape}")
    if not np.issubdtype(X.dtype, np.number) or not np.isfinite(X).all():
        raise ValueError(f"{name}: X contains NaN, infinite or non-numeric values")
    if Y is not None:
        Y = np.asarray(Y.data if isinstance(Y, Tensor) else Y)
        if len(Y) != len(X):
            raise ValueError(f"{name}: X has {len(X)} examples but Y has {len(Y)}")
    return X, Y


class Model(Module):
    """A Module that can be compiled and trained: ``compile``, ``fit``, ``evaluate``,
    ``predict``, ``summary``. Sequential is a Model; subclass Model for other graphs."""

    optimizer = None
    loss = None
    metrics: dict = {}
    stop_training = False
    l2 = l1 = 0.0
    _to_probabilities = False

    def compile(self, optimizer="adam", loss="binary_crossentropy", metrics=(), l2: float = 0.0,
                l1: float = 0.0, **kwargs):
        """Choose the optimizer (a name such as "adam" plus its hyperparameters as keyword
        arguments, an Optimizer, or a callable params -> Optimizer), the loss (name or callable
        (y_pred, y_true) -> scalar Tensor), the metrics (names or callables), and L2/L1
        regularization of every weight matrix W: the cost becomes
        J + lambd/(2m) sum ||W||^2 (``l2=lambd``) + lambd/m sum |W| (``l1=lambd``). A layer
        created with its own ``l2``/``l1`` (``Dense(64, l2=0.1)``) uses those instead."""
        from strata.losses import get_loss
        from strata.metrics import get_metric
        from strata.nn.layers import check_regularization

        self.l2, self.l1 = check_regularization(l2, l1, "compile")
        self.loss = get_loss(loss) if isinstance(loss, str) else loss
        if not callable(self.loss):
            raise TypeError(f"compile: expected a loss name or callable, got {loss!r}")
        # Metrics read probabilities: a model trained on binary logits is passed through sigmoid.
        self._to_probabilities = loss in ("binary_crossentropy_from_logits",
                                          "masked_binary_crossentropy")
        self.metrics = {(m if isinstance(m, str) else m.__name__):
                        (get_metric(m) if isinstance(m, str) else m) for m in metrics}
        self._optimizer_spec, self._optimizer_kwargs = optimizer, kwargs
        self.optimizer = None if isinstance(optimizer, str) or not hasattr(
            optimizer, "step") else optimizer
        return self

    def _bind_optimizer(self) -> None:
        from strata.optim import get_optimizer

        spec = self._optimizer_spec
        if self.optimizer is None:
            self.optimizer = (get_optimizer(spec, self.parameters(), **self._optimizer_kwargs)
                              if isinstance(spec, str) else spec(self.parameters()))

    def fit(self, X, Y=None, epochs: int = 1, batch_size: int | None = 32, validation_data=None,
            callbacks=(), shuffle: bool = True, verbose: int = 1) -> History:
        """Train for ``epochs`` passes over (X, Y) in mini-batches (``batch_size=None``: the
        whole set, batch gradient descent). X may instead be a ``strata.data.Pipeline``, which
        brings its own labels, batch size, shuffling and augmentation and prepares the next
        batches in a background thread. Returns the History (loss and metrics per epoch, the
        cost of every iteration in ``history.costs``)."""
        from strata.data.pipeline import Pipeline

        if self.loss is None:
            raise RuntimeError("fit: call compile(optimizer=..., loss=...) first")
        if isinstance(X, Pipeline):
            if Y is not None:
                raise ValueError("fit: a Pipeline carries its own labels; pass Y=None")
            epoch_batches, example_shape = X.__iter__, X.X.shape[1:]
        else:
            X, Y = _check_data(X, Y, "fit")
            size = len(X) if batch_size is None else batch_size
            epoch_batches = partial(iterate_minibatches, X, Y, size, shuffle)
            example_shape = X.shape[1:]
        if not isinstance(epochs, int) or epochs < 1:
            raise ValueError(f"fit: expected epochs >= 1, got {epochs!r}")
        unbuilt = self.parameters() == [] or getattr(self, "input_shape", None) is None
        if unbuilt and hasattr(self, "build"):  # every lazily-sized layer, before binding
            self.build(example_shape)
        self._bind_optimizer()
        history = History()
        # History last: it records what the other callbacks add to the logs (lr, ...).
        hooks = [*callbacks, *([_progress(epochs)] if verbose else []), history]
        for cb in hooks:
            if not isinstance(cb, Callback):
                raise TypeError(f"fit: callbacks must be Callback objects, got {cb!r}")
            cb.model = self
        self.stop_training, iteration = False, 0
        for cb in hooks:
            cb.on_train_begin({})
        for epoch in range(epochs):
            for cb in hooks:
                cb.on_epoch_begin(epoch, {})
            self.train()
            logs, iteration = self._train_epoch(epoch_batches(), hooks, iteration)
            if validation_data is not None:
                logs.update({f"val_{k}": v for k, v in self.evaluate(*validation_data).items()})
            for cb in hooks:
                cb.on_epoch_end(epoch, logs)
            if self.stop_training:
                break
        for cb in hooks:
            cb.on_train_end({})
        self.eval()
        return history

    def _train_epoch(self, batches, hooks, iteration):
        total, count, predictions, labels = 0.0, 0, [], []
        penalties = None
        for xb, yb in batches:
            self.optimizer.zero_grad()
            out = self(xb)
            penalties = self._regularized_weights() if penalties is None else penalties
            cost = self._cost(out, yb, penalties)
            cost.backward()
            self.optimizer.step()
            value = cost.item()
            if not np.isfinite(value):
                raise FloatingPointError(f"fit: the cost became {value} at iteration "
                                         f"{iteration}; lower the learning rate")
            total, count = total + value * len(xb), count + len(xb)
            predictions.append(out.data)
            labels.append(yb)
            for cb in hooks:
                cb.on_batch_end(iteration, {"cost": value})
            iteration += 1
        logs = {"loss": total / count}
        if self.metrics:
            y_pred, y_true = np.concatenate(predictions), np.concatenate(labels)
            logs.update(self._metric_values(y_true, y_pred))
        return logs, iteration

    def _cost(self, out, y, penalties=None):
        """The loss plus the regularization terms, as the course reports the cost
        (``penalties``: ``_regularized_weights()``, computed once per epoch by fit)."""
        from strata.losses import l1_penalty, l2_penalty

        cost = self.loss(out, y)
        penalties = self._regularized_weights() if penalties is None else penalties
        for (kind, lambd), weights in penalties.items():
            penalty = l2_penalty if kind == "l2" else l1_penalty
            cost = cost + penalty(weights, lambd, len(y))
        return cost

    def _regularized_weights(self) -> dict:
        """("l2" or "l1", lambd) -> the W's it applies to: each layer's own strength when set,
        else the model's."""
        groups: dict = {}
        for layer in self.modules():
            W = getattr(layer, "W", None)
            if layer is self or not isinstance(W, Tensor) or not W.requires_grad:
                continue
            for kind in ("l2", "l1"):
                own = getattr(layer, kind, None)
                lambd = getattr(self, kind) if own is None else own
                if lambd:
                    groups.setdefault((kind, lambd), []).append(W)
        return groups

    def _metric_values(self, y_true, y_pred) -> dict:
        if self._to_probabilities:
            y_pred = 1 / (1 + np.exp(-y_pred))
        return {k: float(f(y_true, y_pred)) for k, f in self.metrics.items()}

    def predict(self, X, batch_size: int = 1024) -> np.ndarray:
        """Outputs for X in eval mode (no dropout, batch norm's running averages)."""
        X, _ = _check_data(X, None, "predict")
        was_training = self.training
        self.eval()
        with no_grad():
            out = np.concatenate([self(xb).data for xb, _ in
                                  iterate_minibatches(X, None, batch_size, shuffle=False)])
        self.train(was_training)
        return out

    def evaluate(self, X, Y, batch_size: int = 1024) -> dict:
        """Loss and metrics on (X, Y), in eval mode."""
        if self.loss is None:
            raise RuntimeError("evaluate: call compile(loss=...) first")
        X, Y = _check_data(X, Y, "evaluate")
        y_pred = self.predict(X, batch_size)
        with no_grad():
            results = {"loss": float(self._cost(Tensor(y_pred), Y).item())}
        results.update(self._metric_values(Y, y_pred))
        return results


def _progress(epochs: int) -> Callback:
    from strata.nn.progress import ProgressBar

    return ProgressBar(epochs)
