"""``extract_faces.py`` / ``python -m pipeline extract``: build a labelled face dataset from clips.

The command line only: flags -> :class:`pipeline.training.extract.ExtractConfig` (one to one),
MTCNN from the one factory (:func:`pipeline.models.factory.load_detector`), then
:func:`pipeline.training.extract.build_dataset`. Nothing heavy is imported before ``main`` runs
past argument parsing, so ``--help`` never imports TensorFlow.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from pipeline.cli.common import (
    DefaultsHelpFormatter,
    OneLineParser,
    add_detector_arguments,
    detector_config_from_args,
    fail,
    logging_above_progress,
    output_folder_problem,
    program_name,
    start_logging,
)

log = logging.getLogger(__name__)


def fractions(text: str) -> tuple[float, float, float]:
    """``--split``: three comma-separated fractions (train, val, test); their sum is checked by
    :class:`ExtractConfig`."""
    try:
        parts = [float(p) for p in text.split(",")]
    except ValueError:
        parts = []
    if len(parts) != 3:
        raise argparse.ArgumentTypeError(f"expected three fractions like 0.8,0.1,0.1, got {text!r}")
    return tuple(parts)  # type: ignore[return-value]


def build_parser(prog: str) -> argparse.ArgumentParser:
    from pipeline.training.extract import ExtractConfig

    d = ExtractConfig()
    p = OneLineParser(
        prog=prog,
        formatter_class=DefaultsHelpFormatter,
        description="Build a labelled face dataset from clips, cropped as the scanner crops them.",
    )
    p.add_argument(
        "sources",
        help="folder with one subfolder per label (real/, fake/), a CSV path,label[,source_id], or one clip "
        "(labelled by --label, else by the folder it is in: real/ or fake/)",
    )
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="dataset folder (resumed if it exists)")
    p.add_argument("--fps", type=float, default=d.fps, metavar="FPS", help="frames sampled per second of each clip")
    p.add_argument(
        "--max-per-video", type=int, default=d.max_per_video, metavar="FACES", help="faces kept per clip at most"
    )
    p.add_argument(
        "--stratify",
        action="store_true",
        help="even out the pose and resolution bins across classes (and print their table); the faces and "
        "clips it drops are counted per label and listed per clip in stratification_clips.csv",
    )
    p.add_argument(
        "--split",
        type=fractions,
        default=",".join(f"{x:g}" for x in d.split),  # a string default goes through ``type`` too
        metavar="TRAIN,VAL,TEST",
        help="fractions of the source videos per split; a part needs a source video of each label of its own "
        "(2 a label for train and val, 3 for test too), and a message says what a split of fewer holds",
    )
    p.add_argument("--seed", type=int, default=d.seed, help="seed of the split and the stratification")
    p.add_argument("--keep-size", action="store_true", help="keep the native crop size instead of 256x256 pixels")
    add_detector_arguments(p, d.detector, flags=["--min-face"])
    p.add_argument(
        "--min-sharpness",
        type=float,
        default=d.min_sharpness,
        metavar="VARIANCE",
        help="skip crops whose Laplacian variance (grey levels squared) is below this (blurred)",
    )
    p.add_argument(
        "--dedup",
        type=float,
        default=d.dedup_max_diff,
        metavar="GREY_LEVELS",
        help="skip a crop within this mean grey-level difference (0-255) of the previous one of the same person",
    )
    p.add_argument("--labels", default=",".join(d.labels), help="labels (subfolders) to take")
    p.add_argument(
        "--label",
        default=None,
        help="the label (real or fake) of SOURCES when it is one clip; default: the name of the folder it is in",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="warnings and errors only")
    return p


def config_from_args(args: argparse.Namespace):
    """The :class:`ExtractConfig` of the flags. Raises ``ValueError`` for values outside their
    range (e.g. a split that does not sum to 1)."""
    from pipeline.training.extract import ExtractConfig, canonical_label

    defaults = ExtractConfig()
    return ExtractConfig(
        fps=args.fps,
        max_per_video=args.max_per_video,
        keep_size=args.keep_size,
        min_sharpness=args.min_sharpness,
        dedup_max_diff=args.dedup,
        stratify=args.stratify,
        split=args.split,
        seed=args.seed,
        labels=tuple(canonical_label(x) or x for x in args.labels.split(",")),
        detector=detector_config_from_args(args, defaults.detector),
    )


def format_summary(summary: dict, labels: Sequence[str]) -> str:
    """The build's summary as a few lines and a table of faces per split and label, e.g.::

    faces in the manifest: 40 (44 before stratification)
    new this run: 40 faces in 12.3 s (3.25 crops/s)

    split   real  fake  total
    train     20    16     36
    val        2     2      4
    test       0     0      0
    """
    lines = [
        f"faces in the manifest: {summary['faces']}"
        + (
            f" ({summary['faces_before_stratify']} before stratification)"
            if summary["faces_before_stratify"] != summary["faces"]
            else ""
        ),
        f"new this run: {summary.get('new_faces', 0)} faces in {summary.get('seconds', 0.0)} s "
        f"({summary.get('crops_per_second', 0.0)} crops/s)",
        "",
    ]
    per_split = summary["per_split"]
    splits = ["train", "val", "test"] + sorted(set(per_split) - {"train", "val", "test"})
    header = ["split", *labels, "total"]
    rows = [
        [name, *(per_split.get(name, {}).get(label, 0) for label in labels), sum(per_split.get(name, {}).values())]
        for name in splits
    ]
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        lines.append(
            "  ".join(
                str(cell).ljust(w) if i == 0 else str(cell).rjust(w) for i, (cell, w) in enumerate(zip(row, widths))
            )
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    """Build the dataset. Exit 0 with the summary printed; 2 with a one-line message for usage
    errors (missing sources or sources of the wrong kind, a clip with no label, no labelled
    clips, a dataset folder that is a file, a locked or unwritable output), before the detector
    is loaded. ``prog``: the command name in messages (``None``: ``extract_faces.py``)."""
    prog = prog or program_name("extract_faces.py", ("extract_faces.py",))
    args = build_parser(prog).parse_args(argv)
    start_logging(args.quiet)
    from pipeline.errors import ScannerError, writing
    from pipeline.training.extract import build_dataset, find_sources

    if problem := output_folder_problem(args.output, "dataset folder"):
        return fail(prog, problem)
    try:
        config = config_from_args(args)
        clips = find_sources(args.sources, config.labels, label=args.label)
    except ScannerError as exc:
        return fail(prog, str(exc))
    if not clips:
        return fail(
            prog,
            f"no labelled clips under {args.sources}: expected subfolders named after the labels "
            f"{list(config.labels)} holding video clips, a CSV path,label[,source_id], or one clip",
        )
    from pipeline.models.factory import load_detector

    detector = load_detector(config.detector)
    try:
        with logging_above_progress(), writing(args.output):  # warnings mid-build go above the bar
            summary = build_dataset(clips, args.output, detector, config)
    except ScannerError as exc:  # ours only: anything else is a bug, with its traceback
        return fail(prog, str(exc))
    if config.stratify:
        print("faces per pose and size bin, before and after stratification:")
        print(summary["table"])
    print(format_summary(summary, config.labels), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
