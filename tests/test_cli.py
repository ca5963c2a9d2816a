"""The strata command: train (the default), evaluate, predict; and the plots it writes."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest

import strata
from strata import cli, runs
from strata.data import load_digits, moons
from strata.plots import plot_costs, plot_decision_boundary


def _train(tmp_path, *extra):
    out = tmp_path / "run"
    code = cli.main(["--dataset", "moons", "--epochs", "30", "--hidden", "8", "--lr", "0.02",
                     "--quiet", "--out", str(out), *extra])
    assert code == 0
    return out


def test_train_writes_a_complete_run_folder(tmp_path, capsys):
    out = _train(tmp_path)
    names = {p.name for p in out.iterdir()}
    assert {"model.safetensors", "config.json", "history.csv", "learning_curves.png",
            "cost.png", "report.md", "metrics.json", "decision_boundary.png"} <= names
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["test"]["accuracy"] > 0.8
    assert json.loads((out / "config.json").read_text())["hidden"] == [8]
    report = (out / "report.md").read_text()
    assert "| test |" in report and "dev error" in report and "(decision_boundary.png)" in report
    assert (out / "learning_curves.png").read_bytes()[:4] == b"\x89PNG"
    assert "Run written to" in capsys.readouterr().out


def test_evaluate_and_predict_use_the_saved_run(tmp_path, capsys):
    out = _train(tmp_path)
    capsys.readouterr()
    assert cli.main(["evaluate", str(out)]) == 0
    test_line = [line for line in capsys.readouterr().out.splitlines() if line.startswith("test")]
    saved = json.loads((out / "metrics.json").read_text())["test"]["accuracy"]
    assert f"accuracy {saved:.4f}" in test_line[0]
    strata.seed(0)
    X, Y = moons(20, noise=0.0)
    np.savetxt(tmp_path / "x.csv", X, delimiter=",")
    assert cli.main(["predict", str(out), str(tmp_path / "x.csv")]) == 0
    predicted = np.array(capsys.readouterr().out.split(), dtype=int)
    assert predicted.shape == (20,) and (predicted == Y[:, 0]).mean() >= 0.8


def test_bad_arguments_and_missing_runs(tmp_path, capsys):
    assert cli.main(["evaluate", str(tmp_path / "nowhere")]) == 2
    assert "not a strata run folder" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["train", "--hidden", "8,x"])
    assert "comma-separated positive sizes" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["train", "--dataset", "imagenet"])


def test_plots_write_pngs_and_check_their_input(tmp_path):
    strata.seed(0)
    X, Y = moons(50)
    path = plot_decision_boundary(lambda g: (g[:, :1] > 0.5).astype(float), X, Y,
                                  tmp_path / "boundary.png", resolution=50)
    assert path.read_bytes()[:4] == b"\x89PNG"
    assert plot_costs([0.7, 0.5, 0.3], tmp_path / "c.png").is_file()
    with pytest.raises(ValueError, match=r"\(m, 2\)"):
        plot_decision_boundary(lambda g: g, np.zeros((5, 3)), np.zeros(5), tmp_path / "x.png")
    with pytest.raises(ValueError, match="non-empty"):
        plot_costs([], tmp_path / "e.png")


# --- architectures ------------------------------------------------------------------------------

SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"
SIGNS = ("signs/signs_cs230_64x64_jpg.tar", "signs/test_signs.h5")


def test_signs_convnet_run_trains_evaluates_and_predicts(tmp_path, monkeypatch, capsys):
    if not all((SHARED / rel).is_file() for rel in SIGNS):
        pytest.skip(f"SIGNS files {SIGNS} are not in {SHARED} (see its SOURCES.md)")
    monkeypatch.setenv("STRATA_DATA", str(SHARED))
    out = tmp_path / "signs"
    assert cli.main(["train", "--dataset", "signs", "--arch", "convnet", "--epochs", "1",
                     "--lr", "0.009", "--quiet", "--out", str(out)]) == 0
    assert {"model.safetensors", "config.json", "history.csv", "learning_curves.png",
            "metrics.json", "report.md"} <= {p.name for p in out.iterdir()}
    config = json.loads((out / "config.json").read_text())
    assert config["arch"] == "convnet" and config["dataset"] == "signs"
    assert "model (convnet): Conv2D" in (out / "report.md").read_text()
    assert "test 120" in (out / "report.md").read_text()  # the course's own test set
    capsys.readouterr()
    assert cli.main(["evaluate", str(out)]) == 0
    saved = json.loads((out / "metrics.json").read_text())["test"]["accuracy"]
    assert f"accuracy {saved:.4f}" in capsys.readouterr().out
    from strata.data.datasets import load_signs

    _, (X_test, _), _ = load_signs()
    np.save(tmp_path / "images.npy", X_test[:5])
    np.save(tmp_path / "raw.npy", (X_test[:5] * 255).round().astype(np.uint8))
    assert cli.main(["predict", str(out), str(tmp_path / "images.npy")]) == 0
    first = capsys.readouterr().out.split()
    assert len(first) == 5 and set(first) <= set("012345")
    assert cli.main(["predict", str(out), str(tmp_path / "raw.npy")]) == 0
    assert capsys.readouterr().out.split() == first  # uint8 pixels are scaled to [0, 1]
    np.save(tmp_path / "wrong.npy", X_test[:2, :32])
    assert cli.main(["predict", str(out), str(tmp_path / "wrong.npy")]) == 2
    assert "expects examples of shape (64, 64, 3)" in capsys.readouterr().err


def test_augmented_convnet_on_images_and_csv_rows(tmp_path, capsys):
    out = tmp_path / "digits"
    assert cli.main(["--dataset", "digits", "--arch", "convnet", "--augment", "--epochs", "1",
                     "--quiet", "--out", str(out)]) == 0
    config, model = runs.load_run(out)
    assert (config.arch, config.augment) == ("convnet", True)
    assert model.input_shape == (8, 8, 1)
    assert "augmented (random crops)" in (out / "report.md").read_text()  # digits: no flips
    X, _ = load_digits()  # flattened rows, as a .csv holds them
    np.savetxt(tmp_path / "rows.csv", X[:3], delimiter=",")
    capsys.readouterr()
    assert cli.main(["predict", str(out), str(tmp_path / "rows.csv")]) == 0
    assert len(capsys.readouterr().out.split()) == 3


def test_config_round_trip_with_arch_and_old_configs(tmp_path):
    out = _train(tmp_path)
    config, _ = runs.load_run(out)
    assert config == runs.RunConfig(dataset="moons", hidden=[8], epochs=30, lr=0.02)
    assert config.arch == "mlp" and config.augment is False
    saved = json.loads((out / "config.json").read_text())
    assert saved["arch"] == "mlp"
    conv = runs.RunConfig(dataset="signs", arch="convnet", augment=True)
    assert runs.RunConfig(**json.loads(json.dumps(asdict(conv)))) == conv
    for key in ("arch", "augment"):  # written before these options existed
        del saved[key]
    (out / "config.json").write_text(json.dumps(saved))
    assert runs.load_run(out)[0].arch == "mlp"
    assert cli.main(["evaluate", str(out)]) == 0


def test_bad_arch_choices_give_clear_errors(tmp_path, capsys):
    with pytest.raises(SystemExit):
        cli.main(["train", "--arch", "vgg"])
    err = capsys.readouterr().err
    assert "--arch: invalid choice: 'vgg'" in err and "convnet" in err
    assert cli.main(["--dataset", "moons", "--arch", "convnet", "--out", str(tmp_path)]) == 2
    assert "needs images" in capsys.readouterr().err
    assert cli.main(["--augment", "--out", str(tmp_path)]) == 2
    assert "expected a conv arch" in capsys.readouterr().err
    assert cli.main(["--arch", "lenet5", "--out", str(tmp_path / "l")]) == 2  # 8x8 is too small
    assert "arch 'lenet5' on digits images of shape (8, 8, 1)" in capsys.readouterr().err


# --- python -m strata (issue 14) ------------------------------------------------------------
def _python_m_strata(*args, timeout=120):
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]  # this checkout's strata, not an installed one
    return subprocess.run([sys.executable, "-m", "strata", *args], cwd=root, text=True,
                          capture_output=True, timeout=timeout)


def test_python_m_strata_runs_the_command_and_exits_with_its_status(tmp_path):
    version = _python_m_strata("--version")
    assert version.returncode == 0, version.stderr
    assert version.stdout.strip() == strata.__version__
    demo = _python_m_strata("demo", "--iterations", "10", "--print-every", "5")
    assert demo.returncode == 0, demo.stderr
    for line in ("works perfectly fine", "Cost after iteration 0:", "Cost after iteration 5:",
                 "Cost after iteration 10:", "Training accuracy:"):
        assert line in demo.stdout
    assert "Cost after iteration 1:" not in demo.stdout
    missing = _python_m_strata("evaluate", str(tmp_path / "nowhere"))
    assert missing.returncode == 2 and "not a strata run folder" in missing.stderr
