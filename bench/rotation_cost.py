#!/usr/bin/env python3
"""What the search for sideways faces costs, and what it gives (pipeline/scan/rotation.py).

For every clip, in this process with the models loaded once, ``score_video`` runs with the
search and with it switched off (the "before": the rotation step replaced by "no turn"), in
turns, ``--repeats`` times each; medians are reported.

Clips, made in a temporary folder:

- no face: ffmpeg lavfi sources (testsrc2, smptebars, mandelbrot) at 640x360 and 1280x720,
  10 s and 30 s; the probe (3 frames x 3 turns) is the whole extra cost there;
- faces on some frames only: ``../shared/data/videos/unlabeled/hxrsh_dumdum_people_walking.mp4``
  (a street scene: faces on 5 of its 9 sampled frames, so it is probed and kept upright);
- sideways: the first 10 s of ``../shared/data/videos/real/ffpp_original_634.mp4`` upright and
  turned by ffmpeg (transpose=1, transpose=2, hflip+vflip; no rotation tag), encoded with
  libx264 at ``--crf`` and losslessly; ``p_fake`` with the turn, without it (scored as
  decoded), and of the upright clip.

Columns: ``scan_s`` (with the search), ``before_s`` (without), ``extra_s`` (the difference of
medians), ``probe_s`` (timings ``rotation_probe_s``), ``probe_%`` (probe_s / before_s),
``rescan_s`` (timings ``rotation_rescan_s``), ``turn`` (``rotation_guess_deg``).

    python bench/rotation_cost.py [--weights W] [--repeats 3] [--out bench/results/rotation_cost.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from pipeline.models.factory import ModelSpec, load_models
from pipeline.scan import analyze
from pipeline.scan.analyze import ScanConfig, score_video
from pipeline.video.ffmpeg_bin import ffmpeg_exe

SHARED = REPO.parent / "shared" / "data" / "videos"
SIDEWAYS_SOURCE = SHARED / "real" / "ffpp_original_634.mp4"
WALKING = SHARED / "unlabeled" / "hxrsh_dumdum_people_walking.mp4"
# (name, ffmpeg filter, the turn that makes the faces upright again)
TURNS = (
    ("upright", "null", None),
    ("cw90", "transpose=1", 270),
    ("ccw90", "transpose=2", 90),
    ("r180", "hflip,vflip", 180),
)


def run_ffmpeg(*args: str) -> None:
    subprocess.run([ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-nostdin", "-y", *args], check=True)


def make_clips(root: Path, crf: int) -> list[tuple[str, str, Path]]:
    """(kind, name, path) of every clip measured."""
    clips = []
    for source, size, seconds in (
        ("testsrc2", "640x360", 10),
        ("smptebars", "1280x720", 10),
        ("mandelbrot", "1280x720", 10),
        ("testsrc2", "1280x720", 30),
    ):
        path = root / f"{source}_{size}_{seconds}s.mp4"
        run_ffmpeg(
            "-f", "lavfi", "-i", f"{source}=size={size}:rate=25", "-t", str(seconds),
            "-c:v", "libx264", "-crf", str(crf), "-pix_fmt", "yuv420p", str(path),
        )  # fmt: skip
        clips.append(("no_face", path.stem, path))
    if WALKING.is_file():
        clips.append(("some_faces", WALKING.stem, WALKING))
    if SIDEWAYS_SOURCE.is_file():
        for encoding, codec in ((f"crf{crf}", ["-crf", str(crf)]), ("lossless", ["-preset", "ultrafast", "-qp", "0"])):
            for name, vf, _ in TURNS:
                path = root / f"634_{name}_{encoding}.mp4"
                run_ffmpeg(
                    "-i", str(SIDEWAYS_SOURCE), "-t", "10", "-vf", vf, "-an",
                    "-c:v", "libx264", *codec, "-pix_fmt", "yuv420p", str(path),
                )  # fmt: skip
                clips.append(("sideways" if name != "upright" else "upright", path.stem, path))
    return clips


def scan(path: Path, models, config: ScanConfig, *, search: bool) -> tuple[float, dict, object]:
    """(wall s, timings, row) of one ``score_video`` run, with the rotation search or without."""
    timings: dict[str, float] = {}
    original = analyze._rotation_to_try
    if not search:
        analyze._rotation_to_try = lambda *args, **kwargs: None
    try:
        started = time.perf_counter()
        row = score_video(path, models.detector, models.scorer, config, timings=timings).row
        return time.perf_counter() - started, timings, row
    finally:
        analyze._rotation_to_try = original


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", default=None, help="weights file or name (default: the project's default model)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--crf", type=int, default=18, help="x264 quality of the lossy clips")
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "rotation_cost.json")
    args = ap.parse_args(argv)

    started = time.monotonic()
    load_before = os.getloadavg()
    models = load_models(ModelSpec(weights=args.weights))
    config = ScanConfig(fps=1.0, max_frames=40, threshold=models.threshold)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        clips = make_clips(Path(tmp), args.crf)
        scan(clips[0][2], models, config, search=True)  # warm-up: the first calls trace the graphs
        runs: dict[str, dict[str, list]] = {name: {"with": [], "without": []} for _, name, _ in clips}
        for _ in range(args.repeats):
            for _, name, path in clips:
                runs[name]["with"].append(scan(path, models, config, search=True))
                runs[name]["without"].append(scan(path, models, config, search=False))
        for kind, name, _ in clips:
            with_s = statistics.median(r[0] for r in runs[name]["with"])
            without_s = statistics.median(r[0] for r in runs[name]["without"])
            probe_s = statistics.median(r[1].get("rotation_probe_s", 0.0) for r in runs[name]["with"])
            rescan_s = statistics.median(r[1].get("rotation_rescan_s", 0.0) for r in runs[name]["with"])
            row, before_row = runs[name]["with"][0][2], runs[name]["without"][0][2]
            results.append(
                {
                    "kind": kind,
                    "clip": name,
                    "size": f"{row.width}x{row.height}",
                    "n_frames": row.n_frames,
                    "status": row.status,
                    "n_faces": row.n_faces,
                    "rotation_guess_deg": row.rotation_guess_deg,
                    "p_fake": row.p_fake,
                    "p_fake_before": before_row.p_fake,
                    "n_faces_before": before_row.n_faces,
                    "scan_s": round(with_s, 3),
                    "before_s": round(without_s, 3),
                    "extra_s": round(with_s - without_s, 3),
                    "probe_s": round(probe_s, 3),
                    "probe_pct_of_scan": round(100.0 * probe_s / without_s, 1),
                    "rescan_s": round(rescan_s, 3),
                }
            )
    upright = {r["clip"].rsplit("_", 1)[-1]: r["p_fake"] for r in results if r["kind"] == "upright"}
    for r in results:
        if r["kind"] == "sideways":
            r["p_fake_upright_clip"] = upright.get(r["clip"].rsplit("_", 1)[-1])
    report = {
        "what": "extra time of the sideways-face search per clip (pipeline/scan/rotation.py), 1 fps, max 40 frames",
        "weights": str(models.weights_path.name),
        "repeats": args.repeats,
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "loadavg_1m_before_after": [round(load_before[0], 2), round(os.getloadavg()[0], 2)],
        },
        "clips": results,
        "seconds": round(time.monotonic() - started),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(table(results))
    print(f"\nload average (1 min) before/after: {report['machine']['loadavg_1m_before_after']}; written to {args.out}")
    return 0


def _p(x) -> str:
    return "-" if x is None else f"{x:.3f}"


def table(results: list[dict]) -> str:
    header = (
        f"{'kind':10s} {'clip':32s} {'WxH':>9s} {'frames':>6s} {'status':>7s} {'turn':>4s} {'scan_s':>6s} "
        f"{'before_s':>8s} {'extra_s':>7s} {'probe_s':>7s} {'probe_%':>7s} {'rescan_s':>8s} {'p_fake':>6s} "
        f"{'before':>6s} {'upright':>7s}"
    )
    lines = [header]
    for r in results:
        turn = "-" if r["rotation_guess_deg"] is None else str(r["rotation_guess_deg"])
        lines.append(
            f"{r['kind']:10s} {r['clip'][:32]:32s} {r['size']:>9s} {r['n_frames']:6d} {r['status']:>7s} {turn:>4s} "
            f"{r['scan_s']:6.2f} {r['before_s']:8.2f} {r['extra_s']:7.2f} {r['probe_s']:7.2f} "
            f"{r['probe_pct_of_scan']:7.1f} {r['rescan_s']:8.2f} {_p(r['p_fake']):>6s} {_p(r['p_fake_before']):>6s} "
            f"{_p(r.get('p_fake_upright_clip')):>7s}"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
