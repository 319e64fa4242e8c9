"""pipeline/training/evaluate.py: metrics.json, scores.csv, plots and report; the seed's figures reproduced."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pipeline.training.evaluate import EvaluateConfig, evaluate, main, metrics_block
from pipeline.models.weights import WeightsSpec

REQUIRED_KEYS = ("n", "positive", "threshold", "tp", "tn", "fp", "fn", "accuracy", "precision", "recall", "f1",
                 "roc_auc", "eer")


class BrightnessScorer:
    """A stand-in for MesoScorer: p_fake = mean pixel / 255, so a test image's grey level is its score."""

    def __init__(self):
        self.spec = WeightsSpec(name="brightness", architecture="meso4", sha256="0" * 64, output="p_fake",
                                resize_interpolation="nearest")
        self.name = self.spec.name
        self.weights_path = None
        self.calls = []

    def score_p_fake(self, crops_rgb):
        self.calls.append(crops_rgb.shape)
        return crops_rgb.reshape(len(crops_rgb), -1).mean(axis=1) / 255.0


# (file, label, source video, grey level); p_fake = level / 255, FAKE when >= 0.5
KNOWN_SET = [
    ("f1a.png", "fake", "v1", 230),  # 0.902 fake, caught
    ("f1b.png", "fake", "v1", 200),  # 0.784 fake, caught
    ("f2.png", "fake", "v2", 100),   # 0.392 fake, missed
    ("r3a.png", "real", "v3", 50),   # 0.196 real, right
    ("r3b.png", "real", "v3", 140),  # 0.549 real, false alarm
    ("r4.png", "real", "v4", 20),    # 0.078 real, right
]


@pytest.fixture()
def known_manifest(tmp_path) -> Path:
    from PIL import Image

    folder = tmp_path / "faces"
    folder.mkdir()
    rows = [["file", "label", "source_video"]]
    for name, label, video, level in KNOWN_SET:
        Image.fromarray(np.full((48, 40, 3), level, np.uint8)).save(folder / name)
        rows.append([name, label, video])
    (folder / "broken.png").write_text("not an image")
    rows.append(["broken.png", "real", "v4"])
    with open(folder / "faces.csv", "w", newline="") as f:
        csv.writer(f).writerows(rows)
    return folder / "faces.csv"


@pytest.mark.parametrize("positive, counts", [
    # positive fake: fakes 230, 200 caught (TP 2), 100 missed (FN 1); reals 50, 20 right (TN 2), 140 (FP 1)
    ("fake", dict(tp=2, tn=2, fp=1, fn=1)),
    # positive real: the same decisions seen from the other class
    ("real", dict(tp=2, tn=2, fp=1, fn=1)),
])
def test_known_set_hand_computed(known_manifest, tmp_path, positive, counts):
    scorer = BrightnessScorer()
    out = tmp_path / f"report_{positive}"
    config = EvaluateConfig(data=known_manifest, report_dir=out, positive=positive, batch_size=4)
    metrics = evaluate(config, scorer=scorer)
    assert {k: metrics[k] for k in counts} == counts
    assert metrics["n"] == 6 and metrics["skipped"] == 1 and metrics["positive"] == positive
    assert metrics["accuracy"] == pytest.approx(4 / 6)
    assert metrics["precision"] == pytest.approx(2 / 3) and metrics["recall"] == pytest.approx(2 / 3)
    assert metrics["f1"] == pytest.approx(2 / 3)
    # 9 fake/real pairs, only 100 < 140 out of order; AUC does not depend on the positive class
    assert metrics["roc_auc"] == pytest.approx(8 / 9)
    assert metrics["resize"] == "nearest" and metrics["threshold"] == 0.5  # from the spec
    # video level: mean p_fake per source video: v1 0.843 F, v2 0.392 F (missed), v3 0.373 R, v4 0.078 R
    video = metrics["video"]
    assert video["n"] == 4 and video["roc_auc"] == 1.0
    expected_video = dict(tp=1, tn=2, fp=0, fn=1) if positive == "fake" else dict(tp=2, tn=1, fp=1, fn=0)
    assert {k: video[k] for k in expected_video} == expected_video
    assert scorer.calls == [(4, 256, 256, 3), (2, 256, 256, 3)]  # batched; the broken file is left out

    written = json.loads((out / "metrics.json").read_text())
    assert all(key in written and key in written["video"] for key in REQUIRED_KEYS)
    with open(out / "scores.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["file"] for r in rows] == [name for name, *_ in KNOWN_SET]
    assert float(rows[4]["p_fake"]) == pytest.approx(140 / 255, abs=1e-6) and rows[4]["predicted"] == "fake"
    assert (out / "skipped.csv").read_text().splitlines()[1].startswith("broken.png,")
    for png in ("confusion_matrix.png", "roc.png", "score_histogram.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = (out / "report.md").read_text()
    assert "![ROC](roc.png)" in report and "| roc_auc | 0.889 | 1.000 |" in report


def test_threshold_flag_moves_the_decisions(known_manifest, tmp_path):
    metrics = evaluate(EvaluateConfig(data=known_manifest, report_dir=tmp_path / "r", threshold=0.3),
                       scorer=BrightnessScorer())
    # at 0.3: fakes 230, 200, 100 all caught; reals 140 flagged, 50 and 20 not
    assert (metrics["tp"], metrics["fn"], metrics["fp"], metrics["tn"]) == (3, 0, 1, 2)
    assert metrics["roc_auc"] == pytest.approx(8 / 9)  # unchanged: from the continuous scores


def test_class_folders_have_no_video_block(tmp_path):
    from PIL import Image

    for label, level in (("Real", 10), ("DeepFake", 240)):
        (tmp_path / "d" / label).mkdir(parents=True)
        Image.fromarray(np.full((20, 20, 3), level, np.uint8)).save(tmp_path / "d" / label / "x.png")
    metrics = evaluate(EvaluateConfig(data=tmp_path / "d", report_dir=tmp_path / "r"), scorer=BrightnessScorer())
    assert (metrics["tp"], metrics["tn"], metrics["roc_auc"]) == (1, 1, 1.0)
    assert "video" not in metrics


def test_metrics_block_rule_is_the_scanners():
    # p_fake exactly at the threshold is FAKE, whichever class is positive
    fake_pos = metrics_block(["fake", "real"], np.array([0.5, 0.2]), positive="fake")
    real_pos = metrics_block(["fake", "real"], np.array([0.5, 0.2]), positive="real")
    assert (fake_pos["tp"], fake_pos["tn"]) == (1, 1)
    assert (real_pos["tp"], real_pos["tn"]) == (1, 1)
    assert list(fake_pos)[:len(REQUIRED_KEYS)] == list(REQUIRED_KEYS)


@pytest.mark.parametrize("argv, message", [
    (["{tmp}/nowhere", "-o", "{tmp}/r"], "data not found"),
    (["{data}", "-o", "{tmp}/r", "--weights", "{tmp}/missing.h5"], "weights file not found"),
    (["{data}", "-o", "{tmp}/r", "--weights", "{data}"], "unknown weights"),  # a CSV is no weights file
    (["{data}", "-o", "{tmp}/r", "--threshold", "1.5"], "threshold must be in"),
    (["{data}", "-o", "{tmp}/r", "--split", "val"], "no split column"),
])
def test_usage_errors_exit_2_with_one_line(known_manifest, tmp_path, capsys, argv, message):
    # every case fails before any weights are resolved (no download is tried)
    assert main([a.format(tmp=tmp_path, data=known_manifest) for a in argv]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1, err


def test_help_does_not_import_tensorflow():
    code = ("import sys\nfrom pipeline.__main__ import main\n"
            "for cmd in ('evaluate', 'train'):\n"
            "    try:\n        main([cmd, '--help'])\n    except SystemExit:\n        pass\n"
            "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'TensorFlow was imported'\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          cwd=Path(__file__).resolve().parents[2])
    assert proc.returncode == 0, proc.stderr
    assert "--positive" in proc.stdout and "--init-weights" in proc.stdout


# -- the seed's figures, reproduced with the real MesoNet weights ----------------------------------


@pytest.fixture(scope="module")
def reproduction(shared_data, tmp_path_factory):
    """One evaluation of MesoNet's Meso4_DF on the 5,586 faces, as the seed measured it: Keras'
    flow_from_directory resize (Pillow nearest), real as the positive class."""
    out = tmp_path_factory.mktemp("reproduction")
    weights = shared_data / "weights" / "mesonet" / "Meso4_DF.h5"
    rc = main([str(shared_data / "faces" / "faces.csv"), "--weights", str(weights), "-o", str(out),
               "--positive", "real", "--resize", "nearest", "-q"])
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
