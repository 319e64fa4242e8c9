"""Evidence on disk: the worst face crops with saliency, the worst frame boxed, evidence.csv."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.errors import DecodeError
from pipeline.models.factory import LoadedModels
from pipeline.scan import evidence as evidence_module
from pipeline.scan.analyze import ScanConfig, ScoredFace, VideoResult, score_video_safe
from pipeline.scan.batch import run_batch
from pipeline.scan.evidence import (
    EVIDENCE_INDEX_NAME,
    FAKE_BOX_RGB,
    REAL_BOX_RGB,
    EvidenceRow,
    counted_track_ids,
    draw_faces,
    evidence_prefix,
    prune_crops,
    select_evidence_faces,
    write_evidence,
)
from pipeline.scan.records import VideoRow
from tests.helpers import make_face_clip

CONFIG = ScanConfig(fps=1.0)


def _imread_rgb(path: Path) -> np.ndarray:
    import cv2

    bgr = cv2.imread(str(path))
    assert bgr is not None, f"{path} does not decode as an image"
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def _face(track_id: int, sample_index: int, p_fake: float, size_px: float = 100.0, crop: bool = True) -> ScoredFace:
    return ScoredFace(
        sample_index=sample_index,
        frame_index=sample_index * 25,
        timestamp_s=float(sample_index),
        track_id=track_id,
        box_xyxy=(10.0, 10.0, 10.0 + size_px, 10.0 + size_px),
        det_confidence=0.99,
        p_fake=p_fake,
        crop_rgb=np.zeros((256, 256, 3), np.uint8) if crop else None,
    )


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, Path]:
    """Two face clips with the same file name in different folders, and one with two people."""
    root = tmp_path_factory.mktemp("evidence_clips")
    (root / "a").mkdir()
    (root / "b").mkdir()
    return {
        "a": make_face_clip(root / "a" / "face.mp4", duration_s=5.0),
        "b": make_face_clip(root / "b" / "face.mp4", duration_s=2.0, size_wh=(640, 480)),
    }


@pytest.fixture(scope="module")
def scored(clips, detector, scorer) -> dict[str, VideoResult]:
    return {name: score_video_safe(path, detector, scorer, CONFIG, keep_crops=True) for name, path in clips.items()}


# --- names ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "video_path, stem",
    [
        ("clips/face.mp4", "face"),  # plain
        ("clips/My Clip (1).mov", "My_Clip_1"),  # spaces and brackets become one _
        ("clips/.hidden.mp4", "hidden"),  # never a hidden file
        ("clips/-rf.mp4", "rf"),  # never an option-like name
        ("clips/caf\u00e9 \u4e2d\u6587.mp4", "caf"),  # non-ASCII dropped
        ("clips/\u4e2d\u6587.mp4", "clip"),  # nothing left
        ("clips/a__b.mp4", "a_b"),  # no double _ inside: the __ separator stays unique
        ("clips/" + "x" * 300 + ".mp4", "x" * 60),  # bounded length
    ],
)
def test_prefixes_are_filesystem_safe_and_end_in_a_hash(video_path, stem):
    prefix = evidence_prefix(video_path)
    assert prefix.rsplit("_", 1)[0] == stem
    assert len(prefix.rsplit("_", 1)[1]) == 8
    assert "__" not in prefix


def test_clips_named_alike_in_other_folders_get_other_prefixes():
    assert evidence_prefix("a/face.mp4") != evidence_prefix("b/face.mp4")
    assert evidence_prefix("a/face.mp4") == evidence_prefix("a/face.mp4")


# --- which faces ----------------------------------------------------------------------------


def test_the_worst_faces_of_each_counted_track_are_chosen_worst_first():
    faces = [_face(0, i, p) for i, p in enumerate([0.1, 0.9, 0.5, 0.7, 0.2])]
    faces += [_face(1, i, p) for i, p in enumerate([0.3, 0.8, 0.4])]
    faces += [_face(2, 0, 0.99)]  # one face among tracks of 5: a passer-by track_max does not count
    chosen = select_evidence_faces(faces, "track_max", max_crops_per_track=2)
    assert [(f.track_id, f.p_fake) for f in chosen] == [(0, 0.9), (1, 0.8), (0, 0.7), (1, 0.4)]
    assert counted_track_ids(faces, "track_max") == {0, 1}
    assert counted_track_ids(faces, "mean") == {0, 1, 2}  # mean counts every face
    assert select_evidence_faces(faces, "mean", max_crops_per_track=1)[0].track_id == 2


def test_a_small_person_is_shown_under_track_max():
    # 0.2.0 left people under half the largest one's size out (and their faces unshown); a small
    # swapped face now counts, weighed down, so its faces are evidence too
    faces = [_face(0, i, 0.2, size_px=200) for i in range(4)] + [_face(1, i, 0.9, size_px=40) for i in range(4)]
    assert {f.track_id for f in select_evidence_faces(faces, "track_max")} == {0, 1}


def test_people_left_out_are_not_shown_under_track_max():
    # a one-face passer-by and a still picture beside a moving person do not count: not evidence
    moving = [_face(0, i, 0.2, size_px=200) for i in range(4)]
    passer_by = [_face(1, 0, 0.95)]
    picture = [dataclasses.replace(_face(2, i, 0.9), track_static=True) for i in range(4)]
    assert {f.track_id for f in select_evidence_faces(moving + passer_by + picture, "track_max")} == {0}
    assert {f.track_id for f in select_evidence_faces(moving + passer_by + picture, "mean")} == {0, 1, 2}


def test_pruning_keeps_only_the_crops_that_are_shown():
    faces = tuple(_face(0, i, p) for i, p in enumerate([0.1, 0.9, 0.5, 0.7, 0.2]))
    result = VideoResult(VideoRow("x.mp4", "ok", p_fake=0.5, label="REAL", aggregation="track_max"), faces)
    pruned = prune_crops(result, max_crops_per_track=2)
    assert [f.p_fake for f in pruned.faces if f.crop_rgb is not None] == [0.9, 0.7]
    assert [f.p_fake for f in pruned.faces] == [f.p_fake for f in faces]  # every face stays, for faces.csv


# --- files ----------------------------------------------------------------------------------


@pytest.mark.slow
def test_evidence_files_sort_with_their_clip_decode_and_show_boxes(tmp_path, clips, scored, scorer):
    rows = []
    for name in ("a", "b"):
        rows += write_evidence(scored[name], tmp_path, scorer, video_path=clips[name], config=CONFIG)
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == sorted(r.file for r in rows)
    prefixes = [evidence_prefix(scored[n].row.video_path) for n in ("a", "b")]
    assert prefixes[0] != prefixes[1]
    # each clip's files are contiguous in sorted order, crops (worst first) before the frame
    groups = [[f for f in files if f.startswith(p + "__")] for p in prefixes]
    assert sum(len(g) for g in groups) == len(files)
    for group in groups:
        start = files.index(group[0])
        assert files[start : start + len(group)] == group
        assert group[-1].startswith(group[0].split("__")[0] + "__frame_t")
        p_in_names = [float(f.rsplit("_p", 1)[1][:-4]) for f in group[:-1]]
        assert p_in_names == sorted(p_in_names, reverse=True)

    for name, (width, height) in (("a", (1280, 720)), ("b", (640, 480))):
        mine = [r for r in rows if r.video_path == scored[name].row.video_path]
        crops = [r for r in mine if r.kind == "crop"]
        frames = [r for r in mine if r.kind == "frame"]
        assert 1 <= len(crops) <= 3 and len(frames) == 1
        for r in crops:
            assert _imread_rgb(tmp_path / r.file).shape == (256, 512, 3)  # crop beside its overlay
        frame = _imread_rgb(tmp_path / frames[0].file)
        assert frame.shape == (height, width, 3)
        worst = max(scored[name].faces, key=lambda f: f.p_fake)
        assert frames[0].p_fake == worst.p_fake and frames[0].timestamp_s == worst.timestamp_s
        # a pixel on the left edge of the worst face's box has the box colour (JPEG: roughly)
        x1, y1, x2, y2 = (int(round(v)) for v in worst.box_xyxy)
        colour = FAKE_BOX_RGB if worst.p_fake >= CONFIG.threshold else REAL_BOX_RGB
        edge = frame[(y1 + y2) // 2, x1].astype(int)
        assert np.abs(edge - colour).max() < 60, (edge, colour)
        inside = frame[(y1 + y2) // 2, (x1 + x2) // 2].astype(int)
        assert np.abs(inside - colour).max() > 60  # the face itself is not painted over


def _sampled_frames(path: Path) -> list[np.ndarray]:
    from pipeline.video.decode import iter_frames, sampling_fps
    from pipeline.video.probe import probe_video

    info = probe_video(path)
    rate = sampling_fps(info, CONFIG.fps, CONFIG.max_frames)
    return [f.rgb.copy() for f in iter_frames(path, info, sample_fps=rate, max_frames=CONFIG.max_frames)]


def test_the_frame_is_the_one_the_faces_were_found_in(tmp_path, clips, scored, scorer):
    # the astronaut pans across the frame, so every sample differs: the evidence frame (boxes and
    # labels aside, a small area) must be nearest to the sample the worst face was found in
    rows = write_evidence(scored["a"], tmp_path, scorer, video_path=clips["a"], config=CONFIG)
    frame = _imread_rgb(tmp_path / next(r for r in rows if r.kind == "frame").file).astype(int)
    samples = _sampled_frames(clips["a"])
    distance = [np.abs(frame - s.astype(int)).mean() for s in samples]
    worst = max(scored["a"].faces, key=lambda f: f.p_fake)
    assert len(samples) >= 3
    assert int(np.argmin(distance)) == worst.sample_index, distance


def test_one_sample_decoded_again_is_the_scan_s_sample(clips):
    from pipeline.video.decode import decode_sampled_frame, sampling_fps
    from pipeline.video.probe import probe_video

    samples = _sampled_frames(clips["b"])
    info = probe_video(clips["b"])
    rate = sampling_fps(info, CONFIG.fps, CONFIG.max_frames)
    for index, expected in enumerate(samples):
        frame = decode_sampled_frame(clips["b"], info, sample_fps=rate, sample_index=index)
        assert frame.sample_index == index and frame.timestamp_s == pytest.approx(index / rate)
        np.testing.assert_array_equal(frame.rgb, expected)
    with pytest.raises(DecodeError, match=f"no sample {len(samples)}"):
        decode_sampled_frame(clips["b"], info, sample_fps=rate, sample_index=len(samples))


def test_rescoring_a_clip_replaces_its_files(tmp_path, clips, scored, scorer):
    write_evidence(scored["a"], tmp_path, scorer, video_path=clips["a"], config=CONFIG, max_crops_per_track=3)
    rows = write_evidence(scored["a"], tmp_path, scorer, video_path=clips["a"], config=CONFIG, max_crops_per_track=1)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(r.file for r in rows)
    assert [r.kind for r in rows] == ["crop", "frame"]


@pytest.mark.parametrize(
    "row",
    [
        VideoRow("noface.mp4", "no_face"),  # decoded, no face
        VideoRow("notes.mp4", "decode_error", error="not a video"),  # unreadable
        VideoRow("slow.mp4", "timeout", error="too slow"),  # gave up
    ],
)
def test_clips_without_a_score_get_no_evidence(tmp_path, row, scorer):
    assert write_evidence(VideoResult(row), tmp_path / "ev", scorer, video_path=row.video_path, config=CONFIG) == []
    assert not (tmp_path / "ev").exists() or not any((tmp_path / "ev").iterdir())


def test_a_result_scored_without_crops_is_refused(tmp_path, scorer):
    faces = (_face(0, 0, 0.7, crop=False),)
    result = VideoResult(VideoRow("x.mp4", "ok", p_fake=0.7, label="FAKE", aggregation="mean"), faces)
    with pytest.raises(ValueError, match="keep_crops"):
        write_evidence(result, tmp_path, scorer, video_path="x.mp4", config=CONFIG)


def test_boxes_are_drawn_in_the_colour_of_their_verdict():
    frame = np.zeros((200, 300, 3), np.uint8)
    fake = dataclasses.replace(_face(0, 0, 0.9), box_xyxy=(20.0, 60.0, 100.0, 150.0))
    real = dataclasses.replace(_face(1, 0, 0.1), box_xyxy=(180.0, 60.0, 260.0, 150.0))
    drawn = draw_faces(frame, [fake, real], threshold=0.5)
    assert tuple(drawn[100, 20]) == FAKE_BOX_RGB
    assert tuple(drawn[100, 180]) == REAL_BOX_RGB
    assert drawn[100, 60].max() == 0  # inside the box: untouched
    assert drawn[40:60, 20:100].any()  # the label above the box
    assert frame.max() == 0  # the input is not drawn on


def test_an_index_row_validates_itself():
    with pytest.raises(ValueError, match="kind"):
        EvidenceRow("x.mp4", "x.jpg", "thumbnail", 0, 0.0, 0.5)
    with pytest.raises(ValueError, match="bare file name"):
        EvidenceRow("x.mp4", "../x.jpg", "crop", 0, 0.0, 0.5)


# --- the batch ------------------------------------------------------------------------------


def test_a_batch_writes_evidence_and_its_index(tmp_path, clips, clip_dir, detector, scorer):
    models = LoadedModels(detector, scorer, scorer.weights_path, threshold=0.5)
    paths = [str(clips["a"]), str(clip_dir / "noface.mp4"), str(clip_dir / "notes.mp4"), str(clips["b"])]
    evidence_dir = tmp_path / "evidence"
    run_batch(paths, tmp_path / "scores.csv", config=CONFIG, models=models, evidence_dir=evidence_dir, workers=1)

    scores = pd.read_csv(tmp_path / "scores.csv")
    index = pd.read_csv(evidence_dir / EVIDENCE_INDEX_NAME)
    assert list(index.columns) == EvidenceRow.columns()
    assert set(index.video_path) == {str(clips["a"]), str(clips["b"])}  # none for no_face / decode_error
    assert set(scores.status) == {"ok", "no_face", "decode_error"}
    for video_path, group in index.groupby("video_path"):
        assert (group.kind == "frame").sum() == 1
        assert group.file.str.startswith(evidence_prefix(video_path) + "__").all()
        # one person per clip: the worst crop is the clip's worst face
        worst = scores.loc[scores.video_path == video_path, "max_face_p_fake"].item()
        assert group.p_fake.max() == pytest.approx(worst, abs=1e-4)
    assert sorted(p.name for p in evidence_dir.glob("*.jpg")) == sorted(index.file)


def test_a_clip_whose_evidence_fails_keeps_its_row(tmp_path, clips, detector, scorer, monkeypatch, caplog):
    real_decode = evidence_module._decode_frame_of

    def fail_for_a(video_path, *args):
        if Path(video_path) == clips["a"]:
            raise DecodeError("the clip changed on disk")
        return real_decode(video_path, *args)

    monkeypatch.setattr(evidence_module, "_decode_frame_of", fail_for_a)
    models = LoadedModels(detector, scorer, scorer.weights_path, threshold=0.5)
    evidence_dir = tmp_path / "evidence"
    with caplog.at_level(logging.WARNING, logger="pipeline.scan.batch"):
        run_batch(
            [str(clips["a"]), str(clips["b"])],
            tmp_path / "scores.csv",
            config=CONFIG,
            models=models,
            evidence_dir=evidence_dir,
        )
    scores = pd.read_csv(tmp_path / "scores.csv")
    assert list(scores.status) == ["ok", "ok"]  # both rows, the first's evidence failed
    assert "evidence not written" in caplog.text and "the clip changed on disk" in caplog.text
    index = pd.read_csv(evidence_dir / EVIDENCE_INDEX_NAME)
    assert set(index.video_path) == {str(clips["b"])}  # the next clip's evidence is whole


def test_a_worker_returns_only_the_crops_evidence_shows(clips, detector, scorer):
    from pipeline.scan.engines.base import score_for_batch

    with_crops = score_for_batch(str(clips["a"]), detector, scorer, CONFIG, keep_crops=True)
    kept = [f for f in with_crops.faces if f.crop_rgb is not None]
    assert len(with_crops.faces) > 3 and len(kept) == 3
    assert min(f.p_fake for f in kept) >= max(f.p_fake for f in with_crops.faces if f.crop_rgb is None)
    without = score_for_batch(str(clips["a"]), detector, scorer, CONFIG)
    assert all(f.crop_rgb is None for f in without.faces)


@pytest.mark.slow
def test_worker_processes_write_the_same_evidence(tmp_path, clips, clip_dir, meso4_df_path):
    """With ``workers=2`` the clips are scored in other processes, which return only the crops
    shown; this process writes the evidence with a scorer of its own."""
    from pipeline.models.factory import ModelSpec

    paths = [str(clips["a"]), str(clip_dir / "noface.mp4"), str(clips["b"])]
    evidence_dir = tmp_path / "evidence"
    run_batch(
        paths,
        tmp_path / "scores.csv",
        config=CONFIG,
        models=ModelSpec(weights=meso4_df_path),
        evidence_dir=evidence_dir,
        workers=2,
        progress=False,
    )
    index = pd.read_csv(evidence_dir / EVIDENCE_INDEX_NAME)
    assert set(index.video_path) == {str(clips["a"]), str(clips["b"])}
    assert (index.groupby("video_path").kind.apply(lambda k: (k == "frame").sum()) == 1).all()
    assert sorted(p.name for p in evidence_dir.glob("*.jpg")) == sorted(index.file)
