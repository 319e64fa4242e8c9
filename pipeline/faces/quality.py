"""Cheap image-quality measures for face crops: sharpness, near-duplicate detection, and the picture
quality of a face as the model sees it (:class:`FaceQuality`: size, brightness, noise, blur, blocking).

:func:`face_quality` measures one crop, :func:`clip_quality` summarises a clip's faces (medians), and
:func:`outside_range` names the measures outside the range a model was validated on (its spec's
``validated_range``, :mod:`pipeline.models.weights`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

THUMB_PX = 32
# The block side of JPEG and of MPEG-2/H.264 8x8 transforms, in pixels of the crop.
BLOCK_PX = 8
# Immerkaer's noise operator: the difference of two Laplacians, blind to planes and to linear ramps.
_IMMERKAER_KERNEL = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], dtype=np.float32)


@dataclasses.dataclass(frozen=True)
class FaceQuality:
    """The picture quality of one face (or the medians of a clip's faces, :func:`clip_quality`).

    ``face_px``: longer side of the face box in source pixels (the caller's, e.g.
    :attr:`pipeline.faces.boxes.FaceBox.size_px`); the rest is measured on the crop as the model
    sees it, in grey levels of its luma (BT.601, 0-255): ``brightness`` mean luma; ``noise_sigma``
    the noise's standard deviation (:func:`noise_sigma`); ``sharpness`` variance of the Laplacian
    (:func:`sharpness`, higher = sharper); ``blockiness`` 8x8 blocking (:func:`blockiness`, about
    1 = none, higher = blockier).
    """

    face_px: float
    brightness: float
    noise_sigma: float
    sharpness: float
    blockiness: float


# The measures' names in field order: the keys a validated range may have (the one list).
QUALITY_MEASURES = tuple(field.name for field in dataclasses.fields(FaceQuality))


def _grey(rgb: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)


def _laplacian_variance(grey: np.ndarray) -> float:
    import cv2

    return float(cv2.Laplacian(grey, cv2.CV_64F).var())


def _immerkaer_sigma(grey: np.ndarray) -> float:
    import cv2

    h, w = grey.shape
    if h < 3 or w < 3:
        return 0.0
    response = cv2.filter2D(grey.astype(np.float32), -1, _IMMERKAER_KERNEL)[1:-1, 1:-1]
    return float(math.sqrt(math.pi / 2.0) * np.abs(response).mean() / 6.0)


def _blockiness(grey: np.ndarray) -> float:
    luma = grey.astype(np.float32)
    ratios = []
    for steps in (np.abs(np.diff(luma, axis=1)), np.abs(np.diff(luma, axis=0)).T):
        n_steps = steps.shape[1] - steps.shape[1] % BLOCK_PX  # whole periods only: every phase counted alike
        if n_steps < BLOCK_PX:
            return 1.0
        per_phase = steps[:, :n_steps].reshape(steps.shape[0], -1, BLOCK_PX).mean(axis=(0, 1))  # (BLOCK_PX,)
        edge = int(np.argmax(per_phase))
        inside = (per_phase.sum() - per_phase[edge]) / (BLOCK_PX - 1)
        ratios.append((per_phase[edge], inside))
    across, inside = sum(r[0] for r in ratios), sum(r[1] for r in ratios)
    return float(across / inside) if inside > 1e-6 else 1.0


def sharpness(rgb: np.ndarray) -> float:
    """Variance of the Laplacian of the grey image (higher = sharper). ``rgb``: uint8 (H, W, 3).

    Measured on the crop as it will be stored (256 px by default), so values compare across faces
    of different source sizes; an upscaled small face reads as blurred, which it is.
    """
    return _laplacian_variance(_grey(rgb))


def noise_sigma(rgb: np.ndarray) -> float:
    """Standard deviation of additive white noise, in grey levels, of uint8 (H, W, 3) RGB.

    Immerkaer, J. (1996) "Fast noise variance estimation", Computer Vision and Image Understanding
    64(2): 300-302: ``sqrt(pi/2) / (6 (W-2)(H-2)) * sum |I * N|``, N the 3x3 difference of two
    Laplacians. Edges and fine texture read as noise too, so a detailed face reads a few levels above
    its true noise; a flat one reads it closely.
    """
    return _immerkaer_sigma(_grey(rgb))


def blockiness(rgb: np.ndarray) -> float:
    """8x8 blocking of JPEG / block-transform codecs in uint8 (H, W, 3) RGB: about 1 = none.

    A block-edge ratio in the manner of Wu & Yuen's GBIM (1997, "A generalized block-edge impairment
    metric for video coding", IEEE Signal Processing Letters 4(11)), without its luminance masking:
    the mean absolute luma step between neighbours across ``BLOCK_PX`` block boundaries over the
    mean step inside blocks, horizontal and vertical pooled. The grid phase is unknown in a crop,
    so per axis the boundary is the phase (column mod 8) with the largest mean step. A grid the
    crop's resize scaled away from 8 px is not seen: the measure reads blocking at the crop's scale.
    """
    return _blockiness(_grey(rgb))


def face_quality(crop_rgb: np.ndarray, face_px: float) -> FaceQuality:
    """The :class:`FaceQuality` of one face: ``crop_rgb`` uint8 (S, S, 3), the crop exactly as the
    model takes it (S its input size, 224 for ``lite0_mix_v1``); ``face_px`` longer side of the face
    box in source pixels. About 0.4 ms for 224 px on one core (1 ms on a busy one). Raises ``ValueError``
    for another shape."""
    crop_rgb = np.asarray(crop_rgb)
    if crop_rgb.ndim != 3 or crop_rgb.shape[2] != 3 or crop_rgb.dtype != np.uint8:
        raise ValueError(f"crop must be uint8 (S, S, 3), got {crop_rgb.dtype} {crop_rgb.shape}")
    grey = _grey(crop_rgb)
    return FaceQuality(
        face_px=float(face_px),
        brightness=float(grey.mean()),
        noise_sigma=_immerkaer_sigma(grey),
        sharpness=_laplacian_variance(grey),
        blockiness=_blockiness(grey),
    )


def clip_quality(faces: Sequence[FaceQuality]) -> FaceQuality:
    """A clip's quality: the median of each measure over its ``faces``. Raises ``ValueError`` when empty."""
    if not faces:
        raise ValueError("clip_quality needs at least one face")
    return FaceQuality(**{name: float(np.median([getattr(face, name) for face in faces])) for name in QUALITY_MEASURES})


# Measures judged by their upper bound alone: less blocking than the model was validated on is no harm.
UPPER_BOUND_ONLY = frozenset({"blockiness"})


def outside_range(
    quality: FaceQuality,
    validated_range: Mapping[str, tuple[float, float]] | Iterable[tuple[str, tuple[float, float]]] | None,
) -> list[str]:
    """The names of ``quality``'s measures outside their validated ``[low, high]`` (inclusive), in
    field order. ``validated_range``: measure name -> (low, high), or its items (as a spec's
    ``validated_range`` holds them); measures it does not name are not judged; None or empty: none."""
    ranges = dict(validated_range or ())
    outside = []
    for name in QUALITY_MEASURES:
        if name in ranges:
            low, high = ranges[name]
            value = getattr(quality, name)
            if value > high or (value < low and name not in UPPER_BOUND_ONLY):
                outside.append(name)
    return outside


def thumbnail(rgb: np.ndarray) -> np.ndarray:
    """A small grey float image for comparing crops (``THUMB_PX`` square, values 0-255)."""
    import cv2

    return cv2.resize(_grey(rgb), (THUMB_PX, THUMB_PX), interpolation=cv2.INTER_AREA).astype(np.float32)


def thumb_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute difference of two thumbnails, in grey levels (0 = identical)."""
    return float(np.mean(np.abs(a - b)))
