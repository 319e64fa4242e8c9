"""The shared face crop."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.faces.crop import crop_face_rgb, cut_face_rgb, resize_rgb


@pytest.mark.parametrize("interpolation", ["area", "bilinear", "nearest"])
@pytest.mark.parametrize("shape", [(300, 300, 3), (100, 80, 3), (256, 256, 3)])  # shrink, enlarge, same
def test_resize_gives_model_size(interpolation, shape):
    out = resize_rgb(np.zeros(shape, np.uint8), 256, interpolation)
    assert out.shape == (256, 256, 3) and out.dtype == np.uint8


def test_unknown_interpolation_lists_valid_ones():
    with pytest.raises(ValueError, match="area"):
        resize_rgb(np.zeros((10, 10, 3), np.uint8), 256, "cubic")


def test_crop_takes_the_box_with_margin_from_full_resolution():
    frame = np.zeros((1080, 1920, 3), np.uint8)
    frame[400:600, 900:1100] = 255  # a 200 px white "face"
    crop = crop_face_rgb(frame, (900, 400, 1100, 600), margin=1.3)
    assert crop.shape == (256, 256, 3)
    # 1.3x margin: the face fills about 1/1.3 of the crop, the border is black
    white_rows = np.flatnonzero(crop[:, 128, 0] > 128)
    assert 0.72 < len(white_rows) / 256 < 0.82
    assert crop[2, 2].max() == 0


def test_crop_at_the_border_is_clipped_not_wrapped():
    frame = np.zeros((100, 100, 3), np.uint8)
    frame[:, :50] = 200
    crop = crop_face_rgb(frame, (-20, -20, 30, 30), margin=1.3)
    assert crop.shape == (256, 256, 3)
    assert crop.mean() > 0  # something was cut out


def test_crop_of_a_detected_face_still_shows_that_face(detector):
    from skimage import data

    photo = data.astronaut()
    (faces,) = detector.detect([photo])
    crop = crop_face_rgb(photo, faces[0].box_xyxy)
    (again,) = detector.detect([crop])
    assert len(again) == 1 and again[0].size_px > 256 / 1.3 * 0.6


@pytest.mark.parametrize(
    "box_xyxy, margin, shape",
    [
        ((900, 400, 1100, 600), 1.3, (260, 260, 3)),  # 1.3 x a 200 px face, at source resolution
        ((900, 400, 1100, 500), 1.0, (200, 200, 3)),  # square on the longer side
        ((-20, -20, 30, 30), 1.3, (38, 38, 3)),  # clipped at the frame border, not padded
    ],
)
def test_cut_is_the_square_box_at_source_resolution(box_xyxy, margin, shape):
    rng = np.random.default_rng(1)
    frame = rng.integers(0, 255, (1080, 1920, 3), dtype=np.uint8)
    cut = cut_face_rgb(frame, box_xyxy, margin=margin)
    assert cut.shape == shape and np.shares_memory(cut, frame)  # a view: copy it to keep it
    # the resized crop is exactly the cut, resized: one crop shared by scanner and datasets
    np.testing.assert_array_equal(crop_face_rgb(frame, box_xyxy, margin=margin), resize_rgb(cut, 256))


def test_cut_rejects_a_non_positive_margin():
    with pytest.raises(ValueError, match="margin must be positive"):
        cut_face_rgb(np.zeros((10, 10, 3), np.uint8), (1, 1, 5, 5), margin=0)
