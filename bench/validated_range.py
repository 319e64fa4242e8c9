#!/usr/bin/env python3
"""The picture quality the default model was validated on: the range of each :class:`FaceQuality` measure.

    python bench/validated_range.py [--train-dir weights/lite0_mix_v1_train] [--weights weights/lite0_mix_v1.npz]
                                    [--max-faces 3000] [--seed 0] [--out bench/results/validated_range.json]
                                    [--write-spec]

Reads the mix of the model's training run (``mix.json`` and the ``split_*.csv`` it names: the training and
validation faces of each source, paths relative to that folder), draws up to ``--max-faces`` faces per source
(seeded), gives each one to the measures as the training gave it to the model (its centre ``target / source``
framing, resized to the spec's input size with its interpolation: :func:`pipeline.training.dataset.load_crop_rgb`),
and writes the 1st and 99th percentile of each measure, per source and pooled, with counts, to ``--out``. A
source whose face files are not on this machine is skipped and named in the output. ``--write-spec`` also writes
the pooled range into the weights' sidecar as ``validated_range``, with ``validated_range_source`` saying on which
faces (and which source was absent).

``face_px`` (the face box's longer side in source pixels): a face image carries no box, so it is estimated per
source. A size column in the face set's own manifest (``faces.csv`` / ``manifest.csv`` beside its class folders)
wins: ``face_size_px`` (``extract_faces.py``: the box's longer side itself) or ``face_width_px`` /
``face_height_px`` (DFDC's release: the crop in the source frame, framed at the source's ``crop_margin``, so the
box is ``max(width, height) / crop_margin``). Without one (MesoNet's faces, stored at source resolution: sides of
76 to 822 px) the box is the image's longer side / the source's ``crop_margin``. So a clip of faces smaller than
the 1st percentile of the training faces is outside the range.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

REPO = Path(__file__).resolve().parent.parent
PERCENTILES = (1.0, 99.0)
# Decimals the spec's range is written with, per measure (rounded outwards: low down, high up).
SPEC_DECIMALS = {"face_px": 1, "brightness": 2, "noise_sigma": 3, "sharpness": 2, "blockiness": 4}


def size_table(face_files: list[Path]) -> tuple[dict[str, float], str]:
    """Source-frame sizes of a face set from its own manifest, if it has one: (resolved path -> px, column), or
    ({}, "") when none. ``px`` is ``face_size_px`` (the box side) or max(``face_width_px``, ``face_height_px``)
    (the crop side, still to be divided by the source's framing)."""
    from pipeline.training.dataset import FOLDER_MANIFESTS

    roots = {f.parent.parent for f in face_files}
    table: dict[str, float] = {}
    column = ""
    for root in sorted(roots):
        manifest = next((root / name for name in FOLDER_MANIFESTS if (root / name).is_file()), None)
        if manifest is None:
            continue
        with open(manifest, newline="", encoding="utf-8") as f:
            for row in csv.DictReader(f):
                if row.get("face_size_px"):
                    px, column = float(row["face_size_px"]), "face_size_px"
                elif row.get("face_width_px") and row.get("face_height_px"):
                    px, column = max(float(row["face_width_px"]), float(row["face_height_px"])), "face_width_px"
                else:
                    continue
                table[os.path.normpath(root / row["file"])] = px
    return table, column


def measure_source(source, fraction: float, spec, max_faces: int, seed: int) -> dict:
    """The measures of up to ``max_faces`` faces of one mix source (or why it was skipped)."""
    from pipeline.faces.quality import QUALITY_MEASURES, face_quality
    from pipeline.training.dataset import load_crop_rgb, load_faces

    items = load_faces(source.data, group_column=source.group_column)
    paths = [Path(os.path.normpath(item.source_path)) for item in items]
    present = [i for i, p in enumerate(paths) if p.is_file()]
    info: dict = {"listed": len(items), "present": len(present), "crop_margin": source.crop_margin}
    if not present:
        folders = sorted({str(p.parent.parent) for p in paths})
        info["skipped"] = f"none of its {len(items)} face files is on this machine (looked in {', '.join(folders)})"
        return info
    rng = np.random.default_rng(seed)
    chosen = sorted(rng.choice(present, size=min(max_faces, len(present)), replace=False).tolist())
    sizes, column = size_table([paths[i] for i in chosen])
    rows = []
    for i in chosen:
        crop = load_crop_rgb(paths[i], spec.input_size_px, spec.resize_interpolation, fraction)
        if column == "face_size_px":
            face_px = sizes[str(paths[i])]
        elif column:
            face_px = sizes[str(paths[i])] / source.crop_margin
        else:
            from PIL import Image

            with Image.open(paths[i]) as image:
                face_px = max(image.size) / source.crop_margin
        rows.append([getattr(face_quality(crop, face_px), name) for name in QUALITY_MEASURES])
    values = np.asarray(rows, dtype=np.float64)
    split_counts: dict[str, int] = {}
    for i in chosen:
        split = items[i].split or "unsplit"
        split_counts[split] = split_counts.get(split, 0) + 1
    info |= {
        "faces": len(chosen),
        "faces_per_split": dict(sorted(split_counts.items())),
        "fake": sum(items[i].label == "fake" for i in chosen),
        "face_px_from": (
            f"manifest column {column}" + ("" if column == "face_size_px" else f" / crop_margin {source.crop_margin:g}")
            if column
            else f"image side / crop_margin {source.crop_margin:g}"
        ),
        **summary(values),
    }
    info["_values"] = values
    return info


def summary(values: np.ndarray) -> dict:
    """Percentiles and medians per measure of (N, measures) ``values``."""
    from pipeline.faces.quality import QUALITY_MEASURES

    low, high = np.percentile(values, PERCENTILES, axis=0)
    return {
        "range": {
            name: [round(float(lo), 4), round(float(hi), 4)] for name, lo, hi in zip(QUALITY_MEASURES, low, high)
        },
        "median": {name: round(float(m), 4) for name, m in zip(QUALITY_MEASURES, np.median(values, axis=0))},
    }


def spec_range(pooled: dict[str, list[float]]) -> dict[str, list[float]]:
    """The pooled range as the spec holds it: each bound rounded outwards to ``SPEC_DECIMALS``."""
    out = {}
    for name, (low, high) in pooled.items():
        scale = 10 ** SPEC_DECIMALS[name]
        out[name] = [math.floor(low * scale) / scale, math.ceil(high * scale) / scale]
    return out


def source_line(sources: dict, total: int) -> str:
    """``validated_range_source``: on which faces the range was measured, and what was absent."""
    used = ", ".join(f"{name} {s['faces']:,} of {s['present']:,}" for name, s in sources.items() if "faces" in s)
    absent = [name for name, s in sources.items() if "skipped" in s]
    text = (
        f"1st-99th percentile of each measure on {total:,} training and validation faces of lite0_mix_v1's mix "
        f"({used}; seeded sample, bench/validated_range.py, {time.strftime('%Y-%m-%d')})"
    )
    if absent:
        text += f"; absent from the machine when it was computed, so not in the range: {', '.join(absent)}"
    return text


def write_spec(sidecar: Path, validated: dict[str, list[float]], line: str) -> None:
    """Put ``validated_range`` and ``validated_range_source`` into a weights sidecar, the rest unchanged; the spec
    must still load."""
    from pipeline.atomic import atomic_path

    fields = json.loads(sidecar.read_text(encoding="utf-8"))
    fields["validated_range"] = validated
    fields["validated_range_source"] = line
    with atomic_path(sidecar) as tmp:
        Path(tmp).write_text(json.dumps(fields, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--train-dir", type=Path, default=REPO / "weights" / "lite0_mix_v1_train")
    ap.add_argument("--weights", type=Path, default=REPO / "weights" / "lite0_mix_v1.npz")
    ap.add_argument("--max-faces", type=int, default=3000, help="faces drawn per source (default 3000)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "validated_range.json")
    ap.add_argument("--write-spec", action="store_true", help="write the pooled range into the weights' sidecar")
    args = ap.parse_args(argv)

    from pipeline.faces.quality import QUALITY_MEASURES
    from pipeline.models.weights import sidecar_path, spec_for_weights
    from pipeline.training.mix import MixSpec

    started = time.perf_counter()
    spec = spec_for_weights(args.weights)
    mix = MixSpec.from_json(args.train_dir / "mix.json")
    sources = {}
    for source in mix.sources:
        sources[source.name] = measure_source(source, mix.crop_fraction(source), spec, args.max_faces, args.seed)
        done = sources[source.name]
        print(f"{source.name}: {done.get('skipped') or str(done['faces']) + ' faces measured'}", flush=True)
    measured = [s.pop("_values") for s in sources.values() if "_values" in s]
    if not measured:
        print("no source's faces are on this machine", file=sys.stderr)
        return 1
    pooled = np.concatenate(measured)
    line = source_line(sources, len(pooled))
    results = {
        "model": spec.name,
        "input_size_px": spec.input_size_px,
        "resize_interpolation": spec.resize_interpolation,
        "crop_margin": mix.crop_margin,
        "percentiles": list(PERCENTILES),
        "max_faces_per_source": args.max_faces,
        "seed": args.seed,
        "measures": list(QUALITY_MEASURES),
        "sources": sources,
        "absent_sources": [name for name, s in sources.items() if "skipped" in s],
        "overall": {"faces": len(pooled), **summary(pooled)},
        "validated_range_source": line,
        "seconds": round(time.perf_counter() - started, 1),
    }
    results["spec_range"] = spec_range(results["overall"]["range"])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    for name in QUALITY_MEASURES:
        low, high = results["spec_range"][name]
        print(f"{name:12s} [{low:g}, {high:g}]")
    print(line)
    print(f"wrote {args.out} ({results['seconds']} s)")
    if args.write_spec:
        sidecar = sidecar_path(args.weights)
        write_spec(sidecar, results["spec_range"], line)
        loaded = spec_for_weights(args.weights)
        print(f"wrote validated_range into {sidecar}: {dict(loaded.validated_range)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
