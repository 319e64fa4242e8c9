"""pipeline/training/evaluate.py: metrics.json, scores.csv, plots and report on a hand-computed set; the
scorer from the model factory and the threshold by its one rule. The command line (and the seed's figures
reproduced through it) is tested in tests/cli/test_evaluate.py."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import numpy as np
import pytest

from pipeline.models.weights import WeightsSpec
from pipeline.training.evaluate import EvaluateConfig, evaluate, metrics_block

REQUIRED_KEYS = (
    "n",
    "positive",
    "threshold",
    "tp",
    "tn",
    "fp",
    "fn",
    "accuracy",
    "precision",
    "recall",
    "f1",
    "roc_auc",
    "eer",
)


class BrightnessScorer:
    """A stand-in for MesoScorer: p_fake = mean pixel / 255, so a test image's grey level is its score."""

    def __init__(self, threshold: float = 0.5):
        self.spec = WeightsSpec(
            name="brightness",
            architecture="meso4",
            sha256="0" * 64,
            output="p_fake",
            resize_interpolation="nearest",
            threshold=threshold,
        )
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
    ("f2.png", "fake", "v2", 100),  # 0.392 fake, missed
    ("r3a.png", "real", "v3", 50),  # 0.196 real, right
    ("r3b.png", "real", "v3", 140),  # 0.549 real, false alarm
    ("r4.png", "real", "v4", 20),  # 0.078 real, right
]


def write_known_set(folder: Path) -> Path:
    """The images of :data:`KNOWN_SET` (grey squares) plus one broken file, and their manifest
    ``faces.csv`` in ``folder``; returns the manifest's path."""
    from PIL import Image

    folder.mkdir(parents=True)
    rows = [["file", "label", "source_video"]]
    for name, label, video, level in KNOWN_SET:
        Image.fromarray(np.full((48, 40, 3), level, np.uint8)).save(folder / name)
        rows.append([name, label, video])
    (folder / "broken.png").write_text("not an image")
    rows.append(["broken.png", "real", "v4"])
    with open(folder / "faces.csv", "w", newline="") as f:
        csv.writer(f).writerows(rows)
    return folder / "faces.csv"


@pytest.fixture()
def known_manifest(tmp_path) -> Path:
    return write_known_set(tmp_path / "faces")


@pytest.mark.parametrize(
    "positive, counts",
    [
        # positive fake: fakes 230, 200 caught (TP 2), 100 missed (FN 1); reals 50, 20 right (TN 2), 140 (FP 1)
        ("fake", dict(tp=2, tn=2, fp=1, fn=1)),
        # positive real: the same decisions seen from the other class
        ("real", dict(tp=2, tn=2, fp=1, fn=1)),
    ],
)
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


def _md_table(report: str, heading: str) -> list[list[str]]:
    """The body rows of the first Markdown table under ``## heading``, as lists of cells (split
    at the pipes that are not escaped)."""
    section = report.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    lines = [line for line in section.splitlines() if line.startswith("|")]
    return [[cell.strip() for cell in re.split(r"(?<!\\)\|", line.strip()[1:-1])] for line in lines[2:]]


def test_report_has_a_row_per_video_and_the_reliability_bins(known_manifest, tmp_path):
    out = tmp_path / "r"
    metrics = evaluate(EvaluateConfig(data=known_manifest, report_dir=out), scorer=BrightnessScorer())
    report = (out / "report.md").read_text()
    # mean p_fake per video: v1 (230 + 200) / 2 / 255, v2 100/255, v3 (50 + 140) / 2 / 255, v4 20/255
    assert _md_table(report, "Per source video") == [
        ["v1", "fake", "2", "0.843", "fake"],
        ["v2", "fake", "1", "0.392", "real"],
        ["v3", "real", "2", "0.373", "real"],
        ["v4", "real", "1", "0.078", "real"],  # broken.png (v4) was skipped: 1 face
    ]
    with open(out / "videos.csv", newline="") as f:
        assert [(r["source_video"], r["faces"]) for r in csv.DictReader(f)] == [
            ("v1", "2"),
            ("v2", "1"),
            ("v3", "2"),
            ("v4", "1"),
        ]
    # p_fake 0.078, 0.196 | 0.392 | 0.549 | 0.784 | 0.902: one face in each of six bins
    bins = _md_table(report, "Reliability bins")
    assert bins[-1] == ["all", "6", "0.484", "0.500"]
    assert {row[0]: int(row[1]) for row in bins[:-1]} == {
        "[0.0, 0.1)": 1,
        "[0.1, 0.2)": 1,
        "[0.2, 0.3)": 0,
        "[0.3, 0.4)": 1,
        "[0.4, 0.5)": 0,
        "[0.5, 0.6)": 1,
        "[0.6, 0.7)": 0,
        "[0.7, 0.8)": 1,
        "[0.8, 0.9)": 0,
        "[0.9, 1.0]": 1,
    }
    assert bins[3] == ["[0.3, 0.4)", "1", "0.392", "1.000"] and bins[2] == ["[0.2, 0.3)", "0", "-", "-"]
    assert sum(int(row[1]) for row in bins[:-1]) == metrics["n"] == 6
    written = json.loads((out / "metrics.json").read_text())["reliability"]
    assert [b["n"] for b in written] == [1, 1, 0, 1, 0, 1, 0, 1, 0, 1]
    assert written[2]["mean_p_fake"] is None and written[9]["bin"] == "[0.9, 1.0]"


def test_the_reliability_plot_marks_each_point_with_its_count(tmp_path, monkeypatch):
    from pipeline.training import plots

    figures = []
    monkeypatch.setattr(plots, "_save", lambda fig, path: figures.append(fig) or Path(path))
    p_fake = np.array([0.05, 0.06, 0.07, 0.42, 0.95, 0.97, 1.0])
    plots.plot_reliability({"faces": (p_fake, p_fake > 0.5)}, tmp_path / "r.png")
    (ax,) = figures[0].axes
    counts = [text.get_text() for text in ax.texts]
    assert counts == ["n=3", "n=1", "n=3"]  # one per non-empty bin, in bin order
    assert sum(int(c[2:]) for c in counts) == len(p_fake)
    assert "n=7" in ax.get_legend().get_texts()[1].get_text()


def test_threshold_flag_moves_the_decisions(known_manifest, tmp_path):
    metrics = evaluate(
        EvaluateConfig(data=known_manifest, report_dir=tmp_path / "r", threshold=0.3), scorer=BrightnessScorer()
    )
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
    assert list(fake_pos)[: len(REQUIRED_KEYS)] == list(REQUIRED_KEYS)


def test_the_threshold_is_the_weights_spec_unless_given(known_manifest, tmp_path):
    # the spec says 0.3: the decisions of test_threshold_flag_moves_the_decisions
    metrics = evaluate(EvaluateConfig(data=known_manifest, report_dir=tmp_path / "spec"), scorer=BrightnessScorer(0.3))
    assert metrics["threshold"] == 0.3 and (metrics["tp"], metrics["fn"], metrics["fp"], metrics["tn"]) == (3, 0, 1, 2)
    # an explicit threshold wins over the spec's
    metrics = evaluate(
        EvaluateConfig(data=known_manifest, report_dir=tmp_path / "flag", threshold=0.5), scorer=BrightnessScorer(0.3)
    )
    assert metrics["threshold"] == 0.5 and (metrics["tp"], metrics["fn"], metrics["fp"], metrics["tn"]) == (2, 1, 1, 2)
    assert json.loads((tmp_path / "flag" / "metrics.json").read_text())["threshold"] == 0.5


def test_resize_flag_overrides_the_spec_and_the_weights_contract_is_recorded(known_manifest, tmp_path):
    metrics = evaluate(
        EvaluateConfig(data=known_manifest, report_dir=tmp_path / "r", resize="area"), scorer=BrightnessScorer()
    )
    assert metrics["resize"] == "area"  # the spec says nearest
    assert metrics["weights"] == {
        "path": None,
        "name": "brightness",
        "sha256": "0" * 64,
        "output": "p_fake",
        "crop_margin": 1.3,
    }


def test_a_224_px_model_gets_224_px_crops_framed_as_its_spec_says(tmp_path):
    # the backbone family's contract: 224 px, framed at 0.93 of the detector box; faces stored at 1.3 are
    # centre-cut to 0.93 / 1.3 of their side first (a half-white, half-black face: the cut keeps more black)
    from PIL import Image

    folder = tmp_path / "faces"
    for label in ("fake", "real"):
        (folder / label).mkdir(parents=True)
        rgb = np.zeros((260, 260, 3), np.uint8)
        rgb[:, :130] = 255
        rgb[:, :10] = 0  # a black border the centre cut drops
        Image.fromarray(rgb).save(folder / label / "a.png")
    scorer = BrightnessScorer()
    scorer.spec = WeightsSpec(
        name="head",
        architecture="effnet-lite0-head",
        sha256="0" * 64,
        output="p_fake",
        input_size_px=224,
        input_scale="(x-127)/128",
        crop_margin=0.93,
    )
    whole = evaluate(EvaluateConfig(data=folder, report_dir=tmp_path / "whole"), scorer=scorer)
    cut = evaluate(EvaluateConfig(data=folder, report_dir=tmp_path / "cut", faces_crop_margin=1.3), scorer=scorer)
    assert {shape[1:] for shape in scorer.calls} == {(224, 224, 3)}
    assert whole["weights"]["crop_margin"] == cut["weights"]["crop_margin"] == 0.93
    p_whole = [float(r["p_fake"]) for r in csv.DictReader((tmp_path / "whole" / "scores.csv").read_text().splitlines())]
    p_cut = [float(r["p_fake"]) for r in csv.DictReader((tmp_path / "cut" / "scores.csv").read_text().splitlines())]
    assert p_whole[0] == pytest.approx(120 / 260, abs=0.01)  # columns 10-129 white of 260
    assert p_cut[0] == pytest.approx(0.5, abs=0.01)  # the centre 0.93/1.3 of the side, no border: half white


def test_without_a_scorer_the_factory_builds_one_without_detector(known_manifest, tmp_path, monkeypatch):
    from pipeline.models import factory

    calls = []
    scorer = BrightnessScorer()

    def fake_load_models(spec, *, with_detector=True):
        calls.append((spec, with_detector))
        return factory.LoadedModels(None, scorer, Path("w.h5"), 0.5)

    monkeypatch.setattr(factory, "load_models", fake_load_models)
    weights = tmp_path / "w.h5"
    config = EvaluateConfig(data=known_manifest, report_dir=tmp_path / "r", weights=weights, download=False)
    metrics = evaluate(config)
    assert calls == [(factory.ModelSpec(weights=weights, download=False), False)]
    assert metrics["weights"]["name"] == "brightness" and scorer.calls  # the factory's scorer did the scoring


def test_bad_data_fails_before_any_model_is_loaded(tmp_path, monkeypatch):
    from pipeline.models import factory
    from pipeline.training.dataset import DatasetError

    monkeypatch.setattr(factory, "load_models", lambda *a, **k: pytest.fail("loaded a model"))
    with pytest.raises(DatasetError, match="data not found"):
        evaluate(EvaluateConfig(data=tmp_path / "nowhere", report_dir=tmp_path / "r"))


@pytest.mark.parametrize(
    "overrides, message",
    [
        (dict(positive="both"), "positive must be one of"),
        (dict(resize="cubic"), "resize must be one of"),
        (dict(threshold=1.0), r"threshold must be in \(0, 1\)"),
        (dict(batch_size=0), "batch_size must be >= 1"),
    ],
)
def test_config_validation(overrides, message):
    with pytest.raises(ValueError, match=message):
        EvaluateConfig(**(dict(data=Path("d"), report_dir=Path("r")) | overrides))


def test_only_readable_images_count_and_none_readable_is_an_error(tmp_path):
    from pipeline.training.dataset import DatasetError

    folder = tmp_path / "faces"
    (folder / "real").mkdir(parents=True)
    (folder / "real" / "broken.png").write_text("not an image")
    with pytest.raises(DatasetError, match="no readable image"):
        evaluate(EvaluateConfig(data=folder, report_dir=tmp_path / "r"), scorer=BrightnessScorer())
