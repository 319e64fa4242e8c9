"""Per-face ``p_fake`` -> one ``p_fake`` per clip.

Each rule takes the faces' ``p_fake``, their track ids and optionally their sizes in pixels,
and returns a float in [0, 1] (never NaN: callers only aggregate clips with at least one face).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

# A track needs this many faces (or as many as the clip's longest track, if fewer), and this
# share of the longest track's faces, to count on its own: a false detection or a passer-by
# seen in a few frames must not decide a clip, while a swapped second person who is on screen
# a fifth of the time still does.
MIN_TRACK_FACES = 3
MIN_TRACK_SHARE = 0.2
# ... and faces at least this share of the largest person's size: a small face in the
# background is enlarged 5x to reach the model's input and its score is mostly noise.
MIN_TRACK_SIZE_SHARE = 0.5


def aggregate_mean(p_fake: Sequence[float], track_ids: Sequence[int], face_sizes_px=None) -> float:
    """Mean over all faces: MesoNet's video rule."""
    return float(np.mean(p_fake))


def aggregate_median(p_fake: Sequence[float], track_ids: Sequence[int], face_sizes_px=None) -> float:
    """Median over all faces: robust to a few outlier frames."""
    return float(np.median(p_fake))


def _track_means(p_fake: Sequence[float], track_ids: Sequence[int], face_sizes_px=None) -> list[float]:
    p = np.asarray(p_fake, dtype=np.float64)
    ids = np.asarray(track_ids)
    tracks = list(np.unique(ids))
    counts = {t: int(np.sum(ids == t)) for t in tracks}
    longest = max(counts.values())
    need = max(min(MIN_TRACK_FACES, longest), MIN_TRACK_SHARE * longest)
    eligible = [t for t in tracks if counts[t] >= need]
    if face_sizes_px is not None:
        sizes = np.asarray(face_sizes_px, dtype=np.float64)
        median_size = {t: float(np.median(sizes[ids == t])) for t in eligible}
        largest = max(median_size.values())
        eligible = [t for t in eligible if median_size[t] >= MIN_TRACK_SIZE_SHARE * largest]
    return [float(np.mean(p[ids == t])) for t in eligible]


def aggregate_track_max(p_fake: Sequence[float], track_ids: Sequence[int], face_sizes_px=None) -> float:
    """Mean per track, then the most suspicious track, among tracks with enough faces (and,
    when sizes are given, faces not much smaller than the main person's).

    One swapped person among several real ones is not averaged away.
    """
    return max(_track_means(p_fake, track_ids, face_sizes_px))


AGGREGATIONS: dict[str, Callable[..., float]] = {
    "mean": aggregate_mean,
    "median": aggregate_median,
    "track_max": aggregate_track_max,
}
DEFAULT_AGGREGATION = "track_max"


def aggregate(
    name: str, p_fake: Sequence[float], track_ids: Sequence[int], face_sizes_px: Sequence[float] | None = None
) -> float:
    """Apply the rule called ``name``; ``p_fake`` must be non-empty. ``face_sizes_px``: each
    face's longer box side in source pixels (optional)."""
    if name not in AGGREGATIONS:
        raise ValueError(f"aggregation must be one of {sorted(AGGREGATIONS)}, got {name!r}")
    if len(p_fake) == 0:
        raise ValueError("cannot aggregate zero faces")
    if len(p_fake) != len(track_ids):
        raise ValueError(f"got {len(p_fake)} scores but {len(track_ids)} track ids")
    if face_sizes_px is not None and len(face_sizes_px) != len(p_fake):
        raise ValueError(f"got {len(p_fake)} scores but {len(face_sizes_px)} face sizes")
    return float(np.clip(AGGREGATIONS[name](p_fake, track_ids, face_sizes_px), 0.0, 1.0))
