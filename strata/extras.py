"""Optional dependencies: the parts of strata that need a package outside the core install
import it through ``require``, which names the extra that brings it.

>>> require("json", "test", "this example").__name__
'json'
"""

from __future__ import annotations

import importlib

#: extra -> what it brings; the README's install section lists the same table.
EXTRAS = {
    "vision": "scikit-image (region proposals)",
    "tune": "Optuna and PostgreSQL's driver (hyperparameter search)",
    "cluster": "Ray (searches on a cluster)",
    "onnx": "onnx (ONNX export and import)",
    "tensorboard": "tensorboardX (TensorBoard event files)",
    "gpu": "CuPy (training on an NVIDIA GPU)",
}


#: import name -> the name the package is installed under, where they differ.
_PACKAGES = {"skimage": "scikit-image", "cupy": "CuPy"}


class MissingExtra(ImportError):
    """An optional package is not installed; the message names the extra to install."""


def require(module: str, extra: str, feature: str):
    """Import and return ``module``, or raise MissingExtra naming ``pip install 'strata[extra]'``
    for ``feature``."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        package = module.split(".")[0]
        package = _PACKAGES.get(package, package)
        raise MissingExtra(f"{feature} needs {package}, which is not installed: "
                           f"pip install 'strata[{extra}]'") from e
