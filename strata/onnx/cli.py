"""``strata export RUN --onnx model.onnx``: a run folder's model as an ONNX file."""

from __future__ import annotations

EXPORT_HELP = """Export the model of a run folder (written by strata train) to ONNX (opset 17):
its input and output keep strata's layout (NHWC images, rows of features), with a free batch
axis, so the arrays fed to strata feed onnxruntime unchanged (see docs/ONNX.md).

examples:
  strata export runs/latest --onnx model.onnx
  strata export runs/run-0003 --onnx signs.onnx --opset 18
"""


def run_export(args) -> int:
    """Write the run's model as ONNX."""
    from strata import runs
    from strata.onnx import export
    from strata.onnx._common import require_onnx

    require_onnx()  # before loading the run: a missing extra is named at once
    _, model = runs.load_run(args.run)
    path = export(model, args.onnx, opset=args.opset)
    shape = getattr(model, "input_shape", None)
    print(f"Wrote {path}: ONNX opset {args.opset}, input 'input' of shape "
          f"(N, {', '.join(map(str, shape or ('...',)))}), output 'output'")
    return 0


def add_export_parser(sub) -> None:
    """Register ``strata export`` on the ``strata`` command's subparsers."""
    import argparse

    from strata.onnx.builder import OPSET

    p = sub.add_parser("export", help="export a run's model to ONNX", description=EXPORT_HELP,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", help="run folder written by strata train")
    p.add_argument("--onnx", required=True, metavar="PATH", help="the .onnx file to write")
    p.add_argument("--opset", type=int, default=OPSET, help=f"ONNX opset (default {OPSET})")
    p.set_defaults(handler=run_export)
