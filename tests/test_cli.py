"""The strata command: train (the default), evaluate, predict; and the plots it writes."""

from __future__ import annotations

import json

import numpy as np
import pytest

import strata
from strata import cli
from strata.data import moons
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
