"""Scan labelled clips once and keep, per face, its backbone features and its person: the clip-level cache.

    python bench/clip_features.py --clips CLIPS.csv --out /work/clip_cache [--spec weights/lite0_mix_v1.npz]

``CLIPS.csv``: ``path,label,group,split`` (label real/fake/unlabeled; ``group`` keeps an identity on one side;
``split`` names the part: train, val, shared, unlabeled). Each clip goes through the scanner as
``score_videos.py`` runs it (default sampling, MTCNN, people tracking), framed as the backbone model's spec says;
each face's crop goes through the frozen backbone. Written per clip: ``<n>.npz`` with ``features`` float16
(N, F), ``track_id``, ``timestamp_s``, ``size_px``, ``static`` and ``counted`` (whether the face's person counts
under ``track_max``), and one line of ``clips.jsonl`` (path, label, group, split, status, covered_s, n_frames).
A clip already in ``clips.jsonl`` is skipped (resume). Any head of the backbone fits: the scan's people do not
depend on the scores, and heads are fitted afterwards on these features (bench/clip_decision.py).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np


class _FeatureOnlyScorer:
    """The head model's input contract (spec) with a constant score: only the crops are wanted here."""

    def __init__(self, spec):
        self.spec = spec
        self.name = spec.name
        self.weights_path = None

    def score_p_fake(self, crops, calibrated=True):
        return np.full(len(crops), 0.5)


def main() -> int:
    from pipeline.models.backbone import OnnxBackbone
    from pipeline.models.backbone_scorer import backbone_path
    from pipeline.models.factory import load_detector
    from pipeline.models.weights import spec_for_weights
    from pipeline.scan.analyze import ScanConfig, score_video_safe

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clips", required=True)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument(
        "--spec", default="weights/lite0_mix_v1.npz", help="a backbone head whose spec frames the crops"
    )
    args = parser.parse_args()
    spec = spec_for_weights(args.spec)
    backbone = OnnxBackbone.load(backbone_path(args.spec, spec))
    detector = load_detector()
    scorer = _FeatureOnlyScorer(spec)
    args.out.mkdir(parents=True, exist_ok=True)
    index = args.out / "clips.jsonl"
    done = {json.loads(line)["path"] for line in index.read_text().splitlines()} if index.is_file() else set()
    with open(args.clips, newline="") as f:
        clips = list(csv.DictReader(f))
    config = ScanConfig(aggregation="track_max")
    for clip in clips:
        if clip["path"] in done:
            continue
        started = time.perf_counter()
        result = score_video_safe(clip["path"], detector, scorer, config, keep_crops=True)
        n = len(done)
        record = dict(
            clip,
            n=n,
            status=result.row.status,
            covered_s=result.row.covered_s,
            n_frames=result.row.n_frames,
            n_faces=len(result.faces),
            duration_s=result.row.duration_s,
        )
        if result.faces:
            crops = np.stack([face.crop_rgb for face in result.faces])
            counted = {t.track_id for t in result.tracks if t.counted}
            np.savez(
                args.out / f"{n:05d}.npz",
                features=backbone.features(crops).astype(np.float16),
                track_id=np.array([face.track_id for face in result.faces]),
                timestamp_s=np.array([face.timestamp_s for face in result.faces]),
                size_px=np.array([face.size_px for face in result.faces]),
                static=np.array([face.track_static for face in result.faces]),
                counted=np.array([face.track_id in counted for face in result.faces]),
            )
        record["seconds"] = round(time.perf_counter() - started, 2)
        with open(index, "a") as f:
            f.write(json.dumps(record) + "\n")
        done.add(clip["path"])
        print(json.dumps(record), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
