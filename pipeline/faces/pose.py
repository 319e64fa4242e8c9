"""Head pose from MTCNN's five landmarks (eyes, nose, mouth corners): a cheap, detector-native
estimate, good enough to bin faces by angle (frontal, three-quarter, profile)."""

from __future__ import annotations

import math
from collections.abc import Sequence


def yaw_deg(landmarks_xy: Sequence[tuple[float, float]]) -> float:
    """Yaw in degrees, negative when the face turns to the image's left, 0 frontal, +-90 profile.

    ``landmarks_xy``: (left_eye, right_eye, nose, mouth_left, mouth_right) in pixels. Uses the
    nose's horizontal offset from the midpoint of eyes and mouth corners, relative to half the
    inter-ocular distance, mapped through arcsin; clipped to +-90.
    """
    (lx, ly), (rx, ry), (nx, ny), (mlx, mly), (mrx, mry) = landmarks_xy
    # rotate into the eye line's frame so that head roll does not read as yaw
    roll = math.atan2(ry - ly, rx - lx)
    cos_r, sin_r = math.cos(-roll), math.sin(-roll)

    def x_of(px: float, py: float) -> float:
        return px * cos_r - py * sin_r

    half_eyes = abs(x_of(rx, ry) - x_of(lx, ly)) / 2.0
    if half_eyes < 1e-6:
        return 0.0
    centre = (x_of(lx, ly) + x_of(rx, ry) + x_of(mlx, mly) + x_of(mrx, mry)) / 4.0
    offset = (x_of(nx, ny) - centre) / half_eyes
    return math.degrees(math.asin(max(-1.0, min(1.0, offset))))


def roll_deg(landmarks_xy: Sequence[tuple[float, float]]) -> float:
    """In-plane rotation: the angle of the eye line, degrees, positive clockwise in the image."""
    (lx, ly), (rx, ry) = landmarks_xy[0], landmarks_xy[1]
    return math.degrees(math.atan2(ry - ly, rx - lx))
