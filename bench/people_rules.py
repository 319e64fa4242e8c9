#!/usr/bin/env python3
"""Clip-level ROC AUC of each aggregation rule, before and after tracks followed people.

    python bench/people_rules.py ../shared/data/videos [--cases ../shared/cases] \\
        [--before-faces before_faces.csv] [--out bench/results/people_rules.json]

Scores the labelled clips (``real/`` and ``fake/`` folders; the two-person field cases as fake
and the other field cases as real, with ``--cases``) with this version's tracker and the default
model once, then aggregates the same faces by every rule:

- ``mean``, ``median``: all faces;
- ``track_max``: this version's default (every track with enough faces counts, still pictures
  left out beside moving people, small faces pulled toward the threshold by their measured
  reliability);
- ``track_max_unweighted``: the same tracks, no pull for small faces;
- ``track_max_size_rule``: the same tracks with 0.2.0's hidden rule (tracks whose median face is
  under half the largest track's left out).

``--before-faces``: a ``--faces-csv`` written by 0.2.0 (tracks by position alone) on the same
clips; its faces are aggregated by 0.2.0's rules (``mean``, ``median``, ``track_max`` with the
size rule) for the "before" column.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipeline.scan.aggregate import MIN_TRACK_FACES, MIN_TRACK_SHARE, summarize_tracks, verdict_track
from pipeline.training.metrics import roc_auc
from pipeline.video.discover import iter_videos

FAKE_CASES = ("two_people_swap_places_at_cut.mp4", "two_people_side_by_side.mp4", "smaller_person_is_fake.mp4")


def label_of(path: str) -> int | None:
    parts = Path(path).parts
    if "cases" in parts:
        return int(Path(path).name in FAKE_CASES)
    if "fake" in parts:
        return 1
    if "real" in parts:
        return 0
    return None


def old_track_max(p_fake, track_ids, sizes) -> float:
    """0.2.0's ``track_max``: tracks with enough faces and a median face at least half the
    largest track's; the most suspicious track's mean."""
    p, ids, sizes = np.asarray(p_fake), np.asarray(track_ids), np.asarray(sizes, dtype=float)
    counts = {t: int(np.sum(ids == t)) for t in np.unique(ids)}
    longest = max(counts.values())
    need = max(min(MIN_TRACK_FACES, longest), MIN_TRACK_SHARE * longest)
    eligible = [t for t in counts if counts[t] >= need]
    median = {t: float(np.median(sizes[ids == t])) for t in eligible}
    largest = max(median.values())
    return max(float(np.mean(p[ids == t])) for t in eligible if median[t] >= 0.5 * largest)


def rules_after(faces, threshold: float) -> dict[str, float]:
    p = [f.p_fake for f in faces]
    ids = [f.track_id for f in faces]
    sizes = [f.size_px for f in faces]
    static = [f.track_static for f in faces]
    tracks = summarize_tracks(p, ids, sizes, static=static, neutral_p_fake=threshold)
    unweighted = summarize_tracks(p, ids, None, static=static, neutral_p_fake=threshold)
    return {
        "mean": float(np.mean(p)),
        "median": float(np.median(p)),
        "track_max": verdict_track(tracks).verdict_score,
        "track_max_unweighted": verdict_track(unweighted).verdict_score,
        "track_max_size_rule": old_track_max(p, ids, sizes),
    }


def rules_before(group: pd.DataFrame) -> dict[str, float]:
    sizes = np.maximum(group["x2"] - group["x1"], group["y2"] - group["y1"])
    p = group["p_fake"].to_numpy()
    return {
        "mean": float(np.mean(p)),
        "median": float(np.median(p)),
        "track_max": old_track_max(p, group["track_id"].to_numpy(), sizes.to_numpy()),
    }


def auc_table(per_clip: dict[str, dict], labels: dict[str, int]) -> dict[str, float]:
    names = sorted({r for rules in per_clip.values() for r in rules})
    out = {}
    for name in names:
        clips = [c for c in per_clip if name in per_clip[c]]
        out[name] = round(roc_auc([labels[c] for c in clips], [per_clip[c][name] for c in clips]), 4)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("videos")
    ap.add_argument("--cases", default=None)
    ap.add_argument("--before-faces", default=None)
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)

    from pipeline.models.factory import ModelSpec, load_models, neutral_p_fake
    from pipeline.scan.analyze import ScanConfig, score_video

    models = load_models(ModelSpec())
    config = ScanConfig(threshold=models.threshold)
    inputs = [str(Path(args.videos) / "real"), str(Path(args.videos) / "fake")]
    if args.cases:
        inputs.append(args.cases)
    clips = [c for c in iter_videos(inputs) if label_of(c) is not None]
    after, labels = {}, {}
    for clip in clips:
        result = score_video(clip, models.detector, models.scorer, config)
        if not result.faces:
            continue
        name = Path(clip).name
        labels[name] = label_of(clip)
        after[name] = rules_after(result.faces, neutral_p_fake(models.scorer))
        print(name, labels[name], {k: round(v, 3) for k, v in after[name].items()}, flush=True)
    report = {"clips": len(after), "fake": sum(labels.values()), "after": {}, "before": {}}
    shared = [c for c in after if c not in FAKE_CASES and "face_after" not in c and c.startswith(("dfdc", "ffpp"))]
    report["after"]["videos"] = auc_table({c: after[c] for c in shared}, labels)
    report["after"]["videos_and_cases"] = auc_table(after, labels)
    if args.before_faces:
        before_faces = pd.read_csv(args.before_faces)
        before = {Path(v).name: rules_before(g) for v, g in before_faces.groupby("video_path")}
        before = {c: r for c, r in before.items() if c in labels}
        report["before"]["videos"] = auc_table({c: before[c] for c in shared if c in before}, labels)
        report["before"]["videos_and_cases"] = auc_table(before, labels)
        report["per_clip_track_max"] = {
            c: {"label": labels[c], "before": round(before.get(c, {}).get("track_max", float("nan")), 3),
                "after": round(after[c]["track_max"], 3)}
            for c in sorted(after)
        }  # fmt: skip
    print(json.dumps({k: v for k, v in report.items() if k != "per_clip_track_max"}, indent=1))
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
