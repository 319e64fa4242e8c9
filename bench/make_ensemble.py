#!/usr/bin/env python3
"""Write an ensemble file whose members are calibrated on validation faces.

    python bench/make_ensemble.py OUT.ensemble.json MEMBER.h5 ... --val MANIFEST.csv --val-crop-margin 1.3

Each member scores the validation faces (the ``val`` rows of the manifest, re-framed to the
member's own crop framing, see ``evaluate --faces-crop-margin``); its temperature is fitted on
them (:func:`pipeline.models.calibration.fit_temperature`) and written into the ensemble file,
with the member's ECE before and after. Members must share one input contract.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipeline.models.calibration import apply_temperature, expected_calibration_error, fit_temperature
from pipeline.models.factory import ModelSpec, load_models
from pipeline.training.dataset import load_crop_rgb, load_faces, select_split


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("output", type=Path)
    ap.add_argument("members", nargs="+")
    ap.add_argument("--val", type=Path, required=True, help="a face manifest with a split column")
    ap.add_argument("--val-crop-margin", type=float, required=True, help="framing of those faces")
    ap.add_argument("--threshold", type=float, default=0.5)
    ap.add_argument("--name", default=None)
    args = ap.parse_args(argv)

    items = select_split(load_faces(args.val), "val")
    y = np.array([i.y for i in items])
    entries, report = [], {}
    for member in args.members:
        scorer = load_models(ModelSpec(weights=member, download=False), with_detector=False).scorer
        fraction = min(1.0, scorer.spec.crop_margin / args.val_crop_margin)
        crops = np.stack([load_crop_rgb(i.source_path, 256, scorer.spec.resize_interpolation, fraction) for i in items])
        raw = scorer.score_p_fake(crops, calibrated=False)
        temperature = round(fit_temperature(raw, y), 4)
        entries.append({"weights": str(Path(member).resolve()), "temperature": temperature})
        report[scorer.name] = {
            "temperature": temperature,
            "ece_before": expected_calibration_error(raw, y),
            "ece_after": expected_calibration_error(apply_temperature(raw, temperature), y),
        }
    name = args.name or args.output.name.split(".")[0]
    args.output.write_text(
        json.dumps(
            {
                "name": name,
                "members": entries,
                "threshold": args.threshold,
                "provenance": f"members calibrated on the val faces of {args.val} ({len(items)} faces)",
            },
            indent=2,
        )
        + "\n"
    )
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
