"""``python -m pipeline evaluate``: metrics, plots and a short report of Meso-4 weights on labelled faces.

    python -m pipeline evaluate DATA --weights W -o REPORT_DIR [--positive fake|real] [--resize nearest|area|bilinear]

The flags map one to one onto :class:`pipeline.training.evaluate.EvaluateConfig`; the work and the
files written are described in :mod:`pipeline.training.evaluate`. ``--help`` imports no TensorFlow.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from pipeline.cli.common import fail, start_logging
from pipeline.faces.crop import RESIZE_INTERPOLATIONS
from pipeline.training.evaluate import POSITIVE_CLASSES, SCORE_BATCH, EvaluateConfig

log = logging.getLogger(__name__)


def build_parser(prog: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog,
        description="Metrics, plots and a report of Meso-4 weights on labelled face crops "
        "(p_fake, 1 = fake; FAKE when p_fake >= threshold).",
    )
    p.add_argument(
        "data",
        metavar="DATA",
        help="folder with real/ and fake/ (or Real/ and DeepFake/) subfolders, "
        "or a manifest CSV file,label[,source_video][,split]",
    )
    p.add_argument(
        "-o",
        "--output",
        dest="report_dir",
        required=True,
        metavar="REPORT_DIR",
        help="folder for metrics.json, scores.csv, plots and report.md",
    )
    p.add_argument("--weights", metavar="PATH", help="Meso-4 weights (default: the scanner's default model)")
    p.add_argument(
        "--positive",
        choices=POSITIVE_CLASSES,
        default="fake",
        help="positive class for TP/precision/recall/F1 (default: fake)",
    )
    p.add_argument(
        "--resize",
        choices=RESIZE_INTERPOLATIONS,
        default=None,
        help="interpolation to the model's input size (default: the weights' spec)",
    )
    p.add_argument("--threshold", type=float, default=None, help="FAKE when p_fake >= T (default: the weights' spec)")
    p.add_argument("--split", default=None, help="only this split of a manifest with a split column (train/val/test)")
    p.add_argument("--batch-size", type=int, default=SCORE_BATCH, help="faces per model call")
    p.add_argument("-q", "--quiet", action="store_true", help="warnings and errors only")
    return p


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
    )


def main(argv: list[str] | None = None, prog: str = "python -m pipeline evaluate") -> int:
    """Exit 0 with the report written; 2 with a one-line message for usage errors (missing data
    or weights, unknown weights, bad split, unwritable report folder)."""
    args = build_parser(prog).parse_args(argv)
    start_logging(args.quiet)
    from pipeline.errors import WeightsError
    from pipeline.training.dataset import DatasetError
    from pipeline.training.evaluate import evaluate, summary_text

    try:
        config = config_from_args(args)
    except ValueError as exc:
        return fail(prog, str(exc))
    report_dir = config.report_dir
    if report_dir.exists() and not report_dir.is_dir():
        return fail(prog, f"report folder {report_dir} is a file")
    try:
        metrics = evaluate(config)
    except (FileNotFoundError, WeightsError, DatasetError) as exc:
        return fail(prog, str(exc))
    except OSError as exc:
        return fail(prog, f"cannot write the report to {report_dir}: {exc}")
    log.info("%s; report in %s", summary_text(metrics), report_dir)
    return 0
