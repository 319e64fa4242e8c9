"""Score metrics computed from continuous scores (never from rounded labels), on scikit-learn.

Conventions: ``y_true`` in {0, 1} with 1 the *positive* class; ``scores`` are higher for the
positive class (for "fake" positive that is ``p_fake``, for "real" positive ``1 - p_fake``); a
score ``>= threshold`` predicts positive.

scikit-learn computes the ROC curve, its area, the confusion counts and the rates at a
threshold. This module adds what it lacks (the equal error rate and its threshold, the mean
score per source video) and pins down the edge cases scikit-learn warns or raises on, so that
callers get one rule: an undefined value (AUC with one class, precision with no positive
prediction, anything of an empty input) is NaN here and ``None`` in :func:`binary_report`,
never an exception. scikit-learn is imported by the functions, not by this module (importing
it costs about a second).
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Iterable

import numpy as np
from numpy.typing import ArrayLike

NAN = float("nan")


def _arrays(y_true: ArrayLike, scores: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """``(y, s)``: ``y`` bool (N,), ``s`` float64 (N,). Raises ``ValueError`` on unequal or
    non-1-D shapes, labels other than 0/1, or NaN scores (scikit-learn's own messages are
    less direct)."""
    y = np.asarray(y_true)
    s = np.asarray(scores, dtype=np.float64)
    if y.shape != s.shape or y.ndim != 1:
        raise ValueError(f"y_true has shape {y.shape} but scores {s.shape}; both must be 1-D of equal length")
    if y.size and not np.isin(y, (0, 1)).all():
        raise ValueError(f"y_true must hold only 0 and 1, got {sorted(set(np.unique(y).tolist()))[:5]}")
    if np.isnan(s).any():
        raise ValueError("scores contain NaN")
    return y.astype(bool), s


def _both_classes(y: np.ndarray) -> bool:
    return bool(y.any() and not y.all())


def roc_auc(y_true: ArrayLike, scores: ArrayLike) -> float:
    """Area under the ROC curve (``sklearn.metrics.roc_auc_score``): the probability that a
    random positive outscores a random negative, ties counting half. ``y_true`` in {0, 1}.
    NaN when a class is absent or the input is empty (scikit-learn raises or warns there)."""
    from sklearn.metrics import roc_auc_score

    y, s = _arrays(y_true, scores)
    if not _both_classes(y):
        return NAN
    return float(roc_auc_score(y, s))


def roc_curve(y_true: ArrayLike, scores: ArrayLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ROC points ``(fpr, tpr, thresholds)``, float64 (K + 1,) for K distinct scores: one point
    per distinct score from the highest down, after the origin (threshold ``+inf``). Point ``k``
    predicts positive for ``score >= thresholds[k]``. The rates of an absent class are NaN; an
    empty input gives the origin alone, with NaN rates.

    ``sklearn.metrics.roc_curve`` with ``drop_intermediate=False`` (every distinct score kept,
    which :func:`equal_error_rate` interpolates between)."""
    from sklearn.exceptions import UndefinedMetricWarning
    from sklearn.metrics import roc_curve as sk_roc_curve

    y, s = _arrays(y_true, scores)
    if not y.size:
        return np.array([NAN]), np.array([NAN]), np.array([np.inf])
    with warnings.catch_warnings():
        # one class: scikit-learn warns and fills that class' rate with NaN, our documented value
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        fpr, tpr, thresholds = sk_roc_curve(y, s, drop_intermediate=False)
    thresholds = np.asarray(thresholds, dtype=np.float64)
    thresholds[0] = np.inf  # the origin (scikit-learn < 1.3 put max + 1 there)
    return np.asarray(fpr, dtype=np.float64), np.asarray(tpr, dtype=np.float64), thresholds


def equal_error_rate(y_true: ArrayLike, scores: ArrayLike) -> tuple[float, float]:
    """``(eer, threshold)``: the rate where the false positive rate equals the false negative rate
    (1 - TPR), linearly interpolated between the two ROC points where FPR - FNR changes sign; the
    threshold is the score at the ROC point nearer to the crossing. NaN if a class is absent.

    scikit-learn has no EER; this reads it off :func:`roc_curve`."""
    fpr, tpr, thresholds = roc_curve(y_true, scores)
    if np.isnan(fpr).any() or np.isnan(tpr).any():
        return NAN, NAN
    fnr = 1.0 - tpr
    diff = fpr - fnr  # rises from -1 (origin) to +1 (all positive)
    k = int(np.argmax(diff >= 0))  # first point at or past the crossing; diff[0] = -1 < 0
    d0, d1 = diff[k - 1], diff[k]
    t = 0.0 if d1 == d0 else -d0 / (d1 - d0)
    eer = fpr[k - 1] + t * (fpr[k] - fpr[k - 1])
    threshold = thresholds[k] if t >= 0.5 else thresholds[k - 1]
    if not np.isfinite(threshold):
        threshold = thresholds[k]
    return float(eer), float(threshold)


@dataclasses.dataclass(frozen=True)
class Confusion:
    """Counts and rates of one set of decisions, positive class = 1.

    Build it with :func:`confusion` or :func:`confusion_from_predictions` (scikit-learn's
    ``confusion_matrix`` and ``precision_recall_fscore_support``). A rate whose denominator is
    0 is NaN: ``precision`` with no positive prediction, ``recall``/``specificity`` without that
    class, everything of an empty input. ``specificity`` is the recall of the negative class.
    """

    tp: int
    tn: int
    fp: int
    fn: int
    accuracy: float
    precision: float
    recall: float
    specificity: float
    f1: float

    def __post_init__(self) -> None:
        for name in ("tp", "tn", "fp", "fn"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")

    @property
    def n(self) -> int:
        return self.tp + self.tn + self.fp + self.fn

    @property
    def counts(self) -> tuple[int, int, int, int]:
        """``(tp, tn, fp, fn)``."""
        return self.tp, self.tn, self.fp, self.fn

    def matrix(self) -> np.ndarray:
        """int64 (2, 2), rows = true (negative, positive), columns = predicted (negative,
        positive), as scikit-learn's ``confusion_matrix(labels=[0, 1])``."""
        return np.array([[self.tn, self.fp], [self.fn, self.tp]], dtype=np.int64)


def confusion(y_true: ArrayLike, scores: ArrayLike, threshold: float) -> Confusion:
    """The counts and rates when ``score >= threshold`` predicts positive."""
    y, s = _arrays(y_true, scores)
    return confusion_from_predictions(y, s >= threshold)


def confusion_from_predictions(y_true: ArrayLike, predicted: ArrayLike) -> Confusion:
    """The counts and rates of boolean predictions (True = positive), equal-length 1-D
    sequences. Raises ``ValueError`` when the shapes differ."""
    from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support

    y = np.asarray(y_true).astype(bool)
    pred = np.asarray(predicted, dtype=bool)
    if y.shape != pred.shape:
        raise ValueError(f"y_true has shape {y.shape} but predicted {pred.shape}")
    if not y.size:  # scikit-learn raises on an empty input
        return Confusion(0, 0, 0, 0, NAN, NAN, NAN, NAN, NAN)
    tn, fp, fn, tp = (int(v) for v in confusion_matrix(y, pred, labels=[False, True]).ravel())
    # per class (negative, positive); zero_division=NaN: an undefined rate is NaN, not a warning
    precision, recall, f1, _ = precision_recall_fscore_support(
        y, pred, labels=[False, True], average=None, zero_division=np.nan
    )
    return Confusion(
        tp=tp,
        tn=tn,
        fp=fp,
        fn=fn,
        accuracy=float(accuracy_score(y, pred)),
        precision=float(precision[1]),
        recall=float(recall[1]),
        specificity=float(recall[0]),
        f1=float(f1[1]),
    )


def binary_report(
    y_true: ArrayLike, scores: ArrayLike, threshold: float, *, predicted: ArrayLike | None = None
) -> dict:
    """Every figure of ``metrics.json`` for one set of scores: n, per-class counts, the confusion
    counts at ``threshold``, accuracy, precision, recall, specificity, F1, ROC AUC and EER (with
    its threshold). ``predicted`` (True = positive) replaces ``scores >= threshold`` for the
    confusion counts when the decision rule is stated on another score (the scanner's ``p_fake >=
    T`` when real is the positive class). Undefined values (e.g. AUC with one class) are ``None``
    so JSON stays valid."""
    y, s = _arrays(y_true, scores)
    c = confusion(y, s, threshold) if predicted is None else confusion_from_predictions(y, predicted)
    eer, eer_threshold = equal_error_rate(y, s)
    report = {
        "n": int(len(y)),
        "n_positive": int(y.sum()),
        "n_negative": int((~y).sum()),
        "threshold": float(threshold),
        "tp": c.tp,
        "tn": c.tn,
        "fp": c.fp,
        "fn": c.fn,
        "accuracy": c.accuracy,
        "precision": c.precision,
        "recall": c.recall,
        "specificity": c.specificity,
        "f1": c.f1,
        "roc_auc": roc_auc(y, s),
        "eer": eer,
        "eer_threshold": eer_threshold,
    }
    return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in report.items()}


def video_means(items: Iterable, p_fake: Iterable[float]) -> tuple[list[str], list[str], np.ndarray]:
    """Per source video: ``(names, labels, mean p_fake float64 (V,))``, in order of first
    appearance. ``items`` are :class:`pipeline.training.dataset.FaceItem` (anything with
    ``source_video`` and ``label``) aligned with ``p_fake``; items without a source video are
    left out. The mean is MesoNet's video rule, as the scanner's ``mean``. A source that holds
    both labels (a dataset whose source id is an identity: its real clips and the fakes made from
    them) gives one mean per label, named ``<source> (<label>)``."""
    sums: dict[tuple[str, str], list] = {}
    for item, p in zip(items, p_fake):
        if item.source_video is None:
            continue
        entry = sums.setdefault((item.source_video, item.label), [0.0, 0])
        entry[0] += float(p)
        entry[1] += 1
    mixed = {source for source, label in sums if (source, "real") in sums and (source, "fake") in sums}
    keys = list(sums)
    names = [f"{source} ({label})" if source in mixed else source for source, label in keys]
    labels = [label for _, label in keys]
    means = np.array([sums[k][0] / sums[k][1] for k in keys], dtype=np.float64)
    return names, labels, means
