"""Fit and validate the clip-level decision (pipeline/scan/decision.py) on labelled clips, per source.

    python bench/clip_decision.py --mix weights/lite0_mix_v1_train/mix.json --cache /work/feature_cache \
        --clip-cache /work/clip_cache --head weights/lite0_mix_v1.npz --out bench/results/clip_decision.json \
        [--write-spec]

Honest logits first: the face head saw the FF++ faces of its training identities, so for the FF++ training
clips the face logits come from fold heads (the same head fitted again with a third of the FF++ training
identities held out, 3 folds); FF++ validation identities and the shared clips are scored by the head itself.

Then, per clip, every counted person's features (pipeline.scan.decision.person_features); the training clips'
main person (most faces) with the clip's label fit a logistic model (scikit-learn, L2, C=1); a clip's p_fake is
its most suspicious counted person. The two thresholds are chosen on out-of-fold clip scores (leave one FF++
identity group out) of the training clips together with the FF++ validation clips: FAKE at <= 5 % of real clips,
REAL below the cut missing <= 5 % of fakes. Reported per part and compared with mean and track_max of the
calibrated face scores: AUC, FPR and TPR at the labels, UNCERTAIN share, ECE.
``--write-spec`` stores the decision in the head's sidecar (``clip_decision``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from pipeline.models.calibration import expected_calibration_error, logit, sigmoid
from pipeline.scan.decision import FEATURES, ClipDecision, choose_thresholds, person_features
from pipeline.training.metrics import roc_auc

FOLDS = 3


def load_clips(folder: Path) -> list[dict]:
    clips = [json.loads(line) for line in (folder / "clips.jsonl").read_text().splitlines()]
    for clip in clips:
        path = folder / f"{clip['n']:05d}.npz"
        clip["data"] = dict(np.load(path)) if path.is_file() else None
    return clips


def fold_of_group(groups: list[str]) -> dict[str, int]:
    return {g: k % FOLDS for k, g in enumerate(sorted(groups))}


def fold_heads(features: dict, config) -> dict[int, object]:
    """One head per fold, fitted without the FF++ training groups of that fold."""
    import dataclasses

    from pipeline.training.train_head import SourceFeatures, fit_head

    ffpp = features["ffpp"]
    groups = sorted({f.group for f in ffpp.faces if f.split == "train"})
    folds = fold_of_group(groups)
    heads = {}
    for k in range(FOLDS):
        faces = [
            dataclasses.replace(f, split="heldout") if f.split == "train" and folds[f.group] == k else f
            for f in ffpp.faces
        ]
        changed = dict(features, ffpp=SourceFeatures("ffpp", faces, ffpp.views))
        heads[k], seconds = fit_head(changed, config)
        print(f"fold head {k}: {seconds:.0f} s", flush=True)
    return heads, folds


def clip_people(clip: dict, logits: np.ndarray) -> list[tuple[int, np.ndarray, int]]:
    """(track id, person features, faces) of every counted person of a clip."""
    d = clip["data"]
    span = float(d["timestamp_s"].max() - d["timestamp_s"].min()) if len(d["timestamp_s"]) else 0.0
    span = max(span, float(clip.get("covered_s") or 0.0))
    out = []
    for t in dict.fromkeys(d["track_id"].tolist()):
        mine = (d["track_id"] == t) & d["counted"]
        if mine.any():
            out.append(
                (t, person_features(logits[mine], d["size_px"][mine], d["timestamp_s"][mine], span), int(mine.sum()))
            )
    return out


def metrics(p: np.ndarray, y: np.ndarray, labels: list[str] | None = None) -> dict:
    out = {
        "clips": int(len(y)),
        "real": int((y == 0).sum()),
        "fake": int((y == 1).sum()),
        "auc": round(roc_auc(y, p), 4) if 0 < y.sum() < len(y) else None,
        "ece": round(expected_calibration_error(p, y), 4),
    }
    if labels is not None:
        lab = np.array(labels)
        real, fake = y == 0, y == 1
        out["fpr_fake_label"] = round(float(np.mean(lab[real] == "FAKE")), 4) if real.any() else None
        out["tpr_fake_label"] = round(float(np.mean(lab[fake] == "FAKE")), 4) if fake.any() else None
        out["real_called_real"] = round(float(np.mean(lab[real] == "REAL")), 4) if real.any() else None
        out["uncertain_share"] = round(float(np.mean(lab == "UNCERTAIN")), 4)
    return out


def main() -> int:
    from sklearn.linear_model import LogisticRegression

    from pipeline.models.backbone import OnnxBackbone
    from pipeline.models.head import Head
    from pipeline.models.weights import sidecar_path, spec_for_weights
    from pipeline.training.mix import MixSpec
    from pipeline.training.train_head import HeadConfig, cached_features

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mix", required=True)
    parser.add_argument("--cache", required=True)
    parser.add_argument("--clip-cache", required=True, type=Path)
    parser.add_argument("--head", required=True)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--fpr", type=float, default=0.05)
    parser.add_argument("--miss", type=float, default=0.05)
    parser.add_argument("--write-spec", action="store_true")
    parser.add_argument(
        "--make-default", action="store_true", help="mark the decision as the model's default labelling (is_default)"
    )
    args = parser.parse_args()

    spec = spec_for_weights(args.head)
    head = Head.load(args.head)
    config = HeadConfig(
        **{
            k: tuple(v) if k == "hidden" else v
            for k, v in json.loads(sidecar_path(args.head).read_text())["training"]["config"].items()
        }
    )
    clips = [c for c in load_clips(args.clip_cache)]
    mix = MixSpec.from_json(args.mix)
    backbone = OnnxBackbone.load(Path(args.head).resolve().parent / spec.backbone)
    features = cached_features(mix, backbone, args.cache, config)
    heads, folds = fold_heads(features, config)

    for clip in clips:
        if clip["data"] is None:
            continue
        feats = clip["data"]["features"].astype(np.float32)
        use = heads[folds[clip["group"]]] if clip["split"] == "train" and clip["group"] in folds else head
        # what the scanner will see: calibrated face scores, rounded to float64, turned back into logits
        z = spec.temperature * logit(sigmoid(use.logit(feats) / spec.temperature))
        clip["z"] = z
        clip["people"] = clip_people(clip, z)

    def xy(part_clips):
        x, y = [], []
        for c in part_clips:
            main = max(c["people"], key=lambda p: p[2])
            x.append(main[1])
            y.append(1 if c["label"] == "fake" else 0)
        return np.array(x), np.array(y)

    scored = [c for c in clips if c.get("people")]
    train = [c for c in scored if c["split"] == "train"]
    val = [c for c in scored if c["split"] == "val"]
    x_train, y_train = xy(train)
    mean, scale = x_train.mean(axis=0), x_train.std(axis=0) + 1e-6

    def fit(x, y):
        model = LogisticRegression(C=1.0, max_iter=5000)
        model.fit((x - mean) / scale, y)
        return model

    def clip_p(model, c):
        return float(max(model.predict_proba((np.array([p[1] for p in c["people"]]) - mean) / scale)[:, 1]))

    # out-of-fold clip scores of the training clips (leave one identity group out)
    oof = {}
    for g in sorted({c["group"] for c in train}):
        rest = [c for c in train if c["group"] != g]
        model = fit(*xy(rest))
        for c in train:
            if c["group"] == g:
                oof[c["path"]] = clip_p(model, c)
    model = fit(x_train, y_train)
    val_p = {c["path"]: clip_p(model, c) for c in val}
    choose_p = np.array([oof[c["path"]] for c in train] + [val_p[c["path"]] for c in val])
    choose_y = np.array([c["label"] == "fake" for c in train + val], dtype=int)
    real_below, fake_at = choose_thresholds(choose_p, choose_y, fpr_target=args.fpr, miss_target=args.miss)
    decision = ClipDecision(
        mean=tuple(round(float(v), 6) for v in mean),
        scale=tuple(round(float(v), 6) for v in scale),
        coef=tuple(round(float(v), 6) for v in model.coef_[0]),
        intercept=round(float(model.intercept_[0]), 6),
        fake_at=round(fake_at, 4),
        real_below=round(real_below, 4),
        fpr_target=args.fpr,
        miss_target=args.miss,
        face_temperature=spec.temperature,
        is_default=args.make_default,
        chosen_on=(
            f"{len(train) + len(val)} FF++ c23 clips of non-reserved identities "
            f"({int((choose_y == 0).sum())} real, {int(choose_y.sum())} fake; out-of-fold scores)"
        ),
    )

    results = {"features": list(FEATURES), "decision": decision.to_json(), "parts": {}}
    temperature = spec.temperature
    neutral = spec.threshold
    parts = {
        "train": ("train",),
        "val": ("val",),
        "val_c40": ("val_c40",),
        "val_c23_c40": ("val", "val_c40"),
        "shared": ("shared",),
        "unlabeled": ("unlabeled",),
    }
    for part, splits in parts.items():
        part_clips = [c for c in scored if c["split"] in splits]
        if not part_clips:
            continue
        if part == "train":  # out-of-fold
            p_learned = np.array([oof[c["path"]] for c in part_clips])
        else:
            p_learned = np.array([max(decision.p_fake(np.array([p[1] for p in c["people"]]))) for c in part_clips])
        labels = [decision.label(p) for p in p_learned]
        p_mean = np.array([float(np.mean(sigmoid(c["z"] / temperature))) for c in part_clips])
        p_tmax = []
        for c in part_clips:
            d = c["data"]
            best = 0.0
            for t, _, _ in c["people"]:
                mine = (d["track_id"] == t) & d["counted"]
                best = max(best, float(np.mean(sigmoid(c["z"][mine] / temperature))))
            p_tmax.append(best)
        p_tmax = np.array(p_tmax)
        entry = {
            "clips": [
                {
                    "path": c["path"],
                    "label": c["label"],
                    "p_learned": round(float(p), 4),
                    "decision": lab,
                    "p_mean": round(float(pm), 4),
                    "p_track_max": round(float(pt), 4),
                }
                for c, p, lab, pm, pt in zip(part_clips, p_learned, labels, p_mean, p_tmax)
            ]
        }
        if part != "unlabeled":
            y = np.array([c["label"] == "fake" for c in part_clips], dtype=int)
            entry["learned"] = metrics(p_learned, y, labels)
            entry["mean"] = metrics(p_mean, y, ["FAKE" if p >= neutral else "REAL" for p in p_mean])
            entry["track_max"] = metrics(p_tmax, y, ["FAKE" if p >= neutral else "REAL" for p in p_tmax])
        else:
            entry["learned"] = {
                "clips": len(labels),
                "fake": labels.count("FAKE"),
                "uncertain": labels.count("UNCERTAIN"),
                "real": labels.count("REAL"),
            }
        results["parts"][part] = entry
        print(part, json.dumps({k: v for k, v in entry.items() if k != "clips"}), flush=True)
    failed = [c["path"] for c in clips if not c.get("people")]
    results["clips_without_counted_faces"] = failed
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    if args.write_spec:
        raw = json.loads(sidecar_path(args.head).read_text())
        raw["clip_decision"] = decision.to_json()
        sidecar_path(args.head).write_text(json.dumps(raw, indent=2, sort_keys=True) + "\n")
        print("wrote clip_decision into", sidecar_path(args.head))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
