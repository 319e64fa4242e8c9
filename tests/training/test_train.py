"""pipeline/training/train.py: a tiny real training run, its files and spec, the split, fine-tuning polarity.
The command line is tested in tests/cli/test_train.py."""

from __future__ import annotations

import csv
import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from pipeline.errors import WeightsError
from pipeline.training.dataset import DatasetError, FaceItem, load_faces
from pipeline.training.train import AugmentConfig, TrainConfig, split_items


def face_like_rgb(rng, fake: bool, size_px: int) -> np.ndarray:
    """A smooth skin-toned blob; 'fake' ones carry a fine checker texture (a mesoscopic cue)."""
    yy, xx = np.mgrid[0:size_px, 0:size_px] / size_px
    blob = np.exp(-((xx - 0.5) ** 2 + (yy - 0.5) ** 2) * 6)
    rgb = np.stack([150 + 90 * blob, 110 + 70 * blob, 90 + 60 * blob], axis=-1)
    rgb += rng.normal(0, 4, rgb.shape)
    if fake:
        rgb += 25 * ((np.add.outer(np.arange(size_px), np.arange(size_px)) % 2) - 0.5)[..., None]
    return np.clip(rgb, 0, 255).astype(np.uint8)


def write_tiny_faces(root: Path, videos_per_label: int = 6, frames_per_video: int = 4, seed: int = 0) -> Path:
    """``videos_per_label`` 'videos' per label of ``frames_per_video`` face-like images, sizes
    60-140 px, under ``root``/real and ``root``/fake, with a manifest naming the videos; returns it."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    rows = [["file", "label", "source_video"]]
    for label in ("real", "fake"):
        (root / label).mkdir(parents=True)
        for v in range(videos_per_label):
            for k in range(frames_per_video):
                name = f"{label}/{v}_{k}.png"
                Image.fromarray(face_like_rgb(rng, label == "fake", int(rng.integers(60, 140)))).save(root / name)
                rows.append([name, label, f"{label}-{v}"])
    with open(root / "faces.csv", "w", newline="") as f:
        csv.writer(f).writerows(rows)
    return root / "faces.csv"


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory) -> Path:
    """6 'videos' per label, 4 frames each, with a manifest naming the videos."""
    return write_tiny_faces(tmp_path_factory.mktemp("tiny_faces"))


@pytest.fixture(scope="module")
def tiny_run(tiny_data, tmp_path_factory):
    """Two epochs of two steps: enough to exercise every part of a run."""
    from pipeline.training.train import train

    out = tmp_path_factory.mktemp("run") / "weights" / "tiny.h5"
    config = TrainConfig(
        data=tiny_data, output=out, epochs=2, steps_per_epoch=2, batch_size=4, val_fraction=0.34, seed=3
    )
    sidecar = train(config)
    return out, config, sidecar


@pytest.mark.slow
def test_tiny_run_writes_weights_the_scanner_loads(tiny_run):
    from pipeline.models.meso4 import MesoScorer
    from pipeline.models.weights import sha256_file, sidecar_path

    out, _, returned = tiny_run
    scorer = MesoScorer.load(out)  # by sha256 through the sidecar
    assert scorer.spec.output == "p_fake" and scorer.spec.name == "tiny"
    # the input contract the scanner will follow: the training's resize and crop framing
    assert (scorer.spec.resize_interpolation, scorer.spec.crop_margin, scorer.spec.input_size_px) == ("area", 1.3, 256)
    assert scorer.spec.threshold == 0.5
    p = scorer.score_p_fake(np.zeros((2, 256, 256, 3), np.uint8))
    assert p.shape == (2,) and ((p >= 0) & (p <= 1)).all()
    sidecar = json.loads(sidecar_path(out).read_text())
    assert sidecar == json.loads(json.dumps(returned)) and sidecar["sha256"] == sha256_file(out)
    training = sidecar["training"]
    assert training["epochs_run"] == 2 and 1 <= training["best_epoch"] <= 2
    assert training["seconds_per_epoch"] > 0
    assert training["split"]["train"]["real_videos"] == 4 and training["split"]["val"]["fake_videos"] == 2
    for key in ("n", "tp", "tn", "fp", "fn", "accuracy", "roc_auc", "eer"):
        assert key in training["val_metrics"] and key in training["val_metrics"]["video"]
    assert training["val_metrics"]["n"] == 16 and training["val_metrics"]["video"]["n"] == 4


def test_tiny_run_report_and_split_have_no_leak(tiny_run):
    out, _, _ = tiny_run
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


@pytest.mark.slow
def test_same_seed_same_weights(tiny_run, tmp_path):
    from pipeline.models.meso4 import build_meso4
    from pipeline.training.train import train

    out, config, _ = tiny_run
    again = tmp_path / "again.h5"
    train(dataclasses.replace(config, output=again))
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
    items = [
        _item("r1", "real", "train"),
        _item("f1", "fake", "train"),
        _item("r2", "real", "val"),
        _item("f2", "fake", "val"),
        _item("f3", "fake", "test"),
    ]
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


@pytest.mark.parametrize(
    "overrides, message",
    [
        (dict(output=Path("w.weights.h5")), "not .weights.h5"),  # Keras 3 layout: not what the scanner reads
        (dict(output=Path("w.keras")), "must be a .h5 file"),
        (dict(epochs=0), "epochs must be >= 1"),
        (dict(resize="cubic"), "resize must be one of"),
        (dict(crop_margin=0.4), r"crop_margin must be in \[0.5, 3\]"),  # what WeightsSpec accepts, checked up front
        (dict(architecture="ensemble"), "architecture must be one of"),  # an ensemble is not trained as one network
        (dict(max_minutes=0), "max_minutes must be > 0"),  # a time budget of nothing
        (dict(val_fraction=1.0), r"val_fraction must be in \(0, 1\)"),
    ],
)
def test_config_validation(overrides, message):
    fields = dict(data=Path("d"), output=Path("w.h5")) | overrides
    with pytest.raises(ValueError, match=message):
        TrainConfig(**fields)


def test_trained_spec_records_the_input_contract_of_the_training():
    from pipeline.training.train import trained_spec

    config = TrainConfig(
        data=Path("d"), output=Path("w/mine.h5"), resize="nearest", crop_margin=1.5, license="CC-BY-4.0"
    )
    spec = trained_spec(config, "ab" * 32, None)
    assert (spec.name, spec.output, spec.sha256, spec.license) == ("mine", "p_fake", "ab" * 32, "CC-BY-4.0")
    assert (spec.input_size_px, spec.resize_interpolation, spec.crop_margin, spec.threshold) == (
        256,
        "nearest",
        1.5,
        0.5,
    )
    assert "from scratch" in spec.provenance


@pytest.mark.parametrize(
    "name, content, error, message",
    [
        ("missing.h5", None, FileNotFoundError, "weights file not found"),
        ("junk.h5", b"not weights", WeightsError, "unknown weights"),  # no spec sidecar beside it
    ],
)
def test_init_weights_are_resolved_like_every_command(tmp_path, name, content, error, message):
    from pipeline.training.train import initial_model

    if content is not None:
        (tmp_path / name).write_bytes(content)
    with pytest.raises(error, match=message):
        initial_model(tmp_path / name)


def test_init_weights_for_another_input_size_are_refused(tmp_path):
    from pipeline.models.weights import WeightsSpec, sha256_file, sidecar_path
    from pipeline.training.train import initial_model

    weights = tmp_path / "small.h5"
    weights.write_bytes(b"weights of a 128 px Meso-4")
    spec = WeightsSpec(
        name="small", architecture="meso4", sha256=sha256_file(weights), output="p_fake", input_size_px=128
    )
    sidecar_path(weights).write_text(spec.to_json())
    with pytest.raises(WeightsError, match="for 128 px inputs; training fine-tunes meso4 at 256 px"):
        initial_model(weights)


def test_train_stops_on_bad_data_before_tensorflow_starts(tmp_path, monkeypatch):
    from pipeline.training import train as train_module

    monkeypatch.setattr(train_module, "start_tensorflow", lambda seed: pytest.fail("TensorFlow started"))
    with pytest.raises(DatasetError, match="data not found"):
        train_module.train(TrainConfig(data=tmp_path / "nowhere", output=tmp_path / "w.h5"))


@pytest.mark.slow
def test_a_spent_time_budget_ends_the_run_like_early_stopping(tiny_data, tmp_path):
    from pipeline.training.train import train

    out = tmp_path / "budget.h5"
    config = TrainConfig(
        data=tiny_data, output=out, epochs=5, steps_per_epoch=1, batch_size=4, val_fraction=0.34, max_minutes=1e-4
    )  # spent before the first epoch ends
    sidecar = train(config)
    assert sidecar["training"]["epochs_run"] == 1  # no second epoch started
    assert out.is_file() and sidecar["training"]["best_epoch"] == 1
