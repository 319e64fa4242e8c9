"""Clip-level evaluation: the scanner on labelled shared clips, the same report as for faces."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from pipeline.cli.evaluate import main
from pipeline.training.evaluate_clips import find_clips, is_clip_data

CLIPS = {
    "real": ["ffpp_original_004.mp4", "dfdc_lynaeydofd.mp4"],
    "fake": ["ffpp_Deepfakes_519_515.mp4", "dfdc_brtujopkby.mp4"],
}


@pytest.fixture
def clip_folder(shared_data, tmp_path):
    root = tmp_path / "clips"
    for label, names in CLIPS.items():
        (root / label).mkdir(parents=True)
        for name in names:
            (root / label / name).symlink_to(shared_data / "videos" / label / name)
    (root / "unlabeled").mkdir()
    (root / "unlabeled" / "x.mp4").symlink_to(shared_data / "videos" / "unlabeled" / "liveportrait_driving_d0.mp4")
    return root


@pytest.mark.slow
def test_clip_evaluation_writes_the_report(clip_folder, tmp_path, meso4_df_path, reuse_models):
    report = tmp_path / "report"
    assert main([str(clip_folder), "-o", str(report), "--weights", str(meso4_df_path), "--max-frames", "4", "-q"]) == 0
    metrics = json.loads((report / "metrics.json").read_text())
    assert metrics["unit"] == "clip" and metrics["clips"] == 4  # unlabeled/ is left out
    assert metrics["n"] + sum(metrics["unscored"].values()) == 4
    assert {"roc_auc", "tp", "tn", "fp", "fn", "ece", "precision", "recall", "f1"} <= set(metrics)
    assert metrics["threshold"] == 0.5  # Meso4_DF's spec
    scores = pd.read_csv(report / "scores.csv", keep_default_na=False)
    assert list(scores.columns) == ["video_path", "label", "status", "p_fake", "predicted"]
    assert sorted(scores["label"]) == ["fake", "fake", "real", "real"]
    for row in scores.itertuples():
        if row.status == "ok":
            assert row.predicted == ("fake" if float(row.p_fake) >= 0.5 else "real")
    for name in (
        "roc.png",
        "score_histogram.png",
        "confusion_matrix.png",
        "reliability.png",
        "report.md",
        "clips.csv",
        "faces.csv",
    ):
        assert (report / name).stat().st_size > 0, name
    # the threshold rule: an explicit --threshold wins, rows are resumed (no second scan)
    assert (
        main(
            [
                str(clip_folder),
                "-o",
                str(report),
                "--weights",
                str(meso4_df_path),
                "--max-frames",
                "4",
                "--threshold",
                "0.9",
                "-q",
            ]
        )
        == 0
    )
    assert json.loads((report / "metrics.json").read_text())["threshold"] == 0.9
    # another model into the same folder: scored afresh, never mixed with the first model's rows
    other = meso4_df_path.parent / "MesoInception_DF.h5"
    assert main([str(clip_folder), "-o", str(report), "--weights", str(other), "--max-frames", "4", "-q"]) == 0
    rows = pd.read_csv(report / "clips.csv", keep_default_na=False)
    assert set(rows["model"]) == {"mesonet-mesoinception4-df"} and len(rows) == 4


def test_clip_data_is_told_apart_from_faces(clip_folder, shared_data, tmp_path):
    assert is_clip_data(clip_folder)
    assert not is_clip_data(shared_data / "faces")  # face images in real/ and fake/ (faces.csv beside)
    assert not is_clip_data(shared_data / "faces" / "faces.csv")  # file,label,... is a face manifest
    csv_path = tmp_path / "clips.csv"
    csv_path.write_text(
        "path,label\n"
        + "\n".join(f"{clip_folder / label / name},{label}" for label, names in CLIPS.items() for name in names)
        + "\n"
    )
    assert is_clip_data(csv_path)
    assert [c.label for c in find_clips(csv_path)] == ["real", "real", "fake", "fake"]
