"""``score_videos.py`` / ``python -m pipeline score``: score clips into a CSV.

Argument parsing imports nothing heavy: ``--help`` answers without loading TensorFlow. The
scan, detector and model flags are declared once in :mod:`pipeline.cli.common` (shared with
``serve``); the models come from :func:`pipeline.models.factory.load_models`.
"""

from __future__ import annotations

import argparse
import itertools
import logging
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.cli.common import (
    DefaultsHelpFormatter,
    OneLineParser,
    add_scan_arguments,
    fail,
    logging_above_progress,
    missing_extra,
    output_file_problem,
    output_folder_problem,
    positive_int,
    program_name,
    resolve_scan_settings,
    start_logging,
)
from pipeline.scan.engines import ENGINE_CHOICES

if TYPE_CHECKING:
    from pipeline.models.factory import LoadedModels, ModelSpec
    from pipeline.scan.analyze import ScanConfig
    from pipeline.scan.batch import BatchSummary

log = logging.getLogger("pipeline")


def build_parser(prog: str = "score_videos.py") -> argparse.ArgumentParser:
    p = OneLineParser(
        prog=prog,
        description="Score video clips for face manipulation. One CSV row per clip with p_fake "
        "(probability the clip is fake: 1 = fake, 0 = real) and a status.",
        formatter_class=DefaultsHelpFormatter,
    )
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="a clip, or a folder walked recursively for video files")
    p.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="FILE",
        help="output: CSV, or JSON Lines (one object per clip) when it ends in .jsonl; resumed if it exists, "
        "unless --overwrite",
    )
    p.add_argument("--faces-csv", default=None, metavar="CSV", help="also write one row per scored face here")
    p.add_argument(
        "--tracks-csv",
        default=None,
        metavar="CSV",
        help="also write one row per person (track) of each ok clip here: faces, when seen, face size, mean and max "
        "p_fake, and whether it counted toward the clip's verdict and why; resumed with the output",
    )
    p.add_argument(
        "--evidence-dir",
        default=None,
        metavar="DIR",
        help="write each ok clip's most suspicious face crops (with a saliency overlay: Grad-CAM for Meso-4, "
        "occlusion for the default backbone model) and its worst frame with the faces boxed here as JPEG, "
        "indexed in DIR/evidence.csv",
    )
    p.add_argument(
        "--nest-faces",
        action="store_true",
        help="with a .jsonl output: put each clip's faces (the --faces-csv columns) in its object",
    )
    p.add_argument(
        "--workers", type=positive_int, default=1, metavar="N", help="clips scored in parallel, one process each"
    )
    p.add_argument("--overwrite", action="store_true", help="start the output afresh instead of resuming")
    p.add_argument(
        "--engine",
        choices=ENGINE_CHOICES,  # the engines' registry: a new engine is offered here by name
        default="local",
        help="local: this machine; dask: a Dask cluster (pip install -e '.[dask]')",
    )
    p.add_argument(
        "--address",
        default=None,
        metavar="URL",
        help="Dask scheduler, e.g. tcp://10.0.0.5:8786 (with --engine dask); without it a local "
        "cluster of --workers processes is started",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="warnings and errors only")
    add_scan_arguments(p, timeout_default=900.0, timeout_help="seconds allowed per clip (status timeout)")
    return p


def usage_problem(args: argparse.Namespace) -> str | None:
    """The first usage error of ``args`` that needs no model (missing input, unwritable output,
    flags that do not go together, Dask missing), or ``None``."""
    from pipeline.scan.jsonl import is_jsonl
    from pipeline.video.discover import missing_inputs

    missing = missing_inputs(args.inputs)
    if missing:
        return f"input not found: {', '.join(missing)}"
    for path, what, example in (
        (args.output, "output", "scores.csv"),
        (args.faces_csv, "faces CSV", "faces.csv"),
        (args.tracks_csv, "tracks CSV", "tracks.csv"),
    ):
        if path and (problem := output_file_problem(path, what, example)):
            return problem
    if args.faces_csv and Path(args.faces_csv).resolve() == Path(args.output).resolve():
        return "--faces-csv must differ from --output"
    if args.tracks_csv and Path(args.tracks_csv).resolve() in {
        Path(p).resolve() for p in (args.output, args.faces_csv) if p
    }:
        return "--tracks-csv must differ from --output and --faces-csv"
    if args.evidence_dir and (problem := output_folder_problem(args.evidence_dir, "--evidence-dir")):
        return problem
    if args.nest_faces and not is_jsonl(args.output):
        return "--nest-faces needs a JSON Lines output (-o NAME.jsonl)"
    if args.address and args.engine != "dask":
        return "--address needs --engine dask"
    if args.engine == "dask":
        return missing_extra(("dask", "distributed"), "dask", "--engine dask")
    return None


# how the scorer is started, for its usage line: the console script, or the script itself
PROGRAM_NAMES = ("score-videos", "score_videos.py")
EXIT_NO_VIDEOS = 1
EXIT_INTERRUPTED = 130  # as a shell reports a command ended by Ctrl-C (128 + SIGINT)


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    """Run the scan. Exit 0 when the batch ran (failed clips are rows with a status); 1 with a
    warning when the inputs hold no video file (before TensorFlow is loaded); 2 with a one-line
    message for usage errors (missing input, unwritable output, bad weights, output locked,
    Dask missing); 130 on Ctrl-C (the rows written so far stay; rerun to resume).

    ``prog``: the command name in messages; ``None`` takes it from ``sys.argv[0]``
    (:data:`PROGRAM_NAMES`), else ``score_videos.py``."""
    prog = prog or program_name("score_videos.py", PROGRAM_NAMES)
    args = build_parser(prog).parse_args(argv)
    start_logging(args.quiet)
    if problem := usage_problem(args):
        return fail(prog, problem)
    try:
        return _score(args, prog)
    except KeyboardInterrupt:
        log.warning("interrupted: the rows written so far are in %s; run the same command again to resume", args.output)
        return EXIT_INTERRUPTED


def _first_video_or_none(inputs: list[str]) -> Iterator[str] | None:
    """The video paths under ``inputs`` as a lazy iterator, or ``None`` when there is none.
    Only the first path is looked for here; the rest of the walk happens as the batch goes."""
    from pipeline.video.discover import iter_videos

    paths = iter_videos(inputs)
    first = next(paths, None)
    return None if first is None else itertools.chain([first], paths)


def _score(args: argparse.Namespace, prog: str) -> int:
    """Settle the weights and settings (usage errors first), look for a first clip, then load the
    models and run the batch; ``main``'s exit statuses."""
    from pipeline.errors import ScannerError

    try:
        spec, config = resolve_scan_settings(args)  # no TensorFlow yet: files and their specs only
    except ScannerError as exc:  # ours only: anything else is a bug, with its traceback
        return fail(prog, str(exc))
    paths = _first_video_or_none(args.inputs)
    if paths is None:
        log.warning("no video files under %s", ", ".join(args.inputs))
        return EXIT_NO_VIDEOS
    if not args.overwrite:  # a resume made another way stops before TensorFlow is loaded
        from pipeline.scan.batch import check_resume_settings
        from pipeline.scan.provenance import run_settings

        try:
            check_resume_settings(Path(args.output), run_settings(spec, config))
        except ScannerError as exc:
            return fail(prog, str(exc))
    # the spec: this process loads it when its first clip is due (a resume with nothing left never
    # loads TensorFlow); worker processes load it themselves
    try:
        with logging_above_progress():  # a warning mid-batch is printed above the bar, not through it
            summary = _run(args, spec, config, paths)
    except ScannerError as exc:
        return fail(prog, str(exc))
    counts = summary.counts_text() or "nothing new"  # e.g. ok 27 (FAKE 5, UNCERTAIN 6, REAL 16), no_face 2
    log.info("wrote %s: %s (%d already done)", args.output, counts, summary.skipped)
    return 0


def _run(
    args: argparse.Namespace, models: ModelSpec | LoadedModels, config: ScanConfig, paths: Iterator[str]
) -> BatchSummary:
    """The batch itself: :func:`pipeline.scan.batch.run_batch` over ``paths``, the clips under
    the inputs (listed first for the local engine, so the bar shows a total)."""
    from pipeline.report.explain import result_explanation
    from pipeline.scan.batch import run_batch

    if args.engine == "dask":
        batch: Iterable[str] = paths  # walked lazily: a million paths never sit in memory twice
    else:
        batch = list(paths)
        log.info("%d video files under %s", len(batch), ", ".join(args.inputs))
    return run_batch(
        batch,
        args.output,
        config=config,
        models=models,
        faces_csv=args.faces_csv,
        tracks_csv=args.tracks_csv,
        workers=args.workers,
        overwrite=args.overwrite,
        engine=args.engine,
        address=args.address,
        nest_faces=args.nest_faces,
        evidence_dir=args.evidence_dir,
        explain=result_explanation,  # JSON Lines objects carry the verdict in words
    )


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
