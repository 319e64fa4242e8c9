"""pipeline/training/metrics.py: our own ROC AUC, ROC curve, confusion counts and EER, checked by hand and
against scikit-learn."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn import metrics as skm

from pipeline.training.metrics import (
    Confusion,
    binary_report,
    confusion,
    confusion_from_predictions,
    equal_error_rate,
    roc_auc,
    roc_curve,
)


def _random_case(seed: int, n: int = 300, ties: bool = False):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    scores = rng.normal(loc=y * 0.8, scale=1.0)
    if ties:
        scores = np.round(scores, 1)  # many exact ties
    return y, scores


@pytest.mark.parametrize("seed, ties", [(0, False), (1, True), (2, False), (3, True)])
def test_roc_auc_matches_sklearn(seed, ties):
    y, s = _random_case(seed, ties=ties)
    assert roc_auc(y, s) == pytest.approx(skm.roc_auc_score(y, s), abs=1e-12)


@pytest.mark.parametrize("y, scores, expected", [
    ([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9], 1.0),   # perfectly separated
    ([0, 0, 1, 1], [0.9, 0.8, 0.2, 0.1], 0.0),   # perfectly inverted
    ([0, 1], [0.5, 0.5], 0.5),                   # a tie counts half
    ([0, 1, 0, 1], [0.1, 0.3, 0.35, 0.8], 0.75),  # 3 of 4 pairs in order
])
def test_roc_auc_by_hand(y, scores, expected):
    assert roc_auc(y, scores) == pytest.approx(expected)


def test_roc_auc_one_class_is_nan():
    assert math.isnan(roc_auc([1, 1, 1], [0.2, 0.5, 0.9]))


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="shape"):
        roc_auc([0, 1], [0.5])
    with pytest.raises(ValueError, match="0 and 1"):
        roc_auc([0, 2], [0.1, 0.2])
    with pytest.raises(ValueError, match="NaN"):
        roc_auc([0, 1], [0.1, float("nan")])


@pytest.mark.parametrize("seed, ties", [(0, False), (1, True)])
def test_roc_curve_matches_sklearn(seed, ties):
    y, s = _random_case(seed, ties=ties)
    fpr, tpr, thresholds = roc_curve(y, s)
    sk_fpr, sk_tpr, sk_thr = skm.roc_curve(y, s, drop_intermediate=False)
    np.testing.assert_allclose(fpr, sk_fpr)
    np.testing.assert_allclose(tpr, sk_tpr)
    np.testing.assert_allclose(thresholds[1:], sk_thr[1:])
    assert np.trapezoid(tpr, fpr) == pytest.approx(roc_auc(y, s))


def test_confusion_by_hand():
    # scores >= 0.5 are positive: predictions 1 1 0 0 1 0 against truth 1 0 1 0 1 1
    c = confusion([1, 0, 1, 0, 1, 1], [0.9, 0.6, 0.4, 0.1, 0.5, 0.2], 0.5)
    assert c == Confusion(tp=2, tn=1, fp=1, fn=2)
    assert (c.accuracy, c.precision, c.recall, c.specificity) == pytest.approx((0.5, 2 / 3, 0.5, 0.5))
    assert c.f1 == pytest.approx(2 * (2 / 3) * 0.5 / (2 / 3 + 0.5))
    np.testing.assert_array_equal(c.matrix(), [[1, 1], [2, 2]])


@pytest.mark.parametrize("seed, threshold", [(0, 0.5), (1, 0.0), (2, 1.2)])
def test_confusion_and_scores_match_sklearn(seed, threshold):
    y, s = _random_case(seed)
    c = confusion(y, s, threshold)
    pred = (s >= threshold).astype(int)
    np.testing.assert_array_equal(c.matrix(), skm.confusion_matrix(y, pred, labels=[0, 1]))
    assert c.accuracy == pytest.approx(skm.accuracy_score(y, pred))
    assert c.precision == pytest.approx(skm.precision_score(y, pred, zero_division=np.nan), nan_ok=True)
    assert c.recall == pytest.approx(skm.recall_score(y, pred))
    assert c.f1 == pytest.approx(skm.f1_score(y, pred))


def test_precision_without_positive_predictions_is_nan_then_none_in_report():
    report = binary_report([0, 1, 1], [0.1, 0.2, 0.3], 0.9)  # nothing predicted positive
    assert (report["tp"], report["fp"], report["fn"], report["tn"]) == (0, 0, 2, 1)
    assert report["precision"] is None and report["f1"] == 0.0
    assert report["roc_auc"] == 1.0


def test_confusion_from_predictions():
    assert confusion_from_predictions([1, 0, 1], [True, True, False]) == Confusion(tp=1, tn=0, fp=1, fn=1)
    with pytest.raises(ValueError, match="shape"):
        confusion_from_predictions([1, 0], [True])


def _sklearn_eer(y, s):
    fpr, tpr, _ = skm.roc_curve(y, s, drop_intermediate=False)
    fnr = 1 - tpr
    k = int(np.argmax(fpr - fnr >= 0))
    d0, d1 = (fpr - fnr)[k - 1], (fpr - fnr)[k]
    t = -d0 / (d1 - d0)
    return fpr[k - 1] + t * (fpr[k] - fpr[k - 1])


@pytest.mark.parametrize("seed, ties", [(0, False), (1, True), (5, False)])
def test_eer_matches_the_roc_crossing(seed, ties):
    y, s = _random_case(seed, ties=ties)
    eer, threshold = equal_error_rate(y, s)
    assert eer == pytest.approx(_sklearn_eer(y, s))
    # at the returned threshold the two error rates are close to the EER
    pred = s >= threshold
    fpr = (pred & (y == 0)).sum() / (y == 0).sum()
    fnr = (~pred & (y == 1)).sum() / (y == 1).sum()
    assert abs(fpr - eer) < 0.05 and abs(fnr - eer) < 0.05


@pytest.mark.parametrize("y, scores, expected", [
    ([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9], 0.0),      # separable: no error at the crossing
    ([0, 0, 1, 1], [0.9, 0.8, 0.2, 0.1], 1.0),      # inverted
    ([0, 1, 0, 1], [0.1, 0.2, 0.3, 0.4], 0.5),      # one of two wrong on each side
])
def test_eer_by_hand(y, scores, expected):
    assert equal_error_rate(y, scores)[0] == pytest.approx(expected)


def test_report_keys_and_json_safety():
    report = binary_report([1, 1], [0.7, 0.2], 0.5)  # one class only: AUC and EER undefined
    for key in ("n", "threshold", "tp", "tn", "fp", "fn", "accuracy", "precision", "recall", "f1", "roc_auc", "eer"):
        assert key in report
    assert report["roc_auc"] is None and report["eer"] is None
