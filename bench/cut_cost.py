#!/usr/bin/env python3
"""What shot-cut detection (ffmpeg ``scdet`` in the scanner's decode) costs.

    python bench/cut_cost.py ../shared/data/videos/*/dfdc_*.mp4

Decodes each clip as the scanner does at default sampling (1 fps, at most 40 frames), 7 times
without and 7 times with cut detection, interleaved (the order alternates each round, so a
busy moment hits both), and prints the medians.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

ROUNDS = 7


def main(argv=None) -> int:
    from pipeline.video.decode import iter_frames, sampling_fps
    from pipeline.video.probe import probe_video

    for path in argv if argv is not None else sys.argv[1:]:
        info = probe_video(path)
        rate = sampling_fps(info, 1.0, 40)
        runs: dict[bool, list[float]] = {False: [], True: []}
        for round_ in range(ROUNDS):
            for with_cuts in (False, True) if round_ % 2 == 0 else (True, False):
                started = time.perf_counter()
                cuts = [] if with_cuts else None
                for _frame in iter_frames(path, info, sample_fps=rate, max_frames=40, cut_times_s=cuts):
                    pass
                runs[with_cuts].append(time.perf_counter() - started)
        plain, with_cuts = statistics.median(runs[False]), statistics.median(runs[True])
        print(
            f"{Path(path).name} {info.width}x{info.height}: decode {plain:.3f} s, with scdet {with_cuts:.3f} s "
            f"({(with_cuts / plain - 1) * 100:+.1f}%)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
