"""The ``strata`` command: ``strata train`` (the default) trains a network and writes a run
folder; ``evaluate`` and ``predict`` use a saved run; ``lm`` trains, samples and scores
language models; ``diagnose``, ``errors``, ``tune`` and ``babysit`` are the ML-strategy and
tuning tools (strata/commands.py); ``demo`` gradient-checks and trains a small network written
directly with the engine (strata/demo.py)."""

from __future__ import annotations

import argparse
import sys
from dataclasses import fields
from pathlib import Path

import numpy as np

import strata


def _positive(kind):
    def parse(text):
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"expected a positive number, got {text}")
        return value

    return parse


def _keep_prob(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 < value <= 1:  # NaN fails too
        raise argparse.ArgumentTypeError(f"expected a keep probability in (0, 1] (1 = no "
                                         f"dropout), got {text}")
    return value


def _sizes(text: str) -> list:
    try:
        sizes = [int(s) for s in text.split(",") if s]
    except ValueError:
        sizes = []
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"expected comma-separated positive sizes such as "
                                         f"64,32, got {text!r}")
    return sizes


def run_train(args) -> int:
    """Train a network on a dataset and publish the run folder (or continue an interrupted
    one with --resume)."""
    from strata import runfolder, runs

    config = runs.RunConfig(**{f.name: getattr(args, f.name) for f in fields(runs.RunConfig)})
    out = args.resume or args.out or runfolder.numbered_run("runs")
    if args.resume:
        print(f"Resuming the interrupted run of {out} with its own config.json")
    if args.tensorboard is not None:  # the flag alone: in the partial folder until published
        from strata.extras import require

        require("tensorboardX", "tensorboard", "TensorBoard logging")  # before any message
        live = args.tensorboard or runfolder.partial_path(out) / runs.TENSORBOARD
        print(f"TensorBoard event files: {live}/ (follow with: tensorboard --logdir {live})")
    results = runs.train(config, out, verbose=0 if args.quiet else 1, resume=bool(args.resume),
                         overwrite=args.overwrite, tensorboard=args.tensorboard)
    if not (args.resume or args.out):
        runfolder.point_latest(Path(out))
    for name, values in results.items():
        print(f"{name:<6}" + "  ".join(f"{k} {v:.4f}" for k, v in values.items()))
    print(f"\n{runs.diagnosis(results, runs.read_config(out).human_error)}\n")
    latest = "" if args.resume or args.out else " (runs/latest points to it)"
    print(f"Run written to {out}/{latest}: model.safetensors, config.json, data.json, "
          f"history.csv, learning_curves.png, report.md")
    if args.tensorboard is not None:
        board = args.tensorboard or Path(out) / runs.TENSORBOARD
        print(f"View its TensorBoard event files with: tensorboard --logdir {board}")
    return 0


def run_evaluate(args) -> int:
    """Recompute a saved run's metrics on its own train/dev/test split."""
    from strata import runs

    config, model = runs.load_run(args.run)
    data = runs.run_data(config)
    print(f"Data: {data.summary}")
    recorded = Path(args.run) / "data.json"  # absent in runs written before it existed
    if recorded.is_file():
        import json

        trained_on = json.loads(recorded.read_text()).get("summary")
        if trained_on != data.summary:
            print(f"strata evaluate: warning: the run was trained and measured on other data: "
                  f"{trained_on}", file=sys.stderr)
    dev_set, test_set, n_classes = data.dev, data.test, data.n_classes
    if model.loss is None:  # a run folder written before models were saved compiled
        model.compile(loss=runs._loss_name(n_classes, model), metrics=["accuracy"])
    for name, part in (("dev", dev_set), ("test", test_set)):
        values = model.evaluate(*part)
        print(f"{name:<6}" + "  ".join(f"{k} {v:.4f}" for k, v in values.items()))
    return 0


def model_input(X: np.ndarray, input_shape, where: str) -> np.ndarray:
    """X as a batch of the model's examples: rows of pixels or one image become (m, *shape);
    uint8 pixels are scaled to [0, 1] as the loaders do."""
    shape = tuple(input_shape or X.shape[1:])
    if X.shape == shape:  # a single example
        X = X[None]
    elif X.ndim == 2 and len(shape) > 1 and X.shape[1] == int(np.prod(shape)):
        X = X.reshape(len(X), *shape)  # rows of flattened images (e.g. a .csv)
    if X.shape[1:] != shape:
        raise ValueError(f"{where}: the model expects examples of shape {shape}, so an array of "
                         f"shape (m, {', '.join(map(str, shape))}), got {X.shape}")
    scale = 255.0 if X.dtype == np.uint8 else 1.0
    return X.astype(strata.get_default_dtype()) / scale


def run_predict(args) -> int:
    """Predict classes for examples (.npy, .csv, images) with a saved run's model."""
    from strata import runs
    from strata.prediction import predict_files

    _, model = runs.load_run(args.run)
    classes = predict_files(model, args.inputs, args.out)
    if args.out is None:
        print("\n".join(str(c) for c in classes))
    else:
        print(f"Wrote the classes and probabilities of {len(classes)} examples to {args.out}")
    return 0


TRAIN_HELP = """Train a network on a dataset and write a run folder: model.safetensors,
config.json, data.json, metrics.json, history.csv, learning curves and report.md.

With no options: an MLP (64, 32 hidden units) on scikit-learn's 8x8 digits, in seconds.
Image datasets (digits, mnist, fashion_mnist, catvnoncat, signs) are flattened for --arch mlp
and kept NHWC (mnist as (m, 28, 28, 1)) for the conv archs. Data sets with a test set of
their own keep it, with dev carved (seeded) from their training images: catvnoncat trains on
the course's 209 training images (20 % of them as dev) and tests on its 50 test images;
signs on the course's 1080 (10 % as dev) and 120; mnist and fashion_mnist on the 60,000
training images (10,000 as dev) and the 10,000 test images. Without the training files, and
no network to download them, mnist and fashion_mnist fall back to a split of the test images
and say so. The others get a seeded 60/20/20 split. Every run prints the data it used and
keeps it in report.md and data.json.

examples:
  strata train --dataset moons --hidden 8 --lr 0.02
  strata train --dataset signs --arch convnet --lr 0.009 --batch-size 32 --epochs 60
  strata train --dataset signs --arch convnet --augment --epochs 100
  strata train --dataset signs --arch small_convnet --lr 0.002 --lr-decay 0.93 \
               --batch-size 32 --epochs 15      # over 90 % test accuracy
"""


def build_parser() -> argparse.ArgumentParser:
    from strata.runs import ARCHS, DATASETS, RunConfig

    parser = argparse.ArgumentParser(prog="strata", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=strata.__version__)
    sub = parser.add_subparsers(dest="command")
    d = RunConfig()
    train = sub.add_parser("train", help="train a network and write a run folder (default)",
                           description=TRAIN_HELP,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    train.add_argument("--dataset", choices=DATASETS, default=d.dataset)
    train.add_argument("--arch", choices=ARCHS, default=d.arch,
                       help="mlp: L-layer network of --hidden (images flattened); convnet: the "
                            "course's SIGNS ConvNet; small_convnet: three conv blocks; lenet5 "
                            "(modern: ReLU, max pooling), resnet50: the zoo's (images kept NHWC)")
    train.add_argument("--hidden", type=_sizes, default=d.hidden,
                       help="hidden layer sizes of --arch mlp, e.g. 64,32 (ReLU, He init)")
    train.add_argument("--optimizer", choices=["adam", "gd", "sgd", "momentum", "rmsprop"],
                       default=d.optimizer)
    train.add_argument("--lr", type=_positive(float), default=d.lr, help="learning rate alpha")
    train.add_argument("--lr-decay", type=_positive(float), default=d.lr_decay,
                       help="learning-rate decay per epoch: lr * decay^epoch (default 1: none)")
    for name, what in (("beta", "momentum's beta"), ("beta1", "adam's beta1"),
                       ("beta2", "adam's and rmsprop's beta2"),
                       ("epsilon", "adam's and rmsprop's epsilon")):
        train.add_argument(f"--{name}", type=float, help=f"{what} (default: the optimizer's)")
    train.add_argument("--epochs", type=_positive(int), default=d.epochs)
    train.add_argument("--batch-size", type=_positive(int), default=d.batch_size)
    train.add_argument("--l2", type=float, default=d.l2, help="L2 regularization lambda")
    train.add_argument("--keep-prob", type=_keep_prob, default=d.keep_prob,
                       help="dropout keep probability of --arch mlp (1 = no dropout)")
    train.add_argument("--augment", action="store_true",
                       help="conv archs: random crops (padding 1/16 of the side) and, for "
                            "signs and catvnoncat, left-right flips, in a background pipeline")
    train.add_argument("--seed", type=int, default=d.seed)
    train.add_argument("--out", help="run folder to write (default: the next runs/run-NNNN, "
                       "with runs/latest pointing to it)")
    train.add_argument("--overwrite", action="store_true",
                       help="replace the finished run (or discard the interrupted one) in --out")
    train.add_argument("--resume", metavar="DIR",
                       help="continue the interrupted run of DIR from its last checkpoint, with "
                            "its own config.json (other options are ignored)")
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    train.add_argument("--tensorboard", nargs="?", const="", metavar="DIR",
                       help="write TensorBoard event files (scalars, histograms) to DIR, or "
                            "alone to the run folder's tensorboard/ (needs strata[tensorboard])")
    train.set_defaults(handler=run_train)
    evaluate = sub.add_parser("evaluate", help="metrics of a saved run on its dev/test sets")
    evaluate.add_argument("run", help="run folder written by strata train")
    evaluate.set_defaults(handler=run_evaluate)
    predict = sub.add_parser("predict", help="classes (and probabilities) of examples: .npy, "
                             ".csv, images")
    predict.add_argument("run", help="run folder written by strata train")
    predict.add_argument("inputs", nargs="+", metavar="input",
                         help="a .npy array (m, ...) of examples, e.g. images (m, 64, 64, 3), "
                         "float in [0, 1] or uint8; a .csv file, one (flattened) example per "
                         "row, with or without a header row; image files or folders of images "
                         "of the model's input size")
    predict.add_argument("--out", metavar="FILE.csv",
                         help="write example, class and each class's probability to FILE.csv "
                              "instead of printing the classes")
    predict.set_defaults(handler=run_predict)
    from strata.commands import _fraction, add_commands

    train.add_argument("--human-error", type=_fraction, default=None,
                       help="human-level error (proxy for Bayes), e.g. 0.01, for the report's "
                            "diagnosis")
    add_commands(sub, _positive)
    from strata.demo import add_demo_parser
    from strata.onnx.cli import add_export_parser
    from strata.text.cli import add_lm_parser
    from strata.vision.cli import add_detect_parser
    from strata.vision.faces_cli import add_faces_parser
    from strata.vision.style_cli import add_style_parser
    from strata.vision.visualize_cli import add_visualize_parser

    add_demo_parser(sub)
    add_lm_parser(sub)
    add_detect_parser(sub)
    add_faces_parser(sub)
    add_style_parser(sub)
    add_visualize_parser(sub)
    add_export_parser(sub)
    return parser


def main(argv=None) -> int:
    """Entry point of the ``strata`` command."""
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else argv
    if not argv or (argv[0].startswith("-") and argv[0] not in ("-h", "--help", "--version")):
        argv = ["train", *argv]  # training is the default command
    from strata.extras import MissingExtra
    from strata.files import FolderBusy

    args = parser.parse_args(argv)
    sub_command = getattr(args, f"{args.command}_command", None)  # lm train, detect predict...
    command = args.command + (f" {sub_command}" if sub_command else "")
    try:
        return args.handler(args)
    except KeyboardInterrupt as e:
        from strata.nn import TrainingInterrupted

        if isinstance(e, TrainingInterrupted):
            run = e.checkpoint.parent
            target = run.with_name(run.name.removeprefix(".").removesuffix(".partial"))
            print(f"\nstrata {command}: interrupted at epoch {e.epoch}, batch {e.batch}; the "
                  f"checkpoint is in {run}/. Continue with:\n  strata {command} --resume "
                  f"{target}", file=sys.stderr)
        else:
            print(f"\nstrata {command}: interrupted", file=sys.stderr)
        return 130
    except (ValueError, OSError, FolderBusy, MissingExtra) as e:
        print(f"strata {command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
