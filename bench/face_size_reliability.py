#!/usr/bin/env python3
"""Meso-4's reliability by face size: DFDC face crops shrunk to N px and enlarged back.

    python bench/face_size_reliability.py ../shared/data/dfdc_faces [--weights W] [--clusters 1200]

Takes the faces that were at least 160 px in their source frame, from ``--clusters`` DFDC
source clusters drawn at random (seed 0; real and fake faces of a cluster together), shrinks
each crop to N px (area averaging, as a small face in a frame is sampled), enlarges it back to
the model's input as the scanner's crop does (bilinear), and reports ROC AUC and the mean
``p_fake`` of real and fake faces per N. ``pipeline.scan.aggregate.SIZE_RELIABILITY_*`` are
these AUCs as margins over chance relative to full size.

The default weights were trained on DFDC faces, some of them probably among these; the AUCs are
then optimistic, but what this measures is how they fall with size.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

SIZES_PX = (256, 160, 112, 80, 64, 48, 32)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("faces", help="the dfdc_faces folder (faces.csv, real/, fake/)")
    ap.add_argument("--weights", default=None, help="default: the scanner's default weights")
    ap.add_argument("--clusters", type=int, default=1200)
    args = ap.parse_args(argv)

    import cv2
    import pandas as pd
    from sklearn.metrics import roc_auc_score

    from pipeline.models.factory import ModelSpec, load_scorer, resolve_model

    root = Path(args.faces)
    table = pd.read_csv(root / "faces.csv")
    table = table[table.face_width_px >= 160]
    clusters = np.array(sorted(table.original_video.unique()))
    np.random.default_rng(0).shuffle(clusters)
    table = table[table.original_video.isin(set(clusters[: args.clusters]))]
    weights_path, spec = resolve_model(ModelSpec(weights=args.weights))
    scorer = load_scorer(weights_path)
    images = [cv2.cvtColor(cv2.imread(str(root / f)), cv2.COLOR_BGR2RGB) for f in table.file]
    labels = (table.label == "fake").to_numpy().astype(int)
    side = spec.input_size_px
    print(f"{len(images)} faces ({labels.sum()} fake) from {args.clusters} clusters; model {scorer.name}")
    reference = None
    for size in SIZES_PX:
        batch = []
        for image in images:
            small = cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)
            grow = cv2.INTER_LINEAR if size < side else cv2.INTER_AREA
            batch.append(cv2.resize(small, (side, side), interpolation=grow))
        p = np.asarray(scorer.score_p_fake(np.stack(batch)))
        auc = roc_auc_score(labels, p)
        reference = auc if reference is None else reference
        print(
            f"face {size:3d} px: AUC {auc:.3f}  weight {(auc - 0.5) / (reference - 0.5):.2f}  "
            f"mean p_fake real {p[labels == 0].mean():.3f} fake {p[labels == 1].mean():.3f}",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
