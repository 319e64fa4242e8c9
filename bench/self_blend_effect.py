"""Do self-blended fakes help? The same head (MLP 512, alpha 0.1) fitted with and without the self-blended source.

    python -m pipeline.training.self_blend -o /work/sbi_faces dfdc=weights/lite0_mix_v1_train/split_dfdc.csv:0.93 \
        ffpp=weights/lite0_mix_v1_train/split_ffpp.csv:1.3 mesonet=weights/lite0_mix_v1_train/split_mesonet.csv:1.11
    python bench/self_blend_effect.py --mix weights/lite0_mix_v1_train/mix_sbi.json --sbi-weight 1.0 0.4 \
        --cache /work/feature_cache --clip-cache /work/clip_cache --out bench/results/self_blend.json

Per run: validation face AUC per source (the self-blended source itself is not a validation part) and clip AUC
(mean and track_max of the calibrated face scores) of the FF++ validation clips (c23 and a c40-like re-encode)
and the 11 labelled shared clips, from the clip cache of bench/clip_features.py.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
from clip_decision import load_clips

from pipeline.models.backbone import OnnxBackbone
from pipeline.models.calibration import sigmoid
from pipeline.training.metrics import roc_auc
from pipeline.training.mix import MixSpec
from pipeline.training.train_head import HeadConfig, cached_features, fit_balanced_temperature, fit_head, validate_head


def clip_aucs(head, temperature: float, clips: list[dict]) -> dict:
    out = {}
    for part in ("val", "val_c40", "shared"):
        scores, labels = [], []
        for c in clips:
            if c["split"] != part or c["data"] is None or not c["data"]["counted"].any():
                continue
            d = c["data"]
            p = sigmoid(head.logit(d["features"].astype(np.float32)) / temperature)
            people = set(d["track_id"][d["counted"]].tolist())
            track_max = max(float(p[(d["track_id"] == t) & d["counted"]].mean()) for t in people)
            scores.append((float(p.mean()), track_max))
            labels.append(c["label"] == "fake")
        s, y = np.array(scores), np.array(labels)
        out[part] = {
            "clips": len(y),
            "auc_mean": round(roc_auc(y, s[:, 0]), 4),
            "auc_track_max": round(roc_auc(y, s[:, 1]), 4),
        }
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mix", required=True, help="a mix with a source named sbi")
    parser.add_argument("--sbi-weight", type=float, nargs="+", default=[1.0, 0.4])
    parser.add_argument("--cache", required=True)
    parser.add_argument("--clip-cache", required=True, type=Path)
    parser.add_argument("--backbone", default="weights/effnet_lite0_blocks.onnx")
    parser.add_argument("--out", required=True, type=Path)
    args = parser.parse_args()
    mix = MixSpec.from_json(args.mix)
    backbone = OnnxBackbone.load(args.backbone)
    config = HeadConfig(hidden=(512,), alpha=0.1)
    features = cached_features(mix, backbone, args.cache, config)
    clips = load_clips(args.clip_cache)
    validation = {k: v for k, v in features.items() if k != "sbi"}
    results = {}
    for weight in (0.0, *args.sbi_weight):
        sources = tuple(dataclasses.replace(s, weight=weight if s.name == "sbi" else 1.0) for s in mix.sources)
        run = {k: v for k, v in features.items() if weight > 0 or k != "sbi"}
        shares = {s.name: s.weight for s in sources if s.name in run}
        total = sum(shares.values())
        head, seconds = fit_head(run, config, {k: v / total for k, v in shares.items()})
        temperature = fit_balanced_temperature(head, validation)
        results[f"sbi_weight_{weight:g}"] = {
            "fit_s": round(seconds, 1),
            "temperature": round(temperature, 4),
            "faces": validate_head(head, validation, temperature),
            "clips": clip_aucs(head, temperature, clips),
        }
        print(weight, json.dumps(results[f"sbi_weight_{weight:g}"]), flush=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
