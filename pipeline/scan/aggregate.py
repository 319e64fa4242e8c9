"""Per-face ``p_fake`` -> one ``p_fake`` per clip, and what each track (person) contributed.

Each rule takes the faces' ``p_fake``, their track ids and optionally their sizes in pixels,
whether each face's track is static, and the model's neutral ``p_fake`` (its own calibrated
threshold: the score that says nothing either way), and returns a float in [0, 1] (never NaN:
callers only aggregate clips with at least one face).

``track_max`` (the default) decides by people: :func:`summarize_tracks` says, for every track,
whether it counts and why, and the clip is its most suspicious counted track. No track is left
out for being small: a small face is *weighed* by how reliable Meso-4 is at its size
(:func:`size_reliability`), which pulls its score toward the model's neutral ``p_fake`` (its
own threshold, undecided) instead of dropping it. The pull is toward the *model's* threshold,
never the one a user labels with (``--threshold``), so ``p_fake`` does not move with the label
threshold.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import numpy as np

# A track needs this many faces (or as many as the clip's longest track, if fewer), and this
# share of the longest track's faces, to count on its own: a false detection or a passer-by
# seen in a few frames must not decide a clip, while a swapped second person who is on screen
# a fifth of the time still does.
MIN_TRACK_FACES = 3
MIN_TRACK_SHARE = 0.2

# Meso-4's reliability by face size (the longer side of the face box in source pixels),
# measured with bench/face_size_reliability.py: 2,358 DFDC face crops (1,177 real, 1,181 fake,
# faces at least 160 px in their source) shrunk to N px and enlarged back to the model's
# input, scored by the default model (meso4_mix_v2). ROC AUC by N: 256: 0.656, 160: 0.654,
# 112: 0.648, 80: 0.616, 64: 0.598, 48: 0.575, 32: 0.554. The weight is the AUC's margin over
# chance relative to full size; small faces also drift toward FAKE (mean p_fake of real faces
# 0.40 at 256 px, 0.50 at 64 px), which the pull toward the model's threshold also tempers.
SIZE_RELIABILITY_PX = (32.0, 48.0, 64.0, 80.0, 112.0, 160.0)
SIZE_RELIABILITY_WEIGHT = (0.35, 0.48, 0.63, 0.74, 0.95, 1.0)
# Under this weight (faces under about 100 px) a track is reported as weighed down
# ("counted_small_faces").
FULL_WEIGHT = 0.9

COUNTED = "counted"
COUNTED_SMALL = "counted_small_faces"
COUNTED_STATIC_ONLY = "counted_static_only"
LEFT_OUT_FEW_FACES = "too_few_faces"
LEFT_OUT_STATIC = "static"
REASONS = (COUNTED, COUNTED_SMALL, COUNTED_STATIC_ONLY, LEFT_OUT_FEW_FACES, LEFT_OUT_STATIC)


def size_reliability(face_px: float) -> float:
    """How far Meso-4's scores on faces of ``face_px`` (longer box side, source pixels) can be
    trusted, in (0, 1]: 1 at 160 px and more, linear between the measured sizes of
    :data:`SIZE_RELIABILITY_PX`, the smallest measured weight below 32 px."""
    return float(np.interp(face_px, SIZE_RELIABILITY_PX, SIZE_RELIABILITY_WEIGHT))


@dataclasses.dataclass(frozen=True)
class TrackSummary:
    """One track (person) of a clip and its part in the verdict.

    The same fields, by the same names, as its output record :class:`pipeline.scan.records.TrackRow`
    (which adds the clip, its sampled frames and whether this person sets the verdict).

    ``track_id``: as in the faces; ``n_faces``; ``frames_with_faces``: sampled frames it was seen in (distinct
    face times); ``first_timestamp_s``/``last_timestamp_s``: when
    it was seen (seconds); ``median_face_px``: median longer box side (source pixels);
    ``mean_p_fake``/``max_p_fake`` over its faces; ``static``: it never moved nor changed (a
    photo, a poster, a screen); ``size_weight``: :func:`size_reliability` of its median face;
    ``verdict_score``: its ``p_fake`` for the verdict, the mean pulled toward the model's neutral
    ``p_fake`` by ``1 - size_weight``; ``counted``: whether it takes part in the verdict; ``reason``: one of
    :data:`REASONS` (``counted``, ``counted_small_faces``, ``counted_static_only`` when only
    static faces were seen; left out: ``too_few_faces``, ``static``).
    """

    track_id: int
    n_faces: int
    first_timestamp_s: float
    last_timestamp_s: float
    median_face_px: float
    mean_p_fake: float
    max_p_fake: float
    static: bool
    size_weight: float
    verdict_score: float
    counted: bool
    reason: str
    frames_with_faces: int = 0


def summarize_tracks(
    p_fake: Sequence[float],
    track_ids: Sequence[int],
    face_sizes_px: Sequence[float] | None = None,
    *,
    timestamps_s: Sequence[float] | None = None,
    static: Sequence[bool] | None = None,
    neutral_p_fake: float = 0.5,
    sample_indices: Sequence[int] | None = None,
) -> list[TrackSummary]:
    """Every track of a clip, by first appearance, with whether it counts for ``track_max``.

    Per face: ``p_fake``, ``track_ids``, ``face_sizes_px`` (longer box side; ``None``: all
    full size), ``timestamps_s`` (``None``: zeros), ``static`` (the face's track is static;
    ``None``: none). A track counts unless it has too few faces (under
    :data:`MIN_TRACK_FACES`, or as many as the longest track if fewer, and under
    :data:`MIN_TRACK_SHARE` of the longest track's) or is static while some moving person
    counts; its ``verdict_score`` is ``neutral_p_fake + weight * (mean_p_fake - neutral_p_fake)``
    (``neutral_p_fake``: the model's own threshold, :func:`pipeline.models.factory.neutral_p_fake`).
    """
    p = np.asarray(p_fake, dtype=np.float64)
    ids = np.asarray(track_ids)
    n = len(p)
    sizes = np.full(n, np.inf) if face_sizes_px is None else np.asarray(face_sizes_px, dtype=np.float64)
    times = np.zeros(n) if timestamps_s is None else np.asarray(timestamps_s, dtype=np.float64)
    still = np.zeros(n, dtype=bool) if static is None else np.asarray(static, dtype=bool)
    # which sampled frame each face is on: by index, else by time, else each face its own frame
    if sample_indices is not None:
        frame_of = np.asarray(sample_indices)
    elif timestamps_s is not None:
        frame_of = times
    else:
        frame_of = np.arange(n)
    order = list(dict.fromkeys(ids.tolist()))
    counts = {t: int(np.sum(ids == t)) for t in order}
    longest = max(counts.values())
    need = max(min(MIN_TRACK_FACES, longest), MIN_TRACK_SHARE * longest)
    enough = {t: counts[t] >= need for t in order}
    is_static = {t: bool(still[ids == t].all()) for t in order}
    moving_counted = any(enough[t] and not is_static[t] for t in order)
    out = []
    for t in order:
        mine = ids == t
        mean = float(np.mean(p[mine]))
        median_px = float(np.median(sizes[mine]))
        weight = 1.0 if not np.isfinite(median_px) else size_reliability(median_px)
        if not enough[t]:
            counted, reason = False, LEFT_OUT_FEW_FACES
        elif is_static[t] and moving_counted:
            counted, reason = False, LEFT_OUT_STATIC
        elif is_static[t]:
            counted, reason = True, COUNTED_STATIC_ONLY
        else:
            counted, reason = True, COUNTED if weight >= FULL_WEIGHT else COUNTED_SMALL
        out.append(
            TrackSummary(
                track_id=int(t),
                n_faces=counts[t],
                first_timestamp_s=round(float(times[mine].min()), 4),
                last_timestamp_s=round(float(times[mine].max()), 4),
                median_face_px=round(median_px, 1) if np.isfinite(median_px) else 0.0,
                mean_p_fake=mean,
                max_p_fake=float(np.max(p[mine])),
                static=is_static[t],
                size_weight=round(weight, 3),
                verdict_score=float(neutral_p_fake + weight * (mean - neutral_p_fake)),
                counted=counted,
                reason=reason,
                frames_with_faces=len(np.unique(frame_of[mine])),
            )
        )
    return out


def verdict_track(tracks: Sequence[TrackSummary]) -> TrackSummary:
    """The counted track with the highest ``verdict_score`` (the first of equals); ``tracks`` must hold
    at least one counted track (:func:`summarize_tracks` always counts one)."""
    return max((t for t in tracks if t.counted), key=lambda t: t.verdict_score)


def aggregate_mean(p_fake: Sequence[float], track_ids: Sequence[int], face_sizes_px=None, **_) -> float:
    """Mean over all faces: MesoNet's video rule."""
    return float(np.mean(p_fake))


def aggregate_median(p_fake: Sequence[float], track_ids: Sequence[int], face_sizes_px=None, **_) -> float:
    """Median over all faces: robust to a few outlier frames."""
    return float(np.median(p_fake))


def aggregate_track_max(p_fake: Sequence[float], track_ids: Sequence[int], face_sizes_px=None, **context) -> float:
    """The most suspicious counted track's score (:func:`summarize_tracks`, :func:`verdict_track`):
    one swapped person among several real ones is not averaged away, and a small one is not
    dropped. ``context``: ``timestamps_s``, ``static``, ``neutral_p_fake``."""
    return verdict_track(summarize_tracks(p_fake, track_ids, face_sizes_px, **context)).verdict_score


AGGREGATIONS: dict[str, Callable[..., float]] = {
    "mean": aggregate_mean,
    "median": aggregate_median,
    "track_max": aggregate_track_max,
}
# Every aggregation a scan may name: the face-score rules above and ``learned``, the model's own clip decision
# (pipeline.scan.decision: per-person features and a fitted model, applied by pipeline.scan.analyze).
AGGREGATION_NAMES = (*AGGREGATIONS, "learned")
DEFAULT_AGGREGATION = "track_max"


def aggregate(
    name: str,
    p_fake: Sequence[float],
    track_ids: Sequence[int],
    face_sizes_px: Sequence[float] | None = None,
    *,
    static: Sequence[bool] | None = None,
    neutral_p_fake: float = 0.5,
) -> float:
    """Apply the rule called ``name``; ``p_fake`` must be non-empty. ``face_sizes_px``: each
    face's longer box side in source pixels (optional); ``static``: whether each face's track
    is static (optional); ``neutral_p_fake``: the model's own threshold (small faces are pulled
    toward it)."""
    if name not in AGGREGATIONS:
        raise ValueError(f"aggregation must be one of {sorted(AGGREGATIONS)}, got {name!r}")
    if len(p_fake) == 0:
        raise ValueError("cannot aggregate zero faces")
    if len(p_fake) != len(track_ids):
        raise ValueError(f"got {len(p_fake)} scores but {len(track_ids)} track ids")
    if face_sizes_px is not None and len(face_sizes_px) != len(p_fake):
        raise ValueError(f"got {len(p_fake)} scores but {len(face_sizes_px)} face sizes")
    if static is not None and len(static) != len(p_fake):
        raise ValueError(f"got {len(p_fake)} scores but {len(static)} static flags")
    rule = AGGREGATIONS[name]
    value = rule(p_fake, track_ids, face_sizes_px, static=static, neutral_p_fake=neutral_p_fake)
    return float(np.clip(value, 0.0, 1.0))
