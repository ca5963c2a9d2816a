"""ONNX export and import: ``strata.onnx.export(model, "model.onnx")`` writes any model strata
can build from its layers (opset 17, NHWC inputs and outputs as strata's), and
``strata.onnx.load("model.onnx")`` builds a strata model, weights included, from an ONNX
network of the ops it knows (NCHW convolutional graphs become NHWC strata models).

The onnx package is imported only when a function here runs: ``pip install 'strata[onnx]'``.
See docs/ONNX.md for the layout decisions and the table of layers and ops.
"""

from strata.onnx.export import EXPORTERS, OPSET, export, register_exporter
from strata.onnx.graph import GraphModel
from strata.onnx.importer import IMPORTERS, load

__all__ = ["export", "load", "register_exporter", "GraphModel", "OPSET", "EXPORTERS",
           "IMPORTERS"]
