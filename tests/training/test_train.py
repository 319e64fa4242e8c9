"""pipeline/training/train.py: a tiny real training run, its files, the split, fine-tuning polarity."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from pipeline.training.dataset import DatasetError, FaceItem, load_faces
from pipeline.training.train import AugmentConfig, TrainConfig, split_items


def _face_like(rng, fake: bool, size_px: int) -> np.ndarray:
    """A smooth skin-toned blob; 'fake' ones carry a fine checker texture (a mesoscopic cue)."""
    yy, xx = np.mgrid[0:size_px, 0:size_px] / size_px
    blob = np.exp(-((xx - 0.5) ** 2 + (yy - 0.5) ** 2) * 6)
    rgb = np.stack([150 + 90 * blob, 110 + 70 * blob, 90 + 60 * blob], axis=-1)
    rgb += rng.normal(0, 4, rgb.shape)
    if fake:
        rgb += 25 * ((np.add.outer(np.arange(size_px), np.arange(size_px)) % 2) - 0.5)[..., None]
    return np.clip(rgb, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory) -> Path:
    """6 'videos' per label, 4 frames each, sizes 60-140 px, with a manifest naming the videos."""
    from PIL import Image

    root = tmp_path_factory.mktemp("tiny_faces")
    rng = np.random.default_rng(0)
    rows = [["file", "label", "source_video"]]
    for label in ("real", "fake"):
        (root / label).mkdir()
        for v in range(6):
            for k in range(4):
                name = f"{label}/{v}_{k}.png"
                Image.fromarray(_face_like(rng, label == "fake", int(rng.integers(60, 140)))).save(root / name)
                rows.append([name, label, f"{label}-{v}"])
    with open(root / "faces.csv", "w", newline="") as f:
        csv.writer(f).writerows(rows)
    return root / "faces.csv"


@pytest.fixture(scope="module")
def tiny_run(tiny_data, tmp_path_factory):
    """Two epochs of two steps: enough to exercise every part of a run."""
    from pipeline.training.train import main

    out = tmp_path_factory.mktemp("run") / "weights" / "tiny.h5"
    argv = [str(tiny_data), "-o", str(out), "--epochs", "2", "--steps-per-epoch", "2", "--batch-size", "4",
            "--val-fraction", "0.34", "--seed", "3", "-q"]
    assert main(argv) == 0
    return out, argv


def test_tiny_run_writes_weights_the_scanner_loads(tiny_run):
    from pipeline.models.meso4 import MesoScorer
    from pipeline.models.weights import sha256_file, sidecar_path

    out, _ = tiny_run
    scorer = MesoScorer.load(out)  # by sha256 through the sidecar
    assert scorer.spec.output == "p_fake" and scorer.spec.name == "tiny"
    assert scorer.spec.resize_interpolation == "area"
    p = scorer.score_p_fake(np.zeros((2, 256, 256, 3), np.uint8))
    assert p.shape == (2,) and ((p >= 0) & (p <= 1)).all()
    sidecar = json.loads(sidecar_path(out).read_text())
    assert sidecar["sha256"] == sha256_file(out)
    training = sidecar["training"]
    assert training["epochs_run"] == 2 and 1 <= training["best_epoch"] <= 2
    assert training["seconds_per_epoch"] > 0
    assert training["split"]["train"]["real_videos"] == 4 and training["split"]["val"]["fake_videos"] == 2
    for key in ("n", "tp", "tn", "fp", "fn", "accuracy", "roc_auc", "eer"):
        assert key in training["val_metrics"] and key in training["val_metrics"]["video"]
    assert training["val_metrics"]["n"] == 16 and training["val_metrics"]["video"]["n"] == 4


def test_tiny_run_report_and_split_have_no_leak(tiny_run):
    out, _ = tiny_run
    run_dir = out.with_name("tiny_train")
    with open(run_dir / "history.csv", newline="") as f:
        history = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in history] == [1, 2]
    columns = {"loss", "accuracy", "val_loss", "val_accuracy", "val_auc", "val_video_auc", "learning_rate"}
    assert columns <= set(history[0])
    assert float(history[1]["learning_rate"]) < float(history[0]["learning_rate"])  # the schedule decays
    for png in ("accuracy.png", "loss.png", "auc.png"):
        assert (run_dir / png).read_bytes()[:4] == b"\x89PNG"
    items = load_faces(run_dir / "split.csv")  # paths relative to the split manifest
    assert all(i.source_path.is_file() for i in items)
    train_videos = {i.source_video for i in items if i.split == "train"}
    val_videos = {i.source_video for i in items if i.split == "val"}
    assert train_videos and val_videos and not train_videos & val_videos
    sidecar = json.loads(Path(str(out) + ".json").read_text())
    assert sidecar["training"]["split"]["val_source_videos"] == sorted(val_videos)


def test_same_seed_same_weights(tiny_run, tmp_path):
    from pipeline.models.meso4 import build_meso4
    from pipeline.training.train import main

    out, argv = tiny_run
    again = tmp_path / "again.h5"
    argv = list(argv)
    argv[argv.index("-o") + 1] = str(again)
    assert main(argv) == 0
    first, second = build_meso4(), build_meso4()
    first.load_weights(str(out))
    second.load_weights(str(again))
    for a, b in zip(first.get_weights(), second.get_weights()):
        np.testing.assert_array_equal(a, b)  # layer names in the file differ within one process


@pytest.mark.shared_data
def test_fine_tuning_from_p_real_weights_flips_the_head(meso4_df_path):
    """MesoNet's files output P(real); the model we fine-tune must output p_fake from step one."""
    from pipeline.models.meso4 import MesoScorer
    from pipeline.training.train import initial_model

    model, spec = initial_model(meso4_df_path)
    assert spec.output == "p_real"
    rng = np.random.default_rng(1)
    crops = rng.integers(0, 256, (4, 256, 256, 3), dtype=np.uint8)
    crops[:2] = crops[:2] // 4 + 100  # smoother faces, other scores
    ours = np.asarray(model.predict_on_batch(crops.astype(np.float32) / 255.0)).reshape(-1)
    np.testing.assert_allclose(ours, MesoScorer.load(meso4_df_path).score_p_fake(crops), atol=1e-5)


def test_save_weights_h5_round_trip(tmp_path):
    from pipeline.models.meso4 import build_meso4
    from pipeline.training.train import save_weights_h5

    model = build_meso4()
    rng = np.random.default_rng(0)
    weights = [rng.normal(size=w.shape).astype(np.float32) for w in model.get_weights()]
    model.set_weights(weights)
    path = save_weights_h5(model, tmp_path / "w.h5")
    other = build_meso4()
    other.load_weights(str(path))  # Keras' legacy loader, by layer order, as MesoScorer.load
    for a, b in zip(weights, other.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert [p.name for p in tmp_path.iterdir()] == ["w.h5"]  # no temporary file left behind


def test_augmentation_is_seeded_and_keeps_the_range():
    import tensorflow as tf

    from pipeline.training.train import augment_face

    rng = np.random.default_rng(0)
    x = tf.constant(rng.random((256, 256, 3)), tf.float32)
    config = AugmentConfig(geometric_p=1.0, blur_p=1.0, jpeg_p=1.0)  # every step taken
    a = augment_face(x, tf.constant([1, 2], tf.int64), config).numpy()
    b = augment_face(x, tf.constant([1, 2], tf.int64), config).numpy()
    c = augment_face(x, tf.constant([1, 3], tf.int64), config).numpy()
    assert a.shape == (256, 256, 3) and a.min() >= 0.0 and a.max() <= 1.0
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def _item(video: str, label: str, split: str | None) -> FaceItem:
    return FaceItem(Path(f"/{video}.jpg"), label, video, split)


def test_manifest_split_column_is_used_and_checked():
    items = [_item("r1", "real", "train"), _item("f1", "fake", "train"), _item("r2", "real", "val"),
             _item("f2", "fake", "val"), _item("f3", "fake", "test")]
    train, val, how = split_items(items, 0.2, 0)
    assert [i.source_video for i in train] == ["r1", "f1"] and [i.source_video for i in val] == ["r2", "f2"]
    assert "1 test/unsplit faces left out" in how
    leaky = items[:4] + [_item("r1", "real", "val")]
    with pytest.raises(DatasetError, match="both training and validation"):
        split_items(leaky, 0.2, 0)
    with pytest.raises(DatasetError, match="no train rows"):
        split_items([_item("r1", "real", "val"), _item("f1", "fake", "test")], 0.2, 0)
    # train rows only (a dataset too small to split): split here, by source video
    only_train = [_item(f"{label}{k}", label, "train") for label in ("real", "fake") for k in range(4)]
    train, val, how = split_items(only_train, 0.25, 0)
    assert len(val) == 2 and {i.label for i in val} == {"real", "fake"} and "no val rows" in how


@pytest.mark.parametrize("overrides, message", [
    (dict(output=Path("w.weights.h5")), "not .weights.h5"),  # Keras 3 layout: not what the scanner reads
    (dict(output=Path("w.keras")), "must be a .h5 file"),
    (dict(epochs=0), "epochs must be >= 1"),
    (dict(resize="cubic"), "resize must be one of"),
])
def test_config_validation(overrides, message):
    fields = dict(data=Path("d"), output=Path("w.h5")) | overrides
    with pytest.raises(ValueError, match=message):
        TrainConfig(**fields)


def test_usage_errors_exit_2(tmp_path, capsys):
    from pipeline.training.train import main

    assert main([str(tmp_path / "nowhere"), "-o", str(tmp_path / "w.h5")]) == 2
    assert "data not found" in capsys.readouterr().err
    assert main([str(tmp_path), "-o", str(tmp_path / "w.h5"), "--init-weights", str(tmp_path / "x.h5")]) == 2
    assert "--init-weights not found" in capsys.readouterr().err
