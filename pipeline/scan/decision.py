"""The learned clip-level decision: per person, features of their faces' logits; a calibrated logistic model
gives each person's ``p_fake``; the clip is its most suspicious counted person; two thresholds make the label.

Aggregation ``learned`` (:mod:`pipeline.scan.aggregate` keeps ``mean``, ``median`` and ``track_max``). It needs a
model whose spec carries a ``clip_decision`` (:class:`ClipDecision`, fitted by ``bench/clip_decision.py`` on
labelled clips of identities the face head never saw).

**Per-person features** (:data:`FEATURES`, from the uncalibrated fake logits ``z`` of one counted track): mean,
max, quartiles and standard deviation of ``z``, the share of faces with ``z > 0``, the mean absolute change of
``z`` between consecutive faces (temporal spread), log of the number of faces, log of the median face size (px),
and the share of the clip's sampled span the person is seen in. A person is scored alone, so a real bystander
cannot make a clip FAKE and cannot dilute a fake person: the clip takes the maximum over counted people
(:func:`pipeline.scan.aggregate.summarize_tracks` decides who counts).

**Label**: ``FAKE`` when ``p_fake >= fake_at`` (chosen for a stated false-positive rate on real validation clips),
``REAL`` when ``p_fake < real_below`` (chosen for a stated miss rate on fake validation clips), ``UNCERTAIN`` in
between. The rates and the clips they were chosen on are in the spec (``chosen_on``) and stated in every row
(``label_rule``). ``--threshold`` forces a single cut instead.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

FEATURES = (
    "z_mean",
    "z_max",
    "z_q25",
    "z_q50",
    "z_q75",
    "z_std",
    "share_over_0",
    "z_mean_abs_step",
    "log_n_faces",
    "log_face_px",
    "coverage",
)
UNCERTAIN = "UNCERTAIN"
# The aggregation name (pipeline.scan.aggregate.AGGREGATIONS) of this decision.
LEARNED = "learned"


def person_features(
    logits: ArrayLike, face_sizes_px: Sequence[float], timestamps_s: Sequence[float], span_s: float
) -> np.ndarray:
    """The :data:`FEATURES` of one person, float64 (F,). ``logits``: uncalibrated fake logits of their faces in
    time order; ``face_sizes_px``: longer box sides; ``timestamps_s``: when each face was seen; ``span_s``: the
    seconds the clip's samples span (0 for a single sample)."""
    z = np.asarray(logits, dtype=np.float64)
    if len(z) == 0:
        raise ValueError("a person needs at least one face")
    times = np.asarray(timestamps_s, dtype=np.float64)
    q25, q50, q75 = np.quantile(z, [0.25, 0.5, 0.75])
    seen_s = float(times.max() - times.min()) if len(times) else 0.0
    coverage = 1.0 if span_s <= 0 else min(1.0, seen_s / span_s)
    return np.array(
        [
            z.mean(),
            z.max(),
            q25,
            q50,
            q75,
            z.std(),
            float(np.mean(z > 0)),
            float(np.mean(np.abs(np.diff(z)))) if len(z) > 1 else 0.0,
            math.log(len(z)),
            math.log(max(1.0, float(np.median(face_sizes_px)))),
            coverage,
        ]
    )


@dataclasses.dataclass(frozen=True)
class ClipDecision:
    """A fitted clip-level model and its operating point.

    ``mean``/``scale``/``coef``: standardisation and logistic coefficients over :data:`FEATURES` (in that
    order); ``intercept``; ``fake_at`` / ``real_below``: the two thresholds on the clip ``p_fake``
    (``real_below <= fake_at``); ``fpr_target`` / ``miss_target``: the rates they were chosen for;
    ``chosen_on``: the validation clips (words); ``measured``: the rates measured there; ``face_temperature``:
    the face model's temperature it was fitted under (face logits are ``face_temperature * logit(p_fake)``);
    ``is_default``: whether a scan uses it unless told otherwise (``--aggregation learned`` always can); set only
    when validation says it beats ``track_max`` without calling most clips UNCERTAIN.
    """

    mean: tuple[float, ...]
    scale: tuple[float, ...]
    coef: tuple[float, ...]
    intercept: float
    fake_at: float
    real_below: float
    fpr_target: float
    miss_target: float
    chosen_on: str
    features: tuple[str, ...] = FEATURES
    measured: str = ""
    face_temperature: float = 1.0
    is_default: bool = False

    def __post_init__(self) -> None:
        n = len(self.features)
        if tuple(self.features) != FEATURES:
            raise ValueError(f"clip decision features {self.features} differ from this version's {FEATURES}")
        if not (len(self.mean) == len(self.scale) == len(self.coef) == n):
            raise ValueError(f"clip decision needs {n} means, scales and coefficients")
        if not 0.0 < self.real_below <= self.fake_at < 1.0:
            raise ValueError(f"need 0 < real_below <= fake_at < 1, got {self.real_below}, {self.fake_at}")

    def p_fake(self, features: np.ndarray) -> np.ndarray:
        """Calibrated ``p_fake`` of each row of float (N, F) person features."""
        x = (np.atleast_2d(features) - np.asarray(self.mean)) / np.asarray(self.scale)
        z = x @ np.asarray(self.coef) + self.intercept
        return 1.0 / (1.0 + np.exp(-np.clip(z, -40, 40)))

    def face_logits(self, p_fake: Sequence[float]) -> np.ndarray:
        """The uncalibrated face logits behind calibrated face ``p_fake`` values."""
        from pipeline.models.calibration import logit

        return self.face_temperature * logit(p_fake)

    def label(self, p_fake: float) -> str:
        """``FAKE`` / ``UNCERTAIN`` / ``REAL`` at the two thresholds."""
        if p_fake >= self.fake_at:
            return "FAKE"
        if p_fake < self.real_below:
            return "REAL"
        return UNCERTAIN

    @property
    def rule_text(self) -> str:
        """The label rule in one line, for rows and reports."""
        return (
            f"FAKE at p_fake >= {self.fake_at:.3f} ({self.fpr_target:.0%} of real clips), REAL under "
            f"{self.real_below:.3f} ({self.miss_target:.0%} of fakes missed), UNCERTAIN between; chosen on "
            f"{self.chosen_on}"
        )

    def to_json(self) -> dict:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_json(cls, raw: str | dict) -> ClipDecision:
        """From the spec's ``clip_decision`` (JSON text or object). Raises ``ValueError``."""
        fields = json.loads(raw) if isinstance(raw, str) else dict(raw)
        try:
            known: dict[str, Any] = {
                k: (tuple(v) if isinstance(v, list) else v) for k, v in fields.items() if k in cls.__dataclass_fields__
            }
            return cls(**known)
        except TypeError as exc:
            raise ValueError(f"invalid clip_decision: {exc}") from exc


def choose_thresholds(
    p_fake: np.ndarray, is_fake: np.ndarray, *, fpr_target: float = 0.05, miss_target: float = 0.05
) -> tuple[float, float]:
    """``(real_below, fake_at)``: ``fake_at`` the lowest cut calling at most ``fpr_target`` of the real clips
    FAKE; ``real_below`` the highest cut calling at most ``miss_target`` of the fake clips REAL (never above
    ``fake_at``). ``p_fake``: (N,) clip scores; ``is_fake``: (N,) 0/1."""
    p = np.asarray(p_fake, dtype=np.float64)
    y = np.asarray(is_fake).astype(bool)
    real, fake = np.sort(p[~y]), np.sort(p[y])
    if len(real) == 0 or len(fake) == 0:
        raise ValueError("choosing thresholds needs real and fake clips")
    # at most floor(fpr * n_real) real clips at or above fake_at
    allowed = int(math.floor(fpr_target * len(real)))
    fake_at = float(real[len(real) - allowed - 1]) + 1e-6 if allowed < len(real) else 0.0
    allowed_miss = int(math.floor(miss_target * len(fake)))
    real_below = float(fake[allowed_miss]) if allowed_miss < len(fake) else 1.0
    fake_at = min(max(fake_at, 1e-4), 1 - 1e-4)
    real_below = min(max(real_below, 1e-4), fake_at)
    return real_below, fake_at
