"""ML strategy (course 3): the diagnosis gives the course's answers, the four sets across
distributions, metric set-up, error analysis and multi-task learning."""

from __future__ import annotations

import csv
import json
import time

import numpy as np
import pytest

import strata
from strata import cli, strategy


@pytest.mark.parametrize("errors, focus", [
    ({"human": 0.01, "train": 0.08, "dev": 0.10}, "avoidable bias"),
    ({"human": 0.075, "train": 0.08, "dev": 0.10}, "variance"),
    ({"train": 0.01, "train_dev": 0.09, "dev": 0.10}, "variance"),
    ({"train": 0.01, "train_dev": 0.015, "dev": 0.10}, "data mismatch"),
    ({"human": 0.01, "train": 0.015, "train_dev": 0.02, "dev": 0.025, "test": 0.08},
     "overfitting to the dev set"),
])
def test_the_course_examples_give_the_course_answers(errors, focus):
    d = strategy.diagnose(**errors)
    assert d.dominant == focus
    assert d.actions == strategy.ACTIONS[focus]
    assert f"Focus on {focus}" in str(d) and f"Focus on {focus}" in d.to_markdown()


def test_gaps_follow_the_course_definitions():
    d = strategy.diagnose(human=0.01, train=0.08, dev=0.10)
    assert d.avoidable_bias == pytest.approx(0.07) and d.variance == pytest.approx(0.02)
    assert d.data_mismatch is None and d.dev_overfitting is None
    assert any("no training-dev set" in n for n in d.notes())
    d = strategy.diagnose(human=0.0, train=0.01, train_dev=0.015, dev=0.10, test=0.11)
    assert d.variance == pytest.approx(0.005) and d.data_mismatch == pytest.approx(0.085)
    assert d.dev_overfitting == pytest.approx(0.01)
    assert strategy.diagnose(human=0.005, train=0.006, dev=0.008).dominant is None
    assert json.loads(json.dumps(d.to_dict()))["dominant"] == "data mismatch"
    with pytest.raises(ValueError, match="fraction in \\[0, 1\\].*got 8.0"):
        strategy.diagnose(train=8.0, dev=0.1)
    with pytest.raises(ValueError, match="dev error is required"):
        strategy.diagnose(train=0.1)


class _Fixed:
    """A model stub whose predictions are its inputs' first column (probabilities)."""

    def predict(self, X):
        return np.asarray(X)[:, :1]


def _set(m, wrong):
    X = np.full((m, 1), 0.9)
    X[:wrong] = 0.1
    return X, np.ones((m, 1))


def test_diagnose_model_computes_the_errors_itself():
    d = strategy.diagnose_model(_Fixed(), 0.01, train=_set(100, 8), train_dev=_set(50, 4),
                                dev=_set(200, 20), test=_set(100, 11))
    assert (d.train, d.train_dev, d.dev, d.test) == pytest.approx((0.08, 0.08, 0.10, 0.11))
    assert d.dominant == "avoidable bias"
    with pytest.raises(ValueError, match="expected dev=\\(X, Y\\)"):
        strategy.diagnose_model(_Fixed(), train=_set(10, 1), dev=np.zeros(3))


def test_build_sets_keeps_dev_and_test_on_the_target_distribution():
    strata.seed(0)
    web = (np.zeros((2000, 1)), np.arange(2000))  # feature 0: web, 1: mobile
    mobile = (np.ones((100, 1)), 10_000 + np.arange(100))
    sets = strategy.build_sets(web, mobile, dev=25, test=25)
    assert (sets.dev[0] == 1).all() and (sets.test[0] == 1).all()
    assert len(sets.train[0]) + len(sets.train_dev[0]) == 2050 and len(sets.train_dev[0]) == 25
    ids = np.concatenate([s[1] for s in sets])
    assert len(ids) == len(set(ids)) == 2100  # every example once
    assert sets.train[0].mean() == pytest.approx(50 / 2050, abs=0.01)  # mobile mixed in
    none_in_train = strategy.build_sets(web, mobile, dev=0.25, test=0.25, target_in_train=0.0)
    assert (none_in_train.train[0] == 0).all() and len(none_in_train.dev[0]) == 25
    with pytest.raises(ValueError, match="at most the 100 target examples"):
        strategy.build_sets(web, mobile, dev=60, test=60)


def test_single_number_weighted_and_satisficing_metrics():
    a, b = strategy.f1_from(0.95, 0.90), strategy.f1_from(0.98, 0.85)
    assert a == pytest.approx(0.9243, abs=1e-4) and b == pytest.approx(0.9104, abs=1e-4)
    y = np.array([0, 0, 0, 0, 1, 1])
    pred = np.array([1, 0, 0, 0, 1, 0])  # one mistake on an ordinary image, one on a bad one
    assert strategy.weighted_error(y, pred, np.ones(6)) == pytest.approx(2 / 6)
    assert strategy.weighted_error(y, pred, [1, 1, 1, 1, 10, 10]) == pytest.approx(11 / 24)
    cats = {"A": {"accuracy": 0.90, "ms": 80}, "B": {"accuracy": 0.92, "ms": 95},
            "C": {"accuracy": 0.95, "ms": 1500}}
    choice = strategy.choose(cats, "accuracy", {"ms": ("<=", 100)})
    assert choice.best == "B" and "fails ms <= 100" in str(choice)


class _Slow(_Fixed):
    def __init__(self, seconds):
        self.seconds = seconds

    def predict(self, X):
        time.sleep(self.seconds)
        return super().predict(X)


def test_running_time_is_measured_not_assumed():
    X, Y = _set(20, 1)
    assert strategy.time_per_example(_Slow(0.01).predict, X[:5], repeats=2) >= 9.0
    class _Perfect(_Slow):
        def predict(self, X):
            time.sleep(self.seconds)
            return np.ones((len(X), 1))

    models = {"accurate but slow": _Perfect(0.02), "fast": _Slow(0.0)}
    choice = strategy.choose_model(models, X[:5], Y[:5], max_ms_per_example=10, repeats=1)
    slow = choice.table[0]["metrics"]
    assert slow["accuracy"] == 1.0 and slow["ms_per_example"] >= 18
    assert choice.best == "fast"  # the best accuracy fails the running-time constraint


def _dev_predictions():
    y = np.zeros(100, dtype=int)
    pred = y.copy()
    pred[:20] = 1  # 20 errors: dev error 20 %
    return y, pred


def test_error_analysis_from_a_filled_in_spreadsheet(tmp_path):
    y, pred = _dev_predictions()
    strata.seed(0)
    ids = strategy.sample_errors(y, pred, n=10)
    assert len(ids) == 10 and set(ids) <= set(range(20))
    template = strategy.write_tag_template(tmp_path / "tags.csv", ids, ["dog", "blurry"], y,
                                           pred)
    rows = list(csv.reader(template.open()))
    assert rows[0] == ["id", "true", "predicted", "dog", "blurry", "incorrectly labeled",
                       "comments"]
    for k, row in enumerate(rows[1:]):  # the user's marks: 5 dogs, 2 blurry, 1 bad label
        row[3], row[4], row[5] = ("x" if k < 5 else ""), ("1" if k in (4, 5) else ""), (
            "yes" if k == 9 else "")
    with template.open("w", newline="") as f:
        csv.writer(f).writerows(rows)
    analysis = strategy.error_analysis(y, pred, tags=template)
    table = {r["category"]: r for r in analysis.rows}
    assert table["dog"]["count"] == 5 and table["dog"]["percent"] == 50.0
    assert table["dog"]["ceiling"] == pytest.approx(0.10)  # half of a 20 % dev error
    assert table["blurry"]["count"] == 2 and analysis.mislabeled_share == pytest.approx(0.1)
    parts = analysis.decomposition
    assert parts["errors due to incorrect labels"] == pytest.approx(0.02)
    assert parts["errors due to other causes"] == pytest.approx(0.18)
    assert "| dog | 5 | 50.0 % | 10.00% |" in analysis.to_markdown()
    written = list(csv.DictReader(analysis.to_csv(tmp_path / "table.csv").open()))
    assert written[0] == {"category": "dog", "count": "5", "percent_of_errors": "50.0",
                          "ceiling": "0.1000"}


def test_bad_tag_files_name_the_line(tmp_path):
    y, pred = _dev_predictions()
    bad = tmp_path / "bad.csv"
    bad.write_text("id,dog,comments\n3,x,\n4,maybe,\n")
    with pytest.raises(ValueError, match="line 3, column 'dog'.*'maybe'"):
        strategy.error_analysis(y, pred, tags=bad)
    bad.write_text("id,dog\n3,x\n50,x\n")
    with pytest.raises(ValueError, match="\\[50\\] are not misclassified"):
        strategy.error_analysis(y, pred, tags=bad)


def test_error_analysis_with_predicates_and_an_image_grid(tmp_path):
    strata.seed(0)
    X = strata.rng().random((100, 8, 8))
    X[:10] *= 0.1  # ten dark images among the errors
    y, pred = _dev_predictions()
    analysis = strategy.error_analysis(y, pred, X=X, n=100, predicates={
        "dark": lambda x, t, p: x.mean() < 0.2})
    assert analysis.rows[0]["count"] == 10 and analysis.rows[0]["percent"] == 50.0
    assert analysis.mislabeled_share is None
    path = strategy.plot_errors(X, analysis.ids[:12], y, pred, tmp_path / "errors.png",
                                tags=analysis.tags)
    assert path.read_bytes()[:4] == b"\x89PNG"


def test_multitask_network_learns_every_task_from_partial_labels():
    strata.seed(0)
    X, Y, Y_full = strategy.make_multitask_data(m=2000, missing=0.3)
    assert 0.25 < np.isnan(Y).mean() < 0.35
    model = strategy.train_multitask(X[:1500], Y[:1500], epochs=40)
    scores = strategy.evaluate_per_task(model, X[1500:], Y_full[1500:])
    assert set(scores) == set(strategy.multitask.TASKS) and min(scores.values()) > 0.9, scores
    partial = Y_full[1500:].copy()
    partial[1::2, 0] = np.nan  # unlabelled entries do not count: only the even rows remain
    on_even_rows = strategy.evaluate_per_task(model, X[1500::2], Y_full[1500::2])
    assert strategy.evaluate_per_task(model, X[1500:], partial)["pedestrian"] == on_even_rows[
        "pedestrian"]


def test_strata_diagnose_and_errors_on_a_run(tmp_path, capsys):
    out = tmp_path / "run"
    assert cli.main(["train", "--dataset", "digits", "--epochs", "3", "--hidden", "16",
                     "--quiet", "--out", str(out), "--human-error", "0.01"]) == 0
    assert "Focus on" in capsys.readouterr().out
    report = (out / "report.md").read_text()
    assert "## Diagnosis" in report and "avoidable bias" in report
    assert "no training-dev set" in report
    assert cli.main(["diagnose", str(out), "--human-error", "0.2"]) == 0
    printed = capsys.readouterr().out
    assert "human-level (proxy for Bayes) error" in printed and "20.00%" in printed
    assert cli.main(["errors", str(out), "--n", "5", "--categories", "thin,slanted"]) == 0
    assert (out / "errors.png").is_file()
    rows = list(csv.reader((out / "errors_to_tag.csv").open()))
    assert rows[0][3:] == ["thin", "slanted", "incorrectly labeled", "comments"]
    assert len(rows) == 6
    rows[1][3] = "x"
    with (out / "errors_to_tag.csv").open("w", newline="") as f:
        csv.writer(f).writerows(rows)
    assert cli.main(["errors", str(out), "--tags", str(out / "errors_to_tag.csv")]) == 0
    assert "| thin | 1 | 20.0 % |" in capsys.readouterr().out
    assert (out / "error_analysis.csv").is_file() and (out / "error_analysis.md").is_file()
