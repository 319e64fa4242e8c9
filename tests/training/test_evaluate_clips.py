"""Clip-level evaluation: the scanner on labelled shared clips, the same report as for faces."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest

from pipeline.cli.evaluate import main
from pipeline.training import evaluate_clips as clips_module
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


def _md_table(report: str, heading: str) -> list[list[str]]:
    """The body rows of the first Markdown table under ``## heading``, as lists of cells (split
    at the pipes that are not escaped)."""
    section = report.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    lines = [line for line in section.splitlines() if line.startswith("|")]
    return [[cell.strip() for cell in re.split(r"(?<!\\)\|", line.strip()[1:-1])] for line in lines[2:]]


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
    report_md = (report / "report.md").read_text()
    table = _md_table(report_md, "Per clip")
    assert sorted(row[0] for row in table) == sorted(
        f"{label}/{name}" for label, names in CLIPS.items() for name in names
    )
    scanned = pd.read_csv(report / "clips.csv", keep_default_na=False)
    scanned.index = [Path(v).relative_to(clip_folder).as_posix() for v in scanned["video_path"]]
    for row in table:  # file, true label, p_fake, the scanner's own label, status, faces
        clip = scanned.loc[row[0]]
        assert row[1] == row[0].split("/")[0]
        assert row[2:] == [
            f"{float(clip.p_fake):.3f}" if clip.p_fake != "" else "-",
            clip.label or "-",
            clip.status,
            str(clip.n_faces),
        ]
    bins = _md_table(report_md, "Reliability bins")
    assert sum(int(row[1]) for row in bins[:-1]) == int(bins[-1][1]) == metrics["n"]
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


def test_the_report_has_a_row_per_clip_and_the_reliability_bins(tmp_path, monkeypatch):
    """The report of clips the scanner (stood in for here) scored, failed or found no face in."""
    from pipeline.models.factory import ModelSpec
    from pipeline.scan import batch
    from pipeline.scan.analyze import ScanConfig

    root = tmp_path / "clips"
    verdicts = {  # clip: (label, status, p_fake, scanner's label, faces)
        "real/a.mp4": ("real", "ok", 0.12, "REAL", 9),
        "real/b|c.mp4": ("real", "ok", 0.55, "FAKE", 4),
        "real/none.mp4": ("real", "no_face", None, "", 0),
        "fake/d.mp4": ("fake", "ok", 0.91, "FAKE", 12),
        "fake/e.mp4": ("fake", "ok", 0.18, "REAL", 3),
        "fake/broken.mp4": ("fake", "decode_error", None, "", 0),
    }
    for name in verdicts:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(b"")

    def scan(paths, output_csv, **kwargs):
        rows = []
        for path in paths:
            _, status, p_fake, label, faces = verdicts[str(Path(path).relative_to(root))]
            rows.append({"video_path": path, "status": status, "p_fake": p_fake, "label": label, "n_faces": faces})
        pd.DataFrame(rows).to_csv(output_csv, index=False)

    monkeypatch.setattr(batch, "run_batch", scan)
    monkeypatch.setattr(batch, "check_resume_settings", lambda *args: None)
    metrics = clips_module.evaluate_clips(root, tmp_path / "report", ModelSpec(), ScanConfig(threshold=0.5))
    report = (tmp_path / "report" / "report.md").read_text()
    assert sorted(_md_table(report, "Per clip")) == sorted(
        [
            ["fake/broken.mp4", "fake", "-", "-", "decode_error", "0"],
            ["fake/d.mp4", "fake", "0.910", "FAKE", "ok", "12"],
            ["fake/e.mp4", "fake", "0.180", "REAL", "ok", "3"],
            ["real/a.mp4", "real", "0.120", "REAL", "ok", "9"],
            ["real/b\\|c.mp4", "real", "0.550", "FAKE", "ok", "4"],  # a | in a name is escaped
            ["real/none.mp4", "real", "-", "-", "no_face", "0"],
        ]
    )
    # 4 scored clips: 0.12 and 0.18 in [0.1, 0.2), 0.55 in [0.5, 0.6), 0.91 in [0.9, 1.0]
    bins = _md_table(report, "Reliability bins")
    counts = {row[0]: int(row[1]) for row in bins[:-1]}
    assert counts["[0.1, 0.2)"] == 2 and counts["[0.5, 0.6)"] == 1 and counts["[0.9, 1.0]"] == 1
    assert sum(counts.values()) == metrics["n"] == 4 and bins[-1][:2] == ["all", "4"]
    assert bins[1] == ["[0.1, 0.2)", "2", "0.150", "0.500"]
    assert [b["n"] for b in metrics["reliability"]] == [0, 2, 0, 0, 0, 1, 0, 0, 0, 1]
