"""Calibration: temperature scaling of ``p_fake``, the expected calibration error, reliability bins.

A model trained with a cross-entropy loss and early stopping is usually over-confident on data
it has not seen: its 0.99 does not mean "99 in 100 such faces are fake". Temperature scaling
(Guo et al. 2017, "On Calibration of Modern Neural Networks") divides the model's logit by one
scalar ``T`` fitted on a validation split by minimising the negative log-likelihood; it keeps
the ranking (so ROC AUC is unchanged) and only makes the number mean what it says. The fitted
``T`` is stored in the weights spec (``temperature``) and applied by the scorer.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from pipeline.settings import check

# p is clipped to [EPS, 1 - EPS] before taking its logit, so 0 and 1 stay finite.
EPS = 1e-7
# Temperatures searched, on a log scale: from 20x sharper to 100x flatter.
T_MIN, T_MAX = 0.05, 100.0


def logit(p: np.ndarray | Sequence[float]) -> np.ndarray:
    """log(p / (1 - p)) as float64, with p clipped to [EPS, 1 - EPS]."""
    p = np.clip(np.asarray(p, dtype=np.float64), EPS, 1.0 - EPS)
    return np.log(p) - np.log1p(-p)


def sigmoid(z: np.ndarray | Sequence[float]) -> np.ndarray:
    """1 / (1 + exp(-z)) as float64, without overflow warnings for large |z|."""
    z = np.asarray(z, dtype=np.float64)
    out = np.empty_like(z)
    pos = z >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-z[pos]))
    ez = np.exp(z[~pos])
    out[~pos] = ez / (1.0 + ez)
    return out


def apply_temperature(p_fake: np.ndarray | Sequence[float], temperature: float) -> np.ndarray:
    """``sigmoid(logit(p_fake) / temperature)``; ``temperature`` 1 returns ``p_fake`` unchanged
    (bit for bit). Raises :class:`pipeline.errors.ConfigError` (a ``ValueError``) for a
    ``temperature`` outside its declared range (:mod:`pipeline.settings`)."""
    check("temperature", temperature)
    p_fake = np.asarray(p_fake, dtype=np.float64)
    if temperature == 1.0:
        return p_fake
    return sigmoid(logit(p_fake) / temperature)


def negative_log_likelihood(p_fake: np.ndarray, is_fake: np.ndarray) -> float:
    """Mean binary cross-entropy (nats) of ``p_fake`` against 0/1 labels."""
    p = np.clip(np.asarray(p_fake, dtype=np.float64), EPS, 1.0 - EPS)
    y = np.asarray(is_fake, dtype=np.float64)
    return float(-np.mean(y * np.log(p) + (1.0 - y) * np.log1p(-p)))


def fit_temperature(p_fake: np.ndarray | Sequence[float], is_fake: np.ndarray | Sequence[bool]) -> float:
    """The temperature ``T`` in [T_MIN, T_MAX] that minimises the validation NLL of
    ``sigmoid(logit(p_fake) / T)``: a one-dimensional bounded search on log T (SciPy's
    ``minimize_scalar``, Brent's method). ``p_fake``: (N,) in [0, 1], uncalibrated; ``is_fake``:
    (N,) 0/1. Raises ``ValueError`` for empty input or a single class (no information on T)."""
    from scipy.optimize import minimize_scalar

    z = logit(p_fake)
    y = np.asarray(is_fake, dtype=np.float64).reshape(-1)
    if z.shape != y.shape or len(y) == 0:
        raise ValueError(f"need matching non-empty p_fake and labels, got {z.shape} and {y.shape}")
    if y.min() == y.max():
        raise ValueError("temperature scaling needs both real and fake examples")

    def nll(log_t: float) -> float:
        return negative_log_likelihood(sigmoid(z / np.exp(log_t)), y)

    result = minimize_scalar(nll, bounds=(np.log(T_MIN), np.log(T_MAX)), method="bounded", options={"xatol": 1e-6})
    return float(np.exp(result.x))


@dataclasses.dataclass(frozen=True)
class ReliabilityBins:
    """Equal-width bins of predicted ``p_fake``: per bin its edges, count, mean prediction and
    the observed fraction of fakes (NaN for an empty bin)."""

    edges: tuple[float, ...]
    counts: tuple[int, ...]
    mean_p_fake: tuple[float, ...]
    fraction_fake: tuple[float, ...]


def reliability_bins(
    p_fake: np.ndarray | Sequence[float], is_fake: np.ndarray | Sequence[bool], n_bins: int = 10
) -> ReliabilityBins:
    """Bin predictions into ``n_bins`` equal-width bins on [0, 1] (the last one closed)."""
    p = np.asarray(p_fake, dtype=np.float64).reshape(-1)
    y = np.asarray(is_fake, dtype=np.float64).reshape(-1)
    if p.shape != y.shape:
        raise ValueError(f"p_fake and labels differ in length: {p.shape} vs {y.shape}")
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    index = np.clip(np.digitize(p, edges[1:-1], right=False), 0, n_bins - 1)
    counts, means, fractions = [], [], []
    for b in range(n_bins):
        mask = index == b
        counts.append(int(mask.sum()))
        means.append(float(p[mask].mean()) if mask.any() else float("nan"))
        fractions.append(float(y[mask].mean()) if mask.any() else float("nan"))
    return ReliabilityBins(tuple(float(e) for e in edges), tuple(counts), tuple(means), tuple(fractions))


def expected_calibration_error(
    p_fake: np.ndarray | Sequence[float], is_fake: np.ndarray | Sequence[bool], n_bins: int = 10
) -> float:
    """ECE: the count-weighted mean over equal-width bins of |observed fraction of fakes - mean
    ``p_fake``| (Naeini et al. 2015; Guo et al. 2017 with 10-15 bins). 0 is perfectly calibrated.
    NaN for empty input."""
    bins = reliability_bins(p_fake, is_fake, n_bins)
    total = sum(bins.counts)
    if total == 0:
        return float("nan")
    return float(sum(c * abs(f - m) for c, f, m in zip(bins.counts, bins.fraction_fake, bins.mean_p_fake) if c) / total)
