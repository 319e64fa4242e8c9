"""The flags ``score`` and ``serve`` share, declared once in :mod:`pipeline.cli.common`."""

from __future__ import annotations

import argparse
import json
import shutil

import pytest

from pipeline.cli import common
from pipeline.cli import score as score_cli
from pipeline.cli import serve as serve_cli
from pipeline.errors import ConfigError
from pipeline.faces.detect import DetectorConfig
from tests.helpers import REPO_ROOT

SCAN_FLAGS = [
    "--weights",
    "--no-download",
    "--fps",
    "--max-frames",
    "--threshold",
    "--aggregation",
    "--timeout",
    "--detect-size",
    "--pyramid-scale",
    "--full-frame-every",
    "--min-confidence",
    "--min-face",
]


def _options(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    return {option: action for action in parser._actions for option in action.option_strings}


def _score_args(*flags: str) -> argparse.Namespace:
    return score_cli.build_parser().parse_args(["clips", "-o", "out.csv", *flags])


@pytest.mark.parametrize("flag", SCAN_FLAGS)
def test_score_and_serve_declare_each_scan_flag_alike(flag):
    score, serve = _options(score_cli.build_parser())[flag], _options(serve_cli.build_parser())[flag]
    assert (score.dest, score.type, score.choices) == (serve.dest, serve.type, serve.choices)
    if flag != "--timeout":  # a clip in a batch (900 s) against an upload on the web (300 s)
        assert score.default == serve.default and score.help == serve.help


def test_timeouts_differ_by_command():
    assert _options(score_cli.build_parser())["--timeout"].default == 900.0
    assert _options(serve_cli.build_parser())["--timeout"].default == 300.0


@pytest.mark.parametrize(
    "flag, field, value",
    [
        ("--detect-size", "detect_long_side_px", 640),
        ("--pyramid-scale", "pyramid_scale", 0.709),
        ("--full-frame-every", "full_frame_every_s", 0.5),
        ("--min-confidence", "min_confidence", 0.8),
        ("--min-face", "min_face_px", 30),
    ],
)
@pytest.mark.parametrize("parser", [score_cli.build_parser(), serve_cli.build_parser()], ids=["score", "serve"])
def test_each_detector_flag_reaches_the_model_spec(parser, flag, field, value):
    argv = ["clips", "-o", "out.csv"] if parser.prog == "score_videos.py" else []
    args = parser.parse_args([*argv, flag, str(value)])
    detector = common.model_spec_from_args(args).detector
    assert getattr(detector, field) == value
    # every other field keeps its default
    assert detector == DetectorConfig(**{field: value})


def test_defaults_give_the_default_configs():
    args = _score_args()
    spec = common.model_spec_from_args(args)
    assert spec.detector == DetectorConfig() and spec.threshold is None and spec.weights is None and spec.download
    config = common.scan_config_from_args(args, _Spec(0.5))
    assert (config.fps, config.max_frames, config.threshold, config.timeout_s) == (1.0, 40, 0.5, 900.0)
    assert config.aggregation == "track_max"  # a model without a clip decision


class _Spec:
    """A weights spec's labelling fields (its threshold, no clip decision)."""

    def __init__(self, threshold: float, clip_decision: str | None = None):
        self.name, self.threshold, self.clip_decision = "m", threshold, clip_decision


def test_scan_flags_reach_the_scan_config():
    args = _score_args(
        "--fps",
        "5",
        "--max-frames",
        "7",
        "--aggregation",
        "mean",
        "--timeout",
        "12",
        "--threshold",
        "0.3",
        "--no-download",
        "--weights",
        "w.h5",
    )
    config = common.scan_config_from_args(args, _Spec(0.477))
    assert (config.fps, config.max_frames, config.aggregation, config.timeout_s, config.threshold) == (
        5,
        7,
        "mean",
        12,
        0.3,
    )
    spec = common.model_spec_from_args(args)
    assert (spec.weights, spec.download, spec.threshold) == ("w.h5", False, 0.3)


def test_detector_flags_can_be_declared_in_part_with_other_defaults():
    """extract's own --min-face means something else: it declares the other flags only, and its
    defaults (every face kept by the detector) stay where no flag sets them."""
    parser = argparse.ArgumentParser()
    defaults = DetectorConfig(min_face_px=1)
    common.add_detector_arguments(parser, defaults, flags=["--detect-size", "--pyramid-scale"])
    assert "--min-face" not in _options(parser)
    args = parser.parse_args(["--detect-size", "320"])
    assert common.detector_config_from_args(args, defaults) == DetectorConfig(detect_long_side_px=320, min_face_px=1)


def test_an_unknown_detector_flag_names_the_valid_ones():
    with pytest.raises(ValueError, match="--detect-size"):
        common.add_detector_arguments(argparse.ArgumentParser(), flags=["--nope"])


def test_a_detector_value_out_of_range_is_refused_by_the_parser_with_its_declared_range(capsys):
    with pytest.raises(SystemExit):
        _score_args("--pyramid-scale", "0.95")
    assert "argument --pyramid-scale: must be in [0.3, 0.9], got 0.95" in capsys.readouterr().err
    args = _score_args()
    args.pyramid_scale = 0.95  # past the parser: the config refuses it with the same range
    with pytest.raises(ConfigError, match=r"pyramid_scale must be in \[0.3, 0.9\], got 0.95"):
        common.model_spec_from_args(args)


@pytest.fixture
def weights_with_threshold(tmp_path):
    """A copy of the project's weights whose sidecar says threshold 0.7 (its sha256 still matches)."""
    weights = tmp_path / "scanner.h5"
    shutil.copyfile(REPO_ROOT / "weights" / "meso4_scanner_v1.h5", weights)
    fields = json.loads((REPO_ROOT / "weights" / "meso4_scanner_v1.h5.json").read_text())
    fields["threshold"] = 0.7
    (tmp_path / "scanner.h5.json").write_text(json.dumps(fields))
    return weights


@pytest.mark.parametrize(
    "flags, threshold",
    [
        ([], 0.7),  # no flag: the weights spec's
        (["--threshold", "0.55"], 0.55),  # the flag wins
    ],
)
@pytest.mark.parametrize("parser", [score_cli.build_parser(), serve_cli.build_parser()], ids=["score", "serve"])
def test_the_threshold_is_resolved_once_for_score_and_serve(parser, weights_with_threshold, flags, threshold):
    argv = ["clips", "-o", "out.csv"] if parser.prog == "score_videos.py" else []
    args = parser.parse_args([*argv, "--weights", str(weights_with_threshold), *flags])
    spec, config = common.resolve_scan_settings(args)
    assert config.threshold == threshold
    assert spec.weights == str(weights_with_threshold) and spec.download is False  # pinned to the file checked


def test_mesonet_weights_keep_the_default_threshold(shared_data):
    args = _score_args("--weights", str(shared_data / "weights" / "mesonet" / "Meso4_DF.h5"))
    assert common.resolve_scan_settings(args)[1].threshold == 0.5


def test_help_shows_no_none_defaults():
    text = score_cli.build_parser().format_help()
    assert "(default: None)" not in text and "(default: False)" not in text
    assert "(default: 40)" in text  # real defaults are still shown


# --- the path checks every command shares ---------------------------------------------------------


@pytest.mark.parametrize(
    "name, kind, expected",
    [
        ("missing", "file", "thing {p} not found"),  # nothing there
        ("missing", "folder", "thing {p} not found"),
        ("folder", "file", "thing {p} is a folder, not a file"),  # the other kind
        ("file.txt", "folder", "thing {p} is a file, not a folder"),
        ("file.txt", "file", None),  # the right kind
        ("folder", "folder", None),
    ],
)
def test_input_problem_names_the_path_and_the_kind_expected(tmp_path, name, kind, expected):
    (tmp_path / "folder").mkdir()
    (tmp_path / "file.txt").write_text("x")
    path = tmp_path / name
    assert common.input_problem(path, "thing", kind) == (expected and expected.format(p=path))


@pytest.mark.parametrize(
    "name, expected",
    [
        ("scores.csv", None),  # a new file in a folder that exists
        ("folder", "is a folder, not a file"),
        ("clip.MOV", "is named as a video clip; give a file such as out.csv"),  # never overwrites a clip
        ("nowhere/scores.csv", "folder {tmp}/nowhere does not exist"),
    ],
)
def test_output_file_problem(tmp_path, name, expected):
    (tmp_path / "folder").mkdir()
    problem = common.output_file_problem(tmp_path / name, "output", "out.csv")
    assert problem == expected if expected is None else expected.format(tmp=tmp_path) in problem


@pytest.mark.parametrize(
    "prog, expected",
    [
        ("python -m pipeline evaluate", "python -m pipeline score"),
        ("deepfake-scan report", "deepfake-scan score"),
        ("extract_faces.py", "python -m pipeline score"),  # a script of its own
    ],
)
def test_sibling_command_is_typed_as_the_command_was(prog, expected):
    assert common.sibling_command(prog, "score") == expected


@pytest.mark.parametrize(
    "argv, says",
    [
        (["clips"], "the following arguments are required: -o/--output"),
        (["clips", "-o", "o.csv", "--fps", "0"], "argument --fps: must be > 0, got 0"),
        (["clips", "-o", "o.csv", "--engine", "spark"], "argument --engine: invalid choice: 'spark'"),
    ],
)
def test_what_argparse_refuses_is_one_line_too(argv, says, capsys):
    with pytest.raises(SystemExit) as exit_info:
        score_cli.build_parser("score_videos.py").parse_args(argv)
    err = capsys.readouterr().err.strip()
    assert exit_info.value.code == 2 and len(err.splitlines()) == 1, err
    assert err.startswith(f"score_videos.py: error: {says}") and err.endswith("(see score_videos.py --help)")


def test_the_engine_flag_offers_the_engines_registry():
    from pipeline.scan.engines import ENGINE_CHOICES, ENGINES

    assert _options(score_cli.build_parser())["--engine"].choices == ENGINE_CHOICES
    assert set(ENGINE_CHOICES) <= set(ENGINES)  # "pool" is chosen by --workers, not by name
