#!/usr/bin/env python3
"""Speed of the scanner against a straightforward loop and against decoding alone.

For every clip, on the same sampled frames (see ``baselines.py``):
  ours    score_video / score_videos.py
  (a)     the straightforward loop: OpenCV reads every frame, eager MTCNN on the full frame,
          one Meso-4 predict per face
  (b)     ffmpeg delivering the same sampled frames and nothing else (the floor)

Part 1, models loaded (in this process): per clip seconds, clip-seconds per second, sampled
frames/s, faces/s, the share of our time spent probing and waiting for decoded frames (what
the read-ahead thread did not hide) / detecting / cropping / scoring, and ours against (a)
and (b).
Part 2, whole processes, start-up included: each clip in its own process for ours, (a) and
(b), with our peak RSS; then all clips in one process, ours with ``--workers 1`` and ``2``.

    python bench/bench_speed.py ../shared/data/videos/*/dfdc_*.mp4 --weights W --fps 5 --max-frames 100 [--long]

``--long`` adds a 5-minute 1080p clip made by looping a 1080p clip (in a temporary folder).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from baselines import decode_only, load_naive_models, naive_loop
from measure import run_process, run_scanner

from pipeline.faces.detect import DetectorConfig
from pipeline.models.factory import ModelSpec
from pipeline.scan.analyze import ScanConfig, score_video
from pipeline.video.probe import probe_video


def make_long_clip(source: Path, out: Path, minutes: float = 5.0) -> Path:
    from pipeline.video.ffmpeg_bin import ffmpeg_exe

    info = probe_video(source)
    loops = int(np.ceil(minutes * 60 / info.duration_s)) - 1
    subprocess.run(
        [
            ffmpeg_exe(),
            "-hide_banner",
            "-loglevel",
            "error",
            "-y",
            "-stream_loop",
            str(loops),
            "-i",
            str(source),
            "-c",
            "copy",
            "-an",
            str(out),
        ],
        check=True,
    )
    return out


def baseline_process(which: str, clips: list[str], config: ScanConfig, weights: str) -> tuple[float, float, dict]:
    """(wall s, peak RSS MiB, start-up s) of ``baselines.py`` as a whole process."""
    cmd = [
        sys.executable,
        str(REPO / "bench" / "baselines.py"),
        which,
        *clips,
        "--weights",
        weights,
        "--fps",
        str(config.fps),
        "--max-frames",
        str(config.max_frames),
    ]
    wall, rss, out = run_process(cmd)
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    return wall, rss, lines[0]["startup_s"]


def in_process(clips: list[str], config: ScanConfig, spec: ModelSpec, with_naive: bool) -> None:
    from pipeline.models.factory import load_models

    started = time.perf_counter()
    models = load_models(spec)
    detector, scorer, detector_config, weights = models.detector, models.scorer, spec.detector, str(spec.weights)
    score_video(clips[0], detector, scorer, config)  # warm-up: the first calls trace the graphs
    print(f"our models loaded and warmed up in {time.perf_counter() - started:.1f} s")
    naive_models = load_naive_models(weights) if with_naive else None

    print(
        f"\nPart 1: models loaded. Sampling --fps {config.fps:g} --max-frames {config.max_frames}; "
        f"detection at {detector_config.detect_long_side_px} px, pyramid {detector_config.pyramid_scale}, "
        f"whole frames at most every {detector_config.full_frame_every_s:g} s"
    )
    print(
        f"{'clip':30s} {'WxH':>9s} {'dur_s':>6s} {'frames':>6s} {'faces':>5s} {'ours_s':>7s} {'clip_s/s':>8s} "
        f"{'fr/s':>6s} {'faces/s':>7s} {'dec%':>5s} {'det%':>5s} {'crop%':>5s} {'sco%':>5s} "
        f"{'(a)_s':>7s} {'(b)_s':>6s} "
        f"{'(a)/ours':>8s} {'ours/(b)':>8s}"
    )
    totals = np.zeros(3)
    searched = [0, 0]  # frames searched whole, frames searched by regions only
    for clip in clips:
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        row = score_video(clip, detector, scorer, config, timings=timings).row
        ours = time.perf_counter() - t0
        dec = decode_only(clip, config.fps, config.max_frames)["seconds"]
        nv = float("nan")
        if naive_models is not None:
            nv = naive_loop(
                clip, config.fps, config.max_frames, *naive_models, min_confidence=detector_config.min_confidence
            )["seconds"]
        totals += (ours, 0.0 if np.isnan(nv) else nv, dec)
        share = {k: 100 * timings.get(k, 0.0) / ours for k in ("detect_s", "crop_s", "score_s")}
        share["decode_s"] = 100 * (timings.get("probe_s", 0.0) + timings.get("decode_wait_s", 0.0)) / ours
        searched[0] += timings.get("full_frames", 0) + timings.get("fallback_frames", 0)
        searched[1] += timings.get("region_frames", 0)
        print(
            f"{Path(clip).name[:30]:30s} {f'{row.width}x{row.height}':>9s} {row.duration_s or 0:6.1f} "
            f"{row.n_frames:6d} {row.n_faces:5d} {ours:7.2f} {(row.duration_s or 0) / ours:8.2f} "
            f"{row.n_frames / ours:6.2f} {row.n_faces / ours:7.2f} {share['decode_s']:5.0f} {share['detect_s']:5.0f} "
            f"{share['crop_s']:5.0f} {share['score_s']:5.0f} {nv:7.2f} {dec:6.2f} {nv / ours:8.1f} "
            f"{ours / dec:8.2f}"
        )
    print(
        f"{'all':30s} {'':>9s} {'':>6s} {'':>6s} {'':>5s} {totals[0]:7.2f} {'':>8s} {'':>6s} {'':>7s} "
        f"{'':>5s} {'':>5s} {'':>5s} {'':>5s} {totals[1]:7.2f} {totals[2]:6.2f} {totals[1] / totals[0]:8.1f} "
        f"{totals[0] / totals[2]:8.2f}"
    )
    print(f"frames searched whole: {searched[0]}, by regions around known faces only: {searched[1]}")


def whole_processes(clips: list[str], config: ScanConfig, spec: ModelSpec, with_naive: bool) -> None:
    weights, detector_config = str(spec.weights), spec.detector
    extra = [
        "--fps",
        str(config.fps),
        "--max-frames",
        str(config.max_frames),
        "--detect-size",
        str(detector_config.detect_long_side_px),
        "--pyramid-scale",
        str(detector_config.pyramid_scale),
        "--full-frame-every",
        str(detector_config.full_frame_every_s),
    ]
    with tempfile.TemporaryDirectory() as empty:
        ours_start, ours_start_rss, _ = run_scanner([empty], weights, extra)
    print(
        f"\nPart 2: whole processes, start-up included. Start-up alone (no clip): ours {ours_start:.2f} s "
        f"(peak RSS {ours_start_rss:.0f} MiB)",
        end="",
    )
    if with_naive:
        wall, _, startup = baseline_process("naive", [], config, weights)
        print(f", (a) {wall:.2f} s", end="")
    print()
    print(f"{'clip':30s} {'ours_s':>7s} {'rss_MiB':>7s} {'(a)_s':>7s} {'(b)_s':>6s} {'(a)/ours':>8s} {'ours/(b)':>8s}")
    totals = np.zeros(3)
    for clip in clips:
        ours, rss, _ = run_scanner([clip], weights, extra)
        dec, _, _ = baseline_process("decode", [clip], config, weights)
        nv = baseline_process("naive", [clip], config, weights)[0] if with_naive else float("nan")
        totals += (ours, 0.0 if np.isnan(nv) else nv, dec)
        print(
            f"{Path(clip).name[:30]:30s} {ours:7.2f} {rss:7.0f} {nv:7.2f} {dec:6.2f} {nv / ours:8.1f} {ours / dec:8.2f}"
        )
    print(
        f"{'sum of the above':30s} {totals[0]:7.2f} {'':>7s} {totals[1]:7.2f} {totals[2]:6.2f} "
        f"{totals[1] / totals[0]:8.1f} {totals[0] / totals[2]:8.2f}"
    )
    nv_all = baseline_process("naive", clips, config, weights)[0] if with_naive else float("nan")
    dec_all = baseline_process("decode", clips, config, weights)[0]
    print(f"all {len(clips)} clips in one process: (a) {nv_all:.1f} s, (b) {dec_all:.1f} s")
    for workers in (1, 2):
        wall, rss, _ = run_scanner(clips, weights, extra + ["--workers", str(workers)])
        print(
            f"  ours --workers {workers}: {wall:.1f} s, {len(clips) * 60 / wall:.1f} clips/min, "
            f"(a)/ours {nv_all / wall:.1f}x, ours/(b) {wall / dec_all:.2f}, peak RSS {rss:.0f} MiB"
        )


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("clips", nargs="+")
    ap.add_argument("--weights", required=True)
    ap.add_argument("--fps", type=float, default=ScanConfig().fps)
    ap.add_argument("--max-frames", type=int, default=ScanConfig().max_frames)
    ap.add_argument("--detect-size", type=int, default=DetectorConfig().detect_long_side_px)
    ap.add_argument("--pyramid-scale", type=float, default=DetectorConfig().pyramid_scale)
    ap.add_argument("--full-frame-every", type=float, default=DetectorConfig().full_frame_every_s)
    ap.add_argument("--long", action="store_true", help="add a generated 5-minute 1080p clip")
    ap.add_argument("--no-naive", action="store_true", help="skip the straightforward loop (slow)")
    ap.add_argument("--no-process", action="store_true", help="skip part 2 (whole processes)")
    ap.add_argument("--no-in-process", action="store_true", help="skip part 1 (models loaded)")
    args = ap.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    config = ScanConfig(fps=args.fps, max_frames=args.max_frames)
    spec = ModelSpec(
        weights=args.weights,
        download=False,
        detector=DetectorConfig(
            detect_long_side_px=args.detect_size,
            pyramid_scale=args.pyramid_scale,
            full_frame_every_s=args.full_frame_every,
        ),
    )
    clips = list(args.clips)
    with tempfile.TemporaryDirectory() as tmp:
        if args.long:
            source = next((c for c in clips if max(probe_video(c).resolution_wh) == 1920), clips[0])
            clips.append(str(make_long_clip(Path(source), Path(tmp) / "long_5min_1080p.mp4")))
        if not args.no_in_process:
            in_process(clips, config, spec, not args.no_naive)
        if not args.no_process:
            whole_processes(clips, config, spec, not args.no_naive)
    return 0


if __name__ == "__main__":
    sys.exit(main())
