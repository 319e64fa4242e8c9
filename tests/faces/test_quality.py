"""Sharpness and near-duplicate measures for crops."""

from __future__ import annotations

import numpy as np

from pipeline.faces.quality import sharpness, thumb_distance, thumbnail


def _texture(seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (256, 256, 3), dtype=np.uint8)


def test_blur_lowers_sharpness():
    import cv2

    sharp = _texture()
    blurred = cv2.GaussianBlur(sharp, (0, 0), 4)
    assert sharpness(blurred) < sharpness(sharp) / 10
    assert sharpness(np.full((256, 256, 3), 90, np.uint8)) == 0.0


def test_thumbnail_distance():
    a = _texture(1)
    assert thumb_distance(thumbnail(a), thumbnail(a)) == 0.0
    brighter = np.clip(a.astype(int) + 3, 0, 255).astype(np.uint8)
    assert thumb_distance(thumbnail(a), thumbnail(brighter)) < 4  # a near duplicate
    assert thumb_distance(thumbnail(a), thumbnail(_texture(2))) > 4  # another image
