"""``strata faces``: train and measure a face encoder on the AT&T faces (run folder with
model.safetensors, config.json, metrics.json, roc_curve.png, distances.png, hardest_errors.png
and report.md), then enroll people from photos and verify or identify new photos."""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from strata.cli import _positive

DATABASE = "database.safetensors"
FACES_HELP = """Face verification and recognition of course 4 week 4: an encoder trained with the
triplet loss on the AT&T faces (40 people), measured by one-shot recognition of people it never
saw, then used on your own photos.

examples:
  strata faces train --out runs/faces              # 4 folds x 10 unseen people, then all 40
  strata faces enroll runs/faces younes younes.jpg
  strata faces verify runs/faces camera_0.jpg younes
  strata faces identify runs/faces camera_0.jpg
"""


@dataclass
class FacesConfig:
    """Everything that defines a faces run; saved as config.json."""

    folds: int = 4
    epochs: int = 150
    P: int = 10
    K: int = 5
    alpha: float = 0.5
    lr: float = 3e-3
    mining: str = "batch-all"
    widths: list = field(default_factory=lambda: [32, 64, 128, 128])
    encoding_size: int = 128
    whiten_eps: float | None = 0.01
    zoom: float = 0.1
    members: int = 3
    factor: int = 2
    people: int = 40
    seed: int = 0
    image_shape: list = field(default_factory=lambda: [56, 46, 1])
    tau: float | None = None

    def train_options(self) -> dict:
        """The keyword arguments of faces_train.train_encoder."""
        return {"epochs": self.epochs, "P": self.P, "K": self.K, "alpha": self.alpha,
                "lr": self.lr, "mining": self.mining, "widths": tuple(self.widths),
                "encoding_size": self.encoding_size, "whiten_eps": self.whiten_eps,
                "zoom": self.zoom, "members": self.members, "seed": self.seed}


def load_images(config: FacesConfig):
    """The run's AT&T faces, downscaled, limited to the first ``config.people`` people."""
    from strata.data.faces import load_att_faces
    from strata.vision.faces_train import downscale

    X, Y = load_att_faces()
    keep = Y < config.people
    return downscale(X[keep], config.factor), Y[keep]


def train(config: FacesConfig, out_dir, verbose: int = 1, overwrite: bool = False) -> dict:
    """Measure the encoder over the folds, train the final one on every person, and publish the
    run folder ``out_dir``. Returns the metrics."""
    from strata.files import write_text_atomic
    from strata.runfolder import RunFolder

    with RunFolder(out_dir, overwrite=overwrite, purpose="strata faces train") as run:
        metrics = _train_into(run.path, config, verbose)
        write_text_atomic(run.path / "config.json", json.dumps(asdict(config), indent=2) + "\n")
        run.publish()
    return metrics


def _train_into(out: Path, config: FacesConfig, verbose: int) -> dict:
    import strata
    from strata.files import write_text_atomic
    from strata.vision import faces_plots
    from strata.vision.faces_train import fold_table, run_folds, train_encoder
    from strata.vision.faces_verify import all_pairs, choose_threshold

    X, Y = load_images(config)
    config.image_shape = list(X.shape[1:])
    seen, start = {"reports": [], "pairs": []}, time.perf_counter()

    def on_fold(k, results, model, report, E_unseen):
        unseen = np.isin(Y, np.unique(Y)[np.array_split(np.unique(Y), config.folds)[k]])
        seen["reports"].append(report)
        seen["pairs"].append((X[unseen], Y[unseen], E_unseen, results["encoder"].tau))
        if verbose:
            print(f"fold {k + 1}/{config.folds}: " + ", ".join(
                f"{m} one-shot {r.one_shot:.4f} AUC {r.auc:.4f}" for m, r in results.items())
                + f" ({results['encoder'].seconds:.0f} s)", flush=True)

    folds = run_folds(X, Y, config.folds, config.train_options(), verbose > 0, on_fold)
    fold_seconds = time.perf_counter() - start
    if verbose:
        print(f"final encoder on all {len(np.unique(Y))} people", flush=True)
    model, _ = train_encoder(X, Y, progress=verbose > 0, **config.train_options())
    from strata.vision.faces_train import encode_flip

    config.tau = choose_threshold(*all_pairs(encode_flip(model, X), Y))[0]
    strata.save_model(model, out / "model.safetensors", include_optimizer=False)
    faces_plots.plot_roc(seen["reports"], out / "roc_curve.png")
    faces_plots.plot_distances(seen["pairs"], out / "distances.png")
    faces_plots.hardest_errors(seen["pairs"], out / "hardest_errors.png")
    metrics = {method: {key: [getattr(f[method], key) for f in folds]
                        for key in ("one_shot", "verification", "auc", "tau")}
               for method in folds[0]}
    metrics.update(fold_seconds=fold_seconds, tau=config.tau,
                   train_seconds=[f["encoder"].seconds for f in folds])
    write_text_atomic(out / "metrics.json", json.dumps(metrics, indent=2) + "\n")
    write_text_atomic(out / "report.md", _report(config, fold_table(folds), metrics))
    return metrics


def _report(config: FacesConfig, table: str, metrics: dict) -> str:
    import os

    total = sum(metrics["train_seconds"])
    return "\n".join([
        "# strata faces run: AT&T faces, one-shot on unseen people", "",
        f"- data: {config.people} people x 10 grey images, downscaled by {config.factor} to "
        f"{config.image_shape[0]}x{config.image_shape[1]}; {config.folds} folds, each holding "
        f"out {config.people // config.folds} people never seen in training",
        f"- encoder: face_encoder(widths={config.widths}, encoding_size="
        f"{config.encoding_size}), triplet loss alpha {config.alpha}, {config.mining} mining, "
        f"batches of {config.P} people x {config.K} images, Adam lr {config.lr} (cosine), "
        f"{config.epochs} epochs, mirror + zoom by up to {config.zoom:g} + 3-pixel shifts; "
        + ("no whitening" if config.whiten_eps is None else
           f"encodings PCA-whitened on the training people (eps {config.whiten_eps:g})")
        + ("" if config.members == 1 else
           f"; {config.members} such encoders (seeds {config.seed} to "
           f"{config.seed + config.members - 1}) joined, their encodings concatenated"),
        f"- training: {total:.0f} s for the {config.folds} folds' encoders on {os.cpu_count()} "
        f"cores; tau of the final encoder (all people): {config.tau:.4f}",
        "- one-shot: one enrolled image per person, every other image a query, averaged over "
        "the choice of the enrolled image; verification over all pairs of unseen people at "
        "the tau chosen on the training people (plain distance, encodings of the image and "
        "its mirror averaged)", "", table, "",
        "![ROC curves](roc_curve.png)", "", "![distances](distances.png)", "",
        "Hardest verification errors on unseen people (same person far apart, different "
        "people close):", "", "![hardest errors](hardest_errors.png)", ""])


def read_config(folder) -> FacesConfig:
    """The FacesConfig in ``folder``/config.json, problems named with the file."""
    from strata.runfolder import read_settings

    return read_settings(folder, FacesConfig, "strata faces", "strata faces train")


def load_run(run_dir):
    """(config, encoder) of a finished faces run folder."""
    import strata
    from strata.vision import faces  # noqa: F401 -- registers L2Normalize for load_model

    run = Path(run_dir)
    return read_config(run), strata.load_model(run / "model.safetensors", compile=False)


def read_face(path, shape) -> np.ndarray:
    """A photo as the encoder's input (1, n_H, n_W, n_C): grey (or RGB for 3 channels), centre
    cropped to the encoder's aspect ratio, resized, in [0, 1]."""
    try:
        from PIL import Image
    except ImportError as e:
        raise ImportError("strata faces needs Pillow: pip install 'strata[vision]'") from e
    height, width, channels = shape
    with Image.open(path) as image:
        image = image.convert("L" if channels == 1 else "RGB")
        w, h = image.size
        crop_w, crop_h = min(w, round(h * width / height)), min(h, round(w * height / width))
        left, top = (w - crop_w) // 2, (h - crop_h) // 2
        image = image.crop((left, top, left + crop_w, top + crop_h)).resize(
            (width, height), Image.BILINEAR)
        pixels = np.asarray(image, np.float32) / 255
    return pixels.reshape(1, height, width, channels)


def _encode_files(run, paths):
    from strata.vision.faces_train import encode_flip

    config, model = load_run(run)
    return config, np.concatenate([encode_flip(model, read_face(p, config.image_shape))
                                   for p in paths])


def _database(run, config):
    from strata.vision.faces_verify import FaceDatabase

    path = Path(run) / DATABASE
    return FaceDatabase.load(path) if path.is_file() else FaceDatabase(config.tau)


def run_faces_train(args) -> int:
    """Train and measure the encoder as the options say and write its run folder."""
    config = FacesConfig(folds=args.folds, epochs=args.epochs, P=args.people_per_batch,
                         K=args.images_per_person, alpha=args.alpha, lr=args.lr,
                         mining=args.mining, people=args.people, seed=args.seed,
                         members=args.members,
                         whiten_eps=None if args.no_whiten else FacesConfig.whiten_eps)
    out = args.out or "runs/faces"
    metrics = train(config, out, verbose=0 if args.quiet else 1,
                    overwrite=args.overwrite or not args.out)
    one_shot = {m: np.mean(metrics[m]["one_shot"]) for m in ("encoder", "pixels", "pca")}
    print(f"one-shot top-1 on unseen people: encoder {one_shot['encoder']:.4f}, pixels "
          f"{one_shot['pixels']:.4f}, PCA {one_shot['pca']:.4f} (mean of {config.folds} folds); "
          f"training {sum(metrics['train_seconds']):.0f} s")
    print(f"Run written to {out}/ (model.safetensors, config.json, metrics.json, roc_curve.png, "
          f"distances.png, hardest_errors.png, report.md)")
    return 0


def run_faces_enroll(args) -> int:
    """Add a person's photos to the run's face database."""
    config, E = _encode_files(args.run, args.images)
    db = _database(args.run, config)
    db.add(args.name, E)
    db.save(Path(args.run) / DATABASE)
    print(f"{args.name}: {len(E)} encoding(s) enrolled; the database holds {len(db)} people")
    return 0


def run_faces_verify(args) -> int:
    """Is the photo the claimed person? Exit status 0 if yes, 1 if not."""
    config, E = _encode_files(args.run, [args.image])
    same, distance = _database(args.run, config).verify(E[0], args.name)
    verdict = f"It's {args.name}" if same else f"It's not {args.name}"
    print(f"{verdict} (distance {distance:.4f} {'<' if same else '>='} tau "
          f"{_database(args.run, config).tau:.4f})")
    return 0 if same else 1


def run_faces_identify(args) -> int:
    """Who is in the photo? The nearest enrolled person under tau, else not in the database."""
    config, E = _encode_files(args.run, [args.image])
    name, distance = _database(args.run, config).identify(E[0])
    print(f"{name} (distance {distance:.4f})" if name else
          f"not in the database (nearest distance {distance:.4f})")
    return 0


def add_faces_parser(sub) -> None:
    """Add ``faces train``, ``faces enroll``, ``faces verify`` and ``faces identify``."""
    faces = sub.add_parser("faces", help="face verification and recognition: train, enroll, "
                           "verify, identify", description=FACES_HELP,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    faces_sub = faces.add_subparsers(dest="faces_command", required=True)
    d = FacesConfig()
    t = faces_sub.add_parser("train", help="train and measure an encoder, write a run folder")
    t.add_argument("--folds", type=_positive(int), default=d.folds)
    t.add_argument("--epochs", type=_positive(int), default=d.epochs)
    t.add_argument("--people-per-batch", type=_positive(int), default=d.P, help="P")
    t.add_argument("--images-per-person", type=_positive(int), default=d.K, help="K")
    t.add_argument("--alpha", type=_positive(float), default=d.alpha, help="triplet margin")
    t.add_argument("--lr", type=_positive(float), default=d.lr)
    t.add_argument("--mining", choices=["batch-all", "semi-hard"], default=d.mining)
    t.add_argument("--people", type=_positive(int), default=d.people,
                   help="use the first N of the 40 people (quick trials)")
    t.add_argument("--seed", type=int, default=d.seed)
    t.add_argument("--members", type=_positive(int), default=d.members,
                   help="encoders trained per fold (seeds seed, seed + 1, ...) and joined into "
                        "one: each costs a full training; 1 is the plain encoder")
    t.add_argument("--no-whiten", action="store_true",
                   help="keep the raw encodings (no PCA whitening fitted on training people)")
    t.add_argument("--out", help="run folder (default runs/faces, replaced by each run)")
    t.add_argument("--overwrite", action="store_true", help="replace the finished run in --out")
    t.add_argument("--quiet", action="store_true", help="no progress output")
    t.set_defaults(handler=run_faces_train)
    e = faces_sub.add_parser("enroll", help="add a person's photos to the run's database")
    e.add_argument("run")
    e.add_argument("name")
    e.add_argument("images", nargs="+", help="photos of the person (JPEG, PNG...)")
    e.set_defaults(handler=run_faces_enroll)
    v = faces_sub.add_parser("verify", help="is the photo the claimed person?")
    v.add_argument("run")
    v.add_argument("image")
    v.add_argument("name")
    v.set_defaults(handler=run_faces_verify)
    i = faces_sub.add_parser("identify", help="who is in the photo?")
    i.add_argument("run")
    i.add_argument("image")
    i.set_defaults(handler=run_faces_identify)
