"""MesoInception-4: the paper's architecture, MesoNet's files loaded by layer name, the p_fake polarity."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.errors import WeightsError
from pipeline.faces.crop import resize_rgb
from pipeline.models.meso4 import MesoScorer
from pipeline.models.mesoinception import MESOINCEPTION4_PARAMS, build_mesoinception4
from pipeline.models.weights import WeightsSpec, sha256_file, sidecar_path


def _load_rgb(path):
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def test_mesoinception4_has_the_papers_blocks():
    model = build_mesoinception4()
    assert model.count_params() == MESOINCEPTION4_PARAMS == 28_725
    convs = sorted(
        (layer for layer in model.layers if type(layer).__name__ == "Conv2D"),
        key=lambda layer: int(layer.name.rsplit("_", 1)[1]),
    )  # MesoNet's creation order
    assert len(convs) == 16  # 7 per Inception block, then two 5x5
    dilations = [layer.dilation_rate[0] for layer in convs[:7]]
    assert dilations == [1, 1, 1, 1, 2, 1, 3]  # a, b 1x1, b 3x3, c 1x1, c 3x3 d=2, d 1x1, d 3x3 d=3
    assert [layer.filters for layer in convs[:7]] == [1, 4, 4, 4, 4, 2, 2]
    assert [layer.filters for layer in convs[7:14]] == [2, 4, 4, 4, 4, 2, 2]
    assert model.output_shape == (None, 1)


@pytest.fixture(scope="module")
def inception_df(shared_data):
    return MesoScorer.load(shared_data / "weights" / "mesonet" / "MesoInception_DF.h5")


@pytest.mark.parametrize(
    "name, is_fake",
    [
        ("fake/mesonet_df00204.jpg", True),  # MesoNet's own deepfake test faces
        ("fake/mesonet_df01254.jpg", True),
        ("real/mesonet_real00240.jpg", False),  # MesoNet's own real test faces
        ("real/mesonet_real00772.jpg", False),
    ],
)
def test_mesoinception_df_gives_p_fake_on_mesonet_test_images(inception_df, shared_data, name, is_fake):
    crop = resize_rgb(_load_rgb(shared_data / "images" / name), 256)
    p_fake = float(inception_df.score_p_fake(crop[None])[0])
    assert inception_df.spec.architecture == "mesoinception4"
    assert inception_df.spec.output == "p_real"  # the file's own polarity, turned into p_fake
    assert (p_fake > 0.5) == is_fake, p_fake


def test_mesoinception_f2f_loads_and_is_recognised(shared_data):
    scorer = MesoScorer.load(shared_data / "weights" / "mesonet" / "MesoInception_F2F.h5")
    assert scorer.name == "mesonet-mesoinception4-f2f"
    crop = resize_rgb(_load_rgb(shared_data / "images" / "real" / "mesonet_real00240.jpg"), 256)
    assert 0.0 <= float(scorer.score_p_fake(crop[None])[0]) <= 1.0


def _make_unknown(path):
    """Change an attribute so that the file is no longer recognised by its sha256."""
    import h5py

    with h5py.File(path, "r+") as f:
        f.attrs["note"] = "copy made by a test"


def test_meso4_file_claiming_mesoinception_is_a_weights_error(shared_data, tmp_path):
    dst = tmp_path / "claims_inception.h5"
    dst.write_bytes((shared_data / "weights" / "mesonet" / "Meso4_DF.h5").read_bytes())
    _make_unknown(dst)
    spec = WeightsSpec(name="bogus", architecture="mesoinception4", sha256=sha256_file(dst), output="p_fake")
    sidecar_path(dst).write_text(spec.to_json())
    with pytest.raises(WeightsError, match="MesoInception-4|no layer"):
        MesoScorer.load(dst)
