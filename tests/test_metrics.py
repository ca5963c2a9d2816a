"""Metrics: hand-computed examples, the confusion matrix layout, macro averaging, zero division,
input forms (indices, probabilities, one-hot rows, Tensors) and scikit-learn agreement."""

from __future__ import annotations

import numpy as np
import pytest

import strata
from strata.metrics import (
    accuracy,
    confusion_matrix,
    f1_score,
    get_metric,
    precision,
    recall,
)

# tp = 3 (examples 0, 1, 9), fn = 2 (2, 3), fp = 1 (4), tn = 4
BINARY_TRUE = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0, 1])
BINARY_PRED = np.array([1, 1, 0, 0, 1, 0, 0, 0, 0, 1])
# confusion matrix [[1, 1, 0], [0, 1, 0], [1, 0, 2]]
MULTI_TRUE = np.array([0, 0, 1, 2, 2, 2])
MULTI_PRED = np.array([0, 1, 1, 2, 2, 0])


def test_binary_scores_by_hand():
    assert accuracy(BINARY_TRUE, BINARY_PRED) == pytest.approx(0.7)
    assert precision(BINARY_TRUE, BINARY_PRED) == pytest.approx(3 / 4)
    assert recall(BINARY_TRUE, BINARY_PRED) == pytest.approx(3 / 5)
    assert f1_score(BINARY_TRUE, BINARY_PRED) == pytest.approx(2 * 0.75 * 0.6 / (0.75 + 0.6))
    for score in (accuracy(BINARY_TRUE, BINARY_PRED), precision(BINARY_TRUE, BINARY_PRED)):
        assert type(score) is float


def test_confusion_matrix_rows_are_true_classes_columns_predicted():
    cm = confusion_matrix(MULTI_TRUE, MULTI_PRED)
    np.testing.assert_array_equal(cm, [[1, 1, 0], [0, 1, 0], [1, 0, 2]])
    assert cm.sum() == len(MULTI_TRUE)
    padded = confusion_matrix(MULTI_TRUE, MULTI_PRED, num_classes=4)
    assert padded.shape == (4, 4) and (padded[:3, :3] == cm).all() and padded[3].sum() == 0
    np.testing.assert_array_equal(confusion_matrix(BINARY_TRUE, BINARY_PRED), [[4, 1], [2, 3]])
    np.testing.assert_array_equal(confusion_matrix([0, 0], [0, 0]), [[2, 0], [0, 0]])
    with pytest.raises(ValueError, match="num_classes=2 but found class 2"):
        confusion_matrix(MULTI_TRUE, MULTI_PRED, num_classes=2)


def test_macro_averages_the_per_class_scores():
    # per class (0, 1, 2): precision 1/2, 1/2, 1; recall 1/2, 1, 2/3; F1 1/2, 2/3, 4/5
    assert precision(MULTI_TRUE, MULTI_PRED, average="macro") == pytest.approx(2 / 3)
    assert recall(MULTI_TRUE, MULTI_PRED, average="macro") == pytest.approx((0.5 + 1 + 2 / 3) / 3)
    assert f1_score(MULTI_TRUE, MULTI_PRED, average="macro") == pytest.approx(
        (0.5 + 2 / 3 + 0.8) / 3)
    # a class absent from both y_true and y_pred (here 1) does not drag the average down
    assert precision([0, 2, 2], [0, 2, 0], average="macro") == pytest.approx((1 / 2 + 1) / 2)


def test_zero_division_gives_zero():
    nothing_predicted = [0, 0, 0, 0]
    assert precision([1, 0, 1, 0], nothing_predicted) == 0.0
    assert f1_score([1, 0, 1, 0], nothing_predicted) == 0.0
    assert recall([1, 0, 1, 0], nothing_predicted) == 0.0
    assert recall([0, 0, 0, 0], [1, 0, 1, 0]) == 0.0  # no actual positives
    assert f1_score([0, 0], [0, 0]) == 0.0  # no positives anywhere
    # macro: class 2 is never predicted, so its precision is 0
    assert precision([0, 1, 2], [0, 1, 1], average="macro") == pytest.approx((1 + 0.5 + 0) / 3)


def test_predictions_in_every_form():
    probabilities = np.array([[0.9], [0.6], [0.4], [0.2], [0.7], [0.5], [0.1], [0.3], [0.0],
                              [1.0]])  # > 0.5 is class 1, as the course's predict: 0.5 is 0
    assert accuracy(BINARY_TRUE, probabilities) == pytest.approx(0.7)
    assert accuracy(BINARY_TRUE[:, None].astype(np.float32), BINARY_PRED[:, None]) == 0.7
    assert accuracy(BINARY_TRUE.astype(bool), BINARY_PRED.astype(bool)) == pytest.approx(0.7)
    assert accuracy(BINARY_TRUE, probabilities, threshold=0.25) == pytest.approx(0.6)
    logit_column = np.array([[2.2], [0.4], [-0.4], [-1.4], [0.8], [0.0], [-2.2], [-0.8], [-9.0],
                             [9.0]])  # the log-odds of the probabilities, roughly
    assert accuracy(BINARY_TRUE, logit_column, threshold=0.0) == pytest.approx(0.7)
    one_hot, scores = np.eye(3)[MULTI_TRUE], np.eye(3)[MULTI_PRED] * 0.8 + 0.05
    assert accuracy(one_hot, scores) == accuracy(MULTI_TRUE, MULTI_PRED) == pytest.approx(4 / 6)
    logits = strata.tensor(np.eye(3)[MULTI_PRED] * 5.0 - 2.0)
    assert accuracy(strata.tensor(MULTI_TRUE), logits) == pytest.approx(4 / 6)
    assert precision(strata.tensor(BINARY_TRUE), strata.tensor(probabilities)) == 0.75


def test_mismatched_lengths_name_both():
    for metric in (accuracy, precision, recall, f1_score, confusion_matrix):
        with pytest.raises(ValueError, match=r"y_true has 5 examples but y_pred has 4"):
            metric([0, 1, 0, 1, 1], [0, 1, 0, 1])


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match="average='binary' needs classes 0 and 1.*macro"):
        precision(MULTI_TRUE, MULTI_PRED)
    with pytest.raises(ValueError, match="average must be one of"):
        recall(BINARY_TRUE, BINARY_PRED, average="micro")
    with pytest.raises(ValueError, match="look like logits"):
        accuracy([0, 1], [-1.5, 2.3])
    with pytest.raises(ValueError, match="class indices must be >= 0"):
        accuracy([0, -1], [0, 1])
    with pytest.raises(ValueError, match="NaN"):
        accuracy([0, 1], [np.nan, 0.3])
    with pytest.raises(ValueError, match="no examples"):
        accuracy([], [])
    with pytest.raises(ValueError, match=r"shape \(m,\), \(m, 1\) or \(m, C\)"):
        accuracy(np.zeros((2, 2, 2)), np.zeros((2, 2, 2)))


def test_get_metric():
    assert get_metric("accuracy") is accuracy
    assert get_metric("precision") is precision and get_metric("recall") is recall
    assert get_metric("f1") is f1_score and get_metric("F1") is f1_score
    assert get_metric(accuracy) is accuracy
    with pytest.raises(ValueError, match="unknown metric 'auc'; valid names: accuracy, f1"):
        get_metric("auc")


@pytest.mark.parametrize("seed", range(5))
def test_agrees_with_scikit_learn(seed):
    skm = pytest.importorskip("sklearn.metrics",
                              reason="scikit-learn not installed: comparisons skipped")
    rng = np.random.default_rng(seed)
    for n_classes, average in [(2, "binary"), (4, "macro")]:
        y_true, y_pred = rng.integers(0, n_classes, (2, 30))
        y_pred[:3] = 0  # some zero-division cases when a class is rare
        ours = [precision, recall, f1_score]
        theirs = [skm.precision_score, skm.recall_score, skm.f1_score]
        for mine, sk in zip(ours, theirs):
            expected = sk(y_true, y_pred, average=average, zero_division=0)
            assert mine(y_true, y_pred, average=average) == pytest.approx(expected)
        assert accuracy(y_true, y_pred) == pytest.approx(skm.accuracy_score(y_true, y_pred))
        np.testing.assert_array_equal(confusion_matrix(y_true, y_pred, n_classes),
                                      skm.confusion_matrix(y_true, y_pred,
                                                           labels=range(n_classes)))


# --- multi-class precision, recall and F1 by name (issue 14) --------------------------------
AVERAGED = ["precision_macro", "precision_weighted", "recall_macro", "recall_weighted",
            "f1_macro", "f1_weighted"]


def _sklearn(name: str, t: np.ndarray, p: np.ndarray) -> float:
    skm = pytest.importorskip("sklearn.metrics")
    score, average = name.rsplit("_", 1) if name.endswith(("macro", "weighted")) else (
        name, "binary")
    sk = {"precision": skm.precision_score, "recall": skm.recall_score, "f1": skm.f1_score}
    return sk[score](t, p, average=average, zero_division=0)


def _outputs(n_classes: int, m: int, seed: int):
    """Class indices t and p, and the forms a model and its labels give them in."""
    rng = np.random.default_rng(seed)
    t = rng.integers(0, n_classes, m)
    t[:n_classes] = np.arange(n_classes)  # every true class occurs
    logits = rng.standard_normal((m, n_classes)) + 1.5 * np.eye(n_classes)[t]
    logits[:, n_classes - 1] -= 3.0  # the last class is rarely predicted: zero divisions
    p = logits.argmax(axis=1)
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    truths = {"indices": t, "column": t[:, None].astype(np.float32),
              "one_hot": np.eye(n_classes, dtype=np.float32)[t]}
    predictions = {"indices": p, "one_hot": np.eye(n_classes)[p], "probabilities":
                   probabilities.astype(np.float32), "logits": strata.tensor(logits)}
    if n_classes == 2:  # a sigmoid unit's output (m, 1): class 1 where A > 0.5
        predictions["sigmoid"] = probabilities[:, 1:]
    return t, p, truths, predictions


@pytest.mark.filterwarnings("error")  # zero divisions give 0.0 without scikit-learn's warning
@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("n_classes", [2, 10])
def test_named_scores_agree_with_scikit_learn_in_every_input_form(n_classes, seed):
    t, p, truths, predictions = _outputs(n_classes, 200, seed)
    names = AVERAGED + (["precision", "recall", "f1"] if n_classes == 2 else [])
    for name in names:
        expected = _sklearn(name, t, p)
        metric = get_metric(name)
        assert metric.__name__ == ("f1_score" if name == "f1" else name)
        for (tk, y_true), (pk, y_pred) in [(a, b) for a in truths.items()
                                           for b in predictions.items()]:
            got = metric(y_true, y_pred)
            assert type(got) is float
            assert got == pytest.approx(expected, abs=1e-12), (name, tk, pk)
    assert len({_sklearn(name, t, p) for name in AVERAGED}) > 3  # the averages differ


def test_averaged_functions_and_names():
    from strata import metrics

    for name in AVERAGED:
        fn = getattr(metrics, name)
        assert get_metric(name) is fn and get_metric(name.upper()) is fn
        assert fn.__doc__ and ("macro" in fn.__doc__ or "weighted" in fn.__doc__)
    # per class (0, 1, 2) F1 1/2, 2/3, 4/5 with supports 2, 1, 3
    assert metrics.f1_macro(MULTI_TRUE, MULTI_PRED) == pytest.approx((0.5 + 2 / 3 + 0.8) / 3)
    assert metrics.f1_weighted(MULTI_TRUE, MULTI_PRED) == pytest.approx(
        (2 * 0.5 + 2 / 3 + 3 * 0.8) / 6)
    assert f1_score(MULTI_TRUE, MULTI_PRED, average="weighted") == metrics.f1_weighted(
        MULTI_TRUE, MULTI_PRED)
    # binary probabilities are thresholded as for the binary scores
    assert metrics.recall_macro([0, 1, 1], [0.2, 0.9, 0.3]) == pytest.approx((1 + 0.5) / 2)
    assert metrics.recall_macro([0, 1, 1], [0.2, 0.9, 0.3], threshold=0.25) == 1.0


def test_binary_names_on_many_classes_say_which_name_to_use():
    _, _, truths, predictions = _outputs(10, 50, 0)
    for name, fix in [("f1", "'f1_macro'.*'f1_weighted'"), ("precision", "'precision_macro'"),
                      ("recall", "'recall_weighted'")]:
        with pytest.raises(ValueError, match=rf"average='binary' needs classes 0 and 1.*{fix}"):
            get_metric(name)(truths["indices"], predictions["probabilities"])
    # ten output columns are ten classes even when the values only reach classes 0 and 1
    with pytest.raises(ValueError, match="found 10 classes"):
        f1_score(np.eye(10)[[0, 1, 1]], np.eye(10)[[0, 1, 0]])
    assert f1_score(np.eye(2)[[0, 1, 1]], np.eye(2)[[0, 1, 0]]) == pytest.approx(2 / 3)


def test_nan_scores_in_rows_are_an_error_not_an_argmax():
    scores = np.array([[0.1, np.nan], [0.9, 0.1]])
    for metric in (accuracy, get_metric("f1_macro")):
        with pytest.raises(ValueError, match=r"y_pred contain 1 NaN"):
            metric([1, 0], scores)


def _ten_classes(m: int, seed: int):
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((10, 6)) * 2.0
    y = rng.integers(0, 10, m)
    return (centers[y] + rng.standard_normal((m, 6))).astype(np.float32), y


@pytest.mark.parametrize("labels", ["indices", "one_hot"])
def test_fit_on_ten_classes_reports_sklearns_macro_f1(labels):
    skm = pytest.importorskip("sklearn.metrics")
    from strata import nn

    strata.seed(0)
    X, y = _ten_classes(300, 1)
    X_dev, y_dev = _ten_classes(120, 2)
    Y, Y_dev = (y, y_dev) if labels == "indices" else (np.eye(10)[y], np.eye(10)[y_dev])
    loss = "sparse_categorical_crossentropy" if labels == "indices" else (
        "categorical_crossentropy")
    model = nn.Sequential([nn.Dense(16, "relu"), nn.Dense(10, "softmax")])
    model.compile(optimizer="adam", lr=0.01, loss=loss, metrics=["accuracy", "f1_macro"])
    history = model.fit(X, Y, epochs=2, batch_size=32, validation_data=(X_dev, Y_dev),
                        verbose=0)
    for key in ("f1_macro", "val_f1_macro", "accuracy", "val_accuracy"):
        assert len(history[key]) == 2 and all(0 <= v <= 1 for v in history[key]), key
    predicted = model.predict(X_dev).argmax(axis=1)
    expected = skm.f1_score(y_dev, predicted, average="macro", zero_division=0)
    assert history["val_f1_macro"][-1] == pytest.approx(expected, abs=1e-12)
    assert history["val_accuracy"][-1] == pytest.approx(np.mean(predicted == y_dev))
    assert model.evaluate(X_dev, Y_dev)["f1_macro"] == pytest.approx(expected, abs=1e-12)


def test_fit_with_binary_f1_on_ten_classes_names_the_multiclass_metric():
    from strata import nn

    strata.seed(0)
    X, y = _ten_classes(64, 3)
    model = nn.Sequential([nn.Dense(10, "softmax")])
    model.compile(loss="sparse_categorical_crossentropy", metrics=["f1"])
    with pytest.raises(ValueError, match="f1_macro"):
        model.fit(X, y, epochs=1, verbose=0)
