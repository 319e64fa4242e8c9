"""``score_videos.py`` / ``python -m pipeline score``: score clips into a CSV.

Argument parsing imports nothing heavy: ``--help`` answers without loading TensorFlow.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from pipeline.scan.aggregate import AGGREGATIONS, DEFAULT_AGGREGATION
from pipeline.cli.common import (
    fail,
    non_negative_float,
    positive_float,
    positive_int,
    probability,
    start_logging,
)
from pipeline.faces.detect import DetectorConfig
from pipeline.scan.analyze import ScanConfig

log = logging.getLogger("pipeline")

_DEFAULTS = ScanConfig()
_DET_DEFAULTS = DetectorConfig()


def build_parser(prog: str = "score_videos.py") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog,
        description="Score video clips for face manipulation. One CSV row per clip with p_fake "
                    "(probability the clip is fake: 1 = fake, 0 = real) and a status.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="a clip, or a folder walked recursively for video files")
    p.add_argument("-o", "--output", required=True, help="output CSV (resumed if it exists, unless --overwrite)")
    p.add_argument("--weights", default=None,
                   help="Meso-4 weights file; default: weights/ in the repo, then the cache, then download")
    p.add_argument("--fps", type=positive_float, default=_DEFAULTS.fps, help="frames sampled per second of video")
    p.add_argument("--max-frames", type=positive_int, default=_DEFAULTS.max_frames,
                   help="sampled frames per clip at most (long clips are sampled evenly)")
    p.add_argument("--threshold", type=probability, default=_DEFAULTS.threshold,
                   help="label FAKE when p_fake >= threshold")
    p.add_argument("--aggregation", choices=sorted(AGGREGATIONS), default=DEFAULT_AGGREGATION,
                   help="how face scores become one p_fake per clip")
    p.add_argument("--faces-csv", default=None, help="also write one row per scored face here")
    p.add_argument("--workers", type=positive_int, default=1, help="clips scored in parallel (processes)")
    p.add_argument("--overwrite", action="store_true", help="start the output afresh instead of resuming")
    p.add_argument("--engine", choices=("local", "dask"), default="local",
                   help="local: this machine; dask: a Dask cluster (pip install -e .[dask])")
    p.add_argument("--address", default=None,
                   help="Dask scheduler, e.g. tcp://10.0.0.5:8786 (with --engine dask); without it a local "
                        "cluster of --workers processes is started")
    p.add_argument("--timeout", type=positive_float, default=_DEFAULTS.timeout_s,
                   help="seconds allowed per clip (status timeout)")
    p.add_argument("--detect-size", type=positive_int, default=_DET_DEFAULTS.detect_long_side_px,
                   help="long side in pixels of the copy of each frame MTCNN looks at")
    p.add_argument("--pyramid-scale", type=float, default=_DET_DEFAULTS.pyramid_scale,
                   help="ratio between MTCNN's pyramid levels (lower: faster, fewer levels)")
    p.add_argument("--full-frame-every", type=non_negative_float, default=_DET_DEFAULTS.full_frame_every_s,
                   metavar="SECONDS",
                   help="search whole frames at most this often and in between only around the faces found "
                        "last (matters when samples are closer than this); 0: every frame whole")
    p.add_argument("--min-confidence", type=probability, default=_DET_DEFAULTS.min_confidence,
                   help="MTCNN confidence below which a face is ignored")
    p.add_argument("--min-face", type=positive_int, default=_DET_DEFAULTS.min_face_px,
                   help="faces smaller than this (pixels, full resolution) are ignored")
    p.add_argument("--no-download", action="store_true", help="never download default weights")
    p.add_argument("-q", "--quiet", action="store_true", help="warnings and errors only")
    return p


def config_from_args(args: argparse.Namespace) -> ScanConfig:
    return ScanConfig(
        fps=args.fps, max_frames=args.max_frames, threshold=args.threshold, aggregation=args.aggregation,
        timeout_s=args.timeout,
        detector=DetectorConfig(detect_long_side_px=args.detect_size, min_confidence=args.min_confidence,
                                min_face_px=args.min_face, pyramid_scale=args.pyramid_scale,
                                full_frame_every_s=args.full_frame_every),
    )


def _check_writable(path: str, what: str) -> str | None:
    target = Path(path)
    if target.is_dir():
        return f"{what} {path} is a folder, not a file"
    parent = target.parent if str(target.parent) else Path(".")
    if not parent.is_dir():
        return f"{what} folder {parent} does not exist"
    if not os.access(parent, os.W_OK) or (target.exists() and not os.access(target, os.W_OK)):
        return f"{what} {path} is not writable"
    return None



def main(argv: list[str] | None = None, prog: str = "score_videos.py") -> int:
    """Run the scan. Exit 0 when the batch ran (failed clips are rows with a status); 2 with a
    one-line message for usage errors (missing input, unwritable output, bad weights)."""
    args = build_parser(prog).parse_args(argv)
    start_logging(args.quiet)
    from pipeline.video.discover import iter_videos, missing_inputs

    missing = missing_inputs(args.inputs)
    if missing:
        return fail(prog, f"input not found: {', '.join(missing)}")
    for path, what in ((args.output, "output"), (args.faces_csv, "faces CSV")):
        if path and (problem := _check_writable(path, what)):
            return fail(prog, problem)
    if args.faces_csv and Path(args.faces_csv).resolve() == Path(args.output).resolve():
        return fail(prog, "--faces-csv must differ from --output")
    if args.address and args.engine != "dask":
        return fail(prog, "--address needs --engine dask")
    if args.engine == "dask":
        import importlib.util

        if importlib.util.find_spec("distributed") is None:
            return fail(prog, "--engine dask needs Dask: pip install -e .[dask]")
    config = config_from_args(args)

    from pipeline.errors import OutputLockedError, WeightsError
    from pipeline.models.weights import resolve_weights, spec_for_weights

    try:
        weights_path = resolve_weights(args.weights, download=not args.no_download)
        spec_for_weights(weights_path)  # unknown or unreadable weights fail here, before any work
    except (FileNotFoundError, WeightsError) as exc:
        return fail(prog, str(exc))

    if args.engine == "dask":
        paths = iter_videos(args.inputs)  # walked lazily: a million paths never sit in memory twice
    else:
        paths = list(iter_videos(args.inputs))
        log.info("%d video files under %s", len(paths), ", ".join(args.inputs))

    from pipeline.scan.batch import run_batch

    detector = scorer = None
    if args.engine == "local" and args.workers <= 1:
        from pipeline.faces.detect import FaceDetector
        from pipeline.models.meso4 import MesoScorer

        try:
            scorer = MesoScorer.load(weights_path)
        except WeightsError as exc:
            return fail(prog, str(exc))
        detector = FaceDetector.create(config.detector)
    try:
        summary = run_batch(paths, args.output, config=config, weights_path=weights_path, detector=detector,
                            scorer=scorer, faces_csv=args.faces_csv, workers=args.workers,
                            overwrite=args.overwrite, engine=args.engine, address=args.address)
    except (OutputLockedError, ValueError, OSError) as exc:
        return fail(prog, str(exc))
    counts = ", ".join(f"{k} {v}" for k, v in sorted(summary.status_counts.items())) or "nothing new"
    log.info("wrote %s: %s (%d already done)", args.output, counts, summary.skipped)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
