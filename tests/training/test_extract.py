"""pipeline/training/extract.py (the library of extract_faces.py): labelled clips in, face
crops and a manifest out. The command line is tested in tests/cli/test_extract.py."""

from __future__ import annotations

import dataclasses
import logging
import re
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.faces.boxes import FaceBox
from pipeline.faces.detect import DetectorConfig, FaceDetector
from pipeline.training import extract
from pipeline.training.extract import (
    DATASET_DETECTOR,
    ExtractConfig,
    FaceRecord,
    assign_splits,
    build_dataset,
    crop_file_name,
    find_sources,
    safe_stem,
    stratify,
)
from pipeline.video.decode import Frame
from tests.helpers import astronaut_rgb, make_face_clip

MANIFEST_COLUMNS = [
    "file",
    "label",
    "source_video",
    "frame_index",
    "timestamp_s",
    "x1",
    "y1",
    "x2",
    "y2",
    "det_confidence",
    "yaw_deg",
    "face_size_px",
    "sharpness",
    "split",
]


def _still_face_clip(path: Path, duration_s: float = 3.0) -> Path:
    """A static shot: the same face in every frame (near-duplicates)."""
    import cv2

    from pipeline.video.ffmpeg_bin import ffmpeg_exe

    face = cv2.resize(astronaut_rgb(), (360, 360), interpolation=cv2.INTER_AREA)
    frame = np.full((720, 1280, 3), 40, np.uint8)
    frame[100:460, 400:760] = face
    raw = frame.tobytes() * int(duration_s * 25)
    subprocess.run(
        [
            ffmpeg_exe(),
            "-hide_banner",
            "-loglevel",
            "error",
            "-y",
            "-f",
            "rawvideo",
            "-pix_fmt",
            "rgb24",
            "-s",
            "1280x720",
            "-r",
            "25",
            "-i",
            "pipe:",
            "-c:v",
            "libx264",
            "-pix_fmt",
            "yuv420p",
            str(path),
        ],
        input=raw,
        check=True,
        timeout=120,
    )
    return path


def _two_face_clip(path: Path) -> Path:
    import cv2

    from pipeline.video.ffmpeg_bin import ffmpeg_exe

    face = cv2.resize(astronaut_rgb(), (450, 450), interpolation=cv2.INTER_AREA)
    raw = bytearray()
    for i in range(50):
        frame = np.full((720, 1280, 3), 40, np.uint8)
        frame[50:500, 20 + i : 470 + i] = face
        frame[200:650, 800 - i : 1250 - i] = face[:, ::-1]
        raw += frame.tobytes()
    subprocess.run(
        [
            ffmpeg_exe(),
            "-hide_banner",
            "-loglevel",
            "error",
            "-y",
            "-f",
            "rawvideo",
            "-pix_fmt",
            "rgb24",
            "-s",
            "1280x720",
            "-r",
            "25",
            "-i",
            "pipe:",
            "-c:v",
            "libx264",
            "-pix_fmt",
            "yuv420p",
            str(path),
        ],
        input=bytes(raw),
        check=True,
        timeout=120,
    )
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


@pytest.mark.slow
def test_sources_are_found_by_label_folder(sources):
    clips = find_sources(sources)
    assert {c.label for c in clips} == {"real", "fake"}  # unlabeled/ is skipped, Fake/ is fake
    assert len(clips) == 5
    assert {c.source_video for c in clips} >= {"real/a", "real/sub/b", "Fake/c"}


def test_crops_are_256_rgb_faces(dataset, detector):
    import cv2

    out, _ = dataset
    manifest = pd.read_csv(out / "manifest.csv")
    assert list(manifest.columns[: len(MANIFEST_COLUMNS)]) == MANIFEST_COLUMNS
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
    summary = build_dataset(
        find_sources(sources),
        out,
        detector,
        ExtractConfig(fps=4, max_per_video=8, split=(0.5, 0.25, 0.25)),
        progress=False,
    )
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
    return FaceRecord(
        f"{label}/{i}.jpg", label, f"{label}-{i % 5}", i, 0.0, 0, 0, 10, 10, 0.99, yaw, size, 50.0, "", 0, "x"
    )


def test_stratify_evens_the_bins():
    rng = np.random.default_rng(0)
    records = [_record("real", float(rng.normal(0, 10)), float(rng.uniform(60, 200)), i) for i in range(300)] + [
        _record("fake", float(rng.normal(20, 30)), float(rng.uniform(100, 400)), i) for i in range(300)
    ]
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


@pytest.mark.slow
def test_shared_clips(shared_data, tmp_path, detector):
    out = tmp_path / "DS"
    summary = build_dataset(
        find_sources(shared_data / "videos"), out, detector, ExtractConfig(fps=1, max_per_video=5), progress=False
    )
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


# --- one owner of the selection; the scanner's face loop --------------------------------------


def test_min_face_has_one_owner_the_detector_config():
    config = ExtractConfig()
    assert config.min_face_px == config.detector.min_face_px == 64
    assert config.detector == DATASET_DETECTOR and config.detector.full_frame_every_s == 0.0  # every frame whole
    assert ExtractConfig(detector=DetectorConfig(min_face_px=80)).min_face_px == 80
    with pytest.raises(TypeError):
        ExtractConfig(min_face_px=80)  # no second copy of the setting


def test_faces_come_from_the_scanners_face_loop(dataset, sources, detector):
    """Every face of the dataset is one the scanner's FaceLoop yields for the same frames, under
    the dataset's selection, with the same track id."""
    from pipeline.scan.face_loop import FaceLoop

    out, _ = dataset
    config = ExtractConfig(fps=4, max_per_video=8, split=(0.5, 0.25, 0.25))
    (clip,) = [c for c in find_sources(sources) if c.source_video == "Fake/c"]
    loop = FaceLoop(extract._sample_frames(clip, config), detector.with_config(config.detector))
    found = [(item.frame.frame_index, face) for batch in loop for item in batch for face in item.faces]
    by_key = {
        (frame_index, tuple(round(v, 1) for v in face.box_xyxy)): track
        for (frame_index, face), track in zip(found, loop.track_ids())
    }
    rows = pd.read_csv(out / "faces_all.csv")
    rows = rows[rows["source_video"] == "Fake/c"]
    assert len(rows) > 0
    for r in rows.itertuples():
        assert by_key[(r.frame_index, (r.x1, r.y1, r.x2, r.y2))] == r.track_id


def test_faces_under_the_minimum_are_counted_not_kept(tmp_path, sources, detector):
    clips = [c for c in find_sources(sources) if c.source_video == "real/a"]
    config = ExtractConfig(fps=2, max_per_video=4, detector=dataclasses.replace(DATASET_DETECTOR, min_face_px=5000))
    summary = build_dataset(clips, tmp_path / "DS", detector, config, progress=False)
    row = pd.read_csv(tmp_path / "DS" / "sources.csv").iloc[0]
    assert row["status"] == "no_face" and row["n_kept"] == 0 and summary["faces"] == 0
    assert row["n_detected"] == row["n_small"] == row["n_frames"] > 0  # one face a frame, all too small


class OneFaceDetector(FaceDetector):
    """A stand-in for MTCNN: a 100 px face on every frame, plus a 30 px one and an unsure box."""

    def __init__(self, config: DetectorConfig = DATASET_DETECTOR):
        super().__init__(mtcnn=None, config=config)

    def detect(self, frames_rgb):
        return [
            [
                FaceBox((200.0, 100.0, 300.0, 200.0), 0.99),
                FaceBox((10.0, 10.0, 40.0, 40.0), 0.99),
                FaceBox((400.0, 100.0, 500.0, 200.0), 0.6),
            ]
            for _ in frames_rgb
        ]


@pytest.mark.parametrize(
    "keep_size, crop_shape",
    [
        (False, (256, 256, 3)),  # the scanner's crop size
        (True, (130, 130, 3)),  # 1.3 x the 100 px face, at source resolution
    ],
)
def test_find_candidates_crops_selected_faces(keep_size, crop_shape):
    from pipeline.faces.crop import crop_face_rgb, cut_face_rgb

    rng = np.random.default_rng(0)
    frames = [Frame(i, 10 * i, i / 2, rng.integers(0, 255, (360, 640, 3), dtype=np.uint8)) for i in range(3)]
    counts = extract._ClipCounts()
    candidates = extract.find_candidates(iter(frames), OneFaceDetector(), keep_size, counts)
    assert [c.frame_index for c in candidates] == [0, 10, 20] and {c.track_id for c in candidates} == {0}
    assert (counts.frames, counts.detected, counts.small) == (3, 6, 3)  # the unsure box is not "detected"
    assert all(c.crop_rgb.shape == crop_shape for c in candidates)
    box = (200.0, 100.0, 300.0, 200.0)
    expected = cut_face_rgb(frames[1].rgb, box) if keep_size else crop_face_rgb(frames[1].rgb, box)
    np.testing.assert_array_equal(candidates[1].crop_rgb, expected)  # the shared crop function's pixels


# --- crop names ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "source_video, stem",
    [
        ("real/sub/b", "b"),  # the file stem only, not the whole path
        ("Fake/c", "c"),
        ("real/my clip (1)", "my_clip_1"),  # spaces and brackets made file-name safe
        ("real/" + "x" * 100, "x" * 40),  # long stems are cut to 40 characters
        ("real/ünïcode", "n_code"),  # non-ASCII letters are replaced
        ("real/...", "clip"),  # nothing readable left
        ("id-42", "id-42"),  # a manifest's source_id
    ],
)
def test_crop_names_are_short_and_stable(source_video, stem):
    digest = __import__("hashlib").sha1(source_video.encode()).hexdigest()[:8]
    assert safe_stem(source_video) == f"{stem}_{digest}"
    assert crop_file_name(source_video, 12, 3) == f"{stem}_{digest}_f000012_t3.jpg"


def test_same_stem_in_two_folders_never_collides():
    assert safe_stem("real/a") != safe_stem("fake/a")
    assert safe_stem("real/a").startswith("a_") and safe_stem("fake/a").startswith("a_")


def test_dataset_files_use_the_short_names(dataset):
    out, _ = dataset
    m = pd.read_csv(out / "manifest.csv")
    pattern = re.compile(r"^(real|fake)/[A-Za-z0-9._-]{1,40}_[0-9a-f]{8}_f\d{6}_t\d+\.jpg$")
    assert all(pattern.match(f) for f in m["file"]), list(m["file"][:3])
    assert all(
        f.split("/")[1] == crop_file_name(s, i, t)
        for f, s, i, t in zip(m["file"], m["source_video"], m["frame_index"], m["track_id"])
    )


# --- splits with few source videos ---------------------------------------------------------------


def _records_of(videos_per_label: dict[str, int], faces_per_video: int = 4) -> list[FaceRecord]:
    out = []
    for label, n in videos_per_label.items():
        for v in range(n):
            for i in range(faces_per_video):
                out.append(
                    FaceRecord(
                        f"{label}/{v}_{i}.jpg",
                        label,
                        f"{label}/v{v}",
                        i,
                        0.0,
                        0,
                        0,
                        10,
                        10,
                        0.99,
                        0.0,
                        100.0,
                        50.0,
                        "",
                        0,
                        "x",
                    )
                )
    return out


@pytest.mark.parametrize(
    "videos_per_label, split, parts",
    [
        # plenty: every part gets both labels
        ({"real": 5, "fake": 5}, (0.8, 0.1, 0.1), {"train", "val", "test"}),
        ({"real": 3, "fake": 3}, (0.8, 0.1, 0.1), {"train", "val", "test"}),
        # a handful: test is left empty, so that val gets one video of each label
        ({"real": 2, "fake": 2}, (0.8, 0.1, 0.1), {"train", "val"}),
        ({"real": 4, "fake": 2}, (0.8, 0.1, 0.1), {"train", "val"}),
        # no test asked for
        ({"real": 2, "fake": 2}, (0.8, 0.2, 0.0), {"train", "val"}),
        # one video a label: train only
        ({"real": 1, "fake": 1}, (0.8, 0.1, 0.1), {"train"}),
    ],
)
def test_splits_of_few_sources_keep_a_validation_part(videos_per_label, split, parts):
    records = _records_of(videos_per_label)
    out = assign_splits(records, split, seed=0)
    assert {r.split for r in out} == parts
    for name in parts:  # every part there holds both labels
        assert {r.label for r in out if r.split == name} == {"real", "fake"}
    assert (out_sources := pd.DataFrame([dataclasses.asdict(r) for r in out])).groupby("source_video")[
        "split"
    ].nunique().max() == 1  # never a video in two parts
    assert len(out_sources) == len(records)


LABELS = ("real", "fake")


def _faces_all(out, records):
    """A dataset folder holding only ``faces_all.csv`` of ``records``, as the builder writes it."""
    out.mkdir()
    with open(out / "faces_all.csv", "w", newline="") as f:
        f.write(",".join(FaceRecord.columns()) + "\n")
        for r in records:
            f.write(",".join(str(v) for v in dataclasses.astuple(r)) + "\n")
    return out


@pytest.mark.parametrize(
    "videos_per_label, split, expected",
    [
        # plenty, or enough for the parts asked for: nothing to say
        ({"real": 5, "fake": 7}, (0.8, 0.1, 0.1), None),
        ({"real": 3, "fake": 3}, (0.8, 0.1, 0.1), None),
        ({"real": 2, "fake": 2}, (0.8, 0.2, 0.0), None),
        ({"real": 2, "fake": 9}, (0.9, 0.0, 0.1), None),
        ({"real": 1, "fake": 1}, (1.0, 0.0, 0.0), None),
        # the case: 1 real, 2 fake
        (
            {"real": 1, "fake": 2},
            (0.8, 0.1, 0.1),
            "3 source videos with faces (1 real, 2 fake): train gets 1 real + 1 fake, val gets 1 fake, test is "
            "empty. A part measures something only when it holds a source video of each label, and a video goes "
            "to one part only, so train, val and test need 3 a label (train and val 2: what `train` needs). Add at "
            "least 2 real + 1 fake clips (1 real clip for train and val alone), or pass --split 1,0,0 to keep "
            "every clip in train.",
        ),
        # 2 a label: val works, test cannot
        (
            {"real": 2, "fake": 2},
            (0.8, 0.1, 0.1),
            "4 source videos with faces (2 real, 2 fake): train gets 1 real + 1 fake, val gets 1 real + 1 fake, "
            "test is empty. A part measures something only when it holds a source video of each label, and a "
            "video goes to one part only, so train, val and test need 3 a label (train and val 2: what `train` "
            "needs). Add at least 1 real + 1 fake clips, or pass --split 0.8,0.2,0 to ask for no test part.",
        ),
        # many of one label, 2 of the other: test is left empty for all
        (
            {"real": 6, "fake": 2},
            (0.7, 0.2, 0.1),
            "8 source videos with faces (6 real, 2 fake): train gets 4 real + 1 fake, val gets 2 real + 1 fake, "
            "test is empty. A part measures something only when it holds a source video of each label, and a "
            "video goes to one part only, so train, val and test need 3 a label (train and val 2: what `train` "
            "needs). Add at least 1 fake clip, or pass --split 0.7,0.3,0 to ask for no test part.",
        ),
        # one a label, no test asked for (test fraction 0)
        (
            {"real": 1, "fake": 1},
            (0.8, 0.2, 0.0),
            "2 source videos with faces (1 real, 1 fake): train gets 1 real + 1 fake, val is empty, test is not "
            "asked for. A part measures something only when it holds a source video of each label, and a video "
            "goes to one part only, so train and val need 2 a label (what `train` needs). Add at least 1 real + "
            "1 fake clips, or pass --split 1,0,0 to keep every clip in train.",
        ),
        # no val asked for (val fraction 0): test gets what it can
        (
            {"real": 1, "fake": 3},
            (0.9, 0.0, 0.1),
            "4 source videos with faces (1 real, 3 fake): train gets 1 real + 2 fake, test gets 1 fake, val is "
            "not asked for. A part measures something only when it holds a source video of each label, and a "
            "video goes to one part only, so train and test need 2 a label. Add at least 1 real clip, or pass "
            "--split 1,0,0 to keep every clip in train.",
        ),
        # no video of a label: nothing goes anywhere but train, and no --split helps
        (
            {"real": 3, "fake": 0},
            (0.8, 0.1, 0.1),
            "3 source videos with faces (3 real, 0 fake): train gets 3 real, val and test are empty. A part "
            "measures something only when it holds a source video of each label, and a video goes to one part "
            "only, so train, val and test need 3 a label (train and val 2: what `train` needs). Add at least 3 "
            "fake clips (2 fake clips for train and val alone).",
        ),
        (
            {"real": 0, "fake": 0},
            (0.8, 0.1, 0.1),
            "0 source videos with faces (0 real, 0 fake): train, val and test are empty. A part measures "
            "something only when it holds a source video of each label, and a video goes to one part only, so "
            "train, val and test need 3 a label (train and val 2: what `train` needs). Add at least 3 real + 3 "
            "fake clips (2 real + 2 fake clips for train and val alone).",
        ),
        (
            {"real": 1, "fake": 0},
            (1.0, 0.0, 0.0),
            "1 source video with faces (1 real, 0 fake): train gets 1 real, val and test are not asked for. A "
            "part measures something only when it holds a source video of each label, and a video goes to one "
            "part only, so train needs 1 a label. Add at least 1 fake clip.",
        ),
    ],
)
def test_one_message_says_what_a_split_can_and_cannot_hold(tmp_path, caplog, videos_per_label, split, expected):
    """The message is derived from the counts; a build logs it once and nothing else about the split."""
    records = _records_of(videos_per_label)
    out = _faces_all(tmp_path / "DS", records)
    with caplog.at_level(logging.INFO, logger="pipeline.training.extract"):
        summary = extract.write_manifest(out, ExtractConfig(split=split))
    assert summary["split_message"] == expected
    held = summary["sources_per_part"]
    assert extract.split_message(held, split, LABELS) == expected  # from the counts alone
    manifest = pd.read_csv(out / "manifest.csv", keep_default_na=False)
    for part, counts in held.items():  # the counts are the manifest's
        assert counts == manifest[manifest["split"] == part].groupby("label")["source_video"].nunique().to_dict()
    logged = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert logged == ([expected] if expected else [])


def test_the_split_message_says_what_stratify_took():
    held = {"train": {"real": 1, "fake": 1}}
    text = extract.split_message(held, (0.8, 0.1, 0.1), LABELS, dropped_by_stratify=1)
    assert text.startswith("2 source videos with faces left after --stratify dropped 1 whole clip (1 real, 1 fake):")
    text = extract.split_message(held, (0.8, 0.1, 0.1), LABELS, dropped_by_stratify=0)
    assert text.startswith("2 source videos with faces after --stratify (1 real, 1 fake):")


def _faces(label: str, source: str, n: int, yaw: float = 0.0, size: float = 100.0) -> list[FaceRecord]:
    return [
        FaceRecord(f"{source}_{i}.jpg", label, source, i, 0.0, 0, 0, 10, 10, 0.99, yaw, size, 50.0, "", 0, "x")
        for i in range(n)
    ]


def test_stratify_spreads_what_it_keeps_over_the_clips():
    # one bin: 2 real faces, 6 fake faces from two clips; the 2 fake faces kept come one from each
    records = _faces("real", "real/r1", 2) + _faces("fake", "fake/f1", 3) + _faces("fake", "fake/f2", 3)
    for seed in range(10):
        kept = stratify(records, LABELS, seed)
        assert sorted(r.source_video for r in kept) == ["fake/f1", "fake/f2", "real/r1", "real/r1"]
    assert extract.stratify_message(records, records, LABELS) is None  # nothing dropped: nothing to say
    kept = stratify(records, LABELS, 0)
    assert extract.stratify_message(records, kept, LABELS) == (
        "--stratify dropped 4 of 8 faces: real 0 of 2; fake 4 of 6, from 2 of 2 clips. Why: --stratify gives "
        "every label the same count in every pose/size bin, as many as the label with fewer faces has there "
        "(most dropped in yaw-15..15 size64-128: 2 real, 6 fake). Per clip: stratification_clips.csv."
    )


def test_a_clip_stratify_drops_whole_is_counted_named_and_recorded(tmp_path, caplog):
    # fake/f2's faces are all in profile (yaw > 45): no real face there, so none of them can stay
    records = (
        _faces("real", "real/r1", 2)
        + _faces("real", "real/r2", 2)
        + _faces("fake", "fake/f1", 5)
        + _faces("fake", "fake/f2", 3, yaw=60.0)
        + _faces("fake", "fake/f3", 1)
    )
    out = _faces_all(tmp_path / "DS", records)
    with caplog.at_level(logging.INFO, logger="pipeline.training.extract"):
        summary = extract.write_manifest(out, ExtractConfig(stratify=True))
    message = summary["stratify_message"]
    assert message.startswith(
        "--stratify dropped 5 of 13 faces: real 0 of 4; fake 5 of 9, from 2 of 3 clips, dropping 1 whole clip "
        "(fake/f2: 3 faces). Why:"
    )
    assert "(most dropped in yaw>45 size64-128: 0 real, 3 fake)" in message
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert warnings[0] == message  # a whole clip gone: a warning, before the split's message
    # 2 real and 2 fake clips left: too few for a test part, and the split's message says why
    assert summary["split_message"].startswith(
        "4 source videos with faces left after --stratify dropped 1 whole clip (2 real, 2 fake):"
    )
    assert warnings == [message, summary["split_message"]]
    clips = pd.read_csv(out / "stratification_clips.csv")
    assert list(clips.columns) == [
        "source_video",
        "label",
        "faces_before",
        "faces_after",
        "dropped",
        "whole_clip_dropped",
    ]
    row = clips.set_index("source_video").loc["fake/f2"]
    assert (row["faces_before"], row["faces_after"], row["dropped"], bool(row["whole_clip_dropped"])) == (3, 0, 3, True)
    assert clips["dropped"].sum() == 5 == summary["faces_before_stratify"] - summary["faces"]
    assert (clips["faces_before"] - clips["faces_after"] == clips["dropped"]).all()
    # a build without --stratify drops nothing and leaves no stale per-clip record
    assert extract.write_manifest(out, ExtractConfig())["stratify_message"] is None
    assert not (out / "stratification_clips.csv").exists()


def test_summary_counts_per_split_without_tuple_keys(dataset):
    _, summary = dataset
    per_split = summary["per_split"]
    assert set(per_split) <= {"train", "val", "test"} and "train" in per_split
    assert all(isinstance(counts, dict) and set(counts) <= {"real", "fake"} for counts in per_split.values())
    assert sum(n for counts in per_split.values() for n in counts.values()) == summary["faces"]
