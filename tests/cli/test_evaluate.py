"""pipeline/cli/evaluate.py: ``python -m pipeline evaluate`` called in-process as ``main(argv)``: usage errors,
--help without TensorFlow, the model from the factory and the threshold rule with real weights, and the seed's
figures reproduced with MesoNet's weights."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pipeline.cli.evaluate import build_parser, config_from_args, main
from pipeline.training.evaluate import EvaluateConfig
from tests.helpers import run_python
from tests.training.test_evaluate import KNOWN_SET, REQUIRED_KEYS, write_known_set

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture()
def known_manifest(tmp_path) -> Path:
    return write_known_set(tmp_path / "faces")


@pytest.mark.parametrize(
    "argv, message",
    [
        (["{tmp}/nowhere", "-o", "{tmp}/r"], "data not found"),
        (["{data}", "-o", "{tmp}/r", "--weights", "{tmp}/missing.h5"], "weights file not found"),
        (["{data}", "-o", "{tmp}/r", "--weights", "{data}"], "unknown weights"),  # a CSV is no weights file
        (["{data}", "-o", "{tmp}/r", "--split", "val"], "no split column"),
        (["{data}", "-o", "{data}"], "is a file"),  # the report folder is the manifest
    ],
)
def test_usage_errors_exit_2_with_one_line(known_manifest, tmp_path, capsys, argv, message):
    # every case fails before any weights are resolved (no download is tried)
    assert main([a.format(tmp=tmp_path, data=known_manifest) for a in argv]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1, err


def test_a_threshold_out_of_range_is_refused_by_the_parser_in_the_declared_words(known_manifest, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([str(known_manifest), "-o", str(tmp_path / "r"), "--threshold", "1.5"])
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err  # no usage block: one line
    assert exit_info.value.code == 2 and ("argument --threshold: must be in (0, 1), got 1.5" + " (see ") in err


def test_flags_map_one_to_one_onto_the_config():
    args = build_parser("evaluate").parse_args(
        [
            "d.csv",
            "-o",
            "r",
            "--weights",
            "w.h5",
            "--positive",
            "real",
            "--resize",
            "nearest",
            "--threshold",
            "0.4",
            "--split",
            "val",
            "--batch-size",
            "8",
            "--no-download",
            "--faces-crop-margin",
            "1.11",
        ]
    )
    assert config_from_args(args) == EvaluateConfig(
        data=Path("d.csv"),
        report_dir=Path("r"),
        weights=Path("w.h5"),
        positive="real",
        resize="nearest",
        threshold=0.4,
        split="val",
        batch_size=8,
        download=False,
        faces_crop_margin=1.11,
    )
    defaults = config_from_args(build_parser("evaluate").parse_args(["d.csv", "-o", "r"]))
    assert defaults == EvaluateConfig(data=Path("d.csv"), report_dir=Path("r"))  # None: the weights' spec decides


@pytest.mark.parametrize("command, flag", [("evaluate", "--positive"), ("train", "--init-weights")])
def test_help_does_not_import_tensorflow(command, flag):
    code = (
        "import sys\nfrom pipeline.__main__ import main\n"
        f"try:\n    main([{command!r}, '--help'])\nexcept SystemExit:\n    pass\n"
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'TensorFlow was imported'\n"
    )
    proc = run_python(code)
    assert proc.returncode == 0, proc.stderr
    assert flag in proc.stdout


def _weights_with_threshold(folder: Path, threshold: float) -> Path:
    """A copy of the project's weights whose sidecar says ``threshold`` (the sha256 still matches)."""
    weights = folder / "scanner.h5"
    shutil.copyfile(REPO / "weights" / "meso4_scanner_v1.h5", weights)
    fields = json.loads((REPO / "weights" / "meso4_scanner_v1.h5.json").read_text())
    fields["threshold"] = threshold
    (folder / "scanner.h5.json").write_text(json.dumps(fields))
    return weights


@pytest.mark.slow
def test_real_weights_come_from_the_factory_and_the_threshold_from_their_spec(known_manifest, tmp_path, loaded):
    weights = _weights_with_threshold(tmp_path, 0.37)
    assert main([str(known_manifest), "--weights", str(weights), "-o", str(tmp_path / "spec"), "-q"]) == 0
    assert (
        main([str(known_manifest), "--weights", str(weights), "-o", str(tmp_path / "flag"), "-q", "--threshold", "0.6"])
        == 0
    )
    assert [m.detector for m in loaded] == [None, None]  # faces are cropped already: no MTCNN
    assert [m.weights_path for m in loaded] == [weights, weights]
    by_spec = json.loads((tmp_path / "spec" / "metrics.json").read_text())
    by_flag = json.loads((tmp_path / "flag" / "metrics.json").read_text())
    assert (by_spec["threshold"], by_flag["threshold"]) == (0.37, 0.6)
    assert by_spec["resize"] == loaded[0].weights_spec.resize_interpolation  # the spec's, no --resize given
    assert by_spec["weights"]["crop_margin"] == loaded[0].weights_spec.crop_margin
    for out, threshold in (("spec", 0.37), ("flag", 0.6)):
        with open(tmp_path / out / "scores.csv", newline="") as f:
            rows = list(csv.DictReader(f))
        assert len(rows) == len(KNOWN_SET)
        assert all(r["predicted"] == ("fake" if float(r["p_fake"]) >= threshold else "real") for r in rows)


def test_python_dash_m_pipeline_evaluate_reports_a_usage_error(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline", "evaluate", str(tmp_path / "nowhere"), "-o", str(tmp_path / "r")],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )
    assert proc.returncode == 2 and "python -m pipeline evaluate: error: data not found" in proc.stderr


# -- the seed's figures, reproduced with the real MesoNet weights ----------------------------------


@pytest.fixture(scope="module")
def reproduction(shared_data, tmp_path_factory):
    """One evaluation of MesoNet's Meso4_DF on the 5,586 faces, as the seed measured it: Keras'
    flow_from_directory resize (Pillow nearest), real as the positive class."""
    out = tmp_path_factory.mktemp("reproduction")
    weights = shared_data / "weights" / "mesonet" / "Meso4_DF.h5"
    rc = main(
        [
            str(shared_data / "faces" / "faces.csv"),
            "--weights",
            str(weights),
            "-o",
            str(out),
            "--positive",
            "real",
            "--resize",
            "nearest",
            "-q",
        ]
    )
    assert rc == 0
    return out, json.loads((out / "metrics.json").read_text())


@pytest.mark.shared_data
@pytest.mark.slow
def test_reproduces_the_seed_figures(reproduction):
    _, m = reproduction
    assert (m["tp"], m["tn"], m["fp"], m["fn"]) == (2956, 2072, 205, 353)
    assert m["n"] == 5586 and m["positive"] == "real" and m["resize"] == "nearest"
    assert round(m["accuracy"], 3) == 0.900
    assert round(m["precision"], 3) == 0.935
    assert round(m["recall"], 3) == 0.893
    assert round(m["f1"], 3) == 0.914
    assert round(m["roc_auc"], 3) == 0.968
    assert m["weights"]["name"] == "mesonet-meso4-df"


@pytest.mark.shared_data
@pytest.mark.slow
def test_reproduction_report_files(reproduction):
    out, m = reproduction
    video = m["video"]
    assert video["n"] == 104 and all(key in video for key in REQUIRED_KEYS)
    assert video["roc_auc"] > 0.95  # averaging a clip's faces helps
    with open(out / "scores.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 5586 and rows[0]["file"].startswith("fake/")
    p = np.array([float(r["p_fake"]) for r in rows])
    fake = np.array([r["label"] == "fake" for r in rows])
    assert p[fake].mean() > 0.6 > 0.4 > p[~fake].mean()
    for png in ("confusion_matrix.png", "roc.png", "score_histogram.png"):
        assert (out / png).stat().st_size > 5000
