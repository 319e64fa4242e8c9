#!/usr/bin/env python3
"""Issue #17, part 1: decode less at default sampling. Before (a checkout of the old code) against after.

Whole processes, start-up included: every clip of a folder scored in one ``score_videos.py``
run with ``--workers 1`` at default settings, before and after, alternating, ``--repeats``
times each (the machine is shared: medians are reported, and every run is kept in the JSON).
Then, per clip: the scan's own ``elapsed_s`` (median over the repeats) against the time ffmpeg
needs to decode the whole clip to raw RGB (``ffmpeg -i X -f rawvideo -pix_fmt rgb24 /dev/null``,
median of 3), the time of the sampled decode alone before and after (``iter_frames`` with
``decode_all=True`` / default, median of 3: the decode share), and the largest ``p_fake``
change and clip AUC on the labelled clips (``fake/`` = 1, ``real/`` = 0).

    git worktree add /tmp/base17 f5e13a1
    python bench/decode_less.py ../shared/data/videos --before /tmp/base17 [--repeats 3]

"After" runs with ``$DEEPFAKE_SCANNER_SPARSE_DECODE=1`` (sparse decoding is opt-in). Writes
``bench/results/decode_less.json``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from measure import run_process

from pipeline.video.decode import SPARSE_DECODE_ENV, iter_frames, sampling_fps, skips_frames
from pipeline.video.discover import VIDEO_EXTENSIONS
from pipeline.video.ffmpeg_bin import ffmpeg_exe
from pipeline.video.probe import probe_video


def scan_folder(checkout: Path, folder: Path) -> tuple[float, float, dict[str, dict]]:
    """(wall s, peak RSS MiB, rows by clip name) of one whole ``score_videos.py`` process."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "out.csv")
        cmd = [sys.executable, str(checkout / "score_videos.py"), str(folder), "-o", out, "--workers", "1", "-q"]
        wall, rss, _ = run_process(cmd)
        with open(out, newline="") as f:
            rows = {Path(r["video_path"]).name: r for r in csv.DictReader(f)}
    return wall, rss, rows


def median_time(fn, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def full_decode_s(path: Path) -> float:
    cmd = [
        ffmpeg_exe(),
        "-nostdin",
        "-loglevel",
        "error",
        "-i",
        str(path),
        "-f",
        "rawvideo",
        "-pix_fmt",
        "rgb24",
        "-y",
        "/dev/null",
    ]
    return median_time(lambda: subprocess.run(cmd, check=True))


def sampled_decode_s(path: Path, decode_all: bool) -> float:
    info = probe_video(path)
    rate = sampling_fps(info, 1.0, 40)
    return median_time(
        lambda: sum(1 for _ in iter_frames(path, info, sample_fps=rate, max_frames=40, decode_all=decode_all))
    )


def clip_auc(rows: dict[str, dict], labels: dict[str, int]) -> float:
    from sklearn.metrics import roc_auc_score

    names = [n for n in labels if rows.get(n, {}).get("p_fake")]
    return float(roc_auc_score([labels[n] for n in names], [float(rows[n]["p_fake"]) for n in names]))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folder", type=Path)
    ap.add_argument("--before", type=Path, required=True, help="a checkout of the code before (f5e13a1)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "decode_less.json")
    args = ap.parse_args(argv)
    # "after" is sparse decoding, which is opt-in: switch it on for this process and the runs it starts
    os.environ[SPARSE_DECODE_ENV] = "1"
    clips = sorted(p for p in args.folder.rglob("*") if p.suffix.lower() in VIDEO_EXTENSIONS)
    labels = {p.name: int(p.parent.name == "fake") for p in clips if p.parent.name in ("fake", "real")}

    runs: dict[str, list] = {"before": [], "after": []}
    rows: dict[str, list[dict]] = {"before": [], "after": []}
    for k in range(args.repeats):
        for which, checkout in (("before", args.before), ("after", REPO)):
            wall, rss, by_clip = scan_folder(checkout, args.folder)
            runs[which].append(
                {
                    "wall_s": round(wall, 2),
                    "peak_rss_mib": round(rss),
                    "clips_per_min": round(60 * len(by_clip) / wall, 1),
                }
            )
            rows[which].append(by_clip)
            print(
                f"run {k + 1} {which:6s}: {wall:6.1f} s, {60 * len(by_clip) / wall:5.1f} clips/min, "
                f"peak RSS {rss:.0f} MiB",
                flush=True,
            )

    summary = {}
    for which in runs:
        wall = statistics.median(r["wall_s"] for r in runs[which])
        summary[which] = {
            "wall_s": wall,
            "clips_per_min": round(60 * len(clips) / wall, 1),
            "peak_rss_mib": max(r["peak_rss_mib"] for r in runs[which]),
            "auc": round(clip_auc(rows[which][0], labels), 4),
        }
    summary["speed-up"] = round(summary["after"]["clips_per_min"] / summary["before"]["clips_per_min"], 2)

    per_clip = []
    for path in clips:
        name = path.name
        before, after = rows["before"][0][name], rows["after"][0][name]
        p_before = float(before["p_fake"]) if before["p_fake"] else None
        p_after = float(after["p_fake"]) if after["p_fake"] else None
        info = probe_video(path)
        item = {
            "clip": name,
            "size": f"{info.width}x{info.height}",
            "sparse": skips_frames(info, sampling_fps(info, 1.0, 40)),
            "n_frames": (before["n_frames"], after["n_frames"]),
            "p_fake": (p_before, p_after),
            "p_fake_change": None if p_before is None or p_after is None else round(abs(p_after - p_before), 4),
            "clip_s_before": statistics.median(float(r[name]["elapsed_s"]) for r in rows["before"]),
            "clip_s_after": statistics.median(float(r[name]["elapsed_s"]) for r in rows["after"]),
            "sampled_decode_s_before": round(sampled_decode_s(path, decode_all=True), 3),
            "sampled_decode_s_after": round(sampled_decode_s(path, decode_all=False), 3),
            "full_raw_decode_s": round(full_decode_s(path), 3) if info.height * info.width >= 1920 * 1080 else None,
        }
        per_clip.append(item)
        print(json.dumps(item), flush=True)
    changes = [c["p_fake_change"] for c in per_clip if c["p_fake_change"] is not None]
    summary["largest_p_fake_change"] = max(changes) if changes else None
    summary["decode_share_before"] = round(
        sum(c["sampled_decode_s_before"] for c in per_clip) / sum(c["clip_s_before"] for c in per_clip), 3
    )
    summary["decode_share_after"] = round(
        sum(c["sampled_decode_s_after"] for c in per_clip) / sum(c["clip_s_after"] for c in per_clip), 3
    )
    print(json.dumps(summary, indent=1))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"summary": summary, "runs": runs, "per_clip": per_clip}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
