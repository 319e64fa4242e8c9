"""The dataset workflow end to end, as the README shows it: extract_faces.py on the shared
clips, then one short training epoch on the dataset, then evaluate on its test split."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[2]


def _run(*args: str) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


@pytest.mark.slow
def test_extract_then_train_then_evaluate(shared_data, tmp_path):
    ds, weights, report = tmp_path / "DS", tmp_path / "w.h5", tmp_path / "report"
    built = _run(
        "extract_faces.py", str(shared_data / "videos"), "-o", str(ds), "--fps", "1", "--max-per-video", "6", "-q"
    )
    manifest = pd.read_csv(ds / "manifest.csv")
    assert set(manifest["split"]) == {"train", "val", "test"}
    for part in ("train", "val", "test"):  # 4 real and 7 fake clips: every part holds both labels ...
        assert set(manifest.loc[manifest["split"] == part, "label"]) == {"real", "fake"}
    assert "source videos with faces" not in built.stderr  # ... so nothing is said about the split
    _run("-m", "pipeline", "train", str(ds), "-o", str(weights), "--epochs", "1", "--batch-size", "8", "-q")
    spec = json.loads(Path(str(weights) + ".json").read_text())
    assert spec["output"] == "p_fake" and weights.is_file()
    _run("-m", "pipeline", "evaluate", str(ds), "--weights", str(weights), "-o", str(report), "--split", "test")
    metrics = json.loads((report / "metrics.json").read_text())
    assert metrics["n"] == int((manifest["split"] == "test").sum())
    assert 0.0 <= metrics["roc_auc"] <= 1.0 and "video" in metrics
    assert (report / "report.md").is_file() and (report / "roc.png").is_file()
    text = (report / "report.md").read_text()
    test_videos = manifest.loc[manifest["split"] == "test", "source_video"].nunique()
    video_rows = text.split("## Per source video")[1].split("## ")[0].count("\n| ") - 1  # less the header
    assert video_rows == test_videos == metrics["video"]["n"]
    bins = json.loads((report / "metrics.json").read_text())["reliability"]
    assert sum(b["n"] for b in bins) == metrics["n"] and "| all | " + str(metrics["n"]) + " |" in text
