"""pipeline/training/metrics.py: ROC AUC, ROC curve and confusion counts (scikit-learn underneath) checked by
hand and against scikit-learn; the edge cases scikit-learn raises or warns on; our EER; means per video."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from sklearn import metrics as skm

from pipeline.training.dataset import FaceItem
from pipeline.training.metrics import (
    binary_report,
    confusion,
    confusion_from_predictions,
    equal_error_rate,
    roc_auc,
    roc_curve,
    video_means,
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


@pytest.mark.parametrize(
    "y, scores, expected",
    [
        ([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9], 1.0),  # perfectly separated
        ([0, 0, 1, 1], [0.9, 0.8, 0.2, 0.1], 0.0),  # perfectly inverted
        ([0, 1], [0.5, 0.5], 0.5),  # a tie counts half
        ([0, 1, 0, 1], [0.1, 0.3, 0.35, 0.8], 0.75),  # 3 of 4 pairs in order
    ],
)
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
    assert c.counts == (2, 1, 1, 2) and c.n == 6
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
    assert confusion_from_predictions([1, 0, 1], [True, True, False]).counts == (1, 0, 1, 1)
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


@pytest.mark.parametrize(
    "y, scores, expected",
    [
        ([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9], 0.0),  # separable: no error at the crossing
        ([0, 0, 1, 1], [0.9, 0.8, 0.2, 0.1], 1.0),  # inverted
        ([0, 1, 0, 1], [0.1, 0.2, 0.3, 0.4], 0.5),  # one of two wrong on each side
    ],
)
def test_eer_by_hand(y, scores, expected):
    assert equal_error_rate(y, scores)[0] == pytest.approx(expected)


def test_report_keys_and_json_safety():
    report = binary_report([1, 1], [0.7, 0.2], 0.5)  # one class only: AUC and EER undefined
    for key in ("n", "threshold", "tp", "tn", "fp", "fn", "accuracy", "precision", "recall", "f1", "roc_auc", "eer"):
        assert key in report
    assert report["roc_auc"] is None and report["eer"] is None


# -- edge cases: scikit-learn raises on an empty input and warns on one class; we give NaN / None ----


@pytest.fixture
def no_warnings():
    """Turn every warning into an error: the edge cases must be handled, not warned about."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


@pytest.mark.parametrize(
    "y, scores",
    [
        ([], []),  # empty
        ([1, 1, 1], [0.2, 0.5, 0.9]),  # positives only
        ([0, 0], [0.1, 0.1]),  # negatives only, tied
    ],
)
def test_auc_and_eer_undefined_without_both_classes(no_warnings, y, scores):
    assert math.isnan(roc_auc(y, scores))
    assert all(math.isnan(v) for v in equal_error_rate(y, scores))


def test_roc_curve_of_one_class_has_nan_rates_for_the_absent_class(no_warnings):
    fpr, tpr, thresholds = roc_curve([1, 1, 1], [0.2, 0.5, 0.9])
    assert np.isnan(fpr).all()
    np.testing.assert_allclose(tpr, [0, 1 / 3, 2 / 3, 1])
    np.testing.assert_array_equal(thresholds, [np.inf, 0.9, 0.5, 0.2])
    fpr, tpr, thresholds = roc_curve([0, 0], [0.1, 0.1])  # one distinct score: origin + one point
    np.testing.assert_array_equal(fpr, [0, 1])
    assert np.isnan(tpr).all() and thresholds[0] == np.inf


def test_roc_curve_of_nothing_is_the_origin(no_warnings):
    fpr, tpr, thresholds = roc_curve([], [])
    assert np.isnan(fpr).all() and np.isnan(tpr).all() and thresholds.tolist() == [np.inf]


def test_roc_curve_ties_make_one_point():
    # three distinct scores, the 0.5 shared by a positive and a negative: one diagonal step
    fpr, tpr, thresholds = roc_curve([0, 1, 0, 1], [0.1, 0.5, 0.5, 0.9])
    np.testing.assert_allclose(fpr, [0, 0, 0.5, 1])
    np.testing.assert_allclose(tpr, [0, 0.5, 1, 1])
    np.testing.assert_array_equal(thresholds, [np.inf, 0.9, 0.5, 0.1])


def test_empty_report_is_all_none_but_the_counts(no_warnings):
    report = binary_report([], [], 0.5)
    assert (report["n"], report["tp"], report["tn"], report["fp"], report["fn"]) == (0, 0, 0, 0, 0)
    for key in ("accuracy", "precision", "recall", "specificity", "f1", "roc_auc", "eer", "eer_threshold"):
        assert report[key] is None, key


def test_one_class_report_keeps_the_defined_rates(no_warnings):
    # positives only: precision, recall and F1 are defined; specificity (no negative) is not
    report = binary_report([1, 1], [0.7, 0.2], 0.5)
    assert (report["tp"], report["fn"], report["fp"], report["tn"]) == (1, 1, 0, 0)
    assert (report["accuracy"], report["precision"], report["recall"]) == (0.5, 1.0, 0.5)
    assert report["f1"] == pytest.approx(2 / 3) and report["specificity"] is None


def test_report_values_are_plain_python_numbers():
    import json

    report = binary_report([0, 1, 1, 0], [0.2, 0.8, 0.4, 0.6], 0.5)
    assert all(type(v) in (int, float) for v in report.values())
    json.dumps(report, allow_nan=False)  # valid JSON: no NaN, no numpy scalars


# -- means per source video ------------------------------------------------------------------------


def _face(video: str | None, label: str) -> FaceItem:
    return FaceItem(Path(f"/{video}-{label}.jpg"), label, video)


def test_video_means_in_order_of_first_appearance():
    items = [_face("b", "fake"), _face("a", "real"), _face("b", "fake"), _face(None, "real"), _face("a", "real")]
    names, labels, means = video_means(items, np.array([0.9, 0.2, 0.7, 0.5, 0.4]))
    assert names == ["b", "a"] and labels == ["fake", "real"]  # the face without a video is left out
    np.testing.assert_allclose(means, [0.8, 0.3])


def test_video_means_of_no_video_is_empty_and_mixed_sources_give_one_mean_per_label():
    names, labels, means = video_means([_face(None, "real")], np.array([0.3]))
    assert names == [] and labels == [] and means.shape == (0,)
    # an identity-level source id (FF++'s NNN with its fakes NNN_MMM): one mean per label
    names, labels, means = video_means(
        [_face("v", "real"), _face("v", "fake"), _face("v", "fake")], np.array([0.1, 0.9, 0.7])
    )
    assert names == ["v (real)", "v (fake)"] and labels == ["real", "fake"]
    np.testing.assert_allclose(means, [0.1, 0.8])


def test_confusion_refuses_negative_counts():
    from pipeline.training.metrics import Confusion

    with pytest.raises(ValueError, match="fp must be >= 0, got -1"):
        Confusion(tp=1, tn=1, fp=-1, fn=0, accuracy=1.0, precision=1.0, recall=1.0, specificity=1.0, f1=1.0)


def test_importing_the_module_does_not_import_sklearn():
    import subprocess
    import sys

    code = "import sys, pipeline.training.metrics\nassert 'sklearn' not in sys.modules, 'sklearn imported'\n"
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert proc.returncode == 0, proc.stderr
