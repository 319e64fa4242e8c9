#!/usr/bin/env python3
"""Issue #24, cost: the default model now (a frozen EfficientNet-Lite0 with a head, onnxruntime) against the
previous default (Meso-4 ``meso4_mix_v2``, TensorFlow), whole processes, side by side in one run.

1. **Batch**: every clip of a folder through one ``score_videos.py`` process (``--workers 1``, default settings,
   start-up included), the two models alternating, ``--repeats`` times each; medians, every run kept. Peak RSS
   from ``wait4`` (``bench/measure.py``).
2. **Per face**: ms per face crop of each scorer alone (batches of 32 crops, after a warm-up), on this machine.

    python bench/backbone_cost.py ../shared/data/videos --repeats 2

Writes ``bench/results/backbone_cost.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from measure import run_process

MODELS = {"previous (meso4_mix_v2)": "meso4_mix_v2", "now (lite0_mix_v1)": "lite0_mix_v1"}


def per_face_ms(name: str, n: int = 128) -> float:
    import numpy as np

    from pipeline.models.factory import configure_tensorflow, load_scorer
    from pipeline.models.weights import weights_by_name

    configure_tensorflow(None)
    scorer = load_scorer(weights_by_name(name))
    size = scorer.spec.input_size_px
    crops = np.random.default_rng(0).integers(0, 255, (n, size, size, 3), dtype=np.uint8)
    scorer.score_p_fake(crops[:32])
    started = time.perf_counter()
    scorer.score_p_fake(crops)
    return 1000.0 * (time.perf_counter() - started) / n


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--out", default=str(REPO / "bench" / "results" / "backbone_cost.json"))
    args = parser.parse_args()
    runs: dict[str, list[dict]] = {label: [] for label in MODELS}
    with tempfile.TemporaryDirectory() as tmp:
        for repeat in range(args.repeats):
            for label, name in MODELS.items():
                out = os.path.join(tmp, f"{name}_{repeat}.csv")
                cmd = [sys.executable, str(REPO / "score_videos.py"), args.folder, "-o", out, "--weights", name, "-q"]
                wall, rss, _ = run_process(cmd)
                runs[label].append({"wall_s": round(wall, 2), "peak_rss_mib": round(rss, 1)})
                print(label, runs[label][-1], flush=True)
    n_clips = sum(1 for p in Path(args.folder).rglob("*.mp4"))
    result = {
        "folder": args.folder,
        "clips": n_clips,
        "cpu_count": os.cpu_count(),
        "runs": runs,
        "median_wall_s": {label: statistics.median(r["wall_s"] for r in rs) for label, rs in runs.items()},
        "per_face_ms": {label: round(per_face_ms(name), 2) for label, name in MODELS.items()},
    }
    before, now = (result["median_wall_s"][label] for label in MODELS)
    result["ratio_now_over_previous"] = round(now / before, 3)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
