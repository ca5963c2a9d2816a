"""Training runs for the ``strata`` command: load a dataset, split it, train an L-layer network,
and write a run folder (model, config, history CSV, learning curves, Markdown report)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

import strata
from strata import nn
from strata.data import train_dev_test_split

DATASETS = ("digits", "moons", "circles", "planar", "catvnoncat", "mnist")


@dataclass
class RunConfig:
    """Everything that defines a run; saved as config.json in the run folder."""

    dataset: str = "digits"
    hidden: list = field(default_factory=lambda: [64, 32])
    optimizer: str = "adam"
    lr: float = 0.003
    epochs: int = 40
    batch_size: int = 64
    l2: float = 0.0
    keep_prob: float = 1.0
    seed: int = 0


def load_dataset(name: str):
    """(X, Y, n_classes) for a dataset name; Y holds class indices (m,) or 0/1 labels (m, 1)."""
    from strata import data

    if name == "digits":
        X, Y = data.load_digits()
        return X, Y, 10
    if name == "mnist":
        X, Y = data.load_mnist("test")
        return X, Y, 10
    if name == "catvnoncat":
        (X_train, Y_train), (X_test, Y_test), _ = data.load_catvnoncat()
        return np.concatenate([X_train, X_test]), np.concatenate([Y_train, Y_test]), 2
    makers = {"moons": data.moons, "circles": data.circles, "planar": data.planar_flower}
    if name not in makers:
        raise ValueError(f"unknown dataset {name!r}; expected one of {', '.join(DATASETS)}")
    X, Y = makers[name]()
    return X, Y, 2


def build_model(config: RunConfig, n_classes: int) -> nn.Sequential:
    """ReLU hidden layers (He init, dropout when keep_prob < 1), sigmoid or softmax-logit output."""
    layers = []
    for units in config.hidden:
        layers.append(nn.Dense(units, "relu", kernel_initializer="he"))
        if config.keep_prob < 1:
            layers.append(nn.Dropout(config.keep_prob))
    out = nn.Dense(1, "sigmoid") if n_classes == 2 else nn.Dense(n_classes)
    return nn.Sequential([*layers, out])


def _loss_name(n_classes: int) -> str:
    return "binary_crossentropy" if n_classes == 2 else "sparse_categorical_crossentropy"


def splits(config: RunConfig):
    """The run's train/dev/test sets, the same every time for the same config (seeded)."""
    strata.seed(config.seed)
    X, Y, n_classes = load_dataset(config.dataset)
    return (*train_dev_test_split(X, Y), n_classes)


def train(config: RunConfig, out_dir, verbose: int = 1) -> dict:
    """Train as ``config`` says and write the run folder; returns the final metrics."""
    out = Path(out_dir)
    train_set, dev_set, test_set, n_classes = splits(config)
    model = build_model(config, n_classes)
    metrics = ["accuracy"] + (["f1"] if n_classes == 2 else [])
    model.compile(optimizer=config.optimizer, lr=config.lr, loss=_loss_name(n_classes),
                  metrics=metrics, l2=config.l2)
    out.mkdir(parents=True, exist_ok=True)
    history = model.fit(*train_set, epochs=config.epochs, batch_size=config.batch_size,
                        validation_data=dev_set, verbose=verbose,
                        callbacks=[nn.CSVLogger(out / "history.csv")])
    results = {name: model.evaluate(*part) for name, part in
               (("train", train_set), ("dev", dev_set), ("test", test_set))}
    strata.save_model(model, out / "model.safetensors")
    (out / "config.json").write_text(json.dumps(asdict(config), indent=2) + "\n")
    (out / "metrics.json").write_text(json.dumps(results, indent=2) + "\n")
    from strata.plots import plot_costs, plot_decision_boundary, plot_learning_curves

    plot_learning_curves(history, out / "learning_curves.png")
    plot_costs(history.costs, out / "cost.png", learning_rate=config.lr)
    two_d = train_set[0].shape[1] == 2  # the course's planar, moons and circles data
    if two_d:
        plot_decision_boundary(model.predict, *train_set, out / "decision_boundary.png")
    sizes = [len(part[0]) for part in (train_set, dev_set, test_set)]
    (out / "report.md").write_text(report(config, model, results, sizes, two_d))
    return results


def report(config: RunConfig, model, results: dict, sizes: list,
           decision_boundary: bool = False) -> str:
    """A short Markdown report: data, model, metrics, the bias/variance reading, the plots."""
    lines = [f"# strata run: {config.dataset}", "",
             f"- examples: train {sizes[0]}, dev {sizes[1]}, test {sizes[2]}",
             f"- model: {' -> '.join(repr(layer) for layer in model.layers)}",
             f"- optimizer {config.optimizer}, lr {config.lr}, epochs {config.epochs}, "
             f"batch {config.batch_size}, l2 {config.l2}, keep_prob {config.keep_prob}", "",
             "| set | loss | " + " | ".join(k for k in results["train"] if k != "loss") + " |",
             "|---|---|" + "---|" * (len(results["train"]) - 1)]
    for name, values in results.items():
        lines.append(f"| {name} | {values['loss']:.4f} | " + " | ".join(
            f"{v:.4f}" for k, v in values.items() if k != "loss") + " |")
    train_err = 1 - results["train"]["accuracy"]
    dev_err = 1 - results["dev"]["accuracy"]
    focus = "variance (dev error well above train)" if dev_err - train_err > max(
        train_err, 0.01) else "bias (train error is the larger gap)"
    lines += ["", f"Train error {train_err:.2%}, dev error {dev_err:.2%}: look at {focus}.",
              "", "![learning curves](learning_curves.png)", ""]
    if decision_boundary:
        lines += ["![decision boundary](decision_boundary.png)", ""]
    return "\n".join(lines)


def load_run(run_dir):
    """(config, model) of a finished run folder."""
    run = Path(run_dir)
    if not (run / "config.json").is_file():
        raise FileNotFoundError(f"{run} is not a strata run folder (no config.json)")
    config = RunConfig(**json.loads((run / "config.json").read_text()))
    return config, strata.load_model(run / "model.safetensors")
