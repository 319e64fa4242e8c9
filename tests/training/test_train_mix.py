"""Training on a mix of face sets: the mix file, per-source framing, the split by group, a real
short run that writes weights the scanner loads, calibrated, with the framing in their spec."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from pipeline.training.dataset import DatasetError, load_crop_rgb, load_faces
from pipeline.training.mix import FaceSource, MixSpec, is_mix_file
from pipeline.training.train_mix import calibrate, choose_threshold


def _subset(shared_data, tmp_path, name: str, rows_per_label: int, group_column: str) -> tuple:
    """A small manifest of real shared faces (absolute paths), ``rows_per_label`` per label."""
    source = {"dfdc": shared_data / "dfdc_faces", "mesonet": shared_data / "faces"}[name]
    with open(source / "faces.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    chosen = []
    for label in ("real", "fake"):  # a few faces from each of several groups, so that a split has both sides
        groups: dict[str, list] = {}
        for r in rows:
            if r["label"] == label:
                groups.setdefault(r[group_column], []).append(r)
        picked = [r for members in list(groups.values())[:rows_per_label] for r in members[:2]]
        chosen += picked[:rows_per_label]
    out = tmp_path / f"{name}.csv"
    with open(out, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["file", "label", group_column])
        writer.writeheader()
        for r in chosen:
            writer.writerow({"file": str(source / r["file"]), "label": r["label"], group_column: r[group_column]})
    return out


def test_mix_file_parsing_and_framing(tmp_path):
    path = tmp_path / "mix.json"
    path.write_text(
        json.dumps(
            {
                "crop_margin": 0.93,
                "sources": [
                    {"name": "a", "data": "a.csv", "weight": 3, "crop_margin": 0.93, "group_column": "original_video"},
                    {"name": "b", "data": "/abs/b.csv", "weight": 1, "crop_margin": 1.3},
                ],
            }
        )
    )
    mix = MixSpec.from_json(path)
    assert is_mix_file(path) and not is_mix_file(tmp_path / "faces.csv")
    assert mix.weights == {"a": 0.75, "b": 0.25}
    assert mix.sources[0].data == tmp_path / "a.csv"  # relative to the mix file
    assert mix.crop_fraction(mix.sources[1]) == pytest.approx(0.93 / 1.3)
    assert mix.sources[0].group_column == "original_video"


@pytest.mark.parametrize(
    "change, match",
    [
        # a source framed tighter than the model cannot be widened
        (dict(crop_margin=1.3), "cannot be widened"),
        # two sources with one name
        (dict(duplicate=True), "unique"),
    ],
)
def test_bad_mixes_are_refused(change, match):
    a = FaceSource("a", "a.csv", 1.0, 0.93)
    sources = (a, a) if change.get("duplicate") else (a,)
    with pytest.raises(ValueError, match=match):
        MixSpec(crop_margin=change.get("crop_margin", 0.93), sources=sources)


def test_a_broken_mix_file_is_a_dataset_error(tmp_path):
    path = tmp_path / "mix.json"
    path.write_text('{"sources": []}')
    with pytest.raises(DatasetError, match="invalid mix file"):
        MixSpec.from_json(path)


def test_centre_fraction_reframes_a_crop(tmp_path):
    from PIL import Image

    rgb = np.zeros((100, 100, 3), np.uint8)
    rgb[25:75, 25:75] = 255  # a white square filling the centre half
    Image.fromarray(rgb).save(tmp_path / "f.png")
    whole = load_crop_rgb(tmp_path / "f.png", 64, "area")
    centre = load_crop_rgb(tmp_path / "f.png", 64, "area", centre_fraction=0.5)
    assert whole.mean() == pytest.approx(255 / 4, rel=0.05)
    assert centre.min() == 255  # only the white centre is left
    with pytest.raises(ValueError, match="widened"):
        load_crop_rgb(tmp_path / "f.png", 64, "area", centre_fraction=1.2)


def test_group_column_keeps_a_real_clip_and_its_fakes_together(shared_data, tmp_path):
    csv_path = _subset(shared_data, tmp_path, "dfdc", 6, "original_video")
    items = load_faces(csv_path, group_column="original_video")
    assert all(i.source_video.startswith("dfdc-") for i in items)
    with pytest.raises(DatasetError, match="original_video"):
        load_faces(_subset(shared_data, tmp_path, "mesonet", 2, "source_video"), group_column="original_video")


@pytest.mark.parametrize(
    "p_fake, is_fake, expected",
    [
        # separable anywhere in (0.2, 0.7]: the value nearest 0.5 wins
        ([0.1, 0.2, 0.7, 0.9], [0, 0, 1, 1], 0.5),
        # every real above 0.5: the threshold moves up to the lowest fake score
        ([0.6, 0.65, 0.8, 0.9], [0, 0, 1, 1], 0.8),
        # nothing to separate: 0.5 (ties go to the value nearest 0.5)
        ([0.5, 0.5], [0, 1], 0.5),
    ],
)
def test_threshold_with_the_best_balanced_accuracy(p_fake, is_fake, expected):
    assert choose_threshold(np.array(p_fake), np.array(is_fake)) == pytest.approx(expected)


def test_calibration_of_overconfident_scores_flattens_them():
    rng = np.random.default_rng(1)
    z = rng.normal(0, 1.5, 4000)
    y = rng.random(4000) < 1 / (1 + np.exp(-z))
    overconfident = 1 / (1 + np.exp(-3 * z))
    fitted = calibrate(overconfident, y)
    assert fitted.temperature == pytest.approx(3.0, rel=0.1)
    assert 0.3 <= fitted.threshold <= 0.7 and "balanced accuracy" in fitted.rule


@pytest.mark.slow
def test_short_mixed_run_writes_calibrated_weights_with_their_framing(shared_data, tmp_path):
    from pipeline.models.factory import ModelSpec, load_models
    from pipeline.training.train import TrainConfig, train

    dfdc = _subset(shared_data, tmp_path, "dfdc", 24, "original_video")
    mesonet = _subset(shared_data, tmp_path, "mesonet", 24, "source_video")
    mix = tmp_path / "mix.json"
    mix.write_text(
        json.dumps(
            {
                "crop_margin": 0.93,
                "sources": [
                    {
                        "name": "dfdc",
                        "data": str(dfdc),
                        "weight": 0.6,
                        "crop_margin": 0.93,
                        "group_column": "original_video",
                    },
                    {"name": "mesonet", "data": str(mesonet), "weight": 0.4, "crop_margin": 1.11},
                ],
            }
        )
    )
    out = tmp_path / "w" / "mix_tiny.h5"
    sidecar = train(
        TrainConfig(
            data=mix,
            output=out,
            epochs=1,
            steps_per_epoch=2,
            batch_size=8,
            architecture="mesoinception4",
            val_fraction=0.25,
        )
    )
    assert sidecar["crop_margin"] == 0.93 and sidecar["architecture"] == "mesoinception4"
    assert 0.01 <= sidecar["temperature"] <= 100 and 0.05 <= sidecar["threshold"] <= 0.95
    assert set(sidecar["training"]["val_metrics_per_source"]) == {"dfdc", "mesonet"}
    assert "ece" in sidecar["training"]["val_metrics_per_source"]["dfdc"]
    assert (out.parent / "mix_tiny_train" / "reliability.png").stat().st_size > 0
    assert (out.parent / "mix_tiny_train" / "split_dfdc.csv").is_file()
    loaded = load_models(ModelSpec(weights=out, download=False), with_detector=False)
    assert loaded.scorer.spec.crop_margin == 0.93 and loaded.threshold == sidecar["threshold"]
    crops = np.zeros((2, 256, 256, 3), np.uint8)
    p = loaded.scorer.score_p_fake(crops)
    assert p.shape == (2,) and np.all((p >= 0) & (p <= 1))
