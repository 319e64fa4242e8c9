"""Saliency of the fake direction: Grad-CAM of Meso-4 (shape, direction, ensembles, a deletion check) and
occlusion of the backbone family (shape, the region a head reads, dispatch by the registry)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from pipeline.models.calibration import sigmoid
from pipeline.models.saliency import (
    OCCLUSION_GREY,
    fake_logit_function,
    fake_logits_and_maps,
    keras_model,
    last_conv_layer,
    occlusion_maps,
    occlusion_windows,
    overlay_saliency,
    saliency_maps,
    saliency_method,
)
from pipeline.models.weights import WeightsSpec
from tests.helpers import REPO_ROOT, astronaut_rgb

# Share of the crop blanked in the deletion check: the top 5% is about the size of an eye.
DELETION_AREA = 0.05
DELETION_CROPS = 96


def _crop256(rgb: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.resize(rgb, (256, 256), interpolation=cv2.INTER_AREA)


@pytest.fixture(scope="module")
def astronaut_crops() -> np.ndarray:
    """Two crops of the astronaut photo's face, uint8 (2, 256, 256, 3)."""
    rgb = astronaut_rgb()
    return np.stack([_crop256(rgb[20:220, 130:330]), _crop256(rgb[0:260, 100:360])])


@pytest.fixture(scope="module")
def mix_v2_scorer():
    """Our own Meso-4 file (output p_fake, ``weights/meso4_mix_v2.h5``), named here rather than taken as the
    default model, so that these Grad-CAM tests keep testing Grad-CAM whatever the default is."""
    from pipeline.models.meso4 import MesoScorer

    return MesoScorer.load(REPO_ROOT / "weights" / "meso4_mix_v2.h5")


def _fake_faces(shared_data, folder: str, n: int) -> np.ndarray:
    """``n`` fake faces of ``shared_data/<folder>/fake`` (``faces``: MesoNet's validation set;
    ``dfdc_faces``: DFDC), spread evenly over the sorted folder, resized to 256 px: uint8
    (n, 256, 256, 3)."""
    import cv2

    files = sorted((shared_data / folder / "fake").glob("*.jpg"))
    picked = files[:: max(1, len(files) // n)][:n]
    return np.stack([_crop256(cv2.cvtColor(cv2.imread(str(f)), cv2.COLOR_BGR2RGB)) for f in picked])


@pytest.mark.parametrize("which", ["scorer", "mix_v2_scorer"])  # MesoNet's P(real) file; our p_fake file
def test_maps_have_the_crop_shape_lie_in_0_1_and_are_not_constant(which, request, astronaut_crops):
    scorer = request.getfixturevalue(which)
    maps = saliency_maps(scorer, astronaut_crops)
    assert maps.shape == (2, 256, 256) and maps.dtype == np.float32
    assert maps.min() >= 0.0 and maps.max() <= 1.0
    for m in maps:
        assert m.max() == pytest.approx(1.0)  # normalised per crop
        assert m.std() > 0.05  # not constant, not one hot pixel


@pytest.mark.parametrize("which", ["scorer", "mix_v2_scorer"])
def test_the_gradient_is_taken_of_the_fake_logit_whatever_the_file_outputs(which, request, astronaut_crops):
    # the logit the map is the gradient of must be the one whose sigmoid the scanner reports as p_fake:
    # for MesoNet's file (output P(real)) the network's logit negated, for ours the logit itself
    scorer = request.getfixturevalue(which)
    logits, linear = fake_logits_and_maps(scorer, astronaut_crops)
    np.testing.assert_allclose(sigmoid(logits), scorer.score_p_fake(astronaut_crops, calibrated=False), atol=1e-5)
    assert linear.shape == (2, 32, 32)  # the last convolution's grid for a 256 px crop


def test_the_last_convolution_is_found_by_type(scorer):
    layer = last_conv_layer(keras_model(scorer))
    assert layer.output.shape[1:] == (32, 32, 16)  # Meso-4's fourth conv, before the last pooling


def test_crops_of_the_wrong_size_are_refused(scorer):
    with pytest.raises(ValueError, match=r"\(N, 256, 256, 3\)"):
        saliency_maps(scorer, np.zeros((1, 128, 128, 3), np.uint8))


def test_no_crops_give_no_maps(scorer):
    assert saliency_maps(scorer, np.zeros((0, 256, 256, 3), np.uint8)).shape == (0, 256, 256)


def test_an_ensemble_of_copies_shows_the_members_map(scorer, astronaut_crops):
    # the ensemble map sums members' maps weighted by 1 / (M T_i): copies of one model at any
    # temperatures give that model's map, as they give its score's ranking
    from pipeline.models.ensemble import EnsembleScorer

    spec = dataclasses.replace(scorer.spec, architecture="ensemble", output="p_fake")
    ensemble = EnsembleScorer([scorer, scorer], [None, 2.0], spec)
    np.testing.assert_allclose(
        saliency_maps(ensemble, astronaut_crops), saliency_maps(scorer, astronaut_crops), atol=1e-5
    )


@pytest.mark.shared_data
def test_mesoinception_maps_come_from_its_last_convolution(shared_data, astronaut_crops):
    from pipeline.models.meso4 import MesoScorer

    inception = MesoScorer.load(shared_data / "weights" / "mesonet" / "MesoInception_DF.h5")
    assert last_conv_layer(keras_model(inception)).name == "conv2d_16"
    logits, _ = fake_logits_and_maps(inception, astronaut_crops)
    np.testing.assert_allclose(sigmoid(logits), inception.score_p_fake(astronaut_crops, calibrated=False), atol=1e-5)
    maps = saliency_maps(inception, astronaut_crops)
    assert maps.shape == (2, 256, 256) and all(m.std() > 0.05 for m in maps)


def _blank(crop: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``crop`` with ``mask`` filled with the crop's mean colour (not black: a black hole is a
    texture of its own that the model may read as fake or real)."""
    out = crop.copy()
    out[mask] = crop.reshape(-1, 3).mean(axis=0).astype(np.uint8)
    return out


def _top_mask(saliency: np.ndarray, area: float) -> np.ndarray:
    k = int(area * saliency.size)
    mask = np.zeros(saliency.size, bool)
    mask[np.argsort(-saliency.ravel(), kind="stable")[:k]] = True
    return mask.reshape(saliency.shape)


@pytest.mark.slow
@pytest.mark.shared_data
@pytest.mark.parametrize(
    "which, folder",
    [
        ("scorer", "faces"),  # MesoNet's DF weights on MesoNet's own validation fakes
        ("mix_v2_scorer", "dfdc_faces"),  # our Meso-4 weights (meso4_mix_v2) on DFDC fakes
    ],
)
def test_blanking_the_most_salient_region_lowers_p_fake_more_than_a_random_one(which, folder, request, shared_data):
    """Deletion check (Petsiuk et al. 2018, in its simplest form) on fakes the model scores
    p_fake > 0.5: blank the top 5% of each crop by saliency, or the same-shaped region moved to
    a random place, or a random square of equal area (each random one 4 times), and compare the
    mean drop of p_fake.

    Measured when this was written: here (96 crops each) Meso4_DF on MesoNet fakes top 0.194,
    moved 0.135, square 0.051; meso4_mix_v2 on DFDC fakes top 0.077, moved -0.005, square 0.026.
    On every such face of a 400-face sample: 0.249 / 0.146 / 0.054 (379 crops) and 0.068 / -0.011
    / 0.018 (189). It does **not** hold for meso4_mix_v2 on MesoNet fakes (383 crops): top 0.060,
    moved 0.076, square 0.044; that case is not tested.
    """
    scorer = request.getfixturevalue(which)
    crops = _fake_faces(shared_data, folder, 6 * DELETION_CROPS)
    crops = crops[scorer.score_p_fake(crops) > 0.5][:DELETION_CROPS]
    assert len(crops) >= DELETION_CROPS // 2
    maps = saliency_maps(scorer, crops)
    before = scorer.score_p_fake(crops)
    rng = np.random.default_rng(0)
    side = int(np.sqrt(DELETION_AREA) * 256)
    masks = [_top_mask(saliency, DELETION_AREA) for saliency in maps]

    def mean_drop(blanked: list[np.ndarray]) -> float:
        return float(np.mean(before - scorer.score_p_fake(np.stack(blanked))))

    def random_square() -> np.ndarray:
        box = np.zeros((256, 256), bool)
        y, x = rng.integers(0, 256 - side, 2)
        box[y : y + side, x : x + side] = True
        return box

    drop = {"top": mean_drop([_blank(c, m) for c, m in zip(crops, masks)])}
    drop["moved"] = np.mean(
        [mean_drop([_blank(c, np.roll(m, tuple(rng.integers(0, 256, 2)), axis=(0, 1))) for c, m in zip(crops, masks)])
         for _ in range(4)]
    )  # fmt: skip
    drop["square"] = np.mean([mean_drop([_blank(c, random_square()) for c in crops]) for _ in range(4)])
    print(f"{which} on {folder}: mean p_fake drop over {len(crops)} crops: {drop}")
    assert drop["top"] > drop["moved"] + 0.03
    assert drop["top"] > drop["square"] + 0.03


def test_an_overlay_keeps_the_crop_shape_and_blends_the_jet_map():
    crop = np.full((8, 8, 3), 200, np.uint8)
    hot = np.ones((8, 8), np.float32)
    out = overlay_saliency(crop, hot, alpha=1.0)
    assert out.shape == (8, 8, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(out[0, 0], [128, 0, 0])  # jet's top end: dark red
    np.testing.assert_array_equal(overlay_saliency(crop, hot, alpha=0.0), crop)
    cold = overlay_saliency(crop, np.zeros((8, 8), np.float32), alpha=1.0)
    assert cold[0, 0, 2] > cold[0, 0, 0]  # jet's bottom end is blue


@pytest.mark.parametrize(
    "crop_shape, map_shape, alpha",
    [
        ((8, 8, 3), (4, 4), 0.5),  # map not upsampled
        ((8, 8), (8, 8), 0.5),  # grey crop
        ((8, 8, 3), (8, 8), 1.5),  # alpha outside [0, 1]
    ],
)
def test_an_overlay_refuses_mismatched_input(crop_shape, map_shape, alpha):
    with pytest.raises(ValueError):
        overlay_saliency(np.zeros(crop_shape, np.uint8), np.zeros(map_shape, np.float32), alpha=alpha)


# --- occlusion (the backbone family) ------------------------------------------------------------


class QuadrantScorer:
    """A backbone-family stand-in for tests of our own logic: its fake logit is the mean brightness (0-1) of
    the crop's top-left quadrant. Records every batch ``logit`` is given in ``batches``."""

    def __init__(self, size_px: int = 224, architecture: str = "effnet-lite0-head"):
        self.spec = WeightsSpec(
            name="quadrant",
            architecture=architecture,
            sha256="0" * 64,
            output="p_fake",
            input_size_px=size_px,
            input_scale="(x-127)/128",
        )
        self.batches: list[np.ndarray] = []

    def logit(self, crops: np.ndarray) -> np.ndarray:
        self.batches.append(np.array(crops))
        half = crops.shape[1] // 2
        return crops[:, :half, :half].astype(np.float64).mean(axis=(1, 2, 3)) / 255.0


def _bright_crops(n: int, size: int, seed: int = 0) -> np.ndarray:
    """uint8 (n, size, size, 3), every pixel well above the occlusion grey, so greying any of it lowers a
    brightness."""
    return np.random.default_rng(seed).integers(180, 256, (n, size, size, 3), dtype=np.uint8)


@pytest.mark.parametrize("size", [224, 256, 71])  # stride 32 px; 36.6 px (not whole); a small odd side
def test_the_occlusion_patches_cover_the_crop_two_cells_wide(size):
    windows = occlusion_windows(size)
    assert len(windows) == 49
    covered = np.zeros((size, size), int)
    for (y0, y1, x0, x1), _ in windows:
        covered[y0:y1, x0:x1] += 1
    assert covered.min() >= 1  # every pixel is hidden by at least one patch
    assert covered.max() == 4  # interior pixels by two patches each way: they overlap by half
    (y0, y1, x0, x1), _ = windows[3 * 7 + 3]  # the centre patch, not clipped
    assert abs((y1 - y0) - 2 * size / 7) <= 1 and abs((x1 - x0) - 2 * size / 7) <= 1
    assert abs((y0 + y1) / 2 - size / 2) <= 1  # centred on its cell


@pytest.mark.parametrize("size", [224, 256])
def test_occlusion_maps_have_the_crop_shape_and_lie_in_0_1(size):
    maps = saliency_maps(QuadrantScorer(size), _bright_crops(3, size))
    assert maps.shape == (3, size, size) and maps.dtype == np.float32
    assert maps.min() >= 0.0 and maps.max() <= 1.0
    for m in maps:
        assert m.max() == pytest.approx(1.0)  # normalised per crop


def test_occluding_what_the_head_reads_lights_up_that_region():
    size = 224
    maps = saliency_maps(QuadrantScorer(size), _bright_crops(2, size))
    half, three_quarters = size // 2, 3 * size // 4
    for m in maps:
        assert m[:half, :half].mean() > 0.5  # the quadrant the logit reads
        assert np.all(m[three_quarters:, :] == 0.0) and np.all(m[:, three_quarters:] == 0.0)  # far from it
        peak_y, peak_x = np.unravel_index(np.argmax(m), m.shape)
        assert peak_y < half and peak_x < half


def test_a_crop_with_nothing_to_hide_gets_an_all_zero_map():
    # a crop of the occlusion grey itself: hiding any part of it changes no logit
    grey = np.full((1, 224, 224, 3), OCCLUSION_GREY, np.uint8)
    dark = np.zeros((1, 224, 224, 3), np.uint8)  # greying dark pixels raises the brightness: evidence against
    maps = saliency_maps(QuadrantScorer(), np.concatenate([grey, dark]))
    assert maps.shape == (2, 224, 224) and not maps.any()


def test_each_crop_and_its_49_occluded_copies_go_through_logit_in_one_batch():
    scorer = QuadrantScorer()
    crops = _bright_crops(2, 224)
    occlusion_maps(scorer, crops)
    assert [len(b) for b in scorer.batches] == [50, 50]
    for batch, crop in zip(scorer.batches, crops):
        np.testing.assert_array_equal(batch[0], crop)  # the crop itself first
        for copy, ((y0, y1, x0, x1), _) in zip(batch[1:], occlusion_windows(224)):
            changed = np.any(copy != crop, axis=-1)
            expected = np.zeros((224, 224), bool)
            expected[y0:y1, x0:x1] = True
            np.testing.assert_array_equal(changed, expected)  # exactly its patch, greyed
            assert np.all(copy[y0:y1, x0:x1] == OCCLUSION_GREY)


@pytest.mark.parametrize(
    "architecture, method",
    [
        ("effnet-lite0-head", "occlusion"),  # the backbone family: no Keras model, no gradients
        ("meso4", "grad-cam"),  # MesoNet's CNNs
        ("mesoinception4", "grad-cam"),
    ],
)
def test_the_method_is_the_registered_architectures(architecture, method):
    assert saliency_method(QuadrantScorer(architecture=architecture)) == method


def test_a_backbone_scorer_never_reaches_grad_cam():
    # the stand-in has no Keras model: Grad-CAM on it would raise AttributeError
    maps = saliency_maps(QuadrantScorer(), _bright_crops(1, 224))
    assert maps.shape == (1, 224, 224) and maps.max() == pytest.approx(1.0)


def test_an_ensemble_of_backbone_members_is_explained_by_occluding_its_logit():
    # the ensemble reports sigmoid(mean_i z_i / T_i): two copies at temperatures 1 and 2 give 0.75 z, whose
    # normalised occlusion map is the member's own
    from pipeline.models.ensemble import EnsembleScorer

    member = QuadrantScorer()
    spec = dataclasses.replace(member.spec, architecture="ensemble")
    ensemble = EnsembleScorer([member, member], [None, 2.0], spec)
    crops = _bright_crops(2, 224)
    assert saliency_method(ensemble) == "occlusion"
    np.testing.assert_allclose(fake_logit_function(ensemble)(crops), 0.75 * member.logit(crops))
    np.testing.assert_allclose(saliency_maps(ensemble, crops), saliency_maps(member, crops), atol=1e-6)


def test_occlusion_of_the_real_backbone_scorer(backbone_scorer):
    crop = cv2_resize_224(astronaut_rgb()[20:220, 130:330])
    maps = saliency_maps(backbone_scorer, crop[None])
    assert maps.shape == (1, 224, 224) and maps.dtype == np.float32
    assert maps.min() >= 0.0 and maps.max() <= 1.0
    # a random head on real features: some patch lowers its logit, and not all by the same amount
    assert maps.max() == pytest.approx(1.0) and maps.std() > 0.01


def cv2_resize_224(rgb: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.resize(rgb, (224, 224), interpolation=cv2.INTER_AREA)
