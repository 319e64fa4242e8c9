#!/usr/bin/env python3
"""What ``--evidence-dir`` costs per clip (pipeline/scan/evidence.py).

For each clip, in this process with the models loaded once (default weights), the clip is
scored with ``keep_crops`` (pruned as the batch prunes), then its evidence is written
``--repeats`` times into a temporary folder; medians are reported, split into the parts that
cost: ``saliency_s`` (Grad-CAM of the crops shown), ``frame_s`` (probe + decoding the worst
face's sample again + drawing), ``total_s`` (all of ``write_evidence``, JPEG encoding and writes
included), against ``scan_s`` (scoring the clip). The first clip's first evidence also pays the
tracing of the Grad-CAM graph (``first_s``).

    python bench/evidence_cost.py [CLIP ...] [--repeats 3] [--out bench/results/evidence_cost.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

DEFAULT_CLIPS = [
    "videos/real/ffpp_original_634.mp4",  # 1280x720, 13.5 s
    "videos/fake/ffpp_Deepfakes_519_515.mp4",  # 640x480, 30 s: the worst face may be late
    "videos/fake/dfdc_widuwuoiur.mp4",  # 1920x1080, 10 s
    "videos/fake/dfdc_brtujopkby.mp4",  # 1080x1920 portrait
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("clips", nargs="*", help="clips (default: four of ../shared/data/videos)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default=str(REPO / "bench" / "results" / "evidence_cost.json"))
    args = parser.parse_args(argv)

    import numpy as np

    from pipeline.models.factory import ModelSpec, load_models
    from pipeline.models.saliency import saliency_maps
    from pipeline.scan import evidence
    from pipeline.scan.analyze import ScanConfig, score_video_safe

    shared = REPO.parent / "shared" / "data"
    clips = [Path(c) for c in args.clips] or [shared / c for c in DEFAULT_CLIPS]
    models = load_models(ModelSpec())
    config = ScanConfig(threshold=models.threshold)
    rows = []
    for clip in clips:
        started = time.perf_counter()
        result = evidence.prune_crops(score_video_safe(clip, models.detector, models.scorer, config, keep_crops=True))
        scan_s = time.perf_counter() - started
        if result.row.status != "ok":
            print(f"{clip.name}: {result.row.status}, skipped")
            continue
        chosen = evidence.select_evidence_faces(result.faces, result.row.aggregation)
        worst = chosen[0]
        totals, saliency, frame = [], [], []
        first_s = None
        for _ in range(args.repeats):
            with tempfile.TemporaryDirectory() as out:
                t0 = time.perf_counter()
                written = evidence.write_evidence(result, out, models.scorer, video_path=clip, config=config)
                totals.append(time.perf_counter() - t0)
                first_s = first_s if first_s is not None else totals[-1]
            t0 = time.perf_counter()
            saliency_maps(models.scorer, np.stack([f.crop_rgb for f in chosen]))
            saliency.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            rgb = evidence._decode_frame_of(clip, worst, config, result.row.rotation_guess_deg)
            evidence.draw_faces(rgb, [f for f in result.faces if f.sample_index == worst.sample_index], 0.5)
            frame.append(time.perf_counter() - t0)
        row = {
            "clip": clip.name,
            "size": f"{result.row.width}x{result.row.height}",
            "n_faces": result.row.n_faces,
            "crops": len(written) - 1,
            "worst_t_s": worst.timestamp_s,
            "scan_s": round(scan_s, 3),
            "first_s": round(first_s, 3),
            "total_s": round(statistics.median(totals), 3),
            "saliency_s": round(statistics.median(saliency), 3),
            "frame_s": round(statistics.median(frame), 3),
        }
        row["total_%_of_scan"] = round(100 * row["total_s"] / scan_s, 1)
        rows.append(row)
        print(row, flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(
        json.dumps({"machine": platform.platform(), "repeats": args.repeats, "rows": rows}, indent=2) + "\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
