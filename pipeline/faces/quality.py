"""Cheap image-quality measures for face crops: sharpness and near-duplicate detection."""

from __future__ import annotations

import numpy as np

THUMB_PX = 32


def sharpness(rgb: np.ndarray) -> float:
    """Variance of the Laplacian of the grey image (higher = sharper). ``rgb``: uint8 (H, W, 3).

    Measured on the crop as it will be stored (256 px by default), so values compare across faces
    of different source sizes; an upscaled small face reads as blurred, which it is.
    """
    import cv2

    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    return float(cv2.Laplacian(grey, cv2.CV_64F).var())


def thumbnail(rgb: np.ndarray) -> np.ndarray:
    """A small grey float image for comparing crops (``THUMB_PX`` square, values 0-255)."""
    import cv2

    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    return cv2.resize(grey, (THUMB_PX, THUMB_PX), interpolation=cv2.INTER_AREA).astype(np.float32)


def thumb_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute difference of two thumbnails, in grey levels (0 = identical)."""
    return float(np.mean(np.abs(a - b)))
