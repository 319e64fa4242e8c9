#!/usr/bin/env python3
"""Clips per minute with the local engine and with Dask (1 and 2 workers), and the driver's
memory with a very large queue of paths.

    python bench/bench_engines.py ../shared/data/videos --weights ../shared/data/weights/mesonet/Meso4_DF.h5
    python bench/bench_engines.py --queue 100000 --weights ../shared/data/weights/mesonet/Meso4_DF.h5

Every run is a whole ``score_videos.py`` process (start-up and cluster start included); the
peak RSS (``wait4``) is that of the largest process of the run: the scanner itself or one of
its worker processes; with ``--queue`` it is the driver's own, sampled.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from measure import run_scanner


def run(inputs: list[str], weights: str, extra: list[str], own_rss: bool = False) -> tuple[float, float, int, dict]:
    wall, rss, rows = run_scanner(inputs, weights, extra, own_rss)
    counts: dict = {}
    for row in rows:
        counts[row["status"]] = counts.get(row["status"], 0) + 1
    return wall, rss, len(rows), counts


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("inputs", nargs="*")
    ap.add_argument("--weights", required=True)
    ap.add_argument("--queue", type=int, default=0, help="instead: N empty .mp4 files through the dask engine")
    args = ap.parse_args(argv)

    if args.queue:
        with tempfile.TemporaryDirectory() as tmp:
            for i in range(args.queue):
                open(os.path.join(tmp, f"{i:07d}.mp4"), "wb").close()
            for engine in (["--engine", "dask", "--workers", "2"],):
                wall, rss, n, counts = run([tmp], args.weights, engine, own_rss=True)
                print(f"{' '.join(engine):28s} {n} paths in {wall:.1f} s, driver peak RSS {rss:.0f} MiB, {counts}")
        return 0

    print(f"{'engine':28s} {'clips':>5s} {'wall_s':>7s} {'clips/min':>9s} {'peak_rss_MiB':>12s} statuses")
    for extra in (
        ["--engine", "local", "--workers", "1"],
        ["--engine", "local", "--workers", "2"],
        ["--engine", "dask", "--workers", "1"],
        ["--engine", "dask", "--workers", "2"],
    ):
        wall, rss, n, counts = run(args.inputs, args.weights, extra)
        print(f"{' '.join(extra):28s} {n:5d} {wall:7.1f} {60 * n / wall:9.1f} {rss:12.0f} {counts}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
