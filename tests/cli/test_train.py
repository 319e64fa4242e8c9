"""pipeline/cli/train.py: ``python -m pipeline train`` called in-process as ``main(argv)``: flags onto the config,
usage errors, and one tiny real run through the command line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.cli.train import build_parser, config_from_args, main
from pipeline.training.train import AugmentConfig, TrainConfig
from tests.training.test_train import write_tiny_faces

REPO = Path(__file__).resolve().parents[2]


def test_flags_map_one_to_one_onto_the_config():
    argv = [
        "d.csv",
        "-o",
        "w.h5",
        "--epochs",
        "3",
        "--batch-size",
        "8",
        "--seed",
        "5",
        "--learning-rate",
        "0.01",
        "--val-fraction",
        "0.3",
        "--patience",
        "2",
        "--steps-per-epoch",
        "4",
        "--init-weights",
        "i.h5",
        "--resize",
        "nearest",
        "--crop-margin",
        "1.5",
        "--no-augment",
        "--report-dir",
        "rep",
        "--name",
        "n",
        "--license",
        "MIT",
    ]
    assert config_from_args(build_parser("train").parse_args(argv)) == TrainConfig(
        data=Path("d.csv"),
        output=Path("w.h5"),
        epochs=3,
        batch_size=8,
        seed=5,
        learning_rate=0.01,
        val_fraction=0.3,
        patience=2,
        steps_per_epoch=4,
        init_weights=Path("i.h5"),
        resize="nearest",
        crop_margin=1.5,
        augment=None,
        report_dir=Path("rep"),
        name="n",
        license="MIT",
    )
    defaults = config_from_args(build_parser("train").parse_args(["d.csv", "-o", "w.h5"]))
    assert defaults == TrainConfig(data=Path("d.csv"), output=Path("w.h5"))
    assert defaults.augment == AugmentConfig() and defaults.crop_margin == 1.3


@pytest.mark.parametrize(
    "argv, message",
    [
        (["{tmp}/nowhere", "-o", "{tmp}/w.h5"], "data not found"),
        (["{tmp}", "-o", "{tmp}/w.h5", "--init-weights", "{tmp}/x.h5"], "x.h5 not found"),
        (["{tmp}", "-o", "{tmp}/w.weights.h5"], "not .weights.h5"),
        (["{tmp}", "-o", "{tmp}/w.h5", "--crop-margin", "4"], "crop_margin must be in [0.5, 3]"),
        (["{tmp}", "-o", "{tmp}/w.h5", "--val-fraction", "0"], "val_fraction must be in (0, 1)"),
        (["{tmp}", "-o", "{tmp}/dir.h5"], "is not a file"),  # an existing folder named like the output
    ],
)
def test_usage_errors_exit_2_with_one_line(tmp_path, capsys, argv, message):
    (tmp_path / "dir.h5").mkdir()
    assert main([a.format(tmp=tmp_path) for a in argv]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1, err


def test_python_dash_m_pipeline_train_reports_a_usage_error(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline", "train", str(tmp_path / "nowhere"), "-o", str(tmp_path / "w.h5")],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )
    assert proc.returncode == 2 and "python -m pipeline train: error: data not found" in proc.stderr


@pytest.mark.slow
def test_a_tiny_run_through_the_command_line(tmp_path):
    """One epoch of one step: exit 0, weights and a sidecar that records the flags."""
    from pipeline.models.weights import spec_for_weights

    data = write_tiny_faces(tmp_path / "faces", videos_per_label=3, frames_per_video=2)
    out = tmp_path / "w" / "cli.h5"
    argv = [
        str(data),
        "-o",
        str(out),
        "--epochs",
        "1",
        "--steps-per-epoch",
        "1",
        "--batch-size",
        "4",
        "--val-fraction",
        "0.34",
        "--resize",
        "nearest",
        "--crop-margin",
        "1.4",
        "--name",
        "cli-run",
        "--no-augment",
        "-q",
    ]
    assert main(argv) == 0
    spec = spec_for_weights(out)  # the sidecar matches the file
    assert (spec.name, spec.output, spec.resize_interpolation, spec.crop_margin) == (
        "cli-run",
        "p_fake",
        "nearest",
        1.4,
    )
    training = json.loads(Path(str(out) + ".json").read_text())["training"]
    assert training["epochs_run"] == 1 and training["config"]["augment"] is None
    assert (out.parent / "cli_train" / "history.csv").is_file()
