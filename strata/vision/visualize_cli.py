"""``strata visualize RUN --layers ...``: what the units of a trained ConvNet (a ``strata
train`` run folder, e.g. the SIGNS convnet) respond to: for each chosen layer, units_<layer>.png
with the 9 receptive-field patches of the dataset that activate each unit most (Zeiler and
Fergus), and units.json with their images, positions and activations."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from strata.cli import _positive

VISUALIZE_HELP = """What deep ConvNets learn (course 4 week 4): for chosen units of chosen layers
of a trained ConvNet, the 9 image patches (each unit's receptive field) that activate the unit
most, as a grid per layer.

examples:
  strata train --dataset signs --arch convnet --out runs/signs
  strata visualize runs/signs                      # every conv layer, units 0-15
  strata visualize runs/signs --layers 0,2 --units 0,1,2,3 --out units/
"""


def _list(kind):
    def parse(text):
        try:
            values = [kind(v) for v in text.split(",") if v.strip()]
        except ValueError:
            values = []
        if not values:
            raise argparse.ArgumentTypeError(f"expected a comma-separated list such as 0,2, "
                                             f"got {text!r}")
        return values

    return parse


def default_layers(model) -> list:
    """The indices of the model's convolution layers (their outputs after the activation)."""
    return [i for i, layer in enumerate(model.layers) if hasattr(layer, "kernel_size")]


def run_visualize(args) -> int:
    """Draw the top patches of the chosen units of a run's ConvNet."""
    from strata import runs
    from strata.files import write_text_atomic
    from strata.vision.visualize import layer_index, visualize_units

    config, model = runs.load_run(args.run)
    if config.arch == "mlp":
        raise ValueError(f"{args.run} is an MLP run (arch 'mlp'): visualize needs a ConvNet "
                         f"run (strata train --arch convnet, small_convnet, lenet5...)")
    parts = dict(zip(("train", "dev", "test"), runs.splits(config)[:3]))
    X = parts[args.split][0][:args.n]
    layers = args.layers or default_layers(model)
    layers = [layer_index(model, int(v) if v.lstrip("-").isdigit() else v)
              if isinstance(v, str) else v for v in layers]
    out = Path(args.out or Path(args.run) / "units")
    found = visualize_units(model, X, layers, out, args.units, args.top)
    listing = {str(i): [{"unit": u.unit, "images": u.images, "positions": u.positions,
                         "activations": u.activations} for u in units]
               for i, units in found.items()}
    write_text_atomic(out / "units.json", json.dumps(listing, indent=1) + "\n")
    for i, units in found.items():
        print(f"layer {i} ({type(model.layers[i]).__name__}): {len(units)} units -> "
              f"{out}/units_*.png")
    print(f"{len(X)} {args.split} images of {config.dataset}; the patches are listed in "
          f"{out / 'units.json'}")
    return 0


def add_visualize_parser(sub) -> None:
    """Add ``visualize`` to ``strata``."""
    p = sub.add_parser("visualize", help="the image patches that activate a ConvNet's units",
                       description=VISUALIZE_HELP,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", help="run folder written by strata train (a ConvNet)")
    p.add_argument("--layers", type=_list(str), help="layer indices (or names), e.g. 0,2 "
                   "(default: every convolution)")
    p.add_argument("--units", type=_list(int), help="unit indices (default: 0-15)")
    p.add_argument("--top", type=_positive(int), default=9, help="patches per unit")
    p.add_argument("--split", choices=["train", "dev", "test"], default="train")
    p.add_argument("--n", type=_positive(int), default=1000, help="images to search")
    p.add_argument("--out", help="folder for the grids (default RUN/units)")
    p.set_defaults(handler=run_visualize)
