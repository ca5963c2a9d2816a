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
