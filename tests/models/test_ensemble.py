"""Ensembles: members averaged in logit space after calibration, treated as one model."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pipeline.errors import WeightsError
from pipeline.faces.crop import resize_rgb
from pipeline.models.calibration import apply_temperature, logit, sigmoid
from pipeline.models.factory import ModelSpec, load_models, load_scorer
from pipeline.models.weights import WeightsSpec, sha256_file, sidecar_path, spec_for_weights


def _crops(shared_data) -> np.ndarray:
    from PIL import Image

    names = [
        "fake/mesonet_df00204.jpg",
        "fake/mesonet_df01254.jpg",
        "real/mesonet_real00240.jpg",
        "real/mesonet_real00772.jpg",
    ]
    crops = []
    for name in names:
        with Image.open(shared_data / "images" / name) as im:
            crops.append(resize_rgb(np.asarray(im.convert("RGB")), 256))
    return np.stack(crops)


def _write(path, members, **fields):
    path.write_text(json.dumps({"name": path.name.split(".")[0], "members": members, **fields}))
    return path


def test_two_copies_of_one_model_score_like_that_model(shared_data, tmp_path, scorer):
    df = shared_data / "weights" / "mesonet" / "Meso4_DF.h5"
    ensemble_path = _write(tmp_path / "twins.ensemble.json", [{"weights": str(df)}, {"weights": str(df)}])
    ensemble = load_scorer(ensemble_path)
    crops = _crops(shared_data)
    np.testing.assert_allclose(ensemble.score_p_fake(crops), scorer.score_p_fake(crops), atol=1e-6)
    assert ensemble.spec.architecture == "ensemble" and ensemble.name == "twins"
    assert (ensemble.spec.input_size_px, ensemble.spec.crop_margin) == (256, scorer.spec.crop_margin)


def test_members_are_averaged_in_logit_space_after_their_temperature(shared_data, tmp_path):
    mesonet = shared_data / "weights" / "mesonet"
    path = _write(
        tmp_path / "pair.ensemble.json",
        [
            {"weights": str(mesonet / "Meso4_DF.h5"), "temperature": 2.0},
            {"weights": str(mesonet / "MesoInception_DF.h5")},
        ],
        threshold=0.6,
    )
    ensemble = load_scorer(path)
    crops = _crops(shared_data)
    a = apply_temperature(ensemble.members[0].score_p_fake(crops), 2.0)
    b = ensemble.members[1].score_p_fake(crops)
    expected = sigmoid((logit(a) + logit(b)) / 2.0)
    np.testing.assert_allclose(ensemble.score_p_fake(crops), expected, rtol=1e-9)
    assert np.all((ensemble.score_p_fake(crops) > 0.5) == np.array([True, True, False, False]))
    assert spec_for_weights(path).threshold == 0.6  # the ensemble's own threshold, without TensorFlow


def test_the_factory_loads_an_ensemble_as_one_model(shared_data, tmp_path):
    df = shared_data / "weights" / "mesonet" / "Meso4_DF.h5"
    path = _write(tmp_path / "one.ensemble.json", [{"weights": str(df)}], threshold=0.7)
    loaded = load_models(ModelSpec(weights=path, download=False), with_detector=False)
    assert loaded.threshold == 0.7 and loaded.scorer.name == "one"
    assert loaded.weights_path == path


def test_member_paths_are_relative_to_the_ensemble_file(shared_data, tmp_path):
    (tmp_path / "m.h5").write_bytes((shared_data / "weights" / "mesonet" / "Meso4_DF.h5").read_bytes())
    path = _write(tmp_path / "rel.ensemble.json", [{"weights": "m.h5"}])
    assert spec_for_weights(path).name == "rel"


def test_members_with_different_framing_are_refused(shared_data, tmp_path):
    src = shared_data / "weights" / "mesonet" / "Meso4_DF.h5"
    other = tmp_path / "tight.h5"
    other.write_bytes(src.read_bytes())
    import h5py

    with h5py.File(other, "r+") as f:  # a new sha256, so the sidecar below is its spec
        f.attrs["note"] = "copy"
    spec = WeightsSpec(name="tight", architecture="meso4", sha256=sha256_file(other), output="p_real", crop_margin=0.93)
    sidecar_path(other).write_text(spec.to_json())
    path = _write(tmp_path / "mixed.ensemble.json", [{"weights": str(src)}, {"weights": str(other)}])
    with pytest.raises(WeightsError, match="crop framing"):
        spec_for_weights(path)


@pytest.mark.parametrize(
    "members, match",
    [
        ([], "no members"),  # nothing to average
        ([{"weights": "missing.h5"}], "not found"),  # a member that is not there
        ([{"path": "x.h5"}], "invalid ensemble file"),  # the key is "weights"
    ],
)
def test_bad_ensemble_files_are_weights_errors(tmp_path, members, match):
    path = _write(tmp_path / "bad.ensemble.json", members)
    with pytest.raises(WeightsError, match=match):
        spec_for_weights(path)


# --- what a Dask worker gets: weights_bundle ------------------------------------------------------


def _unpack(files: dict[str, bytes], folder):
    folder.mkdir()
    for name, content in files.items():
        (folder / name).write_bytes(content)
    return folder


def test_a_head_travels_with_its_backbone_named_by_its_bare_name(tiny_head_path, backbone_scorer, tmp_path):
    from pipeline.models.backbone_scorer import BackboneScorer
    from pipeline.models.ensemble import weights_bundle
    from tests.helpers import BACKBONE_ONNX

    main, files = weights_bundle(tiny_head_path)
    assert main == "tiny_head.npz"
    assert sorted(files) == ["effnet_lite0_blocks.onnx", "tiny_head.npz", "tiny_head.npz.json"]
    assert files["effnet_lite0_blocks.onnx"] == BACKBONE_ONNX.read_bytes()
    sidecar = json.loads(files["tiny_head.npz.json"])
    assert sidecar["backbone"] == "effnet_lite0_blocks.onnx"  # was an absolute path here
    assert sidecar["sha256"] == sha256_file(tiny_head_path)  # the head's, unchanged
    # the worker's copy loads on its own, from nothing but these files, and scores the same
    worker = _unpack(files, tmp_path / "worker")
    copy = BackboneScorer.load(worker / main, threads=1)
    assert copy.backbone.path == worker / "effnet_lite0_blocks.onnx"
    crops = np.random.default_rng(0).integers(0, 256, (2, 224, 224, 3), dtype=np.uint8)
    np.testing.assert_allclose(copy.score_p_fake(crops), backbone_scorer.score_p_fake(crops), rtol=1e-6)


def test_a_relative_backbone_is_found_and_shipped(tmp_path):
    import shutil

    from pipeline.models.ensemble import weights_bundle
    from tests.helpers import BACKBONE_ONNX, write_tiny_head

    shutil.copy(BACKBONE_ONNX, tmp_path / "trunk.onnx")
    head = write_tiny_head(tmp_path / "heads", backbone="../trunk.onnx")
    _, files = weights_bundle(head)
    assert json.loads(files["tiny_head.npz.json"])["backbone"] == "trunk.onnx"
    assert files["trunk.onnx"] == BACKBONE_ONNX.read_bytes()


def test_a_head_whose_backbone_is_missing_is_a_weights_error(tmp_path):
    from pipeline.models.ensemble import weights_bundle
    from tests.helpers import write_tiny_head

    head = write_tiny_head(tmp_path, backbone=tmp_path / "gone.onnx")
    with pytest.raises(WeightsError, match="backbone file not found"):
        weights_bundle(head)


def test_an_ensemble_of_heads_ships_their_shared_backbone_once(tmp_path):
    from pipeline.models.ensemble import EnsembleScorer, weights_bundle
    from pipeline.models.factory import load_ensemble
    from tests.helpers import write_tiny_head

    first = write_tiny_head(tmp_path / "a", "head_a", seed=1)
    second = write_tiny_head(tmp_path / "b", "head_b", seed=2)
    ensemble = _write(
        tmp_path / "heads.ensemble.json", [{"weights": str(first)}, {"weights": str(second), "temperature": 2.0}]
    )
    main, files = weights_bundle(ensemble)
    assert sorted(files) == [
        "effnet_lite0_blocks.onnx",
        "heads.ensemble.json",
        "member0_head_a.npz",
        "member0_head_a.npz.json",
        "member1_head_b.npz",
        "member1_head_b.npz.json",
    ]
    assert {json.loads(files[f"member{k}_head_{x}.npz.json"])["backbone"] for k, x in ((0, "a"), (1, "b"))} == {
        "effnet_lite0_blocks.onnx"
    }
    worker = _unpack(files, tmp_path / "worker")
    loaded = load_ensemble(worker / main)
    assert isinstance(loaded, EnsembleScorer) and len(loaded.members) == 2
    assert loaded.spec.input_size_px == 224 and loaded.spec.crop_margin == 0.93
    assert loaded.temperatures == [None, 2.0]
