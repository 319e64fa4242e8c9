"""Heads on cached backbone features: which head, measured per source on the validation faces.

    python bench/head_search.py --mix weights/lite0_mix_v1_train/mix.json --cache /work/feature_cache \
        --out bench/results/head_search.json

Builds what is missing of the feature cache (pipeline/training/features.py), then fits each candidate head
(pipeline/training/train_head.py) on the training faces of every source (all cached views, equal weight per
source and class) and reports per source: validation face AUC and ECE on view 0, AUC on the augmented views,
and the seconds each fit took on this machine.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.models.backbone import OnnxBackbone
from pipeline.training.mix import MixSpec
from pipeline.training.train_head import HeadConfig, cached_features, fit_balanced_temperature, fit_head, validate_head

CANDIDATES = {
    "mlp256_a1e-2": HeadConfig(hidden=(256,), alpha=1e-2),
    "mlp512_a1e-1": HeadConfig(hidden=(512,), alpha=1e-1),
    "mlp256x64_a1e-2": HeadConfig(hidden=(256, 64), alpha=1e-2),
    "logistic_c0.01": HeadConfig(hidden=(), alpha=100.0),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mix", required=True)
    parser.add_argument("--cache", required=True)
    parser.add_argument("--backbone", default="weights/effnet_lite0_blocks.onnx")
    parser.add_argument("--out", required=True)
    parser.add_argument("--only", nargs="*", help="candidate names to run (default: all)")
    args = parser.parse_args()
    mix = MixSpec.from_json(args.mix)
    backbone = OnnxBackbone.load(args.backbone)
    features = cached_features(mix, backbone, args.cache, HeadConfig())
    out_path = Path(args.out)
    results = json.loads(out_path.read_text()) if out_path.is_file() else {}
    results["_data"] = {
        name: {"train_faces": int(s.part("train").sum()), "val_faces": int(s.part("val").sum()), "views": len(s.views)}
        for name, s in features.items()
    }
    results["_machine"] = {"cpu_count": os.cpu_count()}
    for name, config in CANDIDATES.items():
        if args.only and name not in args.only:
            continue
        head, seconds = fit_head(features, config)
        temperature = fit_balanced_temperature(head, features)
        results[name] = {
            "config": {"hidden": list(config.hidden), "alpha": config.alpha},
            "fit_s": round(seconds, 1),
            "temperature": round(temperature, 4),
            "per_source": validate_head(head, features, temperature),
        }
        print(name, json.dumps(results[name]), flush=True)
        out_path.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
