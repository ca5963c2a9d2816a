"""Training runs for the ``strata`` command: load a dataset, split it, train a network (an
L-layer MLP or a ConvNet of the model zoo), and write a run folder (model, config, history CSV,
learning curves, Markdown report)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import strata
from strata import nn
from strata.data.catalog import DATASETS, IMAGE_DATASETS, MIRROR_SAFE, RunData, load_run_data
from strata.io import write_text_atomic

#: "mlp": the L-layer network of --hidden; the others are ConvNets of strata.models.
ARCHS = ("mlp", "convnet", "small_convnet", "lenet5", "resnet50")
#: The training state of a run in progress, in its partial folder (removed when it finishes).
CHECKPOINT = "checkpoint.safetensors"
#: The run folder's TensorBoard event files (strata train --tensorboard).
TENSORBOARD = "tensorboard"


@dataclass
class RunConfig:
    """Everything that defines a run; saved as config.json in the run folder."""

    dataset: str = "digits"
    arch: str = "mlp"  # absent from config.json files written before it existed: the MLP
    hidden: list = field(default_factory=lambda: [64, 32])
    optimizer: str = "adam"
    lr: float = 0.003
    lr_decay: float = 1.0  # lr = lr * lr_decay ** epoch (1: constant)
    beta: float | None = None  # the optimizer's own hyperparameters; None: its default
    beta1: float | None = None
    beta2: float | None = None
    epsilon: float | None = None
    epochs: int = 40
    batch_size: int = 64
    l2: float = 0.0
    keep_prob: float = 1.0
    augment: bool = False
    seed: int = 0
    human_error: float | None = None  # human-level error (proxy for Bayes) for the diagnosis

    def optimizer_options(self) -> dict:
        """The optimizer hyperparameters given (beta, beta1, beta2, epsilon), for compile."""
        return {k: v for k in ("beta", "beta1", "beta2", "epsilon")
                if (v := getattr(self, k)) is not None}

    def __post_init__(self):
        import math
        import numbers

        from strata.optim import OPTIMIZERS

        def number(v):
            return isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v)

        def count(v, low):
            return isinstance(v, numbers.Integral) and not isinstance(v, bool) and v >= low

        checks = [
            ("dataset", self.dataset in DATASETS, f"one of {', '.join(DATASETS)}"),
            ("hidden", isinstance(self.hidden, (list, tuple)) and all(
                count(u, 1) for u in self.hidden), "a list of positive layer sizes, e.g. [64, 32]"),
            ("optimizer", isinstance(self.optimizer, str) and self.optimizer.lower() in
             OPTIMIZERS, f"one of {', '.join(sorted(OPTIMIZERS))}"),
            ("lr", number(self.lr) and self.lr > 0, "a learning rate > 0"),
            ("lr_decay", number(self.lr_decay) and 0 < self.lr_decay <= 1, "a factor in (0, 1]"),
            ("epochs", count(self.epochs, 1), "an int >= 1"),
            ("batch_size", count(self.batch_size, 1), "an int >= 1"),
            ("l2", number(self.l2) and self.l2 >= 0, "a number >= 0"),
            ("keep_prob", number(self.keep_prob) and 0 < self.keep_prob <= 1,
             "a keep probability in (0, 1] (1: no dropout)"),
            ("arch", self.arch in ARCHS, f"one of {', '.join(ARCHS)}"),
            ("augment", isinstance(self.augment, bool), "true or false"),
            ("seed", count(self.seed, 0), "an int >= 0"),
            ("human_error", self.human_error is None or (
                number(self.human_error) and 0 <= self.human_error <= 1),
             "null or a fraction in [0, 1]"),
        ]
        for name, ok, expected in checks:
            if not ok:
                raise ValueError(f"{name}: expected {expected}, got {getattr(self, name)!r}")
        own = OPTIMIZERS[self.optimizer.lower()].hyperparameters
        for name, value in self.optimizer_options().items():
            if name not in own:
                raise ValueError(f"{name}={value!r}: the {self.optimizer} optimizer has no "
                                 f"{name}; expected one of {', '.join(own)}")
            interval, ok = own[name]
            if not (number(value) and ok(value)):
                raise ValueError(f"{name}: expected a number in {interval}, got {value!r}")
        if self.arch != "mlp" and self.dataset not in IMAGE_DATASETS:
            raise ValueError(f"arch {self.arch!r} needs images; expected a dataset among "
                             f"{', '.join(IMAGE_DATASETS)}, got {self.dataset!r}")
        if self.augment and self.arch == "mlp":
            raise ValueError("augment works on images: expected a conv arch (convnet, lenet5, "
                             "resnet50), got arch 'mlp'")


def build_model(config: RunConfig, n_classes: int, input_shape=None) -> nn.Sequential:
    """The arch's network for ``input_shape`` (one example's shape). "mlp": ReLU hidden layers
    (He init, dropout when keep_prob < 1), a sigmoid unit for two classes, else a softmax.
    Conv archs: the zoo model ending in the same. The losses of ``_loss_name`` take these
    probabilities and fuse with the sigmoid/softmax."""
    if config.arch != "mlp":
        try:
            return _zoo_model(config.arch, n_classes, tuple(input_shape))
        except ValueError as e:
            raise ValueError(f"arch {config.arch!r} on {config.dataset} images of shape "
                             f"{tuple(input_shape)}: {e}") from None
    layers = []
    for units in config.hidden:
        layers.append(nn.Dense(units, "relu", kernel_initializer="he"))
        if config.keep_prob < 1:
            layers.append(nn.Dropout(config.keep_prob))
    out = nn.Dense(1, "sigmoid") if n_classes == 2 else nn.Dense(n_classes, "softmax")
    return nn.Sequential([*layers, out])


def _zoo_model(arch: str, n_classes: int, input_shape: tuple) -> nn.Sequential:
    from strata import models

    make = {"convnet": models.signs_convnet, "small_convnet": models.small_convnet,
            "lenet5": models.lenet5, "resnet50": models.resnet50}[arch]
    classes, head = (1, "sigmoid") if n_classes == 2 else (n_classes, "softmax")
    if arch == "lenet5":
        return make("modern", input_shape=input_shape, classes=classes, classifier_activation=head)
    return make(classes=classes, input_shape=input_shape, classifier_activation=head)


def _augmentation(config: RunConfig, image_hw):
    """Random crops (zero padding of about 1/16 of the side: 4 px at 64x64, as for SIGNS) and,
    where mirroring keeps the label, random left-right flips."""
    from strata.data import Compose, RandomCrop, RandomFlip

    crop = RandomCrop(tuple(image_hw), padding=max(1, round(image_hw[0] / 16)))
    return Compose([RandomFlip(), crop] if config.dataset in MIRROR_SAFE else [crop])


def _callbacks(config: RunConfig, out: Path, extra=()) -> list:
    callbacks = [nn.CSVLogger(out / "history.csv"), *extra]
    if config.lr_decay < 1:
        from strata.optim.schedules import ExponentialDecay

        schedule = ExponentialDecay(config.lr, config.lr_decay)
        callbacks.append(nn.LearningRateScheduler(schedule))
    return callbacks


def _loss_name(n_classes: int, model=None):
    """The run's loss: its Keras name, taking the probabilities ``build_model``'s sigmoid or
    softmax gives. For a ``model`` that ends in logits (a run folder written before strata's
    losses took probabilities by default), the same loss with ``from_logits=True``."""
    name = "binary_crossentropy" if n_classes == 2 else "sparse_categorical_crossentropy"
    last = (getattr(model, "layers", None) or [None])[-1]
    if getattr(getattr(last, "activation", None), "__name__", None) != "linear":
        return name
    from strata import losses

    loss = losses.BinaryCrossentropy if n_classes == 2 else losses.SparseCategoricalCrossentropy
    return loss(from_logits=True)


def run_data(config: RunConfig) -> RunData:
    """The run's data (strata.data.catalog): train/dev/test sets, the same every time for the
    same config (seeded), and the line that says what they are."""
    strata.seed(config.seed)
    return load_run_data(config.dataset, images=config.arch != "mlp")


def splits(config: RunConfig):
    """The run's (train, dev, test, n_classes); ``run_data`` also says what they are."""
    data = run_data(config)
    return data.train, data.dev, data.test, data.n_classes


def train(config: RunConfig, out_dir, verbose: int = 1, resume: bool = False,
          overwrite: bool = False, tensorboard=None) -> dict:
    """Train as ``config`` says and publish the run folder ``out_dir``; returns the final
    metrics. The run is built in a locked partial folder beside ``out_dir`` with a checkpoint
    after every epoch; ``resume=True`` continues an interrupted one (its own config.json wins
    over ``config``), ``overwrite=True`` replaces a finished one (see strata.runfolder).
    ``tensorboard``: a folder for TensorBoard event files, or "" for ``out_dir/tensorboard``
    (written in the partial folder, published with the run); None: none."""
    from strata.runfolder import RunFolder, partial_path

    extra = [] if tensorboard is None else [nn.TensorBoard(  # before any folder: needs the extra
        Path(tensorboard) if tensorboard else partial_path(out_dir) / TENSORBOARD)]
    with RunFolder(out_dir, overwrite=overwrite, resume=resume, purpose="strata train",
                   checkpoint=CHECKPOINT) as run:
        if resume:
            config = read_config(run.path)
        else:
            write_text_atomic(run.path / "config.json", json.dumps(asdict(config), indent=2) + "\n")
        results = _train_into(run.path, config, verbose, resume, extra)
        run.publish()
    return results


def _train_into(out: Path, config: RunConfig, verbose: int, resume: bool, extra=()) -> dict:
    data_used = run_data(config)
    print(f"Data: {data_used.summary}")
    write_text_atomic(out / "data.json", json.dumps(data_used.record(), indent=2) + "\n")
    train_set, dev_set, test_set = data_used.train, data_used.dev, data_used.test
    n_classes = data_used.n_classes
    strata.seed(config.seed)  # initialization and batches as in a strata tune trial's
    model = build_model(config, n_classes, train_set[0].shape[1:])
    metrics = ["accuracy"] + (["f1"] if n_classes == 2 else [])
    model.compile(optimizer=config.optimizer, lr=config.lr, loss=_loss_name(n_classes),
                  metrics=metrics, l2=config.l2, **config.optimizer_options())
    data = train_set
    if config.augment:
        from strata.data import Pipeline

        data = (Pipeline(*train_set, batch_size=config.batch_size,
                         transform=_augmentation(config, train_set[0].shape[1:3])), None)
    checkpoint = out / CHECKPOINT
    history = model.fit(*data, epochs=config.epochs, batch_size=config.batch_size,
                        validation_data=dev_set, verbose=verbose,
                        callbacks=_callbacks(config, out, extra), checkpoint=checkpoint,
                        resume=resume)
    checkpoint.unlink()  # finished: the published run keeps the model, not the training state
    results = {name: model.evaluate(*part) for name, part in
               (("train", train_set), ("dev", dev_set), ("test", test_set))}
    strata.save_model(model, out / "model.safetensors")
    write_text_atomic(out / "metrics.json", json.dumps(results, indent=2) + "\n")
    from strata.plots import plot_costs, plot_decision_boundary, plot_learning_curves

    plot_learning_curves(history, out / "learning_curves.png")
    plot_costs(history.costs, out / "cost.png", learning_rate=config.lr)
    two_d = train_set[0].shape[1:] == (2,)  # the course's planar, moons and circles data
    if two_d:
        plot_decision_boundary(model.predict, *train_set, out / "decision_boundary.png")
    write_text_atomic(out / "report.md", report(config, model, results, data_used, two_d))
    return results


def report(config: RunConfig, model, results: dict, data: RunData,
           decision_boundary: bool = False) -> str:
    """A short Markdown report: data (the sets, their sizes and sources, any warning), model,
    metrics, the diagnosis (avoidable bias, variance, overfitting to the dev set, next
    actions), the plots."""
    layers = [type(layer).__name__ if "\n" in repr(layer) else repr(layer)
              for layer in model.layers]
    flips = ", flips" if config.dataset in MIRROR_SAFE else ""
    augment = f", augmented (random crops{flips})" if config.augment else ""
    sizes = data.sizes
    lines = [f"# strata run: {config.dataset}", "", f"- data: {data.summary}",
             *([f"- **note:** {data.note}"] if data.note else []),
             f"- examples: train {sizes['train']}{augment}, dev {sizes['dev']}, "
             f"test {sizes['test']}",
             f"- model ({config.arch}): {' -> '.join(layers)}",
             f"- optimizer {config.optimizer}, lr {config.lr}"
             f"{f' x {config.lr_decay}^epoch' if config.lr_decay < 1 else ''}, "
             f"epochs {config.epochs}, "
             f"batch {config.batch_size}, l2 {config.l2}, keep_prob {config.keep_prob}", "",
             "| set | loss | " + " | ".join(k for k in results["train"] if k != "loss") + " |",
             "|---|---|" + "---|" * (len(results["train"]) - 1)]
    for name, values in results.items():
        lines.append(f"| {name} | {values['loss']:.4f} | " + " | ".join(
            f"{v:.4f}" for k, v in values.items() if k != "loss") + " |")
    lines += ["", "## Diagnosis", "", diagnosis(results, config.human_error).to_markdown(),
              "", "![learning curves](learning_curves.png)", ""]
    if decision_boundary:
        lines += ["![decision boundary](decision_boundary.png)", ""]
    return "\n".join(lines)


def diagnosis(results: dict, human_error=None):
    """The course's reading of a run's errors (1 - accuracy on train, dev and test). A run has
    no training-dev set, so variance and data mismatch are not told apart (the reading says so)."""
    from strata.strategy import diagnose

    errors = {name: 1 - results[name]["accuracy"] for name in ("train", "dev", "test")
              if name in results}
    return diagnose(human=human_error, **errors)


def read_config(folder) -> RunConfig:
    """The RunConfig in ``folder``/config.json, every problem named with the file: no (or an
    unfinished) run, bad JSON, a language-model run's settings, unknown settings, invalid
    values (strata.runfolder.read_settings)."""
    from dataclasses import fields

    from strata.runfolder import read_settings
    from strata.text.runs import LMConfig

    folder = Path(folder)

    def language_model(raw: dict) -> str | None:
        lm_only = raw.keys() & ({f.name for f in fields(LMConfig)} - {
            f.name for f in fields(RunConfig)})
        if lm_only or (folder / "vocab.json").is_file():
            return (f"{folder} is a language-model run folder (strata lm train: vocab.json, "
                    f"settings {sorted(lm_only) or 'of LMConfig'}), not a strata train run; "
                    f"use strata lm sample or strata lm score on it")
        return None

    return read_settings(folder, RunConfig, "strata", "strata train", language_model)


def load_run(run_dir):
    """(config, model) of a finished run folder."""
    run = Path(run_dir)
    return read_config(run), strata.load_model(run / "model.safetensors")
