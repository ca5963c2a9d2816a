"""A compiled model's training set-up as plain data, for save_model and load_model: the
optimizer (name, hyperparameters and per-parameter state), the loss (a name or a loss class of
strata.losses with its options), the metrics (names) and the regularization strengths.

Only what can be rebuilt by name is saved: a model compiled with a custom loss, metric or
optimizer function saves its weights and architecture and loads uncompiled (save_model says
so with a warning), as Keras does.
"""

from __future__ import annotations

import numbers

import numpy as np

from strata import backend


def _optimizer_name(optimizer) -> str | None:
    from strata.optim import OPTIMIZERS

    names = [k for k, cls in OPTIMIZERS.items() if type(optimizer) is cls]
    return names[0] if names else None


def _loss_spec(loss):
    from strata import losses

    if isinstance(loss, losses.Loss) and getattr(losses, type(loss).__name__, None) is type(loss):
        return {"class": type(loss).__name__, "config": loss.get_config()}
    names = [k for k, fn in losses.LOSSES.items() if fn is loss]
    return names[0] if names else None


def compile_state(model) -> tuple[dict | None, dict, str | None]:
    """(the compile settings as JSON data, the optimizer's state arrays, why nothing could be
    saved) of a compiled model whose optimizer is bound; (None, {}, reason) otherwise."""
    if model.loss is None:
        return None, {}, None
    model._bind_optimizer()
    optimizer, loss = _optimizer_name(model.optimizer), _loss_spec(model.loss)
    metrics = list(model.metrics)
    custom = [name for name, fn in model.metrics.items() if _metric_fn(name) is not fn]
    if optimizer is None or loss is None or custom:
        what = ("optimizer" if optimizer is None else "loss" if loss is None else
                f"metrics {custom}")
        return None, {}, f"its {what} is not one strata can rebuild by name"
    scalars, arrays = {}, {}
    for key, value in model.optimizer.state_dict().items():
        if isinstance(value, np.ndarray) or backend.array_module(value) is not np:
            arrays[f"optimizer/{key}"] = value  # save_model copies device arrays to the host
        else:
            scalars[key] = value.item() if isinstance(value, np.generic) else value
    settings = {"optimizer": optimizer, "optimizer_state": scalars, "loss": loss,
                "metrics": metrics, "l2": model.l2, "l1": model.l1}
    return settings, arrays, None


def _metric_fn(name):
    from strata.metrics import get_metric

    try:
        return get_metric(name)
    except (ValueError, KeyError, TypeError):
        return None


def restore(model, settings: dict, arrays: dict, where: str) -> None:
    """Compile ``model`` as ``settings`` say and load its optimizer's state (``arrays``: the
    file's tensors named optimizer/...)."""
    from strata import losses

    try:
        loss = settings["loss"]
        if isinstance(loss, dict):
            cls = getattr(losses, str(loss.get("class")), None)
            if not (isinstance(cls, type) and issubclass(cls, losses.Loss)):
                raise ValueError(f"unknown loss class {loss.get('class')!r}")
            loss = cls(**loss["config"])
        hyper = {k: v for k, v in settings["optimizer_state"].items() if "." not in k}
        model.compile(optimizer=settings["optimizer"], loss=loss, metrics=settings["metrics"],
                      l2=settings["l2"], l1=settings["l1"], **hyper)
        model._bind_optimizer()
        state = {**settings["optimizer_state"],
                 **{k.removeprefix("optimizer/"): v for k, v in arrays.items()}}
        model.optimizer.load_state_dict(state)
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise ValueError(f"load_model: the compile settings in {where} cannot be restored: "
                         f"{e}") from None


def is_plain(value) -> bool:
    """Numbers, strings, booleans, None, and lists/dicts of them: what settings may hold."""
    if value is None or isinstance(value, (str, bool, numbers.Number)):
        return True
    if isinstance(value, list):
        return all(is_plain(v) for v in value)
    return isinstance(value, dict) and all(isinstance(k, str) and is_plain(v)
                                           for k, v in value.items())
