"""The README's examples run as written, and the demo command trains to the course's accuracy."""

import re
from pathlib import Path

import strata
from strata import cli
from strata.data import planar_flower

ROOT = Path(__file__).resolve().parent.parent


def test_readme_python_blocks_run():
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert len(blocks) >= 2
    namespace: dict = {}
    for block in blocks:  # later blocks reuse names from earlier ones, as a reader would
        exec(compile(block, "README.md", "exec"), namespace)
    assert namespace["report"].passed


def test_readme_starts_with_the_two_commands():
    head = (ROOT / "README.md").read_text().split("```sh\n", 1)[1].split("```", 1)[0]
    commands = [line.split("#")[0].strip() for line in head.strip().splitlines()]
    assert commands == ["make run", "make test"]


def test_demo_prints_course_costs_and_learns_the_flower(capsys):
    assert cli.main(["demo", "--iterations", "3000", "--print-every", "1000"]) == 0
    out = capsys.readouterr().out
    costs = [float(c) for c in re.findall(r"Cost after iteration \d+: ([0-9.]+)", out)]
    assert len(costs) == 4
    assert abs(costs[0] - 0.6931) < 1e-3  # log(2): tiny weights give sigmoid(0) = 0.5
    assert costs[-1] < 0.3 and costs == sorted(costs, reverse=True)
    assert "works perfectly fine" in out
    accuracy = float(re.search(r"Training accuracy: ([0-9.]+) %", out).group(1))
    assert accuracy >= 85.0


def test_demo_rejects_bad_hyperparameters(capsys):
    import pytest

    with pytest.raises(SystemExit):
        cli.main(["demo", "--lr", "-1"])
    assert "expected a positive number" in capsys.readouterr().err


def test_planar_flower_is_seeded_and_balanced():
    strata.seed(3)
    X1, Y1 = planar_flower(m=100)
    strata.seed(3)
    X2, _ = planar_flower(m=100)
    assert (X1 == X2).all() and X1.dtype == strata.get_default_dtype()
    assert Y1.sum() == 50
