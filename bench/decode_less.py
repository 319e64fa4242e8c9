#!/usr/bin/env python3
"""Issue #17: decode less. The code before (a checkout) against the code now, whole processes.

1. **Batch throughput**: every clip of a folder scored in one ``score_videos.py`` process with
   ``--workers 1`` at default settings, start-up included, before and after, alternating,
   ``--repeats`` times each (the machine is a shared VM: medians are reported, every run is
   kept in the JSON). Peak RSS comes from ``wait4`` (``bench/measure.py``).
2. **One clip at a time** (``--alone``, the 1080p clips by default): each clip scored alone in a
   process whose models are loaded and warmed on another clip, from opening the file to its row
   (``score_video_safe``: probe, decode, detect, score, hash; nothing decoded ahead), median of
   3; against the time ffmpeg needs to decode the whole clip to raw RGB
   (``ffmpeg -i X -f rawvideo -pix_fmt rgb24 /dev/null``, median of 3).
3. **Decode share**: the sampled decode alone (``iter_frames`` drained, models not loaded),
   before (every frame decoded: ``decode_all=True``) and after (the default), over the per-clip
   ``elapsed_s`` of the batch runs.
4. **Verdicts**: largest ``p_fake`` change per clip and clip ROC AUC on the labelled clips
   (``fake/`` = 1, ``real/`` = 0), against ``--before`` and, with ``--reference``, against a
   checkout whose scoring is the same as now but whose decoding is not (the commit before this
   round of work: the aggregation changed between ``--before`` and it, on purpose).

    git worktree add /tmp/base17 f5e13a1      # the code before #17's first change
    git worktree add /tmp/ref17 c8cce36       # the last commit before this round (same scoring)
    python bench/decode_less.py ../shared/data/videos --before /tmp/base17 --reference /tmp/ref17

Writes ``bench/results/decode_less.json``.
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

from pipeline.video.decode import iter_frames, sampling_fps, skips_frames
from pipeline.video.discover import VIDEO_EXTENSIONS
from pipeline.video.ffmpeg_bin import ffmpeg_exe
from pipeline.video.probe import probe_video

# Run inside a checkout (its own ``pipeline``): load the models, warm them on one clip, then
# time each clip alone. Prints one JSON object {clip name: median seconds}.
ALONE = """
import json, statistics, sys, time
sys.path.insert(0, ".")
from pipeline.models import factory
from pipeline.scan.analyze import ScanConfig, score_video_safe
models = factory.load_models()
config = ScanConfig(threshold=models.threshold)
warm, clips = sys.argv[1], sys.argv[2:]
score_video_safe(warm, models.detector, models.scorer, config)
out = {}
for clip in clips:
    times = []
    for _ in range(3):
        started = time.perf_counter()
        row = score_video_safe(clip, models.detector, models.scorer, config).row
        times.append(time.perf_counter() - started)
        assert row.status == "ok", row
    out[clip.rsplit("/", 1)[-1]] = round(statistics.median(times), 3)
print(json.dumps(out))
"""


def scan_folder(checkout: Path, folder: Path) -> tuple[float, float, dict[str, dict]]:
    """(wall s, peak RSS MiB, rows by clip name) of one whole ``score_videos.py`` process."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "out.csv")
        cmd = [sys.executable, str(checkout / "score_videos.py"), str(folder), "-o", out, "--workers", "1", "-q"]
        wall, rss, _ = run_process(cmd)
        with open(out, newline="") as f:
            rows = {Path(r["video_path"]).name: r for r in csv.DictReader(f)}
    return wall, rss, rows


def clips_alone(checkout: Path, warm: Path, clips: list[Path]) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "-c", ALONE, str(warm.resolve()), *(str(c.resolve()) for c in clips)],
        cwd=checkout,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def median_time(fn, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def full_decode_s(path: Path) -> float:
    cmd = [ffmpeg_exe(), "-nostdin", "-loglevel", "error", "-i", str(path)]
    cmd += ["-f", "rawvideo", "-pix_fmt", "rgb24", "-y", "/dev/null"]
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


def p_fake_changes(rows_a: dict[str, dict], rows_b: dict[str, dict]) -> dict[str, float]:
    out = {}
    for name, a in rows_a.items():
        b = rows_b.get(name, {})
        if a.get("p_fake") and b.get("p_fake"):
            out[name] = round(abs(float(b["p_fake"]) - float(a["p_fake"])), 4)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folder", type=Path)
    ap.add_argument("--before", type=Path, required=True, help="a checkout of the code before (f5e13a1)")
    ap.add_argument("--reference", type=Path, help="a checkout with today's scoring, yesterday's decoding (c8cce36)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--alone", nargs="*", help="clip names to time alone (default: the 1920x1080 ones)")
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "decode_less.json")
    args = ap.parse_args(argv)
    clips = sorted(p for p in args.folder.rglob("*") if p.suffix.lower() in VIDEO_EXTENSIONS)
    labels = {p.name: int(p.parent.name == "fake") for p in clips if p.parent.name in ("fake", "real")}
    infos = {p.name: probe_video(p) for p in clips}

    variants = {"before": args.before, "after": REPO}
    if args.reference:
        variants["reference"] = args.reference
    runs: dict[str, list] = {k: [] for k in variants}
    rows: dict[str, list[dict]] = {k: [] for k in variants}
    for k in range(args.repeats):
        for which, checkout in variants.items():
            if which == "reference" and k > 0:
                continue  # its verdicts are what it is for; one run
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
                f"run {k + 1} {which:9s}: {wall:6.1f} s, {60 * len(by_clip) / wall:5.1f} clips/min, "
                f"peak RSS {rss:.0f} MiB",
            )

    summary: dict = {"clips": len(clips)}
    for which in variants:
        wall = statistics.median(r["wall_s"] for r in runs[which])
        summary[which] = {
            "wall_s": wall,
            "clips_per_min": round(60 * len(clips) / wall, 1),
            "peak_rss_mib": max(r["peak_rss_mib"] for r in runs[which]),
            "auc": round(clip_auc(rows[which][0], labels), 4),
        }
    summary["speed-up"] = round(summary["after"]["clips_per_min"] / summary["before"]["clips_per_min"], 2)

    changes = {"before": p_fake_changes(rows["before"][0], rows["after"][0])}
    if args.reference:
        changes["reference"] = p_fake_changes(rows["reference"][0], rows["after"][0])
    for which, by_clip in changes.items():
        worst = max(by_clip, key=by_clip.get)
        summary[f"largest_p_fake_change_vs_{which}"] = {"clip": worst, "change": by_clip[worst]}

    alone_names = args.alone or [n for n, i in infos.items() if i.width * i.height >= 1920 * 1080]
    alone_paths = [p for p in clips if p.name in alone_names]
    warm = next(p for p in clips if p.name not in alone_names)
    alone = {
        which: clips_alone(checkout, warm, alone_paths) for which, checkout in variants.items() if which != "reference"
    }

    per_clip = []
    for path in clips:
        name, info = path.name, infos[path.name]
        item = {
            "clip": name,
            "size": f"{info.width}x{info.height}",
            "sparse": skips_frames(info, sampling_fps(info, 1.0, 40)),
            "n_frames": {w: rows[w][0][name]["n_frames"] for w in variants},
            "p_fake": {w: rows[w][0][name]["p_fake"] for w in variants},
            "elapsed_s_in_batch": {
                w: statistics.median(float(r[name]["elapsed_s"]) for r in rows[w]) for w in ("before", "after")
            },
            "sampled_decode_s_before": round(sampled_decode_s(path, decode_all=True), 3),
            "sampled_decode_s_after": round(sampled_decode_s(path, decode_all=False), 3),
        }
        if name in alone_names:
            item["alone_s"] = {w: alone[w][name] for w in alone}
            item["full_raw_decode_s"] = round(full_decode_s(path), 3)
        per_clip.append(item)
        print(json.dumps(item), flush=True)
    for which, key in (("before", "sampled_decode_s_before"), ("after", "sampled_decode_s_after")):
        decode = sum(c[key] for c in per_clip)
        summary[which]["sampled_decode_s"] = round(decode, 2)
        summary[which]["decode_share_of_batch_wall"] = round(decode / summary[which]["wall_s"], 3)
    print(json.dumps(summary, indent=1))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"summary": summary, "runs": runs, "per_clip": per_clip}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
