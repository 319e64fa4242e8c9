#!/usr/bin/env python3
"""Time the scanner on real clips: whole process (start-up included), per-clip seconds, peak RSS.

Each clip runs in its own ``score_videos.py`` process, so the peak RSS is that clip's, and
start-up (imports, MTCNN and Meso-4 load) is measured once on its own.

    python bench/bench_scan.py ../shared/data/videos/fake/dfdc_*.mp4 ../shared/data/videos/real/dfdc_*.mp4 \\
        --weights ../shared/data/weights/mesonet/Meso4_DF.h5 [--scan-args "--fps 5"]
"""

from __future__ import annotations

import argparse
import shlex
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from measure import run_scanner


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("clips", nargs="+")
    ap.add_argument("--weights", required=True)
    ap.add_argument("--scan-args", default="", help="options passed on to score_videos.py, one string")
    args = ap.parse_args(argv)
    extra = shlex.split(args.scan_args)

    empty = tempfile.mkdtemp()
    startup_s, startup_rss, _ = run_scanner([empty], args.weights, extra)
    print(f"start-up (imports + models, no clip): {startup_s:.2f} s, peak RSS {startup_rss:.0f} MiB")
    print(
        f"{'clip':40s} {'WxH':>10s} {'dur_s':>6s} {'frames':>6s} {'faces':>5s} {'clip_s':>7s} "
        f"{'process_s':>9s} {'rss_MiB':>8s} {'p_fake':>7s} status"
    )
    total_clip_s = 0.0
    for clip in args.clips:
        wall, rss, rows = run_scanner([clip], args.weights, extra)
        r = rows[0]
        total_clip_s += float(r["elapsed_s"])
        print(
            f"{Path(clip).name:40s} {r['width'] + 'x' + r['height']:>10s} {float(r['duration_s'] or 0):6.2f} "
            f"{r['n_frames']:>6s} {r['n_faces']:>5s} {float(r['elapsed_s']):7.2f} {wall:9.2f} {rss:8.0f} "
            f"{r['p_fake'][:7]:>7s} {r['status']}"
        )
    print(f"mean seconds per clip (excluding start-up): {total_clip_s / len(args.clips):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
