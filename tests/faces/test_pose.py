"""Yaw and roll from MTCNN's five landmarks."""

from __future__ import annotations

import math

import pytest

from pipeline.faces.pose import roll_deg, yaw_deg

FRONTAL = ((40.0, 40.0), (80.0, 40.0), (60.0, 60.0), (45.0, 80.0), (75.0, 80.0))


def _shift_nose(dx: float):
    (le, re, (nx, ny), ml, mr) = FRONTAL
    return (le, re, (nx + dx, ny), ml, mr)


def _rotate(points, deg: float, centre=(60.0, 60.0)):
    a = math.radians(deg)
    cx, cy = centre
    return tuple(
        (cx + (x - cx) * math.cos(a) - (y - cy) * math.sin(a), cy + (x - cx) * math.sin(a) + (y - cy) * math.cos(a))
        for x, y in points
    )


@pytest.mark.parametrize(
    "landmarks, low, high",
    [
        (FRONTAL, -2, 2),  # nose centred: frontal
        (_shift_nose(10), 25, 35),  # nose half-way to the right eye: about 30 degrees
        (_shift_nose(-10), -35, -25),
        (_shift_nose(40), 89, 90),  # nose beyond the eye: clipped to a profile
    ],
)
def test_yaw(landmarks, low, high):
    assert low <= yaw_deg(landmarks) <= high


def test_roll_does_not_read_as_yaw():
    tilted = _rotate(FRONTAL, 25)
    assert abs(yaw_deg(tilted)) < 1
    assert roll_deg(tilted) == pytest.approx(25, abs=0.01)
    assert yaw_deg(_rotate(_shift_nose(10), 25)) == pytest.approx(yaw_deg(_shift_nose(10)), abs=0.01)


def test_degenerate_eyes_give_zero():
    same = ((50.0, 50.0), (50.0, 50.0), (52.0, 60.0), (45.0, 80.0), (55.0, 80.0))
    assert yaw_deg(same) == 0.0
