"""extract_faces.py: labelled clips in, face crops and a manifest out."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.helpers import astronaut_rgb, make_face_clip
from pipeline.training import extract
from pipeline.training.extract import ExtractConfig, FaceRecord, build_dataset, find_sources, stratify

MANIFEST_COLUMNS = ["file", "label", "source_video", "frame_index", "timestamp_s", "x1", "y1", "x2", "y2",
                    "det_confidence", "yaw_deg", "face_size_px", "sharpness", "split"]


def _still_face_clip(path: Path, duration_s: float = 3.0) -> Path:
    """A static shot: the same face in every frame (near-duplicates)."""
    import cv2

    from pipeline.video.ffmpeg_bin import ffmpeg_exe

    face = cv2.resize(astronaut_rgb(), (360, 360), interpolation=cv2.INTER_AREA)
    frame = np.full((720, 1280, 3), 40, np.uint8)
    frame[100:460, 400:760] = face
    raw = frame.tobytes() * int(duration_s * 25)
    subprocess.run([ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24",
                    "-s", "1280x720", "-r", "25", "-i", "pipe:", "-c:v", "libx264", "-pix_fmt", "yuv420p", str(path)],
                   input=raw, check=True, timeout=120)
    return path


def _two_face_clip(path: Path) -> Path:
    import cv2

    from pipeline.video.ffmpeg_bin import ffmpeg_exe

    face = cv2.resize(astronaut_rgb(), (450, 450), interpolation=cv2.INTER_AREA)
    raw = bytearray()
    for i in range(50):
        frame = np.full((720, 1280, 3), 40, np.uint8)
        frame[50:500, 20 + i:470 + i] = face
        frame[200:650, 800 - i:1250 - i] = face[:, ::-1]
        raw += frame.tobytes()
    subprocess.run([ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24",
                    "-s", "1280x720", "-r", "25", "-i", "pipe:", "-c:v", "libx264", "-pix_fmt", "yuv420p", str(path)],
                   input=bytes(raw), check=True, timeout=120)
    return path


@pytest.fixture(scope="module")
def sources(tmp_path_factory, clip_dir) -> Path:
    root = tmp_path_factory.mktemp("sources")
    for label in ("real", "Fake"):  # folder names in any case
        (root / label / "sub").mkdir(parents=True)
    make_face_clip(root / "real" / "a.mp4", duration_s=3)
    make_face_clip(root / "real" / "sub" / "b.mp4", duration_s=2)
    _two_face_clip(root / "Fake" / "c.mp4")
    _still_face_clip(root / "Fake" / "d.mp4")
    (root / "Fake" / "broken.mp4").write_bytes((clip_dir / "truncated.mp4").read_bytes())
    (root / "unlabeled").mkdir()
    make_face_clip(root / "unlabeled" / "e.mp4", duration_s=1)
    return root


@pytest.fixture(scope="module")
def dataset(tmp_path_factory, sources, detector) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("ds") / "DS"
    config = ExtractConfig(fps=4, max_per_video=8, split=(0.5, 0.25, 0.25))
    summary = build_dataset(find_sources(sources), out, detector, config, progress=False)
    return out, summary


def test_sources_are_found_by_label_folder(sources):
    clips = find_sources(sources)
    assert {c.label for c in clips} == {"real", "fake"}  # unlabeled/ is skipped, Fake/ is fake
    assert len(clips) == 5
    assert {c.source_video for c in clips} >= {"real/a", "real/sub/b", "Fake/c"}


def test_crops_are_256_rgb_faces(dataset, detector):
    import cv2

    out, _ = dataset
    manifest = pd.read_csv(out / "manifest.csv")
    assert list(manifest.columns[:len(MANIFEST_COLUMNS)]) == MANIFEST_COLUMNS
    for file in manifest["file"][::3]:
        bgr = cv2.imread(str(out / file))
        assert bgr.shape == (256, 256, 3)
        (faces,) = detector.detect([cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)])
        assert faces, f"no face in {file}"


def test_manifest_values_are_sane(dataset):
    out, summary = dataset
    m = pd.read_csv(out / "manifest.csv")
    assert len(m) == summary["faces"] > 0
    assert ((m["x2"] > m["x1"]) & (m["y2"] > m["y1"])).all()
    assert (m["det_confidence"] >= 0.9).all() and (m["face_size_px"] >= 64).all()
    assert m["yaw_deg"].between(-90, 90).all() and (m["sharpness"] >= 10).all()
    assert set(m["split"]) <= {"train", "val", "test"} and set(m["label"]) == {"real", "fake"}
    assert m["file"].is_unique and all((out / f).is_file() for f in m["file"])
    assert (m.groupby("source_video").size() <= 8).all()  # --max-per-video


def test_splits_are_source_disjoint(dataset):
    out, _ = dataset
    m = pd.read_csv(out / "manifest.csv")
    assert (m.groupby("source_video")["split"].nunique() == 1).all()
    assert "train" in set(m["split"])


def test_broken_clip_is_recorded_and_the_rest_goes_on(dataset):
    out, _ = dataset
    errors = pd.read_csv(out / "errors.csv")
    assert list(errors["source_video"]) == ["Fake/broken"] and errors["status"][0] == "decode_error"
    sources = pd.read_csv(out / "sources.csv")
    assert set(sources.loc[sources["source_video"] != "Fake/broken", "status"]) == {"ok"}


def test_static_shot_gives_few_crops(dataset):
    out, _ = dataset
    sources = pd.read_csv(out / "sources.csv").set_index("source_video")
    still = sources.loc["Fake/d"]
    assert still["n_duplicates"] >= still["n_frames"] - 2 and still["n_kept"] <= 2


def test_every_person_is_kept_with_a_track(dataset):
    out, _ = dataset
    m = pd.read_csv(out / "faces_all.csv")
    two = m[m["source_video"] == "Fake/c"]
    assert two["track_id"].nunique() == 2


def test_rerun_adds_nothing(dataset, sources, detector):
    out, _ = dataset
    before = (out / "manifest.csv").read_text()
    files = sorted(p.name for p in out.rglob("*.jpg"))
    summary = build_dataset(find_sources(sources), out, detector,
                            ExtractConfig(fps=4, max_per_video=8, split=(0.5, 0.25, 0.25)), progress=False)
    assert summary["new_faces"] == 0
    assert (out / "manifest.csv").read_text() == before
    assert sorted(p.name for p in out.rglob("*.jpg")) == files


def test_interrupted_clip_is_redone_once(tmp_path, sources, detector):
    out = tmp_path / "DS"
    config = ExtractConfig(fps=2, max_per_video=4)
    clips = [c for c in find_sources(sources) if c.source_video in ("real/a", "Fake/c")]
    build_dataset(clips, out, detector, config, progress=False)
    lines = (out / "sources.csv").read_text().splitlines(keepends=True)
    (out / "sources.csv").write_text("".join(lines[:-1]))  # killed after the faces, before the clip's row
    build_dataset(clips, out, detector, config, progress=False)
    faces = pd.read_csv(out / "faces_all.csv")
    assert not faces.duplicated(["file"]).any()
    assert len(pd.read_csv(out / "sources.csv")) == 2


def _record(label: str, yaw: float, size: float, i: int) -> FaceRecord:
    return FaceRecord(f"{label}/{i}.jpg", label, f"{label}-{i % 5}", i, 0.0, 0, 0, 10, 10, 0.99, yaw, size, 50.0,
                      "", 0, "x")


def test_stratify_evens_the_bins():
    rng = np.random.default_rng(0)
    records = ([_record("real", float(rng.normal(0, 10)), float(rng.uniform(60, 200)), i) for i in range(300)]
               + [_record("fake", float(rng.normal(20, 30)), float(rng.uniform(100, 400)), i) for i in range(300)])
    evened = stratify(records, ("real", "fake"), seed=3)
    table = extract.bin_table(evened)
    assert all(c["real"] == c["fake"] for c in table.values())
    assert len(evened) > 50
    assert stratify(records, ("real", "fake"), seed=3) == evened  # deterministic


def test_stratify_flag_writes_tables(tmp_path, sources, detector):
    out = tmp_path / "DS"
    clips = [c for c in find_sources(sources) if c.source_video in ("real/a", "Fake/c")]
    build_dataset(clips, out, detector, ExtractConfig(fps=2, max_per_video=6, stratify=True), progress=False)
    table = pd.read_csv(out / "stratification.csv")
    assert (table["real_after"] == table["fake_after"]).all()
    assert table["real_before"].sum() + table["fake_before"].sum() >= table["real_after"].sum() * 2


def test_cli_usage_errors(tmp_path, capsys):
    assert extract.main([str(tmp_path / "missing"), "-o", str(tmp_path / "o")]) == 2
    assert "not found" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:  # argparse: a bad --split is a usage error
        extract.main([str(tmp_path), "-o", str(tmp_path / "o"), "--split", "0.5,0.5"])
    assert exit_info.value.code == 2
    assert extract.main([str(tmp_path), "-o", str(tmp_path / "o"), "--split", "0.5,0.6,0.1"]) == 2
    assert "sum" in capsys.readouterr().err


@pytest.mark.slow
def test_shared_clips(shared_data, tmp_path, detector):
    out = tmp_path / "DS"
    summary = build_dataset(find_sources(shared_data / "videos"), out, detector,
                            ExtractConfig(fps=1, max_per_video=5), progress=False)
    m = pd.read_csv(out / "manifest.csv")
    assert summary["faces"] == len(m) and len(m) >= 40
    assert m["source_video"].nunique() == 11  # every labelled clip gave faces
    assert (m.groupby("source_video")["split"].nunique() == 1).all()
    assert set(m["split"]) == {"train", "val", "test"}


@pytest.mark.slow
def test_kill_9_then_rerun_lists_only_whole_crops(tmp_path, sources):
    import signal
    import sys
    import time

    import cv2

    repo = Path(__file__).resolve().parents[2]
    out = tmp_path / "DS"
    cmd = [sys.executable, str(repo / "extract_faces.py"), str(sources), "-o", str(out), "--fps", "4", "-q"]
    for delay_s in (6.0, 9.0):  # after start-up (~5 s), in the middle of the clips
        proc = subprocess.Popen(cmd, cwd=repo, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(delay_s)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert subprocess.run(cmd, cwd=repo, capture_output=True, timeout=300).returncode == 0
    m = pd.read_csv(out / "manifest.csv")
    assert m["file"].is_unique and len(m) > 0
    for file in m["file"]:
        assert cv2.imread(str(out / file)) is not None, f"{file} is not a whole image"
    assert len(pd.read_csv(out / "sources.csv")) == 5
    assert not any(f.startswith(".tmp-") for f in m["file"])  # temporary files are never listed
