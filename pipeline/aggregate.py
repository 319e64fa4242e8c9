"""Per-face ``p_fake`` -> one ``p_fake`` per clip.

Each rule takes the faces' ``p_fake`` and their track ids and returns a float in [0, 1]
(never NaN: callers only aggregate clips with at least one face).
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

# A track needs this many faces (or as many as the clip's longest track, if fewer) to count on
# its own: a one- or two-frame false detection must not decide a clip.
MIN_TRACK_FACES = 3


def aggregate_mean(p_fake: Sequence[float], track_ids: Sequence[int]) -> float:
    """Mean over all faces: MesoNet's video rule."""
    return float(np.mean(p_fake))


def aggregate_median(p_fake: Sequence[float], track_ids: Sequence[int]) -> float:
    """Median over all faces: robust to a few outlier frames."""
    return float(np.median(p_fake))


def _track_means(p_fake: Sequence[float], track_ids: Sequence[int]) -> list[float]:
    p = np.asarray(p_fake, dtype=np.float64)
    ids = np.asarray(track_ids)
    counts = {t: int(np.sum(ids == t)) for t in np.unique(ids)}
    need = min(MIN_TRACK_FACES, max(counts.values()))
    return [float(np.mean(p[ids == t])) for t, n in counts.items() if n >= need]


def aggregate_track_max(p_fake: Sequence[float], track_ids: Sequence[int]) -> float:
    """Mean per track, then the most suspicious track (among tracks with enough faces).

    One swapped person among several real ones is not averaged away.
    """
    return max(_track_means(p_fake, track_ids))


AGGREGATIONS: dict[str, Callable[[Sequence[float], Sequence[int]], float]] = {
    "mean": aggregate_mean,
    "median": aggregate_median,
    "track_max": aggregate_track_max,
}
DEFAULT_AGGREGATION = "track_max"


def aggregate(name: str, p_fake: Sequence[float], track_ids: Sequence[int]) -> float:
    """Apply the rule called ``name``; ``p_fake`` must be non-empty."""
    if name not in AGGREGATIONS:
        raise ValueError(f"aggregation must be one of {sorted(AGGREGATIONS)}, got {name!r}")
    if len(p_fake) == 0:
        raise ValueError("cannot aggregate zero faces")
    if len(p_fake) != len(track_ids):
        raise ValueError(f"got {len(p_fake)} scores but {len(track_ids)} track ids")
    return float(np.clip(AGGREGATIONS[name](p_fake, track_ids), 0.0, 1.0))
