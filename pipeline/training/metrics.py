"""Score metrics computed from continuous scores (never from rounded labels).

Conventions: ``y_true`` in {0, 1} with 1 the *positive* class; ``scores`` are higher for the
positive class (for "fake" positive that is ``p_fake``, for "real" positive ``1 - p_fake``); a
score ``>= threshold`` predicts positive. No scikit-learn here: the tests check these against it.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Sequence

import numpy as np


def _arrays(y_true: Sequence[int], scores: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y_true)
    s = np.asarray(scores, dtype=np.float64)
    if y.shape != s.shape or y.ndim != 1:
        raise ValueError(f"y_true has shape {y.shape} but scores {s.shape}; both must be 1-D of equal length")
    if y.size and not np.isin(y, (0, 1)).all():
        raise ValueError(f"y_true must hold only 0 and 1, got {sorted(set(np.unique(y).tolist()))[:5]}")
    if np.isnan(s).any():
        raise ValueError("scores contain NaN")
    return y.astype(bool), s


def roc_auc(y_true: Sequence[int], scores: Sequence[float]) -> float:
    """Area under the ROC curve: the probability that a random positive outscores a random
    negative, ties counting half (Mann-Whitney U). ``y_true`` in {0, 1}; NaN if a class is absent."""
    y, s = _arrays(y_true, scores)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(s, kind="mergesort")
    sorted_s = s[order]
    # average ranks over ties: each run of equal scores gets the mean of its 1-based ranks
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_s)) + 1]
    ends = np.r_[starts[1:], len(s)]
    run_rank = (starts + 1 + ends) / 2.0
    ranks = np.empty(len(s), dtype=np.float64)
    ranks[order] = np.repeat(run_rank, ends - starts)
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def roc_curve(y_true: Sequence[int], scores: Sequence[float]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ROC points ``(fpr, tpr, thresholds)``, one per distinct score from the highest down, plus
    the origin (threshold ``+inf``). Point ``k`` predicts positive for ``score >= thresholds[k]``.
    Rates are NaN for an absent class."""
    y, s = _arrays(y_true, scores)
    order = np.argsort(-s, kind="mergesort")
    s_desc, y_desc = s[order], y[order]
    last_of_run = np.r_[np.flatnonzero(np.diff(s_desc)), len(s) - 1] if len(s) else np.array([], dtype=int)
    tps = np.cumsum(y_desc)[last_of_run]
    fps = (last_of_run + 1) - tps
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    with np.errstate(invalid="ignore", divide="ignore"):
        tpr = np.r_[0.0, tps / n_pos] if n_pos else np.full(len(tps) + 1, np.nan)
        fpr = np.r_[0.0, fps / n_neg] if n_neg else np.full(len(fps) + 1, np.nan)
    thresholds = np.r_[np.inf, s_desc[last_of_run]]
    return fpr, tpr, thresholds


def equal_error_rate(y_true: Sequence[int], scores: Sequence[float]) -> tuple[float, float]:
    """``(eer, threshold)``: the rate where the false positive rate equals the false negative rate
    (1 - TPR), linearly interpolated between the two ROC points where FPR - FNR changes sign; the
    threshold is the score at the ROC point nearer to the crossing. NaN if a class is absent."""
    fpr, tpr, thresholds = roc_curve(y_true, scores)
    if np.isnan(fpr).any() or np.isnan(tpr).any():
        return float("nan"), float("nan")
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
    """Counts at one threshold, positive class = 1."""

    tp: int
    tn: int
    fp: int
    fn: int

    @property
    def n(self) -> int:
        return self.tp + self.tn + self.fp + self.fn

    @property
    def accuracy(self) -> float:
        return _ratio(self.tp + self.tn, self.n)

    @property
    def precision(self) -> float:
        return _ratio(self.tp, self.tp + self.fp)

    @property
    def recall(self) -> float:
        return _ratio(self.tp, self.tp + self.fn)

    @property
    def specificity(self) -> float:
        return _ratio(self.tn, self.tn + self.fp)

    @property
    def f1(self) -> float:
        return _ratio(2 * self.tp, 2 * self.tp + self.fp + self.fn)

    def matrix(self) -> np.ndarray:
        """2x2, rows = true (negative, positive), columns = predicted (negative, positive), as
        scikit-learn's ``confusion_matrix(labels=[0, 1])``."""
        return np.array([[self.tn, self.fp], [self.fn, self.tp]], dtype=np.int64)


def _ratio(num: float, den: float) -> float:
    return float(num) / den if den else float("nan")


def confusion(y_true: Sequence[int], scores: Sequence[float], threshold: float) -> Confusion:
    """The confusion counts when ``score >= threshold`` predicts positive."""
    y, s = _arrays(y_true, scores)
    return confusion_from_predictions(y, s >= threshold)


def confusion_from_predictions(y_true: Sequence[int], predicted: Sequence[bool]) -> Confusion:
    """The confusion counts of boolean predictions (True = positive)."""
    y = np.asarray(y_true).astype(bool)
    pred = np.asarray(predicted, dtype=bool)
    if y.shape != pred.shape:
        raise ValueError(f"y_true has shape {y.shape} but predicted {pred.shape}")
    return Confusion(tp=int((pred & y).sum()), tn=int((~pred & ~y).sum()),
                     fp=int((pred & ~y).sum()), fn=int((~pred & y).sum()))


def binary_report(y_true: Sequence[int], scores: Sequence[float], threshold: float,
                  *, predicted: Sequence[bool] | None = None) -> dict:
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
        "tp": c.tp, "tn": c.tn, "fp": c.fp, "fn": c.fn,
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
