"""The lean install (issue 19): every package strata imports is declared in pyproject.toml, and
the main job (`make run`, the `strata` command's default run) works with no optional extra."""

import ast
import json
import subprocess
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())

#: The import names the optional extras bring (and the test oracles): the main job must not
#: need any of them.
OPTIONAL_MODULES = ("optuna", "psycopg", "ray", "skimage", "onnx", "onnxruntime", "tensorboardX",
                    "tensorboard", "cupy", "cv2", "pycocotools", "torch", "pytest", "hypothesis")


#: Prepended to the scripts below: importing an optional package fails as when it is not
#: installed (a finder that refuses it; ``sys.modules[name] = None`` would upset SciPy's checks).
BLOCK_EXTRAS = f"""
import sys
class _NotInstalled:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {OPTIONAL_MODULES!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
sys.meta_path.insert(0, _NotInstalled())
"""


def _requirement_name(spec: str) -> str:
    """'scikit-learn>=1.3' -> 'scikit-learn'; 'ray[tune]>=2' -> 'ray' (normalized)."""
    for stop in "<>=!~;[ ":
        spec = spec.split(stop)[0]
    return spec.strip().lower().replace("_", "-")


def _declared() -> dict[str, str]:
    """Distribution name -> 'core' or the extra declaring it."""
    found = {_requirement_name(s): "core" for s in PYPROJECT["project"]["dependencies"]}
    for extra, specs in PYPROJECT["project"]["optional-dependencies"].items():
        for spec in specs:
            found.setdefault(_requirement_name(spec), extra)
    return found


def _imported_top_level_names() -> dict[str, str]:
    """Third-party top-level module name -> one file of strata/ importing it."""
    names = {}
    for path in sorted((ROOT / "strata").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules = [node.module]
            else:
                continue
            for module in modules:
                top = module.split(".")[0]
                if top != "strata" and top not in sys.stdlib_module_names:
                    names.setdefault(top, str(path.relative_to(ROOT)))
    return names


def test_every_imported_package_is_declared():
    declared, distributions = _declared(), packages_distributions()
    missing = []
    for name, where in _imported_top_level_names().items():
        if name in ("cupy", "tomli"):  # the gpu extra (not installed here); tomli before 3.11
            assert ("cupy-cuda12x" if name == "cupy" else name) in declared, name
            continue
        dists = {d.lower().replace("_", "-") for d in distributions.get(name, [])}
        assert dists, f"{name} (imported in {where}) is not installed, so cannot be checked"
        if not dists & set(declared):
            missing.append(f"{name} ({where}; distribution {sorted(dists)})")
    assert not missing, f"imported but not declared in pyproject.toml: {missing}"


def test_test_extra_holds_every_other_extra():
    extras = PYPROJECT["project"]["optional-dependencies"]
    test = " ".join(extras["test"])
    for extra in extras:
        if extra not in ("test", "gpu"):  # CuPy needs a GPU: never part of the suite's install
            assert extra in test, f"strata[test] does not include strata[{extra}]"


def test_core_holds_no_optional_package():
    core = {_requirement_name(s) for s in PYPROJECT["project"]["dependencies"]}
    assert not core & {"optuna", "psycopg", "ray", "scikit-image", "onnx", "tensorboardx",
                       "cupy-cuda12x", "torch", "pytest"}


def test_main_job_runs_with_every_optional_package_missing(tmp_path):
    """A fresh process where importing any extra fails, as on a core-only install: `import
    strata` and its sub-packages work, and the default command writes a complete run folder."""
    script = BLOCK_EXTRAS + f"""
import strata, strata.nn, strata.vision, strata.models, strata.data, strata.text, strata.onnx
from strata import cli
sys.exit(cli.main(["--epochs", "3", "--out", {str(tmp_path / "run")!r}]))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr
    names = {p.name for p in (tmp_path / "run").iterdir()}
    assert {"model.safetensors", "config.json", "metrics.json", "report.md"} <= names
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["test"]["accuracy"] > 0.5


@pytest.mark.parametrize("argv, extra", [(["tune", "nothing.toml"], "tune"),
                                          (["export", "run", "--onnx", "m.onnx"], "onnx")])
def test_a_command_without_its_extra_names_it(tmp_path, argv, extra):
    script = BLOCK_EXTRAS + f"""
from strata import cli
sys.exit(cli.main({argv!r}))
"""
    (tmp_path / "run").mkdir()
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          cwd=tmp_path, timeout=120)
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert f"pip install 'strata[{extra}]'" in done.stderr
