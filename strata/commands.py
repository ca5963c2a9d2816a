"""The ``strata`` subcommands of ML strategy and tuning: ``diagnose`` and ``errors`` read a run
folder; ``tune`` runs a hyperparameter search from a search file; ``babysit`` is panda mode."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

#: The hyperparameters of strata.tune.objective.MLP_HYPERPARAMETERS (kept here so that the
#: parser does not import the tuning stack); a test checks that the two agree.
MLP_NAMES = ("dataset", "epochs", "seed", "optimizer", "lr", "beta", "beta1", "beta2",
             "epsilon", "layers", "units", "hidden", "batch_size", "l2", "keep_prob")


def _fraction(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"expected a fraction in [0, 1] (0.01 for 1 %), got "
                                         f"{text}")
    return value


def run_diagnose(args) -> int:
    """Print the diagnosis of a run folder's errors."""
    from strata import runs

    config, _ = runs.load_run(args.run)
    results = json.loads((Path(args.run) / "metrics.json").read_text())
    human = config.human_error if args.human_error is None else args.human_error
    print(runs.diagnosis(results, human))
    return 0


def run_errors(args) -> int:
    """Error analysis of a run's dev set: a tag template (and image grid), or the table."""
    from strata import runs, strategy

    config, model = runs.load_run(args.run)
    _, (X_dev, Y_dev), _, _ = runs.splits(config)
    out_dir = Path(args.out or args.run)
    predictions = model.predict(X_dev)
    if args.tags:
        analysis = strategy.error_analysis(Y_dev, predictions, tags=args.tags)
        analysis.to_csv(out_dir / "error_analysis.csv")
        from strata.io import write_text_atomic

        write_text_atomic(out_dir / "error_analysis.md", analysis.to_markdown())
        print(analysis)
        return 0
    ids = strategy.sample_errors(Y_dev, predictions, args.n)
    categories = [c.strip() for c in args.categories.split(",") if c.strip()]
    template = strategy.write_tag_template(out_dir / "errors_to_tag.csv", ids, categories,
                                           Y_dev, predictions)
    print(f"{len(ids)} misclassified dev examples sampled; tag them in {template}, then run "
          f"strata errors {args.run} --tags {template}")
    if config.dataset in runs.IMAGE_DATASETS and len(ids):
        path = strategy.plot_errors(X_dev, ids, Y_dev, predictions, out_dir / "errors.png")
        print(f"Their images: {path}")
    return 0


def run_tune(args) -> int:
    """Run (or resume) a hyperparameter search and report it."""
    from strata.tune.config import load_search
    from strata.tune.search import search

    config = load_search(args.space_file, trials=args.trials, rounds=args.rounds,
                         storage=args.storage)
    out = Path(args.out or Path("runs") / "tune" / config.name)
    result = search(config, out, workers=args.workers, engine=args.engine,
                    progress=not args.quiet)
    metric = "dev accuracy" if config.objective.endswith(":train_mlp") else "score"
    print(f"\nBest trials of {config.name} ({config.direction} {metric}):")
    print(result["text"])
    print(f"\nResults: {result['results']}; plots: {', '.join(p.name for p in result['plots'])}"
          f" in {out}/")
    from strata.tune.config import DEFAULT_OBJECTIVE

    if result["best"] and config.objective == DEFAULT_OBJECTIVE:  # strata train's MLP
        from strata.tune.best import save_best_run

        print(f"\nTraining the best trial ({result['best'][0]['number']}) again as a run...")
        folder, command = save_best_run(config, result["best"][0], out,
                                        verbose=0 if args.quiet else 1)
        print(f"Best model: {folder}/ (reproduce it with: {command})")
    return 0


def _assignment(text: str):
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE such as lr=0.001, got {text!r}")
    try:
        return key.strip(), json.loads(value)
    except json.JSONDecodeError:
        return key.strip(), value


def run_babysit(args) -> int:
    """Panda mode: train one model some more epochs with changed hyperparameters."""
    from strata.tune.panda import Panda, check_params

    changes = dict(args.set)
    if "epochs" in changes:
        raise ValueError(f"--set epochs={changes['epochs']}: give the epochs of this session "
                         f"with --epochs")
    check_params(changes)  # before the folder and its study are created
    panda = Panda(args.folder)
    accuracy = panda.train(args.epochs, **changes)
    for epoch, value in panda.history()[-args.epochs:]:
        print(f"epoch {epoch:>4}  dev accuracy {value:.4f}")
    print(f"{args.folder}: {panda.epoch} epochs so far, dev accuracy {accuracy:.4f}, "
          f"hyperparameters {json.dumps(panda.params)}")
    return 0


TUNE_HELP = """Run (or resume) a hyperparameter search from a search file (TOML): [study]
settings, [fixed] hyperparameters and the [space] searched; see examples/tune_digits.toml.

Trust: the study setting objective = "module:function" imports that Python module and runs
its code (the default, strata.tune.objective:train_mlp, trains strata's MLP). Name only modules
you trust; the whole file is checked before the import. Nothing else strata reads runs code:
model files (safetensors weights and a JSON architecture), datasets and run folders are data.
"""


def add_commands(sub, positive) -> None:
    """Add diagnose, errors, tune and babysit to the ``strata`` parser's subcommands."""
    d = sub.add_parser("diagnose", help="avoidable bias, variance, next actions of a run")
    d.add_argument("run", help="run folder written by strata train")
    d.add_argument("--human-error", type=_fraction, default=None,
                   help="human-level error (proxy for Bayes), e.g. 0.01 for 1 %%")
    d.set_defaults(handler=run_diagnose)
    e = sub.add_parser("errors", help="error analysis of a run's misclassified dev examples")
    e.add_argument("run", help="run folder written by strata train")
    e.add_argument("--n", type=positive(int), default=100, help="examples to sample (100)")
    e.add_argument("--categories", default="blurry,other",
                   help="comma-separated tag columns of the template (incorrectly labeled is "
                        "always added)")
    e.add_argument("--tags", help="the filled-in template: print and write the table")
    e.add_argument("--out", help="output folder (default: the run folder)")
    e.set_defaults(handler=run_errors)
    t = sub.add_parser("tune", help="hyperparameter search from a search file (TOML)",
                       description=TUNE_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    t.add_argument("space_file", help="search file: [study], [fixed] and [space] tables; see "
                   "examples/tune_digits.toml")
    t.add_argument("--trials", type=positive(int), help="finished trials to reach")
    t.add_argument("--rounds", type=positive(int), help="coarse-to-fine rounds")
    t.add_argument("--workers", type=positive(int), default=1,
                   help="parallel worker processes (caviar), or Ray CPUs with --engine ray")
    t.add_argument("--engine", choices=["optuna", "ray"], default="optuna")
    t.add_argument("--storage", help="database URL (default: SQLite in the output folder); "
                   "postgresql://user@host/db for workers on several machines")
    t.add_argument("--out", help="output folder (default runs/tune/<study name>)")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    t.set_defaults(handler=run_tune)
    b = sub.add_parser("babysit", help="panda mode: train one model on, changing its "
                       "hyperparameters")
    b.add_argument("folder", help="the model's folder (created on first use)")
    b.add_argument("--epochs", type=positive(int), default=5)
    b.add_argument("--set", type=_assignment, action="append", default=[],
                   help="NAME=VALUE, e.g. --set lr=0.001 --set dataset=digits (repeatable); "
                        "names: " + ", ".join(k for k in MLP_NAMES if k != "epochs"))
    b.set_defaults(handler=run_babysit)
