"""Sharpness, near-duplicate and picture-quality measures for crops."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from pipeline.faces.quality import (
    QUALITY_MEASURES,
    FaceQuality,
    blockiness,
    clip_quality,
    face_quality,
    noise_sigma,
    outside_range,
    sharpness,
    thumb_distance,
    thumbnail,
)

SIDE_PX = 224  # lite0_mix_v1's input


def _texture(seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (256, 256, 3), dtype=np.uint8)


def _face_like(seed=0, side_px=SIDE_PX) -> np.ndarray:
    """A smooth picture with some detail, like a face crop: blurred texture on a ramp of 90-170 grey levels."""
    import cv2

    rng = np.random.default_rng(seed)
    detail = cv2.GaussianBlur(rng.normal(0, 40, (side_px, side_px, 3)).astype(np.float32), (0, 0), 1)
    ramp = np.linspace(90, 170, side_px, dtype=np.float32)[None, :, None]
    return np.clip(ramp + detail, 0, 255).astype(np.uint8)


def _ramp(side_px=SIDE_PX) -> np.ndarray:
    """A flat-ish grey plane (a linear ramp, 80-180): Immerkaer's operator is blind to it."""
    yy, xx = np.mgrid[0:side_px, 0:side_px]
    return (80 + 0.3 * xx + 0.15 * yy)[..., None].repeat(3, axis=2).astype(np.float32)


def _jpeg(rgb: np.ndarray, quality: int) -> np.ndarray:
    import cv2

    ok, data = cv2.imencode(".jpg", rgb[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return np.ascontiguousarray(cv2.imdecode(data, cv2.IMREAD_COLOR)[..., ::-1])


def test_blur_lowers_sharpness():
    import cv2

    sharp = _texture()
    blurred = cv2.GaussianBlur(sharp, (0, 0), 4)
    assert sharpness(blurred) < sharpness(sharp) / 10
    assert sharpness(np.full((256, 256, 3), 90, np.uint8)) == 0.0
    crop = _face_like()
    assert face_quality(cv2.GaussianBlur(crop, (0, 0), 2), 100).sharpness < face_quality(crop, 100).sharpness / 2


def test_thumbnail_distance():
    a = _texture(1)
    assert thumb_distance(thumbnail(a), thumbnail(a)) == 0.0
    brighter = np.clip(a.astype(int) + 3, 0, 255).astype(np.uint8)
    assert thumb_distance(thumbnail(a), thumbnail(brighter)) < 4  # a near duplicate
    assert thumb_distance(thumbnail(a), thumbnail(_texture(2))) > 4  # another image


def test_face_quality_of_one_crop():
    crop = _face_like()
    quality = face_quality(crop, 123.4)
    assert quality.face_px == 123.4  # the caller's, as given
    assert quality.brightness == pytest.approx(crop.mean(), abs=1.5)  # luma of a grey-ish picture
    assert (quality.noise_sigma, quality.sharpness, quality.blockiness) == (
        noise_sigma(crop),
        sharpness(crop),
        blockiness(crop),
    )
    assert [f.name for f in dataclasses.fields(FaceQuality)] == list(QUALITY_MEASURES)
    for wrong in (crop[..., 0], crop.astype(np.float32), crop[..., :2]):
        with pytest.raises(ValueError, match="uint8"):
            face_quality(wrong, 100)


def test_darker_is_less_bright():
    crop = _face_like()
    dark = (crop * 0.3).astype(np.uint8)
    assert face_quality(dark, 100).brightness < face_quality(crop, 100).brightness * 0.35
    assert face_quality(np.full((SIDE_PX, SIDE_PX, 3), 200, np.uint8), 100).brightness == pytest.approx(200)


@pytest.mark.parametrize("sigma", [2.0, 5.0, 10.0])
def test_noise_sigma_reads_added_gaussian_noise(sigma):
    rng = np.random.default_rng(int(sigma))
    grey_noise = rng.normal(0, sigma, (SIDE_PX, SIDE_PX, 1))  # the same in R, G, B: luma noise of sigma
    noisy = np.clip(_ramp() + grey_noise, 0, 255).astype(np.uint8)
    assert noise_sigma(noisy) == pytest.approx(sigma, rel=0.1)
    assert noise_sigma(_ramp().astype(np.uint8)) < 0.5  # rounding to uint8 only


def test_noise_adds_to_a_detailed_crop():
    rng = np.random.default_rng(3)
    crop = _face_like()
    noisy = np.clip(crop + rng.normal(0, 8, crop.shape[:2])[..., None], 0, 255).astype(np.uint8)
    assert face_quality(noisy, 100).noise_sigma > face_quality(crop, 100).noise_sigma + 5


def test_strong_jpeg_is_blockier():
    crop = _face_like(4)
    low, high = blockiness(_jpeg(crop, 10)), blockiness(_jpeg(crop, 95))
    assert low > high + 0.3 and high < 1.2
    # the grid found at any phase: a crop cut 3 px right and 5 px down of the JPEG's grid
    shifted = _jpeg(_face_like(4, SIDE_PX + 8), 10)[5 : 5 + SIDE_PX, 3 : 3 + SIDE_PX]
    assert blockiness(np.ascontiguousarray(shifted)) > high + 0.3
    assert blockiness(np.full((SIDE_PX, SIDE_PX, 3), 90, np.uint8)) == 1.0  # flat: no evidence


def test_clip_quality_is_the_median_of_each_measure():
    faces = [FaceQuality(px, 100.0 + px, 1.0, 50.0 * i, 1.1) for i, px in enumerate((60.0, 80.0, 300.0))]
    assert clip_quality(faces) == FaceQuality(80.0, 180.0, 1.0, 50.0, 1.1)
    assert clip_quality(faces[:2]).face_px == 70.0
    with pytest.raises(ValueError, match="at least one face"):
        clip_quality([])


def test_outside_range_names_the_measures_outside_in_field_order():
    quality = FaceQuality(face_px=50.0, brightness=20.0, noise_sigma=0.5, sharpness=400.0, blockiness=1.0)
    validated = {"sharpness": (3.0, 300.0), "brightness": (22.0, 167.0), "face_px": (80.0, 540.0)}
    assert outside_range(quality, validated) == ["face_px", "brightness", "sharpness"]
    assert outside_range(quality, tuple(validated.items())) == ["face_px", "brightness", "sharpness"]  # a spec's items
    # bounds are inclusive; measures without a range are not judged
    assert outside_range(quality, {"face_px": (50.0, 50.0), "noise_sigma": (0.5, 0.6)}) == []
    assert outside_range(quality, None) == outside_range(quality, {}) == []
