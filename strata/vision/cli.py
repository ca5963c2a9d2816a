"""``strata detect``: train a YOLO-style detector on digit canvases (or generated shapes), draw
its detections on images, evaluate a run. The run folder: model.safetensors, config.json,
anchors.txt, history.csv, metrics.json, pr_curves.png, eval_grid.png and report.md."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from strata.cli import _positive

DATASETS = {"digits": [str(d) for d in range(10)], "shapes": ["circle", "square", "triangle"]}
#: The training state of a run in progress, in its partial folder (removed when it finishes).
CHECKPOINT = "checkpoint.safetensors"
#: Evaluation canvases whose mAP is logged after every epoch (history.csv's val_ columns).
MONITORED = 200

DETECT_HELP = """Object detection of course 4 week 3: a YOLO-style detector trained on canvases
of MNIST digits at random scales and places (or on generated circles, squares and triangles).

examples:
  strata detect train                              # digits: 128x128 canvases, 1-5 digits each
  strata detect train --dataset shapes --epochs 5 --out runs/shapes
  strata detect predict runs/detect-digits photo.png --out detections/
  strata detect evaluate runs/detect-digits        # AP per class, mAP@0.5, mAP@0.5:0.95
"""


@dataclass
class DetectConfig:
    """Everything that defines a detection run; saved as config.json. None fields take the
    dataset's preset (PRESETS)."""

    dataset: str = "digits"
    n_train: int | None = None
    n_eval: int | None = None
    image_size: int | None = None
    epochs: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    n_anchors: int = 3
    widths: list | None = None
    head_widths: list | None = None
    stem: int = 4
    seed: int = 0

    def __post_init__(self):
        if self.dataset not in DATASETS:
            raise ValueError(f"dataset: expected one of {', '.join(DATASETS)}, received "
                             f"{self.dataset!r}")
        for name, value in PRESETS[self.dataset].items():
            if getattr(self, name) is None:
                setattr(self, name, value)


PRESETS = {
    "digits": {"n_train": 8000, "n_eval": 1000, "image_size": 128, "epochs": 6,
               "batch_size": 16, "lr": 3e-3, "widths": [32, 64], "head_widths": [128, 128]},
    "shapes": {"n_train": 1000, "n_eval": 200, "image_size": 64, "epochs": 8,
               "batch_size": 16, "lr": 1e-2, "widths": [16, 32], "head_widths": [32]},
}


def dataset(config: DetectConfig, part: str):
    """(images, boxes, classes) of the run's training or evaluation canvases (the same every
    time for the same config)."""
    from strata.vision import datasets

    n = config.n_train if part == "train" else config.n_eval
    if config.dataset == "digits":
        return datasets.digit_canvases(n, part, size=config.image_size, seed=config.seed)
    seed = 2 * config.seed + (part != "train")  # two disjoint streams of shapes
    return datasets.shapes_dataset(n, size=config.image_size, seed=seed)


def train(config: DetectConfig, out_dir, verbose: int = 1, resume: bool = False,
          overwrite: bool = False) -> dict:
    """Train as ``config`` says and publish the run folder ``out_dir`` (locked, built in a
    partial folder, checkpointed every epoch; ``resume`` continues an interrupted one with its
    own config.json). Returns the metrics."""
    from strata.files import write_text_atomic
    from strata.runfolder import RunFolder

    with RunFolder(out_dir, overwrite=overwrite, resume=resume, purpose="strata detect train",
                   checkpoint=CHECKPOINT) as run:
        if resume:
            config = read_config(run.path)
        else:
            write_text_atomic(run.path / "config.json", json.dumps(asdict(config), indent=2)
                              + "\n")
        metrics = _train_into(run.path, config, verbose, resume)
        run.publish()
    return metrics


def _train_into(out: Path, config: DetectConfig, verbose: int, resume: bool) -> dict:
    import strata
    from strata.files import write_text_atomic
    from strata.nn import CSVLogger
    from strata.vision import detector
    from strata.vision.draw import detection_grid
    from strata.vision.evaluation import plot_pr_curves

    images, boxes, classes = dataset(config, "train")
    test = dataset(config, "eval")
    from strata.vision.datasets import MNIST_PARTS

    (a, b), (c, d) = MNIST_PARTS["train"], MNIST_PARTS["eval"]
    source = (f"digits of MNIST's test images {a}-{b - 1} / {c}-{d - 1}, in the data folder"
              if config.dataset == "digits" else "generated shapes, two seeded streams")
    print(f"Data: {config.dataset}: train {len(images)} / eval {len(test[0])} canvases of "
          f"{config.image_size}x{config.image_size} ({source})")
    n_classes, names = len(DATASETS[config.dataset]), DATASETS[config.dataset]
    timer = detector.TrainingTimer()
    monitor = detector.DetectionMAP(*(part[:MONITORED] for part in test), n_classes)
    model, _ = detector.train_detector(
        images, boxes, classes, n_classes, epochs=config.epochs, batch_size=config.batch_size,
        lr=config.lr, n_anchors=config.n_anchors, widths=config.widths,
        head_widths=config.head_widths, stem=config.stem, checkpoint=out / CHECKPOINT,
        resume=resume, verbose=verbose, seed=config.seed,
        callbacks=[timer, monitor, CSVLogger(out / "history.csv")])
    (out / CHECKPOINT).unlink()
    report, detections = detector.evaluate_detector(model, *test, n_classes)
    strata.save_model(model, out / "model.safetensors", include_optimizer=False)
    anchors = detector.anchors_of(model)
    write_text_atomic(out / "anchors.txt", ", ".join(f"{w:.6f},{h:.6f}" for w, h in anchors)
                      + "\n")
    plot_pr_curves(report, out / "pr_curves.png", names)
    shown = [{k: v[d["scores"] >= 0.5] for k, v in d.items()} for d in detections[:12]]
    truths = [{"boxes": b, "classes": c} for b, c in zip(test[1][:12], test[2][:12])]
    detection_grid(test[0][:12], shown, truths, out / "eval_grid.png", names, columns=4)
    metrics = {"map50": report.map_50, "map50_95": report.map_50_95,
               "ap50": dict(zip(names, report.ap_50.tolist())),
               "ap50_95": dict(zip(names, report.ap_50_95.tolist())),
               "train_seconds": timer.seconds, "train_canvases": len(images),
               "eval_canvases": len(test[0])}
    write_text_atomic(out / "metrics.json", json.dumps(metrics, indent=2) + "\n")
    write_text_atomic(out / "report.md", _report(config, model, report, metrics, anchors))
    return metrics


def _report(config, model, report, metrics, anchors) -> str:
    import os

    names = DATASETS[config.dataset]
    minutes, seconds = divmod(metrics["train_seconds"], 60)
    grid = model.predict(np.zeros((1, config.image_size, config.image_size, 1),
                                  np.float32)).shape[1]
    return "\n".join([
        f"# strata detect run: {config.dataset}", "",
        f"- data: {metrics['train_canvases']} training canvases, {metrics['eval_canvases']} "
        f"evaluation canvases ({config.image_size}x{config.image_size}, grey)",
        f"- model: stem {config.stem}, widths {config.widths}, head {config.head_widths}, "
        f"grid {grid}x{grid}, {len(anchors)} anchors (k-means, cells): "
        + ", ".join(f"{w:.2f}x{h:.2f}" for w, h in anchors),
        f"- training: Adam, lr {config.lr} (cosine decay), batch {config.batch_size}, "
        f"{config.epochs} epochs, {int(minutes)} min {seconds:.0f} s on {os.cpu_count()} "
        f"cores",
        f"- **mAP@0.5 {metrics['map50']:.4f}, mAP@0.5:0.95 {metrics['map50_95']:.4f}** "
        f"(evaluation canvases)", "", report.to_markdown(names), "",
        "![precision-recall curves](pr_curves.png)", "",
        "Evaluation canvases: predictions (solid, score >= 0.5), true boxes (dashed).", "",
        "![evaluation detections](eval_grid.png)", ""])


def read_config(folder) -> DetectConfig:
    """The DetectConfig in ``folder``/config.json, problems named with the file."""
    from strata.runfolder import read_settings

    return read_settings(folder, DetectConfig, "strata detect", "strata detect train")


def load_run(run_dir):
    """(config, model) of a finished detection run folder."""
    import strata
    from strata.vision import detector  # noqa: F401 -- registers YoloOutput for load_model

    run = Path(run_dir)
    return read_config(run), strata.load_model(run / "model.safetensors", compile=False)


def run_detect_train(args) -> int:
    """Train a detector as the options say and write its run folder."""
    config = DetectConfig(dataset=args.dataset, n_train=args.train, n_eval=args.eval,
                          epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                          n_anchors=args.anchors, seed=args.seed)
    out = args.resume or args.out or f"runs/detect-{config.dataset}"
    # Ctrl-C: fit checkpoints at a batch boundary and strata.cli.main says how to resume.
    metrics = train(config, out, verbose=0 if args.quiet else 1, resume=bool(args.resume),
                    overwrite=args.overwrite or not (args.out or args.resume))
    minutes, seconds = divmod(metrics["train_seconds"], 60)
    print(f"mAP@0.5 {metrics['map50']:.4f}, mAP@0.5:0.95 {metrics['map50_95']:.4f} on "
          f"{metrics['eval_canvases']} evaluation canvases; training {int(minutes)} min "
          f"{seconds:.0f} s")
    print(f"Run written to {out}/ (model.safetensors, config.json, anchors.txt, history.csv, "
          f"pr_curves.png, eval_grid.png, report.md)")
    return 0


def run_detect_predict(args) -> int:
    """Draw the detections of a trained run on image files, one PNG each in --out."""
    from strata.vision.detector import detect
    from strata.vision.draw import draw_detections, read_image

    config, model = load_run(args.run)
    names, out = DATASETS[config.dataset], Path(args.out)
    for path in args.images:
        x, rgb, scale = read_image(path, config.image_size, args.invert)
        found = detect(model, x[None], args.score_threshold, args.iou_threshold)[0]
        height, width = rgb.shape[:2]
        boxes = np.clip(found["boxes"] * scale, 0, [width, height, width, height])
        enlarge = max(1, -(-256 // min(rgb.shape[:2])))  # small images drawn at >= 256 px
        target = out / f"{Path(path).stem}.png"
        draw_detections(rgb, boxes, found["classes"], found["scores"], names, target, enlarge)
        listed = ", ".join(f"{names[c]} {s:.2f} at ({b[0]:.0f}, {b[1]:.0f}, {b[2]:.0f}, "
                           f"{b[3]:.0f})" for b, s, c in
                           zip(boxes, found["scores"], found["classes"]))
        print(f"{path}: {len(boxes)} detection(s){': ' + listed if listed else ''} -> {target}")
    return 0


def run_detect_evaluate(args) -> int:
    """Print AP per class, mAP@0.5 and mAP@0.5:0.95 of a run on its evaluation canvases."""
    from strata.vision.detector import evaluate_detector

    config, model = load_run(args.run)
    if args.n:
        config.n_eval = args.n
    test = dataset(config, "eval")
    report, _ = evaluate_detector(model, *test, len(DATASETS[config.dataset]))
    print(f"{args.run}: {len(test[0])} evaluation canvases of {config.dataset}\n")
    print(report.to_markdown(DATASETS[config.dataset]))
    print(f"mAP@0.5 {report.map_50:.4f}, mAP@0.5:0.95 {report.map_50_95:.4f}")
    return 0


def add_detect_parser(sub) -> None:
    """Add ``detect train``, ``detect predict`` and ``detect evaluate`` to ``strata``."""
    detect = sub.add_parser("detect", help="object detection: train, predict, evaluate",
                            description=DETECT_HELP,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    detect_sub = detect.add_subparsers(dest="detect_command", required=True)
    train_p = detect_sub.add_parser("train", help="train a detector and write a run folder")
    train_p.add_argument("--dataset", choices=list(DATASETS), default="digits",
                         help="digits (MNIST canvases, needs the MNIST test set) or shapes")
    train_p.add_argument("--train", type=_positive(int), help="training canvases")
    train_p.add_argument("--eval", type=_positive(int), help="evaluation canvases")
    train_p.add_argument("--epochs", type=_positive(int))
    train_p.add_argument("--batch-size", type=_positive(int))
    train_p.add_argument("--lr", type=_positive(float),
                         help="Adam's initial learning rate (cosine decay)")
    train_p.add_argument("--anchors", type=_positive(int), default=3, help="anchors per cell")
    train_p.add_argument("--seed", type=int, default=0)
    train_p.add_argument("--out", help="run folder (default runs/detect-DATASET, replaced by "
                         "each run)")
    train_p.add_argument("--resume", metavar="DIR", help="continue the interrupted run DIR")
    train_p.add_argument("--overwrite", action="store_true",
                         help="replace the finished run in --out")
    train_p.add_argument("--quiet", action="store_true", help="no progress bar")
    train_p.set_defaults(handler=run_detect_train)
    predict = detect_sub.add_parser("predict", help="draw detections on image files")
    predict.add_argument("run", help="run folder written by strata detect train")
    predict.add_argument("images", nargs="+", help="PNG or JPEG files (grey or RGB)")
    predict.add_argument("--out", required=True, help="folder for the drawn PNG files")
    predict.add_argument("--score-threshold", type=float, default=0.5)
    predict.add_argument("--iou-threshold", type=float, default=0.5)
    predict.add_argument("--invert", choices=["auto", "yes", "no"], default="auto",
                         help="light background (dark ink): auto inverts when the mean > 0.5")
    predict.set_defaults(handler=run_detect_predict)
    evaluate = detect_sub.add_parser("evaluate", help="AP per class and mAP of a run")
    evaluate.add_argument("run", help="run folder written by strata detect train")
    evaluate.add_argument("--n", type=_positive(int), help="evaluation canvases (default: "
                          "the run's)")
    evaluate.set_defaults(handler=run_detect_evaluate)
