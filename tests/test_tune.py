"""Hyperparameter search: the course's scales, narrowing, search files and their errors, a real
search against a dense sweep, coarse to fine against one random round, the strata tune command,
and panda mode."""

from __future__ import annotations

import csv
import json
import math
import re
import shlex
from pathlib import Path

import numpy as np
import optuna
import pytest

from strata import cli
from strata.runs import RunConfig
from strata.tune.config import SearchConfig, SpaceFileError, load_search
from strata.tune.panda import Panda
from strata.tune.space import Dimension, Space
from strata.tune.study import run_worker

optuna.logging.set_verbosity(optuna.logging.WARNING)


def _samples(space: Space, n: int, seed: int = 0) -> list:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    return [space.suggest(study.ask()) for _ in range(n)]


def test_log_uniform_learning_rate_puts_a_quarter_in_each_decade():
    space = Space.from_dict({"lr": {"log": [1e-4, 1.0]}, "keep_prob": {"uniform": [0.1, 1.0]}})
    lrs = np.array([s["lr"] for s in _samples(space, 4000)])
    counts = np.histogram(np.log10(lrs), bins=[-4, -3, -2, -1, 0])[0]
    chi2 = float(np.sum((counts - 1000) ** 2 / 1000))
    assert lrs.min() >= 1e-4 and lrs.max() <= 1.0
    assert chi2 < 11.34, counts  # 3 degrees of freedom, p = 0.01
    # Sampled uniformly instead, 90 % would land in the top decade: the test can tell.
    uniform = np.random.default_rng(0).uniform(1e-4, 1.0, 4000)
    assert np.histogram(np.log10(uniform), bins=[-4, -3, -2, -1, 0])[0][-1] > 3500


def test_beta_samples_concentrate_near_0999():
    beta = np.array([s["beta"] for s in _samples(Space.from_dict(
        {"beta": {"one_minus_log": [0.9, 0.999]}}), 4000)])
    assert beta.min() >= 0.9 and beta.max() <= 0.999
    near = np.mean(beta >= 0.99)  # [0.99, 0.999] is a tenth of the range but half the samples
    assert 0.47 < near < 0.53
    assert abs(np.median(beta) - 0.99) < 0.002
    assert abs(np.mean(np.log10(1 - beta)) + 2) < 0.03  # log10(1 - beta) uniform in [-3, -1]


def test_ray_tune_samples_the_same_raw_space():
    pytest.importorskip("ray.tune", reason="ray[tune] is not installed")
    space = Space.from_dict({"lr": {"log": [1e-4, 1.0]}, "beta": {"one_minus_log": [0.9, 0.999]},
                             "batch_size": {"pow2": [16, 256]}})
    ray_space = space.ray_space()
    rng = np.random.default_rng(0)
    lr = np.array(ray_space["lr"].sample(size=4000, random_state=rng))
    counts = np.histogram(np.log10(lr), bins=[-4, -3, -2, -1, 0])[0]
    assert np.all(np.abs(counts - 1000) < 100), counts
    raw = ray_space["1-beta"].sample(size=500, random_state=rng)
    assert np.mean(np.array([space["beta"].decode(r) for r in raw]) >= 0.99) > 0.4
    sizes = {space["batch_size"].decode(r) for r in
             ray_space["log2(batch_size)"].sample(size=200, random_state=rng)}
    assert sizes == {16, 32, 64, 128, 256}


def test_integers_and_powers_of_two_stay_in_range():
    samples = _samples(Space.from_dict({"layers": {"int": [1, 3]}, "batch_size":
                                        {"pow2": [16, 512]}, "opt": {"choice": ["adam", "gd"]}}),
                       300)
    assert {s["layers"] for s in samples} == {1, 2, 3}
    assert {s["batch_size"] for s in samples} == {16, 32, 64, 128, 256, 512}
    assert {s["opt"] for s in samples} == {"adam", "gd"}


def test_narrowing_works_on_the_sampling_scale():
    lr = Dimension("lr", "log", 1e-4, 1.0).narrowed([1e-2, 2e-2], margin=0.1)
    assert math.isclose(lr.low, 10 ** (-2 - 0.4)) and math.isclose(lr.high, 2e-2 * 10 ** 0.4)
    beta = Dimension("beta", "one_minus_log", 0.9, 0.999).narrowed([0.001, 0.002], margin=0.1)
    assert math.isclose(beta.high, 0.999) and math.isclose(beta.low, 1 - 0.002 * 10 ** 0.2)
    units = Dimension("units", "int", 16, 128).narrowed([40, 50], margin=0.05)
    assert (units.low, units.high) == (34, 56)
    assert Dimension("o", "choice", choices=("a", "b", "c")).narrowed(["c", "a"]).choices == (
        "a", "c")


def _write(tmp_path, text: str, name: str = "space.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


GOOD = """[study]
trials = 4
rounds = 2

[fixed]
dataset = "moons"
epochs = 4
hidden = [8]

[space]
lr = { log = [1e-3, 1.0] }
batch_size = { pow2 = [16, 64] }
"""


@pytest.mark.parametrize("bad, line, message", [
    (GOOD.replace("lr = { log", "lr = { log ="), 11, "not valid TOML"),
    (GOOD.replace("batch_size", "batch_sise"), 12, "unknown hyperparameter 'batch_sise'"),
    (GOOD.replace("[1e-3, 1.0]", "[0, 1.0]"), 11, "a log scale needs low > 0"),
    (GOOD.replace("pow2 = [16, 64]", "pow2 = [16, 60]"), 12, "powers of two"),
    (GOOD.replace("{ log =", "{ logarithmic ="), 11, "unknown kind 'logarithmic'"),
    (GOOD.replace("rounds = 2", "rounds = 9"), 3, "'rounds'"),
    (GOOD.replace("trials = 4", "trails = 4"), 2, "unknown study setting 'trails'"),
    (GOOD.replace("epochs = 4", "epoch = 4"), 7, "unknown hyperparameter 'epoch'"),
])
def test_bad_search_files_name_the_line(tmp_path, bad, line, message):
    with pytest.raises(SpaceFileError) as error:
        load_search(_write(tmp_path, bad))
    assert f"line {line}" in str(error.value) and message in str(error.value)


def test_the_example_search_file_runs(tmp_path):
    from pathlib import Path

    example = Path(__file__).parent.parent / "examples" / "tune_digits.toml"
    config = load_search(example)
    assert config.space.names == ["lr", "beta1", "layers", "units", "batch_size", "keep_prob"]
    assert config.rounds == 2 and config.fixed["dataset"] == "digits"
    from strata.tune import search

    short = load_search(example, trials=2, rounds=1)
    short.fixed["epochs"] = 2  # the file's 12 epochs take a few seconds per trial
    result = search(short, tmp_path, progress=False)
    rows = list(csv.DictReader(result["results"].open()))
    assert [r["state"] for r in rows] == ["COMPLETE", "COMPLETE"]
    assert all(0 <= float(r["value"]) <= 1 and 0.8 <= float(r["beta1"]) <= 0.99 for r in rows)
    assert len(result["plots"]) == 6 and "beta1" in result["text"]


def test_search_finds_the_learning_rate_of_a_dense_sweep(tmp_path):
    from tune_objectives import moons_net

    sweep = np.logspace(-4, 0, 25)
    best_swept = sweep[int(np.argmax([moons_net({"lr": lr}) for lr in sweep]))]
    config = SearchConfig(space=Space.from_dict({"lr": {"log": [1e-4, 1.0]}}), name="lr",
                          trials=12, rounds=2, objective="tune_objectives:moons_net",
                          pruner="none")
    study = run_worker(config, f"sqlite:///{tmp_path / 'lr.db'}")
    found = study.best_trial.params["lr"]
    assert abs(math.log10(found / best_swept)) <= 1.0, (found, best_swept)


def test_coarse_to_fine_beats_one_random_round_on_average():
    space = Space.from_dict({"lr": {"log": [1e-4, 1.0]}, "beta": {"one_minus_log": [0.8, 0.999]}})
    best = {1: [], 2: []}
    for seed in range(10):
        for rounds in (1, 2):
            config = SearchConfig(space=space, name=f"s{seed}-{rounds}", trials=16,
                                  rounds=rounds, objective="tune_objectives:moons_net",
                                  seed=seed, pruner="none")
            best[rounds].append(run_worker(config, "memory").best_value)
    gain = np.array(best[2]) - np.array(best[1])
    assert np.mean(best[2]) > np.mean(best[1]) and (gain > 0).sum() > (gain < 0).sum(), gain


def test_strata_tune_writes_results_and_resumes(tmp_path, capsys):
    space_file = _write(tmp_path, GOOD)
    out = tmp_path / "out"
    assert cli.main(["tune", str(space_file), "--out", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "Best trials" in printed and "lr" in printed
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert len(rows) == 4 and {r["round"] for r in rows} == {"0", "1"}
    assert all(int(r["batch_size"]) in (16, 32, 64) for r in rows)
    assert {p.name for p in out.glob("*.png")} == {"score_vs_lr.png", "score_vs_batch_size.png"}
    assert cli.main(["tune", str(space_file), "--out", str(out), "--quiet", "--trials", "6"]) == 0
    again = list(csv.DictReader((out / "results.csv").open()))
    assert len(again) == 6 and again[:4] == rows  # finished trials kept, two more run


def test_strata_tune_keeps_the_best_trial_as_a_run_and_its_command(tmp_path, capsys):
    out = tmp_path / "out"
    space = GOOD.replace("[space]", '[space]\nbeta1 = { one_minus_log = [0.8, 0.99] }')
    assert cli.main(["tune", str(_write(tmp_path, space)), "--out", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    best = max((r for r in csv.DictReader((out / "results.csv").open())),
               key=lambda r: float(r["value"]))
    dev = json.loads((out / "best" / "metrics.json").read_text())["dev"]["accuracy"]
    assert dev == pytest.approx(float(best["value"]), abs=1e-9)  # the trial, trained again
    command = re.search(r"reproduce it with: (strata train .*)\)", printed).group(1)
    args = shlex.split(command)[1:]
    assert float(args[args.index("--beta1") + 1]) == float(best["beta1"])
    args[args.index("--out") + 1] = str(tmp_path / "again")
    assert cli.main(args + ["--quiet"]) == 0
    again = json.loads((tmp_path / "again" / "metrics.json").read_text())["dev"]["accuracy"]
    assert again == dev


def test_run_config_refuses_a_hyperparameter_its_optimizer_lacks():
    with pytest.raises(ValueError, match="beta1=0.9: the sgd optimizer has no beta1"):
        RunConfig(optimizer="sgd", beta1=0.9)
    with pytest.raises(ValueError, match=r"beta2: expected a number in \[0, 1\), got 1.5"):
        RunConfig(beta2=1.5)


def test_strata_tune_reports_a_bad_file(tmp_path, capsys):
    space_file = _write(tmp_path, GOOD.replace("batch_size", "batchsize"))
    assert cli.main(["tune", str(space_file), "--out", str(tmp_path / "o")]) == 2
    assert "line 12: unknown hyperparameter 'batchsize'" in capsys.readouterr().err


def test_panda_babysits_one_model_across_sessions(tmp_path):
    panda = Panda(tmp_path / "panda", {"dataset": "moons", "hidden": [8], "lr": 0.02})
    panda.train(2)
    again = Panda(tmp_path / "panda")  # another day, another process: state from the folder
    assert again.epoch == 2 and again.params["lr"] == 0.02
    again.study.ask()  # a session killed mid-way leaves a RUNNING trial...
    third = Panda(tmp_path / "panda")
    third.train(2, lr=0.005)
    states = [t.state.name for t in third.study.trials]
    assert states == ["COMPLETE", "FAIL", "COMPLETE"]  # ...marked FAIL by the next session
    last = third.study.trials[-1]
    assert sorted(last.intermediate_values) == [3, 4] and last.user_attrs["params"]["lr"] == 0.005
    assert [e for e, _ in third.history()] == [1, 2, 3, 4]
    with pytest.raises(ValueError, match="cannot change on a trained model"):
        third.train(1, hidden=[16])


def test_a_search_whose_trials_all_diverge_stops_with_an_error():
    config = SearchConfig(space=Space.from_dict({"lr": {"log": [1e-4, 1.0]}}), name="div",
                          trials=3, objective="tune_objectives:diverging", pruner="none")
    with pytest.raises(RuntimeError, match="11 trials failed .* for 0 finished"):
        run_worker(config, "memory")


# --- bad search files: names, keep_prob, the objective's import ---------------------------------

@pytest.mark.parametrize("name", ["../../x", "a/b", ".hidden", "", "x" * 101, "a b", "..", 7])
def test_a_study_name_must_be_a_plain_file_name(tmp_path, name):
    text = GOOD.replace("[study]\n", f"[study]\nname = {json.dumps(name)}\n")
    with pytest.raises(SpaceFileError, match=r"line 2: study setting 'name': expected a plain "
                                             r"file name"):
        load_search(_write(tmp_path, text))


def test_a_bad_study_name_writes_nothing_outside_the_output_folder(tmp_path, capsys,
                                                                   monkeypatch):
    work = tmp_path / "a" / "b"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    text = GOOD.replace("[study]\n", '[study]\nname = "../../../../escaped"\n')  # tmp_path
    assert cli.main(["tune", str(_write(tmp_path, text))]) == 2
    assert "expected a plain file name" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "space.toml"]
    assert list(work.iterdir()) == []
    with pytest.raises(ValueError, match="study setting 'name'"):
        SearchConfig(space=Space.from_dict({"lr": {"log": [1e-4, 1.0]}}), name="../x")


@pytest.mark.parametrize("line, fragment", [
    ("keep_prob = { uniform = [0.5, 1.5] }", "expected values in (0, 1], got 1.5"),
    ("keep_prob = { uniform = [0.0, 1.0] }", "expected values in (0, 1], got 0.0"),
    ("keep_prob = { log = [0.01, 2.0] }", "got 2.0"),
    ("keep_prob = { int = [1, 3] }", "got 3"),
    ("keep_prob = { choice = [0.5, 0.8, 1.2] }", "got 1.2"),
    ("keep_prob = { choice = [0.5, \"all\"] }", "got 'all'"),
])
def test_keep_prob_ranges_outside_0_1_are_refused(tmp_path, line, fragment):
    with pytest.raises(SpaceFileError) as error:
        load_search(_write(tmp_path, GOOD + line + "\n"))
    assert "line 13: hyperparameter 'keep_prob'" in str(error.value)
    assert fragment in str(error.value)


@pytest.mark.parametrize("value, ok", [(0, False), (1.5, False), (-1, False), ("0.5", False),
                                       (True, False), (0.5, True), (1, True)])
def test_a_fixed_keep_prob_must_lie_in_0_1(tmp_path, value, ok):
    path = _write(tmp_path, GOOD.replace("hidden = [8]", f"hidden = [8]\nkeep_prob = "
                                                         f"{json.dumps(value)}"))
    if ok:
        assert load_search(path).fixed["keep_prob"] == value
        return
    with pytest.raises(SpaceFileError, match=r"line 9: hyperparameter 'keep_prob': expected "
                                             r"values in \(0, 1\]"):
        load_search(path)
    with pytest.raises(ValueError, match="keep_prob"):
        SearchConfig(space=Space.from_dict({"lr": {"log": [1e-4, 1.0]}}),
                     fixed={"keep_prob": value})


def _marking_objective(tmp_path, monkeypatch) -> tuple[str, Path]:
    """A module (named after the test, so never imported before) whose import leaves a mark
    file: it tells whether a search file's objective was imported, its code run."""
    name, mark = "marking_" + re.sub(r"\W", "_", tmp_path.name), tmp_path / "imported.txt"
    (tmp_path / f"{name}.py").write_text(
        f"from pathlib import Path\nPath({str(mark)!r}).write_text('ran')\n"
        "def score(params, report=None):\n    return 0.0\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    return name, mark


@pytest.mark.parametrize("mistake", [
    ("batch_size = { pow2 = [16, 64] }", "batch_size = { pow2 = [16, 60] }"),
    ("trials = 4", "trials = 0"),
    ("trials = 4", 'trials = 4\nname = "../x"'),
    ("epochs = 4", "epochs = 4\nkeep_prob = 3"),
    ("[space]", "[space]\nkeep_prob = { uniform = [0.5, 2] }"),
    ("[fixed]", "[fixd]"),
])
def test_the_whole_file_is_checked_before_the_objective_is_imported(tmp_path, monkeypatch,
                                                                    mistake):
    module, mark = _marking_objective(tmp_path, monkeypatch)
    good = GOOD.replace("[study]\n", f'[study]\nobjective = "{module}:score"\n')
    with pytest.raises(SpaceFileError):
        load_search(_write(tmp_path, good.replace(*mistake)))
    assert not mark.exists()
    load_search(_write(tmp_path, good))  # a valid file: now, and only now, it runs
    assert mark.read_text() == "ran"


@pytest.mark.parametrize("objective, fragment", [
    ("../evil:f", "expected 'module:function'"),
    ("os.system", "expected 'module:function'"),
    ("a b:c", "expected 'module:function'"),
    ("no_such_module_xyz:f", "cannot be loaded"),
])
def test_objectives_must_be_module_colon_function(tmp_path, objective, fragment):
    text = GOOD.replace("[study]\n", f"[study]\nobjective = {json.dumps(objective)}\n")
    with pytest.raises(SpaceFileError, match=r"line 2: .*" + re.escape(fragment)):
        load_search(_write(tmp_path, text))


def test_tune_help_states_the_trust_boundary(capsys):
    with pytest.raises(SystemExit):
        cli.main(["tune", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert 'objective = "module:function" imports that Python module and runs its code' in text
    assert "model files" in text and "run folders are data" in text


# --- panda: unknown --set names and bad values -------------------------------------------------

def test_babysit_refuses_unknown_names_listing_the_known_ones(tmp_path, capsys):
    folder = tmp_path / "panda"
    assert cli.main(["babysit", str(folder), "--set", "lrr=0.01"]) == 2
    err = capsys.readouterr().err
    assert "unknown hyperparameter 'lrr'; expected among dataset, epochs, seed, optimizer, lr" \
        in err
    for bad, fragment in (("keep_prob=1.5", "keep_prob: expected a keep probability in (0, 1]"),
                          ("epochs=3", "give the epochs of this session with --epochs"),
                          ("lr=-1", "lr: expected a learning rate > 0")):
        assert cli.main(["babysit", str(folder), "--set", bad]) == 2
        assert fragment in capsys.readouterr().err
    assert not folder.exists()  # refused before the folder and its study are made


def test_panda_checks_its_parameters_before_training(tmp_path):
    with pytest.raises(ValueError, match="unknown hyperparameter 'units_'"):
        Panda(tmp_path / "p", {"units_": 3})
    panda = Panda(tmp_path / "p", {"dataset": "moons", "hidden": [4]})
    with pytest.raises(ValueError, match="unknown hyperparameter 'momentum'"):
        panda.train(1, momentum=0.9)
    with pytest.raises(ValueError, match=r"keep_prob: expected a keep probability"):
        panda.train(1, keep_prob=0)
    assert panda.params == {"dataset": "moons", "hidden": [4]} and panda.epoch == 0


def test_the_cli_knows_the_objective_hyperparameters():
    from strata import commands
    from strata.tune.objective import MLP_HYPERPARAMETERS

    assert commands.MLP_NAMES == MLP_HYPERPARAMETERS


@pytest.mark.parametrize("name", ["../../evil", "a/b", ".x"])
def test_searched_names_cannot_lead_plots_outside_the_output_folder(tmp_path, name):
    text = GOOD + f'"{name}" = {{ log = [1e-3, 1.0] }}\n'
    with pytest.raises(SpaceFileError, match=r"line 13: hyperparameter .*expected a name of "
                                             r"letters, digits"):
        load_search(_write(tmp_path, text), accepts={"lr", "batch_size", name, "dataset",
                                                     "epochs", "hidden"})
