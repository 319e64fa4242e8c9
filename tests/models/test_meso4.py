"""Meso-4: architecture, loading the MesoNet files, and the p_fake polarity."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.errors import WeightsError
from pipeline.faces.crop import resize_rgb
from pipeline.models.meso4 import MESO4_PARAMS, SCORE_BATCH_SIZE, MesoScorer, build_meso4
from pipeline.models.weights import WeightsSpec, sha256_file, sidecar_path


def test_meso4_has_the_paper_parameter_count():
    model = build_meso4()
    assert model.count_params() == MESO4_PARAMS == 28_073
    kinds = [type(layer).__name__ for layer in model.layers[1:]]
    assert kinds[:12] == ["Conv2D", "BatchNormalization", "MaxPooling2D"] * 4
    assert kinds[12:] == ["Flatten", "Dropout", "Dense", "LeakyReLU", "Dropout", "Dense"]


def _load_rgb(path):
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


@pytest.mark.parametrize(
    "name, is_fake",
    [
        ("fake/mesonet_df00204.jpg", True),  # MesoNet's own deepfake test face
        ("fake/mesonet_df01254.jpg", True),
        ("real/mesonet_real00240.jpg", False),  # MesoNet's own real test face
        ("real/mesonet_real00772.jpg", False),
    ],
)
def test_output_is_p_fake_on_mesonet_test_images(scorer, shared_data, name, is_fake):
    crop = resize_rgb(_load_rgb(shared_data / "images" / name), 256)
    p_fake = float(scorer.score_p_fake(crop[None])[0])
    assert scorer.spec.output == "p_real"  # the file's own polarity ...
    assert (p_fake > 0.5) == is_fake, p_fake  # ... is turned into p_fake


def test_astronaut_photo_is_real(scorer):
    from skimage import data

    p_fake = float(scorer.score_p_fake(resize_rgb(data.astronaut(), 256)[None])[0])
    assert p_fake < 0.05


def test_batched_scores_equal_single_scores(scorer):
    rng = np.random.default_rng(0)
    crops = rng.integers(0, 256, size=(70, 256, 256, 3), dtype=np.uint8)  # crosses batch boundaries
    batched = scorer.score_p_fake(crops)
    picks = [0, SCORE_BATCH_SIZE - 1, SCORE_BATCH_SIZE, 69]
    singles = np.array([scorer.score_p_fake(c[None])[0] for c in crops[picks]])
    assert batched.shape == (70,)
    np.testing.assert_allclose(batched[picks], singles, atol=1e-5)
    assert ((batched >= 0) & (batched <= 1)).all()
    # padded to one fixed batch shape: the scoring graph is traced once, whatever the count
    assert scorer._predict.experimental_get_tracing_count() == 1


def test_scores_match_the_plain_keras_model(scorer):
    rng = np.random.default_rng(1)
    crops = rng.integers(0, 256, size=(5, 256, 256, 3), dtype=np.uint8)
    p_real = scorer._model.predict_on_batch(crops.astype(np.float32) / 255.0).reshape(-1)
    np.testing.assert_allclose(scorer.score_p_fake(crops), 1.0 - p_real, atol=1e-5)  # MesoNet DF: p_real


def test_empty_and_misshaped_input(scorer):
    assert scorer.score_p_fake(np.zeros((0, 256, 256, 3), np.uint8)).shape == (0,)
    with pytest.raises(ValueError, match=r"\(N, 256, 256, 3\)"):
        scorer.score_p_fake(np.zeros((2, 128, 128, 3), np.uint8))


def test_wrong_architecture_is_a_weights_error(shared_data, tmp_path):
    # MesoInception weights with a sidecar that (wrongly) claims Meso-4
    src = shared_data / "weights" / "mesonet" / "MesoInception_DF.h5"
    dst = tmp_path / "claims_meso4.h5"
    dst.write_bytes(src.read_bytes())
    import h5py

    with h5py.File(dst, "r+") as f:  # no longer the known MesoInception file (a new sha256)
        f.attrs["note"] = "copy made by a test"
    spec = WeightsSpec(name="bogus", architecture="meso4", sha256=sha256_file(dst), output="p_fake")
    sidecar_path(dst).write_text(spec.to_json())
    with pytest.raises(WeightsError, match="not loadable as Meso-4"):
        MesoScorer.load(dst)


def test_unknown_weights_without_sidecar(tmp_path):
    junk = tmp_path / "junk.h5"
    junk.write_bytes(b"\x89HDF\r\n" + bytes(100))
    with pytest.raises(WeightsError, match="sidecar"):
        MesoScorer.load(junk)


def test_our_meso4_weights_load_and_score_by_layer_order():
    """weights/meso4_mix_v2.h5 (the default before the backbone family): its sidecar says p_fake, and it
    loads and scores by layer order like the MesoNet files."""
    from pipeline.models.weights import resolve_weights

    path = resolve_weights("meso4_mix_v2", download=False)
    assert path.name == "meso4_mix_v2.h5"
    scorer = MesoScorer.load(path)
    assert scorer.spec.output == "p_fake" and scorer.name == "meso4_mix_v2"
    assert scorer.spec.crop_margin == 0.93 and scorer.spec.temperature != 1.0  # framing and calibration in its spec
    p = scorer.score_p_fake(np.zeros((2, 256, 256, 3), np.uint8))
    assert p.shape == (2,) and ((p >= 0) & (p <= 1)).all()
