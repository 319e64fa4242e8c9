"""``python -m pipeline evaluate``: metrics, plots and a short report of weights on labelled faces or clips.

    python -m pipeline evaluate DATA --weights W -o REPORT_DIR [--positive fake|real] [--resize nearest|area|bilinear]
    python -m pipeline evaluate CLIPS --weights W -o REPORT_DIR [--fps F --max-frames N --aggregation A]

DATA of face images is evaluated face by face (:mod:`pipeline.training.evaluate`); CLIPS (``real/``
and ``fake/`` folders of videos, or a CSV ``path,label``) go through the scanner, clip by clip
(:mod:`pipeline.training.evaluate_clips`).

The flags map one to one onto :class:`pipeline.training.evaluate.EvaluateConfig`; the work and the
files written are described in :mod:`pipeline.training.evaluate`. ``--help`` imports no TensorFlow.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from pipeline.cli.common import (
    DefaultsHelpFormatter,
    OneLineParser,
    add_detector_arguments,
    clip_given_as_data,
    detector_config_from_args,
    fail,
    output_folder_problem,
    positive_int,
    sibling_command,
    start_logging,
)
from pipeline.faces.crop import RESIZE_INTERPOLATIONS
from pipeline.scan.aggregate import AGGREGATION_NAMES, DEFAULT_AGGREGATION
from pipeline.scan.config import ScanConfig
from pipeline.settings import setting
from pipeline.training.evaluate import POSITIVE_CLASSES, SCORE_BATCH, EvaluateConfig

log = logging.getLogger(__name__)


def build_parser(prog: str) -> argparse.ArgumentParser:
    p = OneLineParser(
        prog=prog,
        formatter_class=DefaultsHelpFormatter,
        description="Metrics, plots and a report of weights on labelled face crops, or on labelled video clips "
        "run through the scanner (p_fake, 1 = fake; FAKE when p_fake >= threshold).",
    )
    p.add_argument(
        "data",
        metavar="DATA",
        help="face images: a folder with real/ and fake/ (or Real/ and DeepFake/) subfolders, or a manifest "
        "CSV file,label[,source_video][,split]; or video clips: real/ and fake/ folders of clips, or a CSV "
        "path,label (scored by the scanner, clip by clip)",
    )
    p.add_argument(
        "-o",
        "--output",
        dest="report_dir",
        required=True,
        metavar="REPORT_DIR",
        help="folder for metrics.json, scores.csv, plots and report.md",
    )
    p.add_argument(
        "--weights",
        metavar="FILE_OR_NAME",
        help="weights file or model name (any registered model); default: the scanner's default model",
    )
    p.add_argument(
        "--positive",
        choices=POSITIVE_CLASSES,
        default="fake",
        help="positive class for TP/precision/recall/F1",
    )
    p.add_argument(
        "--resize",
        choices=RESIZE_INTERPOLATIONS,
        default=None,
        help="interpolation to the model's input size in pixels; default: the weights' spec",
    )
    p.add_argument(
        "--threshold",
        type=setting("threshold").parse,
        default=None,
        metavar="P",
        help="FAKE when p_fake >= P, in (0, 1); default: the weights' spec",
    )
    p.add_argument("--split", default=None, help="only this split of a manifest with a split column (train/val/test)")
    p.add_argument("--batch-size", type=int, default=SCORE_BATCH, metavar="FACES", help="faces per model call")
    p.add_argument(
        "--no-download",
        action="store_true",
        help="never download MesoNet's weights (the fallback default, the mesonet-* names)",
    )
    p.add_argument(
        "--faces-crop-margin",
        type=float,
        default=None,
        metavar="RATIO",
        help="framing of the face images (crop side / detector box side: 1.3 extract_faces.py, 1.11 MesoNet's, "
        "0.93 DFDC's); each is centre-cropped to the weights' framing. Default: scored whole",
    )
    clips = p.add_argument_group("clips (when DATA holds video clips: the scanner's settings)")
    defaults = ScanConfig()
    clips.add_argument(
        "--fps",
        type=setting("fps").parse,
        default=defaults.fps,
        metavar="FPS",
        help="frames sampled per second of video",
    )
    clips.add_argument(
        "--max-frames",
        type=setting("max_frames").parse,
        default=defaults.max_frames,
        metavar="FRAMES",
        help="sampled frames per clip at most",
    )
    clips.add_argument(
        "--aggregation",
        choices=sorted(AGGREGATION_NAMES),
        default=None,
        help="how face scores become one p_fake per clip; default: 'learned' when the model has a clip "
        f"decision, else {DEFAULT_AGGREGATION}",
    )
    clips.add_argument(
        "--timeout",
        type=setting("timeout_s").parse,
        default=defaults.timeout_s,
        metavar="SECONDS",
        help="seconds allowed per clip",
    )
    clips.add_argument(
        "--workers", type=positive_int, default=1, metavar="N", help="clips scored in parallel, one process each"
    )
    add_detector_arguments(clips)
    p.add_argument("-q", "--quiet", action="store_true", help="warnings and errors only")
    return p


def run_clips(args: argparse.Namespace) -> dict:
    """Clip-level evaluation with the scanner's settings from the flags; the threshold resolved by
    the one rule (flag, else the weights spec's). Raises like the scanner's set-up."""
    from pipeline.models.factory import ModelSpec, resolve_model
    from pipeline.training.evaluate_clips import evaluate_clips

    spec = ModelSpec(
        weights=args.weights,
        download=not args.no_download,
        detector=detector_config_from_args(args),
        threshold=args.threshold,
    )
    weights_path, weights_spec = resolve_model(spec)  # no TensorFlow: the batch loads it once a clip opens
    config = ScanConfig.for_model(
        weights_spec,
        threshold=args.threshold,
        aggregation=args.aggregation,
        fps=args.fps,
        max_frames=args.max_frames,
        timeout_s=args.timeout,
    )
    return evaluate_clips(
        args.data,
        args.report_dir,
        spec.with_weights(weights_path),
        config,
        workers=args.workers,
    )


def config_from_args(args: argparse.Namespace) -> EvaluateConfig:
    """The flags, one to one. Raises ``ValueError`` naming a bad value."""
    return EvaluateConfig(
        data=Path(args.data),
        report_dir=Path(args.report_dir),
        weights=Path(args.weights) if args.weights else None,
        positive=args.positive,
        resize=args.resize,
        threshold=args.threshold,
        split=args.split,
        batch_size=args.batch_size,
        download=not args.no_download,
        faces_crop_margin=args.faces_crop_margin,
    )


def main(argv: list[str] | None = None, prog: str = "python -m pipeline evaluate") -> int:
    """Exit 0 with the report written; 2 with a one-line message for usage errors (missing data
    or weights, data of the wrong kind such as one clip, unknown weights, bad split, a report
    folder that is a file or cannot be written)."""
    args = build_parser(prog).parse_args(argv)
    start_logging(args.quiet)
    from pipeline.errors import ScannerError, writing
    from pipeline.report.evaluation import format_metric, summary_text
    from pipeline.training.evaluate import evaluate
    from pipeline.training.evaluate_clips import is_clip_data

    if problem := clip_given_as_data(
        args.data,
        "evaluate",
        "labels: real/ and fake/ folders of clips or face images, or a CSV path,label (clips) or file,label (faces)",
        f"to score one clip: {sibling_command(prog, 'score')} {args.data} -o scores.csv",
    ) or output_folder_problem(args.report_dir, "report folder"):
        return fail(prog, problem)
    if is_clip_data(args.data):
        try:
            with writing(f"the report to {args.report_dir}"):
                metrics = run_clips(args)
        except ScannerError as exc:  # ours only: anything else is a bug, with its traceback
            return fail(prog, str(exc))
        log.info(
            "%d clips (%d scored): ROC AUC %s, ECE %s; report in %s",
            metrics["clips"],
            metrics.get("n", 0),
            format_metric(metrics.get("roc_auc")),
            format_metric(metrics.get("ece")),
            args.report_dir,
        )
        return 0
    try:
        config = config_from_args(args)
    except ScannerError as exc:
        return fail(prog, str(exc))
    report_dir = config.report_dir
    try:
        with writing(f"the report to {report_dir}"):
            metrics = evaluate(config)
    except ScannerError as exc:
        return fail(prog, str(exc))
    log.info("%s; report in %s", summary_text(metrics), report_dir)
    return 0
