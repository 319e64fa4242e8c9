#!/usr/bin/env python3
"""Video-level AUC of each aggregation rule on labelled clips.

Scores the clips once (per-face CSV), then re-aggregates the same faces with every rule, so
rules are compared on identical detections and model outputs.

    python bench/eval_videos.py ../shared/data/videos --weights ../shared/data/weights/mesonet/Meso4_DF.h5

Labels come from the folder names: a clip under ``fake/`` is fake, under ``real/`` real;
others (``unlabeled/``) are scored but left out of the AUC.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipeline.scan.aggregate import AGGREGATIONS, aggregate
from pipeline.training.metrics import roc_auc


def label_of(path: str) -> int | None:
    parts = Path(path).parts
    if "fake" in parts:
        return 1
    if "real" in parts:
        return 0
    return None


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("videos")
    ap.add_argument("--weights", required=True)
    ap.add_argument("--faces-csv", help="reuse a per-face CSV instead of scoring again")
    ap.add_argument("--fps", type=float, default=None)
    ap.add_argument("--max-frames", type=int, default=None)
    ap.add_argument("--scan-args", default="", help="more score_videos.py options, one string")
    args = ap.parse_args(argv)

    faces_csv = args.faces_csv
    if faces_csv is None:
        from pipeline.cli.score import main as score_main

        tmp = Path(tempfile.mkdtemp(prefix="eval_videos_"))
        faces_csv = str(tmp / "faces.csv")
        extra = []
        if args.fps:
            extra += ["--fps", str(args.fps)]
        if args.max_frames:
            extra += ["--max-frames", str(args.max_frames)]
        import shlex

        rc = score_main(
            [
                args.videos,
                "-o",
                str(tmp / "scores.csv"),
                "--faces-csv",
                faces_csv,
                "--weights",
                args.weights,
                "-q",
                *extra,
                *shlex.split(args.scan_args),
            ]
        )
        if rc:
            return rc
    faces = pd.read_csv(faces_csv)
    faces["y"] = faces["video_path"].map(label_of)
    labelled = faces.dropna(subset=["y"])
    rows = []
    per_video = {}
    for name in sorted(AGGREGATIONS):
        ys, ps = [], []
        for video, g in labelled.groupby("video_path"):
            sizes = ((g["x2"] - g["x1"]).combine(g["y2"] - g["y1"], max)).tolist()
            p = aggregate(name, g["p_fake"].tolist(), g["track_id"].tolist(), sizes)
            ys.append(int(g["y"].iloc[0]))
            ps.append(p)
            per_video.setdefault(Path(video).name, {"label": "fake" if ys[-1] else "real"})[name] = round(p, 3)
        rows.append({"aggregation": name, "videos": len(ys), "video_auc": round(roc_auc(ys, ps), 4)})
    print(pd.DataFrame(per_video).T.sort_values("label").to_string())
    print()
    print(pd.DataFrame(rows).to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
