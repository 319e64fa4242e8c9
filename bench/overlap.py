#!/usr/bin/env python3
"""Issue #17, parts 2 and 3: does decoding one clip ahead help on this machine?

Whole ``score_videos.py`` processes at default settings (``--workers 1``), start-up included,
with the scanner as it is ("ahead": the first clip probed and decoding while TensorFlow loads,
each next clip while the current one is detected and scored) and with opening ahead switched
off ("in turn": ``ClipPrefetcher.open`` made a no-op, so every clip is opened when its turn
comes, the way before). Two workloads, alternating, ``--repeats`` times each:

- the whole folder in one process (part 2: overlap across clips);
- one 10-second 1080p clip alone (part 3: start-up; TensorFlow's import and model load overlap
  the first clip's probe and decode).

    python bench/overlap.py ../shared/data/videos --single ../shared/data/videos/real/dfdc_lynaeydofd.mp4

Writes ``bench/results/overlap.json`` (medians, every run, peak RSS from ``wait4``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))

from measure import run_process

# The CLI, with or without opening clips ahead.
LAUNCH = """
import sys
sys.path.insert(0, {repo!r})
if sys.argv[1] == "in-turn":
    import pipeline.scan.engines.local as local
    local.ClipPrefetcher.open = lambda self, path: None
from pipeline.cli.score import main
sys.exit(main(sys.argv[2:]))
"""


def run(mode: str, inputs: list[str]) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-c", LAUNCH.format(repo=str(REPO)), mode, *inputs]
        cmd += ["-o", f"{tmp}/out.csv", "--workers", "1", "-q"]
        wall, rss, _ = run_process(cmd)
    return wall, rss


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folder", type=Path)
    ap.add_argument("--single", type=Path, required=True, help="one clip scored alone")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "overlap.json")
    args = ap.parse_args(argv)
    workloads = {"folder": [str(args.folder)], "single": [str(args.single)]}
    runs: dict[str, dict[str, list]] = {w: {"ahead": [], "in-turn": []} for w in workloads}
    for k in range(args.repeats):
        for workload, inputs in workloads.items():
            for mode in ("in-turn", "ahead"):
                wall, rss = run(mode, inputs)
                runs[workload][mode].append({"wall_s": round(wall, 2), "peak_rss_mib": round(rss)})
                print(f"run {k + 1} {workload:6s} {mode:7s}: {wall:6.2f} s, peak RSS {rss:.0f} MiB", flush=True)
    summary = {}
    for workload, by_mode in runs.items():
        medians = {mode: statistics.median(r["wall_s"] for r in rs) for mode, rs in by_mode.items()}
        summary[workload] = {
            **{f"{mode}_s": s for mode, s in medians.items()},
            "gain": round(medians["in-turn"] / medians["ahead"], 3),
            "peak_rss_mib": {mode: max(r["peak_rss_mib"] for r in rs) for mode, rs in by_mode.items()},
        }
    print(json.dumps(summary, indent=1))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"summary": summary, "runs": runs}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
