"""pipeline/training/dataset.py: class folders and manifests, labels, and the split by source video."""

from __future__ import annotations

import csv
import logging
from pathlib import Path

import numpy as np
import pytest

from pipeline.training.dataset import (
    DatasetError,
    FaceItem,
    check_no_leak,
    load_crop_rgb,
    load_faces,
    select_split,
    split_by_source_video,
    summarize,
    write_manifest,
)


def _image(path: Path, value: int = 128, size=(40, 30)) -> Path:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((size[1], size[0], 3), value, np.uint8)).save(path)
    return path


def _manifest(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


@pytest.mark.parametrize(
    "real_name, fake_name",
    [
        ("real", "fake"),  # the project's own layout
        ("Real", "DeepFake"),  # the seed project's data/ folders
        ("REAL", "df"),  # MesoNet's test_images/df
    ],
)
def test_class_folders(tmp_path, real_name, fake_name):
    _image(tmp_path / real_name / "a.jpg")
    _image(tmp_path / real_name / "sub" / "b.png")  # found recursively
    _image(tmp_path / fake_name / "c.jpg")
    (tmp_path / fake_name / "notes.txt").write_text("not an image")
    (tmp_path / "other").mkdir()
    items = load_faces(tmp_path)
    assert [(i.source_path.name, i.label, i.y) for i in items] == [
        ("a.jpg", "real", 0),
        ("b.png", "real", 0),
        ("c.jpg", "fake", 1),
    ]
    assert all(i.source_path.is_absolute() and i.source_video is None for i in items)


def test_folder_without_class_subfolders_names_the_valid_ones(tmp_path):
    (tmp_path / "cats").mkdir()
    with pytest.raises(DatasetError, match=r"expected some of .*deepfake.*found \['cats'\]"):
        load_faces(tmp_path)


def test_missing_data(tmp_path):
    with pytest.raises(DatasetError, match="not found"):
        load_faces(tmp_path / "nowhere")


def test_manifest_paths_relative_to_csv_and_optional_columns(tmp_path):
    tmp_path = tmp_path.resolve()  # the manifest's folder is resolved
    _image(tmp_path / "data" / "x" / "r.jpg")
    _image(tmp_path / "data" / "x" / "f.jpg")
    csv_path = _manifest(
        tmp_path / "data" / "faces.csv",
        [
            {"file": "x/r.jpg", "label": "real", "source_video": "v1", "split": "train", "extra": "ignored"},
            {"file": "x/f.jpg", "label": "FAKE", "source_video": "", "split": "Validation", "extra": ""},
            {"file": str(tmp_path / "abs.jpg"), "label": "1", "source_video": "v3", "split": "test", "extra": ""},
        ],
    )
    items = load_faces(csv_path)
    assert items[0] == FaceItem(tmp_path / "data" / "x" / "r.jpg", "real", "v1", "train")
    assert items[1] == FaceItem(tmp_path / "data" / "x" / "f.jpg", "fake", None, "val")
    assert items[2] == FaceItem(tmp_path / "abs.jpg", "fake", "v3", "test")
    # a folder holding faces.csv reads the manifest, not the folders
    assert load_faces(tmp_path / "data") == items
    assert [i.source_path.name for i in select_split(items, "val")] == ["f.jpg"]


def test_builder_manifest_wins_over_its_class_folders(tmp_path):
    # the dataset builder writes DATASET/<label>/*.jpg and DATASET/manifest.csv (with source videos)
    _image(tmp_path / "real" / "a.jpg")
    _image(tmp_path / "fake" / "b.jpg")
    _image(tmp_path / "fake" / "dropped_by_stratification.jpg")
    _manifest(
        tmp_path / "manifest.csv",
        [
            {"file": "real/a.jpg", "label": "real", "source_video": "ra", "frame_index": 3, "split": "train"},
            {"file": "fake/b.jpg", "label": "fake", "source_video": "fb", "frame_index": 9, "split": "val"},
        ],
    )
    items = load_faces(tmp_path)
    assert [(i.source_path.name, i.source_video, i.split) for i in items] == [
        ("a.jpg", "ra", "train"),
        ("b.jpg", "fb", "val"),
    ]


@pytest.mark.parametrize(
    "rows, message",
    [
        ([{"file": "a.jpg"}], r"missing column\(s\) \['label'\]"),
        ([{"file": "a.jpg", "label": "maybe"}], "label 'maybe' is not one of"),
        ([{"file": "a.jpg", "label": "real", "split": "holdout"}], "split 'holdout' is not one of"),
    ],
)
def test_bad_manifest(tmp_path, rows, message):
    with pytest.raises(DatasetError, match=message):
        load_faces(_manifest(tmp_path / "m.csv", rows))


def test_select_split_without_column(tmp_path):
    items = [FaceItem(tmp_path / "a.jpg", "real")]
    with pytest.raises(DatasetError, match="no split column"):
        select_split(items, "val")


def _faces(n_videos_per_label: int, frames, seed: int = 0) -> list[FaceItem]:
    """Videos of varying length, interleaved as a manifest would list them."""
    rng = np.random.default_rng(seed)
    items = []
    for label in ("real", "fake"):
        for v in range(n_videos_per_label):
            for k in range(int(rng.integers(*frames))):
                items.append(FaceItem(Path(f"/d/{label}/{v}_{k}.jpg"), label, f"{label}-{v}"))
    return items


@pytest.mark.parametrize("seed", [0, 1, 7])
def test_split_by_source_video_never_leaks_and_is_stratified(seed):
    items = _faces(25, (10, 80), seed)
    train, val = split_by_source_video(items, 0.2, seed)
    check_no_leak(train, val)
    assert sorted(map(str, (i.source_path for i in train + val))) == sorted(map(str, (i.source_path for i in items)))
    videos_train = {i.source_video for i in train}
    videos_val = {i.source_video for i in val}
    assert not videos_train & videos_val
    for label in ("real", "fake"):
        share = sum(i.label == label for i in val) / sum(i.label == label for i in items)
        assert 0.1 < share < 0.3, (label, share)  # about val_fraction of each label's faces
        assert any(i.label == label for i in train) and any(i.label == label for i in val)


def test_split_is_deterministic_in_seed():
    items = _faces(20, (5, 30))
    a = split_by_source_video(items, 0.25, seed=3)
    b = split_by_source_video(list(items), 0.25, seed=3)
    c = split_by_source_video(items, 0.25, seed=4)
    assert a == b
    assert {i.source_video for i in a[1]} != {i.source_video for i in c[1]}


def test_split_keeps_a_video_of_each_label_for_training():
    items = _faces(2, (10, 11))  # two videos per label, a large fraction asked
    train, val = split_by_source_video(items, 0.9, 0)
    assert {i.label for i in train} == {"real", "fake"} == {i.label for i in val}


def test_sources_with_both_labels_stay_whole_on_one_side():
    # identity-level source ids: FF++'s original NNN and its fakes NNN_MMM share one id
    items = [
        FaceItem(Path(f"/{sid}-{label}-{k}.jpg"), label, sid)
        for sid in ("id1", "id2", "id3", "id4", "id5")
        for label in ("real", "fake")
        for k in range(4)
    ]
    items += [FaceItem(Path(f"/solo-{k}.jpg"), "fake", f"solo{k}") for k in range(4)]  # single-label sources
    train, val = split_by_source_video(items, 0.4, 0)
    train_ids, val_ids = {i.source_video for i in train}, {i.source_video for i in val}
    assert not train_ids & val_ids  # no identity on both sides
    assert {"real", "fake"} <= {i.label for i in val} and {"real", "fake"} <= {i.label for i in train}
    assert 0.25 <= len(val) / len(items) <= 0.55
    assert split_by_source_video(items, 0.4, 0) == (train, val)  # deterministic in the seed


def test_without_source_video_the_split_is_per_image_and_warns(caplog):
    items = [FaceItem(Path(f"/{label}{k}.jpg"), label) for label in ("real", "fake") for k in range(10)]
    with caplog.at_level(logging.WARNING):
        train, val = split_by_source_video(items, 0.2, 0)
    assert "no source_video" in caplog.text
    assert len(val) == 4 and len(train) == 16


def test_leak_check_names_the_shared_video():
    a = FaceItem(Path("/a.jpg"), "real", "clip-1")
    b = FaceItem(Path("/b.jpg"), "real", "clip-1")
    with pytest.raises(DatasetError, match="clip-1"):
        check_no_leak([a], [b])


def test_manifest_round_trip_relative_to_csv(tmp_path):
    items = [FaceItem(tmp_path / "faces" / "r.jpg", "real", "r1"), FaceItem(tmp_path / "faces" / "f.jpg", "fake", "f1")]
    path = write_manifest(tmp_path / "run" / "split.csv", {"train": items[:1], "val": items[1:]})
    assert path.read_text().splitlines()[1] == "../faces/r.jpg,real,r1,train"
    again = load_faces(path)
    assert [(i.source_path.resolve(), i.label, i.source_video, i.split) for i in again] == [
        ((tmp_path / "faces" / "r.jpg").resolve(), "real", "r1", "train"),
        ((tmp_path / "faces" / "f.jpg").resolve(), "fake", "f1", "val"),
    ]
    assert summarize(again) == {"images": 2, "real_images": 1, "real_videos": 1, "fake_images": 1, "fake_videos": 1}


def test_load_crop_rgb_converts_and_resizes(tmp_path):
    from PIL import Image

    grey = tmp_path / "grey.png"
    Image.fromarray(np.full((30, 50), 77, np.uint8), mode="L").save(grey)
    crop = load_crop_rgb(grey, 64, "area")
    assert crop.shape == (64, 64, 3) and crop.dtype == np.uint8 and (crop == 77).all()


def test_nearest_resize_matches_keras_load_img(tmp_path):
    """The seed's flow_from_directory resized with Pillow NEAREST; ours must pick the same pixels."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for size in [(171, 171), (300, 280), (90, 120)]:  # shrink, odd, enlarge
        rgb = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
        path = tmp_path / f"{size[0]}x{size[1]}.png"
        Image.fromarray(rgb).save(path)
        expected = np.asarray(Image.open(path).convert("RGB").resize((256, 256), Image.NEAREST))
        np.testing.assert_array_equal(load_crop_rgb(path, 256, "nearest"), expected)
