"""What the export and the import share: the lazy import of the onnx package."""

from __future__ import annotations


def require_onnx():
    """The onnx module; strata.extras.MissingExtra (an ImportError) naming
    ``pip install 'strata[onnx]'`` when it is not installed."""
    from strata.extras import require

    return require("onnx", "onnx", "ONNX export and import (strata.onnx)")
