#!/usr/bin/env python3
"""The model card's cross-dataset table: every model on every validation part, one run.

    python bench/cross_dataset.py --model NAME=WEIGHTS ... --out bench/results/cross_dataset.json \
        --dfdc-split weights/NAME_train/split_dfdc.csv --ffpp-manifest /data/ffpp_faces/manifest.csv

Columns (each model at its own crop framing, calibration and threshold, from its spec):

- ``mesonet_faces``: MesoNet face set, the validation videos of ``meso4_scanner_v1``'s split (face
  ROC AUC, per-video AUC of the mean, ECE);
- ``dfdc_faces``: DFDC faces of the validation clusters (the ``val`` rows of ``--dfdc-split``);
- ``ffpp_clips``: FaceForensics++ c23 clips of the validation identities (the ``val`` rows of
  ``--ffpp-manifest``), clip ROC AUC over all methods and per method (each method's fakes
  against every validation original);
- ``shared_labelled``: the 11 labelled clips of ``../shared/data/videos`` (clip ROC AUC);
- ``shared_unlabeled_flagged``: how many of the 19 real-looking unlabeled shared clips come out FAKE;
- ``samples``: ``p_fake`` of the project's own sample clips of a real face.

Clips are decoded, detected, tracked and aggregated exactly as the scanner does (the scanner's
face loop, crop function and ``track_max``), once per clip: each model then scores the same
faces, cropped at its own framing. Face sets framed wider than a model are centre-cropped to
the model's framing; a model framed wider than a face set sees the whole crop (noted).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from pipeline.faces.crop import crop_face_rgb
from pipeline.models.calibration import expected_calibration_error
from pipeline.models.factory import ModelSpec, load_detector, load_models, resolve_threshold
from pipeline.scan.aggregate import aggregate
from pipeline.scan.analyze import ScanConfig
from pipeline.scan.face_loop import FaceLoop
from pipeline.training.dataset import load_crop_rgb, load_faces, select_split
from pipeline.training.metrics import roc_auc, video_means
from pipeline.video.decode import iter_frames, sampling_fps
from pipeline.video.probe import probe_video

SHARED = REPO.parent / "shared" / "data"
MESONET_MARGIN, DFDC_MARGIN = 1.11, 0.93
FFPP_METHODS = ("Deepfakes", "Face2Face", "FaceSwap")


def clip_faces(path: str, detector, config: ScanConfig, margins: set[tuple[float, str, int]]) -> dict:
    """One pass of the scanner's face loop over a clip: per framing (margin, interpolation, input side) the
    crops, plus track ids and face sizes for the aggregation."""
    info = probe_video(path, timeout_s=120)
    fps = sampling_fps(info, config.fps, config.max_frames)
    loop = FaceLoop(iter_frames(path, info, sample_fps=fps, max_frames=config.max_frames, timeout_s=300), detector)
    crops = {m: [] for m in margins}
    sizes = []
    for batch in loop:
        for item in batch:
            for face in item.faces:
                sizes.append(max(face.box_xyxy[2] - face.box_xyxy[0], face.box_xyxy[3] - face.box_xyxy[1]))
                for margin, interpolation, size in margins:
                    crops[(margin, interpolation, size)].append(
                        crop_face_rgb(
                            item.frame.rgb, face.box_xyxy, margin=margin, interpolation=interpolation, size_px=size
                        )
                    )
    return {
        "crops": {m: np.stack(c) if c else np.empty((0, m[2], m[2], 3), np.uint8) for m, c in crops.items()},
        "tracks": loop.track_ids(),
        "sizes": sizes,
    }


SCORING = defaultdict(lambda: [0.0, 0])  # model name -> [seconds, crops]


def timed_scores(name: str, scorer, crops: np.ndarray) -> np.ndarray:
    started = time.perf_counter()
    p = scorer.score_p_fake(crops)
    SCORING[name][0] += time.perf_counter() - started
    SCORING[name][1] += len(crops)
    return p


def clip_p_fake(name: str, scorer, faces: dict) -> float | None:
    key = (scorer.spec.crop_margin, scorer.spec.resize_interpolation, scorer.spec.input_size_px)
    if not faces["tracks"]:
        return None
    p = timed_scores(name, scorer, faces["crops"][key])
    return float(aggregate("track_max", p.tolist(), faces["tracks"], faces["sizes"]))


def face_scores(name: str, scorer, items, data_margin: float) -> np.ndarray:
    fraction = min(1.0, scorer.spec.crop_margin / data_margin)
    out = []
    for start in range(0, len(items), 256):
        chunk = items[start : start + 256]
        side = scorer.spec.input_size_px
        crops = np.stack(
            [load_crop_rgb(i.source_path, side, scorer.spec.resize_interpolation, fraction) for i in chunk]
        )
        out.append(timed_scores(name, scorer, crops))
    return np.concatenate(out)


def face_block(items, p: np.ndarray) -> dict:
    y = np.array([i.y for i in items])
    _, labels, means = video_means(items, p)
    return {
        "n": len(items),
        "auc": roc_auc(y, p),
        "video_auc": roc_auc([lab == "fake" for lab in labels], means),
        "ece": expected_calibration_error(p, y),
    }


def ffpp_val_clips(manifest: Path) -> dict[str, str]:
    """clip path -> method ('original' for real) of the validation identities."""
    out = {}
    with open(manifest, newline="") as f:
        for row in csv.DictReader(f):
            if row["split"] == "val":
                out[row["source_path"]] = Path(row["source_path"]).parent.name.replace("youtube", "original")
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", action="append", required=True, metavar="NAME=WEIGHTS")
    ap.add_argument("--dfdc-split", type=Path, required=True)
    ap.add_argument("--ffpp-manifest", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)

    started = time.monotonic()
    scorers = {}
    for entry in args.model:
        name, path = entry.split("=", 1)
        scorers[name] = load_models(ModelSpec(weights=path, download=False), with_detector=False).scorer
    thresholds = {n: resolve_threshold(None, s.spec) for n, s in scorers.items()}
    margins = {(s.spec.crop_margin, s.spec.resize_interpolation, s.spec.input_size_px) for s in scorers.values()}
    detector = load_detector()
    config = ScanConfig()
    results: dict = defaultdict(dict)

    # face sets
    mesonet = select_split(load_faces(REPO / "weights" / "meso4_scanner_v1_train" / "split.csv"), "val")
    dfdc = select_split(load_faces(args.dfdc_split), "val")
    for name, scorer in scorers.items():
        results[name]["mesonet_faces"] = face_block(mesonet, face_scores(name, scorer, mesonet, MESONET_MARGIN))
        results[name]["dfdc_faces"] = face_block(dfdc, face_scores(name, scorer, dfdc, DFDC_MARGIN))
        print(f"{name}: faces done ({time.monotonic() - started:.0f} s)", flush=True)

    # clips: detection once per clip, every model on the same faces
    ffpp = ffpp_val_clips(args.ffpp_manifest)
    labelled = {
        str(p): p.parent.name for p in sorted((SHARED / "videos").glob("*/*.mp4")) if p.parent.name != "unlabeled"
    }
    unlabeled = [str(p) for p in sorted((SHARED / "videos" / "unlabeled").glob("*.mp4"))]
    samples = [str(REPO / "samples" / n) for n in ("astronaut_pan.mp4", "astronaut_portrait_rot90.mp4")]
    clip_p: dict = defaultdict(dict)
    for path in [*ffpp, *labelled, *unlabeled, *samples]:
        faces = clip_faces(path, detector, config, margins)
        for name, scorer in scorers.items():
            clip_p[name][path] = clip_p_fake(name, scorer, faces)
    print(f"clips done ({time.monotonic() - started:.0f} s)", flush=True)

    for name in scorers:
        p = clip_p[name]
        t = thresholds[name]
        scored = {k: v for k, v in p.items() if v is not None}
        ff = {k: m for k, m in ffpp.items() if k in scored}
        y_ff = [m != "original" for m in ff.values()]
        block = {
            "n": len(ff),
            "auc": roc_auc(y_ff, [scored[k] for k in ff]),
            "ece": expected_calibration_error([scored[k] for k in ff], y_ff),
        }
        for method in FFPP_METHODS:
            keys = [k for k, m in ff.items() if m in (method, "original")]
            block[f"auc_{method}"] = roc_auc([ff[k] != "original" for k in keys], [scored[k] for k in keys])
        block["real_flagged"] = sum(scored[k] >= t for k, m in ff.items() if m == "original")
        block["fake_found"] = sum(scored[k] >= t for k, m in ff.items() if m != "original")
        results[name]["ffpp_clips"] = block
        lab = {k: v for k, v in labelled.items() if k in scored}
        results[name]["shared_labelled"] = {
            "n": len(lab),
            "auc": roc_auc([v == "fake" for v in lab.values()], [scored[k] for k in lab]),
            "correct": sum((scored[k] >= t) == (v == "fake") for k, v in lab.items()),
        }
        results[name]["shared_unlabeled_flagged"] = {
            "flagged": sum(scored.get(k, 0) >= t for k in unlabeled if k in scored),
            "scored": sum(k in scored for k in unlabeled),
        }
        results[name]["samples"] = {Path(k).name: (None if p[k] is None else round(p[k], 3)) for k in samples}
        results[name]["threshold"] = t
        seconds, crops = SCORING[name]
        results[name]["scoring_ms_per_face"] = round(1000.0 * seconds / max(1, crops), 3)
        results[name]["spec"] = {
            "crop_margin": scorers[name].spec.crop_margin,
            "temperature": scorers[name].spec.temperature,
            "architecture": scorers[name].spec.architecture,
        }
    results = json.loads(json.dumps(results, default=float))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {"models": results, "clip_p_fake": clip_p, "seconds": round(time.monotonic() - started)},
            indent=1,
            default=str,
        )
    )
    print(markdown_table(results))
    return 0


def _f(x, digits=3):
    return "n/a" if x is None or (isinstance(x, float) and not np.isfinite(x)) else f"{x:.{digits}f}"


def markdown_table(results: dict) -> str:
    head = (
        "| model | MesoNet faces AUC (video AUC) | DFDC faces AUC | FF++ clips AUC (DF / F2F / FS) | "
        "FF++ real flagged / fakes found | 11 labelled clips AUC | 19 unlabeled flagged FAKE | "
        "samples p_fake (pan / portrait) | ECE MesoNet / DFDC / FF++ |"
    )
    lines = [head, "|" + "---|" * 9]
    for name, r in results.items():
        m, d, f = r["mesonet_faces"], r["dfdc_faces"], r["ffpp_clips"]
        s = list(r["samples"].values())
        lines.append(
            f"| {name} | {_f(m['auc'])} ({_f(m['video_auc'])}) | {_f(d['auc'])} | {_f(f['auc'])} "
            f"({_f(f['auc_Deepfakes'])} / {_f(f['auc_Face2Face'])} / {_f(f['auc_FaceSwap'])}) | "
            f"{f['real_flagged']} / {f['fake_found']} of {f['n']} | {_f(r['shared_labelled']['auc'])} | "
            f"{r['shared_unlabeled_flagged']['flagged']} of {r['shared_unlabeled_flagged']['scored']} | "
            f"{_f(s[0], 2)} / {_f(s[1], 2)} | {_f(m['ece'])} / {_f(d['ece'])} / {_f(f['ece'])} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
