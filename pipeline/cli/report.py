"""``python -m pipeline report``: one self-contained HTML page of a batch's scores.

    python -m pipeline report SCORES -o report.html [--evidence-dir DIR] [--faces-csv FACES] [--threshold T]

SCORES is the scanner's CSV or JSON Lines (by extension). The page opens from disk with no
network: counts, a histogram of p_fake with the threshold, a sortable, filterable, paginated
table of clips (worst first) and, for flagged clips, their evidence images and score over time
per person. The flags map one to one onto :class:`pipeline.report.html.ReportConfig`; see
:mod:`pipeline.report.html` for what the page holds. Imports no TensorFlow.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from pipeline.cli.common import (
    OneLineParser,
    clip_given_as_data,
    fail,
    input_problem,
    non_negative_int,
    output_file_problem,
    sibling_command,
    start_logging,
)
from pipeline.errors import ScannerError
from pipeline.report.html import ReportConfig, write_report
from pipeline.scan.records import LABELS, counts_text
from pipeline.settings import setting

log = logging.getLogger(__name__)


def _one_line(message: str) -> str:
    """An error message printable on one line whatever the file names in it hold (newlines,
    bytes that are not UTF-8)."""
    text = message.replace("\r", "\\r").replace("\n", "\\n")
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def build_parser(prog: str) -> argparse.ArgumentParser:
    defaults = ReportConfig(Path("scores.csv"), Path("report.html"))
    p = OneLineParser(
        prog=prog,
        description="One self-contained HTML report (opens from disk, no network) of a scores file: counts, a "
        "p_fake histogram with the threshold, a sortable and filterable table of clips (worst first), and the "
        "evidence of flagged clips. p_fake: 1 = fake.",
    )
    p.add_argument("scores", metavar="SCORES", help="the scanner's scores file: .csv or .jsonl")
    p.add_argument("-o", "--output", required=True, metavar="HTML", help="the page to write, e.g. report.html")
    p.add_argument(
        "--evidence-dir",
        metavar="DIR",
        help="the scan's --evidence-dir (read through its evidence.csv): images of flagged clips are embedded",
    )
    p.add_argument("--faces-csv", metavar="FACES", help="the scan's --faces-csv: score over time per person")
    p.add_argument(
        "--threshold",
        type=setting("threshold").parse,
        default=None,
        help=f"used only when SCORES records no threshold (older CSVs; default then {0.5:g})",
    )
    p.add_argument(
        "--evidence-clips",
        type=non_negative_int,
        default=defaults.evidence_clips,
        metavar="N",
        help="flagged (FAKE) clips shown with evidence, worst first (default: %(default)s)",
    )
    p.add_argument(
        "--images-per-clip",
        type=non_negative_int,
        default=defaults.images_per_clip,
        metavar="K",
        help="images embedded per clip: the boxed frame, then crops by p_fake (default: %(default)s)",
    )
    p.add_argument(
        "--evidence-budget-mb",
        type=float,
        default=defaults.evidence_budget_bytes / 1e6,
        metavar="MB",
        help="JPEG megabytes embedded in all, so the page stays quick to open (default: %(default)g)",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="warnings and errors only")
    return p


def config_from_args(args: argparse.Namespace) -> ReportConfig:
    """The flags, one to one. Raises ``ValueError`` naming a bad value."""
    if args.evidence_budget_mb < 0:
        raise ValueError(f"--evidence-budget-mb must be >= 0, got {args.evidence_budget_mb:g}")
    return ReportConfig(
        scores_path=Path(args.scores),
        output_path=Path(args.output),
        evidence_dir=Path(args.evidence_dir) if args.evidence_dir else None,
        faces_csv=Path(args.faces_csv) if args.faces_csv else None,
        threshold=args.threshold,
        evidence_clips=args.evidence_clips,
        images_per_clip=args.images_per_clip,
        evidence_budget_bytes=int(args.evidence_budget_mb * 1e6),
    )


def path_problem(args: argparse.Namespace, prog: str) -> str | None:
    """The first path of the wrong kind among the flags (missing, a folder for a file or the
    other way round, a clip where the scores go in, a clip's name for the page), or ``None``."""
    return (
        clip_given_as_data(
            args.scores,
            "report",
            "the scores file that score writes (.csv or .jsonl)",
            f"score it first: {sibling_command(prog, 'score')} {args.scores} -o scores.csv",
        )
        or input_problem(args.scores, "scores file", "file")
        or (args.faces_csv and input_problem(args.faces_csv, "faces CSV", "file"))
        or (args.evidence_dir and input_problem(args.evidence_dir, "evidence folder", "folder"))
        or output_file_problem(args.output, "output", "report.html")
    )


def main(argv: list[str] | None = None, prog: str = "python -m pipeline report") -> int:
    """Exit 0 with the page written; 2 with a one-line message for bad input (missing or
    unreadable scores, faces or evidence, a path of the wrong kind, such as a clip or a folder
    for the scores file, not a scores file) or an unwritable output."""
    args = build_parser(prog).parse_args(argv)
    start_logging(args.quiet)
    if problem := path_problem(args, prog):
        return fail(prog, _one_line(problem))
    try:
        summary = write_report(config_from_args(args))
    except ScannerError as exc:  # ours only: bad input, settings or output; anything else is a bug
        return fail(prog, _one_line(str(exc)))
    labels = {label: summary.ok_label_counts.get(label, 0) for label in summary.label_counts if label in LABELS}
    log.info(
        "%s: %d clips (%s), %d flagged with evidence (%d images, %.1f MB embedded), %.1f MB",
        summary.output_path,
        summary.n_clips,
        counts_text(summary.status_counts, labels),
        summary.evidence_clips,
        summary.embedded_images,
        summary.embedded_bytes / 1e6,
        summary.size_bytes / 1e6,
    )
    return 0
