"""Model: Keras's four steps, create -> compile -> fit -> evaluate, on any Module."""

from __future__ import annotations

import numpy as np

from strata import backend
from strata.autograd import no_grad
from strata.data.batches import iterate_minibatches
from strata.nn.callbacks import Callback, History
from strata.nn.fitdata import TrainingData, check_count, check_data, check_validation, on_device
from strata.nn.module import Module
from strata.tensor import Tensor


class Model(Module):
    """A Module that can be compiled and trained: ``compile``, ``fit``, ``evaluate``,
    ``predict``, ``summary``. Sequential is a Model; subclass Model for other graphs."""

    optimizer = None
    loss = None
    metrics: dict = {}
    stop_training = False
    l2 = l1 = 0.0
    _to_probabilities = False

    def __call__(self, *args, **kwargs):
        if "_input_specs" not in vars(self) and args and all(
                hasattr(a, "shape") and hasattr(a, "dtype") for a in args):
            # What save_model records so that load_model can build the model by one call.
            self._input_specs = [[list(a.shape[1:]), str(np.dtype(a.dtype))] for a in args]
        return super().__call__(*args, **kwargs)

    def save(self, path, include_optimizer: bool = True):
        """``strata.save_model(self, path)``: weights, architecture and compile settings."""
        from strata.io import save_model

        return save_model(self, path, include_optimizer)

    def summary(self, print_fn=print) -> int:
        """Print each top-level layer's output shape and parameter count, in the order the
        model calls them (one traced forward pass on zeros shaped like the inputs it has
        seen), and the totals; returns the total count."""
        from strata.nn import module as module_
        from strata.nn.sequential import print_summary

        specs = vars(self).get("_input_specs")
        if specs is None:
            raise ValueError(f"summary: {type(self).__name__} has not seen any input yet; call "
                             f"it on a batch (or fit it) first")
        children = {id(m): name for name, m in self.named_modules() if name.count(".") == 1}
        was_training, module_._trace = self.training, []
        self.eval()
        try:
            with no_grad():
                self(*[np.zeros((1, *shape), dtype=dtype) for shape, dtype in specs])
            calls = [(m, out) for m, out in module_._trace if id(m) in children]
        finally:
            module_._trace = None
            self.train(was_training)
        rows, seen = [], set()
        for m, out in calls:
            if id(m) not in seen:
                seen.add(id(m))
                shape = str((None, *out.shape[1:])) if hasattr(out, "shape") else "-"
                rows.append((f"{children[id(m)].rstrip('.')}: {type(m).__name__}", shape,
                             sum(t.size for _, t in m._named_tensors())))
        tensors = list(self._named_tensors())
        total = sum(t.size for _, t in tensors)
        print_summary(rows, total, sum(t.size for _, t in tensors if t.requires_grad), print_fn)
        return total

    def compile(self, optimizer="adam", loss="binary_crossentropy", metrics=(), l2: float = 0.0,
                l1: float = 0.0, **kwargs):
        """Choose the optimizer (a name such as "adam" plus its hyperparameters as keyword
        arguments, an Optimizer, or a callable params -> Optimizer), the loss (name or callable
        (y_pred, y_true) -> scalar Tensor; names take probabilities, as Keras's, so a model that
        ends in logits uses a loss object such as
        ``strata.losses.SparseCategoricalCrossentropy(from_logits=True)``), the metrics (names
        or callables), and L2/L1
        regularization of every weight matrix W: the cost becomes
        J + lambd/(2m) sum ||W||^2 (``l2=lambd``) + lambd/m sum |W| (``l1=lambd``). A layer
        created with its own ``l2``/``l1`` (``Dense(64, l2=0.1)``) uses those instead."""
        from strata.losses import get_loss, logits_activation
        from strata.metrics import get_metric
        from strata.nn.layers import check_regularization

        self.l2, self.l1 = check_regularization(l2, l1, "compile")
        self.loss = get_loss(loss) if isinstance(loss, str) else loss
        if not callable(self.loss):
            raise TypeError(f"compile: expected a loss name or callable, got {loss!r}")
        # Metrics and predict_proba read probabilities: a loss on logits names the activation
        # that makes them ("sigmoid"/"softmax"); _to_probabilities: binary logits, as before.
        self._logits_activation = logits_activation(self.loss)
        self._to_probabilities = self._logits_activation == "sigmoid"
        self.metrics = {(m if isinstance(m, str) else m.__name__):
                        (get_metric(m) if isinstance(m, str) else m) for m in metrics}
        self._optimizer_spec, self._optimizer_kwargs = optimizer, kwargs
        self.optimizer = None if isinstance(optimizer, str) or not hasattr(
            optimizer, "step") else optimizer
        return self

    def to(self, device: str) -> Model:
        """Move the parameters, the state and the optimizer's state (v, s) to ``device``
        ("cpu", or "gpu" with ``pip install 'strata[gpu]'``); returns the model."""
        super().to(device)
        if self.optimizer is not None and hasattr(self.optimizer, "to"):
            self.optimizer.to(device)
        return self

    def _bind_optimizer(self) -> None:
        from strata.optim import get_optimizer

        spec = self._optimizer_spec
        if self.optimizer is None:
            self.optimizer = (get_optimizer(spec, self.parameters(), **self._optimizer_kwargs)
                              if isinstance(spec, str) else spec(self.parameters()))

    def fit(self, X, Y=None, epochs: int = 1, batch_size: int | None = 32, validation_data=None,
            callbacks=(), shuffle: bool = True, verbose: int = 1, validation_split: float = 0.0,
            initial_epoch: int = 0, sample_weight=None, class_weight=None, checkpoint=None,
            checkpoint_every: int = 1, resume: bool = False) -> History:
        """Train for ``epochs`` passes over (X, Y) in mini-batches (``batch_size=None``: the
        whole set, batch gradient descent), as Keras's fit: ``validation_data=(X_val, Y_val)``
        or ``validation_split`` (that fraction of the examples, taken from the end before
        shuffling, is held out), ``initial_epoch`` (epochs count from it up to ``epochs``),
        ``verbose`` 0 (silent), 1 (a progress bar moving every batch) or 2 (one line per
        epoch), ``sample_weight`` (m,) and ``class_weight`` {class: weight} (the loss becomes
        (1/m) sum_i w_i L_i). X may be a tuple of arrays for a model with several inputs
        (``forward(self, a, b)``), or a ``strata.data.Pipeline``, which brings its own labels,
        batch size, shuffling and augmentation and prepares the next batches in a background
        thread. Returns the History (loss and metrics per epoch, the cost of every iteration
        in ``history.costs``).

        ``checkpoint``: a .safetensors path where the whole training state is written every
        ``checkpoint_every`` epochs, at the end, and on Ctrl-C (which then raises
        ``TrainingInterrupted`` at the next batch boundary). With ``resume=True`` an existing
        checkpoint is loaded first and training continues where it stopped, up to ``epochs``:
        the result is bit-identical to an uninterrupted run with the same seed.

        Before each update the cost and gradients are checked: NaN or inf stops training with a
        FloatingPointError naming the epoch, the iteration and the first layer that produced
        it. Callbacks get ``on_train_end`` however training ends.

        On a device (``model.to("gpu")``): X and Y stay NumPy arrays on the host and each batch
        is copied to the model's device as it is needed (a Pipeline copies its batches in its
        background thread); the validation set too. The history, the logs the callbacks get
        and the checkpoints hold host values (Python floats, NumPy arrays)."""
        from strata.nn.fitloop import FitLoop

        if self.loss is None:
            raise RuntimeError("fit: call compile(optimizer=..., loss=...) first")
        epochs = check_count(epochs, "epochs", 1)
        initial_epoch = check_count(initial_epoch, "initial_epoch", 0)
        every = check_count(checkpoint_every, "checkpoint_every", 1)
        if verbose not in (0, 1, 2):
            raise ValueError(f"fit: expected verbose 0, 1 or 2, got {verbose!r}")
        if resume and checkpoint is None:
            raise ValueError("fit: resume=True needs checkpoint=PATH (the file to resume from)")
        data = TrainingData(X, Y, batch_size, shuffle, validation_split, sample_weight,
                            class_weight, self._batch_device())
        if validation_data is not None:
            if data.validation is not None:
                raise ValueError("fit: give validation_data or validation_split, not both")
            data.validation = check_validation(validation_data)
        callbacks = [] if callbacks is None else list(callbacks)
        for cb in callbacks:
            if not isinstance(cb, Callback):
                raise TypeError(f"fit: callbacks must be strata.nn.Callback objects, got {cb!r}")
        self._build_on(data.first)
        self._bind_optimizer()
        history = History()
        stateful = [cb for cb in [*callbacks, history]  # what a checkpoint keeps
                    if type(cb).state_dict is not Callback.state_dict]
        loop = FitLoop(self, data.epoch, epochs, [], stateful, data.validation, checkpoint,
                       every, initial_epoch)
        if resume:
            loop.resume()
        # History last: it records what the other callbacks add to the logs (lr, ...).
        loop.hooks = [*callbacks, *_display(verbose, epochs, data.steps, loop), history]
        for cb in loop.hooks:
            cb.model = self
        self.stop_training = False
        loop.run()
        return history

    def _cost(self, out, y, penalties=None, sample_weight=None):
        """The loss plus the regularization terms, as the course reports the cost
        (``penalties``: ``_regularized_weights()``, computed once per epoch by fit)."""
        cost = (self.loss(out, y) if sample_weight is None else
                self.loss(out, y, sample_weight=sample_weight))
        penalty = self._penalty(len(y), penalties)
        return cost if penalty is None else cost + penalty

    def _penalty(self, m: int, penalties=None):
        """The L2/L1 terms for m examples as one Tensor, or None without regularization."""
        from strata.losses import l1_penalty, l2_penalty

        total = None
        penalties = self._regularized_weights() if penalties is None else penalties
        for (kind, lambd), weights in penalties.items():
            term = (l2_penalty if kind == "l2" else l1_penalty)(weights, lambd, m)
            total = term if total is None else total + term
        return total

    def _batch_device(self) -> str | None:
        """The device batches are copied to: the model's, or None on the CPU (no copy)."""
        device = self.device
        return None if device == "cpu" else device

    def _forward(self, xb):
        """The model on a batch: ``self(xb)``, or ``self(*xb)`` for several inputs."""
        return self(*xb) if isinstance(xb, tuple) else self(xb)

    def _build_on(self, first) -> None:
        """Create every lazily-sized parameter before the optimizer binds them: ``build`` when
        the model has one, else one call on the first example (eval mode, no gradient)."""
        if self.parameters() and getattr(self, "input_shape", True) is not None:
            return
        if hasattr(self, "build"):
            shape = first.shape if not isinstance(first, tuple) else None
            if shape is not None:
                return self.build(shape[1:])
        was_training = self.training
        self.eval()
        with no_grad():
            self._forward(first)
        self.train(was_training)

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
        from strata.losses import to_probabilities

        y_pred = to_probabilities(y_pred, getattr(self, "_logits_activation", None))
        return {k: float(f(y_true, y_pred)) for k, f in self.metrics.items()}

    def predict(self, X, batch_size: int = 1024) -> np.ndarray:
        """Outputs for X in eval mode (no dropout, batch norm's running averages), as a NumPy
        array on the host whatever the model's device (X's batches are copied there)."""
        X, _ = check_data(X, None, "predict")
        outputs = [out.data for out, _ in self._outputs(X, None, batch_size)]
        return backend.to_numpy(backend.array_module(outputs[0]).concatenate(outputs))

    def _outputs(self, X, Y, batch_size: int):
        """(output Tensor, labels) per batch, in eval mode without gradients, both on the
        model's device."""
        was_training, device = self.training, self._batch_device()
        self.eval()
        try:
            with no_grad():
                for xb, yb in iterate_minibatches(X, Y, batch_size, shuffle=False):
                    yield self._forward(on_device(xb, device)), on_device(yb, device)
        finally:
            self.train(was_training)

    def predict_proba(self, X, batch_size: int = 1024) -> np.ndarray:
        """Probabilities for X: ``predict``'s outputs, passed through sigmoid/softmax when the
        compiled loss takes logits (``from_logits=True``), else as they are."""
        from strata.losses import to_probabilities

        return to_probabilities(self.predict(X, batch_size),
                                getattr(self, "_logits_activation", None))

    def evaluate(self, X, Y, batch_size: int = 1024) -> dict:
        """Loss and metrics on (X, Y), in eval mode. The loss is computed on each batch's output
        Tensor, so it fuses with a final softmax/sigmoid as in fit, and averaged over examples;
        the regularization terms are added once, as the course's cost. On a device the batches
        are copied there and only the numbers come back; the results are Python floats."""
        if self.loss is None:
            raise RuntimeError("evaluate: call compile(loss=...) first")
        X, Y = check_data(X, Y, "evaluate")
        total, outputs = 0.0, []
        for out, yb in self._outputs(X, Y, batch_size):
            total += float(self.loss(out, yb).item()) * len(yb)
            outputs.append(out.data)
        loss = total / len(Y)
        with no_grad():
            penalty = self._penalty(len(Y))
        if penalty is not None:
            loss += float(penalty.item())
        results = {"loss": loss}
        results.update(self._metric_values(Y, backend.array_module(outputs[0]).concatenate(
            outputs)))
        return results


def _display(verbose: int, epochs: int, steps: int, loop) -> list:
    from strata.nn.progress import EpochLines, ProgressBar

    if verbose == 1:
        return [ProgressBar(epochs, steps, done=loop.epoch * steps + loop.batch)]
    return [EpochLines(epochs)] if verbose == 2 else []
