"""What the command lines share: argparse value types (each names the rule it enforces), the
scan, detector and model flags (declared once here, used by ``score`` and ``serve``; the
detector flags by ``extract`` too), the one-line usage error, and logging set-up.

Importing this module imports nothing heavy; the config classes are imported by the functions
that need them, so ``--help`` of every command stays free of TensorFlow.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

if TYPE_CHECKING:
    from pipeline.faces.detect import DetectorConfig
    from pipeline.models.factory import ModelSpec
    from pipeline.scan.config import ScanConfig


class OneLineParser(argparse.ArgumentParser):
    """argparse's parser whose refusals are one line, as every other usage error of ours is
    ("score_videos.py: error: argument --fps: must be > 0, got 0 (see score_videos.py --help)"),
    not the whole usage block first; exit status 2, as argparse's."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


class DefaultsHelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """``--help`` with each option's default, except where there is none to show (``None``,
    ``False`` of a switch, an empty string): those options say in words what happens without them."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None or action.default is False or action.default == "":
            return action.help
        return super()._get_help_string(action)


def positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def non_negative_float(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {text}")
    return value


def non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


# --- detector flags: one row per DetectorConfig field a command line may set ------------------


@dataclasses.dataclass(frozen=True)
class DetectorFlag:
    """One command-line flag mapped one to one onto a :class:`DetectorConfig` field.

    ``flag``: the option (its argparse ``dest`` is the flag without dashes, ``-`` -> ``_``);
    ``field``: the DetectorConfig field it sets; ``type``: the argparse value type.
    """

    flag: str
    field: str
    help: str
    metavar: str | None = None

    @property
    def dest(self) -> str:
        return self.flag.lstrip("-").replace("-", "_")

    @property
    def type(self) -> Callable[[str], object]:
        """The argparse value type: the field's setting, its range declared once (:mod:`pipeline.settings`)."""
        from pipeline.settings import setting

        return setting(self.field).parse


DETECTOR_FLAGS: tuple[DetectorFlag, ...] = (
    DetectorFlag(
        "--detect-size",
        "detect_long_side_px",
        "long side in pixels of the copy of each frame MTCNN looks at",
        metavar="PIXELS",
    ),
    DetectorFlag(
        "--pyramid-scale",
        "pyramid_scale",
        "ratio between MTCNN's pyramid levels, in [0.3, 0.9] (lower: faster, fewer levels)",
        metavar="RATIO",
    ),
    DetectorFlag(
        "--full-frame-every",
        "full_frame_every_s",
        "search whole frames at most this often (seconds of video) and in between only around the faces found last "
        "(matters when samples are closer than this); 0: every frame whole",
        metavar="SECONDS",
    ),
    DetectorFlag(
        "--min-confidence",
        "min_confidence",
        "MTCNN confidence, in [0, 1], below which a face is ignored",
        metavar="P",
    ),
    DetectorFlag(
        "--min-face",
        "min_face_px",
        "faces smaller than this (pixels, full resolution) are ignored",
        metavar="PIXELS",
    ),
)


def add_detector_arguments(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
    defaults: DetectorConfig | None = None,
    *,
    flags: Sequence[str] | None = None,
) -> None:
    """Declare the MTCNN flags of :data:`DETECTOR_FLAGS` on ``parser``, defaults from ``defaults``
    (``DetectorConfig()`` when ``None``). ``flags``: only these options (e.g. a command whose own
    ``--min-face`` means something else leaves that one out); ``None``: all of them.
    Raises ``ValueError`` naming the valid flags for an unknown one."""
    from pipeline.faces.detect import DetectorConfig

    defaults = DetectorConfig() if defaults is None else defaults
    for flag in _chosen_flags(flags):
        parser.add_argument(
            flag.flag, type=flag.type, default=getattr(defaults, flag.field), metavar=flag.metavar, help=flag.help
        )


def detector_config_from_args(args: argparse.Namespace, defaults: DetectorConfig | None = None) -> DetectorConfig:
    """The :class:`DetectorConfig` the flags ask for: each flag of :data:`DETECTOR_FLAGS` that
    ``args`` has sets its field, every other field keeps ``defaults``' value. Raises
    ``ValueError`` (from DetectorConfig) for a value outside its valid range."""
    from pipeline.faces.detect import DetectorConfig

    defaults = DetectorConfig() if defaults is None else defaults
    given = {flag.field: getattr(args, flag.dest) for flag in DETECTOR_FLAGS if hasattr(args, flag.dest)}
    return dataclasses.replace(defaults, **given)


def _chosen_flags(flags: Sequence[str] | None) -> list[DetectorFlag]:
    if flags is None:
        return list(DETECTOR_FLAGS)
    known = {flag.flag: flag for flag in DETECTOR_FLAGS}
    unknown = [name for name in flags if name not in known]
    if unknown:
        raise ValueError(f"unknown detector flags {unknown}; valid: {sorted(known)}")
    return [known[name] for name in flags]


# --- model and scan flags, shared by ``score`` and ``serve`` ------------------------------------


def add_model_arguments(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """``--weights`` and ``--no-download``: which Meso-4 file (see
    :func:`pipeline.models.weights.resolve_weights` for the default's search order)."""
    parser.add_argument(
        "--weights",
        default=None,
        metavar="FILE_OR_NAME",
        help="the model: a weights file (.npz head, .h5 Meso-4, .ensemble.json) or a model name such as "
        "lite0_mix_v1, meso4_mix_v2 or mesonet-meso4-df; default: lite0_mix_v1 in weights/ of the repo, then "
        "MesoNet's Meso4_DF in the cache, then its download",
    )
    parser.add_argument(
        "--no-download",
        action="store_true",
        help="never download MesoNet's weights (the fallback default, the mesonet-* names)",
    )


def add_scan_arguments(parser: argparse.ArgumentParser, *, timeout_default: float, timeout_help: str) -> None:
    """Declare the flags of a scan on ``parser``: the model (:func:`add_model_arguments`), the
    sampling and labelling of :class:`ScanConfig` (``--fps``, ``--max-frames``, ``--threshold``,
    ``--aggregation``, ``--timeout``) and the detector's (:func:`add_detector_arguments`).

    ``--threshold`` defaults to ``None``: the weights' own threshold, resolved once by
    :func:`pipeline.models.factory.resolve_threshold`. ``timeout_default`` (seconds) and
    ``timeout_help`` differ by command (a clip in a batch, an upload on the web).
    """
    from pipeline.scan.aggregate import AGGREGATION_NAMES, DEFAULT_AGGREGATION
    from pipeline.scan.config import ScanConfig
    from pipeline.settings import setting

    defaults = ScanConfig()
    add_model_arguments(parser.add_argument_group("model"))
    scan = parser.add_argument_group("scan")
    scan.add_argument(
        "--fps",
        type=setting("fps").parse,
        default=defaults.fps,
        metavar="FPS",
        help="frames sampled per second of video",
    )
    scan.add_argument(
        "--max-frames",
        type=setting("max_frames").parse,
        default=defaults.max_frames,
        metavar="FRAMES",
        help="sampled frames per clip at most (long clips are sampled evenly)",
    )
    scan.add_argument(
        "--threshold",
        type=setting("threshold").parse,
        default=None,
        metavar="P",
        help="label FAKE when p_fake >= threshold, in (0, 1); default: the weights' own threshold "
        "(0.5 unless their spec says otherwise)",
    )
    scan.add_argument(
        "--aggregation",
        choices=sorted(AGGREGATION_NAMES),
        default=None,
        help="how face scores become one p_fake per clip; default: 'learned' (the model's clip decision, with "
        f"FAKE / UNCERTAIN / REAL) when the model has one, else {DEFAULT_AGGREGATION}",
    )
    scan.add_argument(
        "--timeout", type=setting("timeout_s").parse, default=timeout_default, metavar="SECONDS", help=timeout_help
    )
    add_detector_arguments(parser.add_argument_group("face detection"))


def model_spec_from_args(args: argparse.Namespace) -> ModelSpec:
    """The :class:`~pipeline.models.factory.ModelSpec` of the flags of :func:`add_scan_arguments`:
    weights, download, detector settings and the explicit threshold (``None`` if not given).
    Raises ``ValueError`` for detector values outside their valid range."""
    from pipeline.models.factory import ModelSpec

    return ModelSpec(
        weights=args.weights,
        download=not args.no_download,
        detector=detector_config_from_args(args),
        threshold=args.threshold,
    )


def scan_config_from_args(args: argparse.Namespace, weights_spec) -> ScanConfig:
    """The :class:`ScanConfig` of the flags of :func:`add_scan_arguments` for a model with
    ``weights_spec``: threshold, aggregation and labels settled by :meth:`ScanConfig.for_model`."""
    from pipeline.scan.config import ScanConfig

    return ScanConfig.for_model(
        weights_spec,
        threshold=args.threshold,
        aggregation=args.aggregation,
        fps=args.fps,
        max_frames=args.max_frames,
        timeout_s=args.timeout,
    )


def resolve_scan_settings(args: argparse.Namespace) -> tuple[ModelSpec, ScanConfig]:
    """The models and the scan the flags of :func:`add_scan_arguments` ask for, settled once
    before any work: (:class:`ModelSpec` pinned to the weights file found, :class:`ScanConfig`
    whose threshold is resolved by :func:`pipeline.models.factory.resolve_threshold`: the flag,
    else the weights spec's, else 0.5).

    Raises ``FileNotFoundError`` (no weights; the message lists every place tried),
    :class:`pipeline.errors.WeightsError` (unknown or unreadable weights) and ``ValueError``
    (flag values a config rejects)."""
    from pipeline.models.factory import resolve_model

    spec = model_spec_from_args(args)
    weights_path, weights_spec = resolve_model(spec)
    config = scan_config_from_args(args, weights_spec)
    return spec.with_weights(weights_path), config


# --- names, extras, errors and logging -------------------------------------------------------


def program_name(default: str, installed_as: Sequence[str] = ()) -> str:
    """The command name for usage lines, as the user typed it: the basename of ``sys.argv[0]``
    when it is one of ``installed_as`` (a console script such as ``deepfake-scan``, or a script
    such as ``score_videos.py``), else ``default``. Anything else in ``sys.argv[0]`` (pytest, a
    ``-c`` string, ``__main__.py`` of ``python -m``) gives ``default``."""
    name = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    return name if name in installed_as else default


def missing_extra(modules: Sequence[str], extra: str, needed_for: str) -> str | None:
    """A one-line ``pip install`` hint when one of ``modules`` (top-level import names) of the
    optional ``extra`` of setup.cfg is not installed, else ``None``. Checked with
    ``importlib.util.find_spec``, so nothing is imported."""
    import importlib.util

    absent = []
    for module in modules:
        try:
            if importlib.util.find_spec(module) is None:
                absent.append(module)
        except (ImportError, ValueError):  # a module set to None in sys.modules, or a broken one
            absent.append(module)
    if not absent:
        return None
    return f"{needed_for} needs {', '.join(absent)} (the [{extra}] extra): pip install -e '.[{extra}]'"


def logging_above_progress():
    """A context in which log lines are printed above tqdm's progress bars (through
    ``tqdm.write``) instead of through them; use it around a batch that shows a bar."""
    from tqdm.contrib.logging import logging_redirect_tqdm

    return logging_redirect_tqdm()


# --- paths: each command checks the kind of every path it is given with these, before any work --


def input_problem(path: str | os.PathLike, what: str, kind: str) -> str | None:
    """The one-line problem of an input ``path`` that should be a ``kind`` (``"file"`` or
    ``"folder"``): missing, or of the other kind; ``None`` when it is fine. ``what`` names it
    in the message (``"scores file"``, ``"--evidence-dir"``)."""
    if kind not in ("file", "folder"):
        raise ValueError(f"kind must be 'file' or 'folder', got {kind!r}")
    if not os.path.lexists(path):
        return f"{what} {os.fspath(path)} not found"
    if kind == "file" and os.path.isdir(path):
        return f"{what} {os.fspath(path)} is a folder, not a file"
    if kind == "folder" and not os.path.isdir(path):
        return f"{what} {os.fspath(path)} is a file, not a folder"
    return None


def output_file_problem(path: str | os.PathLike, what: str, example: str) -> str | None:
    """The one-line problem of a file a command is to write, or ``None``: a folder there, a
    missing or read-only folder for it, a read-only file, or the name of a video clip (a clip
    named where the output goes is a slip of the command line, never to be overwritten).
    ``example``: a file name of the right kind, for the message (``"scores.csv"``)."""
    from pipeline.video.discover import is_video_name

    target = Path(path)
    if target.is_dir():
        return f"{what} {path} is a folder, not a file"
    if is_video_name(target.name):
        return f"{what} {path} is named as a video clip; give a file such as {example}"
    parent = target.parent if str(target.parent) else Path(".")
    if not parent.is_dir():
        return f"{what} folder {parent} does not exist"
    if not os.access(parent, os.W_OK) or (target.exists() and not os.access(target, os.W_OK)):
        return f"{what} {path} is not writable"
    return None


def output_folder_problem(path: str | os.PathLike, what: str) -> str | None:
    """The one-line problem of a folder a command is to write into (made when missing), or
    ``None``: a file there."""
    if os.path.lexists(path) and not os.path.isdir(path):
        return f"{what} {os.fspath(path)} is a file, not a folder"
    return None


def clip_given_as_data(path: str | os.PathLike, command: str, expected: str, instead: str) -> str | None:
    """The one-line refusal of a single video clip given to ``command`` where it needs
    ``expected`` (labelled data), pointing to what to run ``instead``; ``None`` when ``path``
    is no clip (:func:`pipeline.video.discover.is_clip_file`)."""
    from pipeline.video.discover import is_clip_file

    if not is_clip_file(os.fspath(path)):
        return None
    return f"{os.fspath(path)} is one video clip; {command} needs {expected}; {instead}"


def sibling_command(prog: str, command: str) -> str:
    """How to type another command of the same entry point: ``python -m pipeline evaluate`` ->
    ``python -m pipeline score``; a script of its own (``extract_faces.py``) -> ``python -m
    pipeline score``."""
    head, _, last = prog.rpartition(" ")
    return f"{head} {command}" if head and last else f"python -m pipeline {command}"


# --- errors and logging -------------------------------------------------------------------------


def fail(prog: str, message: str) -> int:
    """Print a one-line usage error and return the exit status for it (2, as argparse does)."""
    print(f"{prog}: error: {message}", file=sys.stderr)
    return 2


def start_logging(quiet: bool) -> None:
    """Log to stderr (INFO, or WARNING with ``quiet``) and keep TensorFlow's C++ start-up
    chatter and Dask's per-task lines out of it."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    logging.basicConfig(
        level=logging.WARNING if quiet else logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("distributed").setLevel(logging.WARNING)
