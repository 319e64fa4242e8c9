"""pipeline/faces/boxes.py: FaceBox validation and scaling, IoU, the square crop box."""

from __future__ import annotations

import math

import pytest

from pipeline.faces.boxes import LANDMARK_NAMES, FaceBox, iou_xyxy, square_box_xyxy

FIVE_POINTS = ((1.0, 2.0), (3.0, 4.0), (5.0, 6.0), (7.0, 8.0), (9.0, 10.0))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        # zero width
        (dict(box_xyxy=(10, 10, 10, 20), confidence=0.9), r"x2 > x1 and y2 > y1, got \(10, 10, 10, 20\)"),
        # y2 above y1 (flipped box)
        (dict(box_xyxy=(10, 20, 30, 5), confidence=0.9), r"x2 > x1 and y2 > y1, got \(10, 20, 30, 5\)"),
        # NaN coordinate compares false everywhere
        (dict(box_xyxy=(0, 0, math.nan, 5), confidence=0.9), r"x2 > x1 and y2 > y1"),
        # confidence above 1
        (dict(box_xyxy=(0, 0, 5, 5), confidence=1.5), r"confidence must be in \[0, 1\], got 1.5"),
        # negative confidence
        (dict(box_xyxy=(0, 0, 5, 5), confidence=-0.1), r"confidence must be in \[0, 1\], got -0.1"),
        # NaN confidence
        (dict(box_xyxy=(0, 0, 5, 5), confidence=math.nan), r"confidence must be in \[0, 1\], got nan"),
        # four landmarks instead of five
        (dict(box_xyxy=(0, 0, 5, 5), confidence=0.5, landmarks_xy=FIVE_POINTS[:4]), r"expected 5 landmarks, got 4"),
    ],
)
def test_facebox_rejects_bad_values_with_expected_vs_actual(kwargs, message):
    with pytest.raises(ValueError, match=message):
        FaceBox(**kwargs)


@pytest.mark.parametrize(
    "landmarks",
    [
        (),  # landmarks are optional
        FIVE_POINTS,  # all five MTCNN points
    ],
)
def test_facebox_accepts_valid_values(landmarks):
    face = FaceBox((10.0, 20.0, 50.0, 80.0), 1.0, landmarks)
    assert (face.width_px, face.height_px, face.size_px) == (40.0, 60.0, 60.0)
    assert len(LANDMARK_NAMES) == 5


def test_scaled_scales_box_and_landmarks_keeps_confidence():
    face = FaceBox((10.0, 20.0, 50.0, 80.0), 0.75, FIVE_POINTS)
    big = face.scaled(2.5)
    assert big.box_xyxy == (25.0, 50.0, 125.0, 200.0)
    assert big.landmarks_xy == tuple((x * 2.5, y * 2.5) for x, y in FIVE_POINTS)
    assert big.confidence == 0.75
    assert face.scaled(1 / 2.5).box_xyxy == pytest.approx((4.0, 8.0, 20.0, 32.0))


def test_scaled_by_a_non_positive_factor_is_rejected():
    # the flipped box fails FaceBox's own validation rather than producing a silent bad record
    with pytest.raises(ValueError, match="x2 > x1"):
        FaceBox((10.0, 20.0, 50.0, 80.0), 0.5).scaled(-1.0)


@pytest.mark.parametrize(
    "a, b, expected",
    [
        ((0, 0, 10, 10), (0, 0, 10, 10), 1.0),  # identical
        ((0, 0, 10, 10), (20, 20, 30, 30), 0.0),  # far apart
        ((0, 0, 10, 10), (10, 0, 20, 10), 0.0),  # touching along an edge: no area in common
        ((0, 0, 10, 10), (5, 0, 15, 10), 50 / 150),  # half shifted sideways
        ((0, 0, 10, 10), (0, 0, 5, 5), 25 / 100),  # one inside the other
        ((0, 0, 10, 10), (5, 5, 15, 15), 25 / 175),  # corner overlap
        ((0, 0, 0, 0), (0, 0, 0, 0), 0.0),  # two zero-area boxes: 0, not a division by zero
    ],
)
def test_iou_xyxy(a, b, expected):
    assert iou_xyxy(a, b) == pytest.approx(expected)
    assert iou_xyxy(b, a) == pytest.approx(expected)  # symmetric


@pytest.mark.parametrize(
    "box, margin, expected",
    [
        ((100, 100, 200, 200), 1.0, (100, 100, 200, 200)),  # square face, no margin: the box itself
        ((100, 100, 200, 150), 1.0, (100, 75, 200, 175)),  # wide face: side = longer side, same centre
        ((100, 100, 200, 200), 1.3, (85, 85, 215, 215)),  # MesoNet-like margin grows the side 1.3x
        ((100, 100, 200, 200), 0.5, (125, 125, 175, 175)),  # a margin below 1 shrinks around the centre
        ((0, 100, 50, 150), 2.0, (0, 75, 75, 175)),  # clipped at the left border
        ((590, 100, 640, 150), 2.0, (565, 75, 640, 175)),  # clipped at the right border
        ((100, 0, 150, 50), 2.0, (75, 0, 175, 75)),  # clipped at the top border
        ((100, 430, 150, 480), 2.0, (75, 405, 175, 480)),  # clipped at the bottom border
        ((-30, -30, 60, 60), 1.0, (0, 0, 60, 60)),  # box sticks out of the top-left corner
        ((100.2, 100.2, 100.4, 100.4), 1.3, (100, 100, 101, 101)),  # sub-pixel face: at least 1 px
        ((0, 0, 640, 480), 2.0, (0, 0, 640, 480)),  # crop bigger than the frame: the whole frame
    ],
)
def test_square_box_xyxy(box, margin, expected):
    assert square_box_xyxy(box, margin, (640, 480)) == expected


@pytest.mark.parametrize(
    "box",
    [
        (300.0, 200.0, 340.0, 260.0),  # ordinary face in the middle
        (0.0, 0.0, 0.3, 0.3),  # tiny face in the top-left corner
        (-50.0, 100.0, -10.0, 140.0),  # box entirely left of the frame: still a 1 px crop
        (320.0, 240.0, 320.1, 240.1),  # tiny face in the middle
        (600.0, 440.0, 700.0, 540.0),  # face half out at the bottom-right corner
    ],
)
@pytest.mark.parametrize("margin", [0.5, 1.0, 1.3, 3.0])
def test_square_box_xyxy_is_a_non_empty_int_box_inside_the_frame(box, margin):
    left, top, right, bottom = square_box_xyxy(box, margin, (640, 480))
    assert all(isinstance(v, int) for v in (left, top, right, bottom))
    assert 0 <= left < right <= 640
    assert 0 <= top < bottom <= 480


@pytest.mark.parametrize(
    "box",
    [
        (639.6, 100.0, 639.9, 100.3),  # sliver of a face inside the frame, at the right border
        (100.0, 479.6, 100.3, 479.9),  # same at the bottom border
    ],
)
def test_square_box_xyxy_tiny_box_at_right_or_bottom_border_is_not_empty(box):
    left, top, right, bottom = square_box_xyxy(box, 1.3, (640, 480))
    assert 0 <= left < right <= 640
    assert 0 <= top < bottom <= 480


@pytest.mark.parametrize("margin", [0.0, -1.3])  # zero and negative factors
def test_square_box_xyxy_rejects_non_positive_margin(margin):
    with pytest.raises(ValueError, match=f"margin must be positive, got {margin}"):
        square_box_xyxy((0, 0, 10, 10), margin, (100, 100))
