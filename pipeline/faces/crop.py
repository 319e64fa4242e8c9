"""The face crop shared by the scanner, the dataset builder and the web app (facenet-pytorch's
*extract* step: it takes a box that detection found and selection kept)."""

from __future__ import annotations

import numpy as np

from pipeline.faces.boxes import square_box_xyxy

CROP_SIZE_PX = 256
CROP_MARGIN = 1.3
# How crops are resized to the model's input. "area" averages source pixels when shrinking
# (no aliasing of the mesoscopic texture Meso-4 looks at) and is bilinear when enlarging.
RESIZE_INTERPOLATIONS = ("area", "bilinear", "nearest")
DEFAULT_RESIZE = "area"


def check_crops(crops_rgb, size_px: int) -> np.ndarray:
    """``crops_rgb`` as an array, checked to be a stack of (``size_px``, ``size_px``, 3) RGB crops, the input every
    scorer takes. Raises ``ValueError`` naming the shape it got."""
    crops_rgb = np.asarray(crops_rgb)
    if crops_rgb.ndim != 4 or crops_rgb.shape[1:] != (size_px, size_px, 3):
        raise ValueError(f"crops must be (N, {size_px}, {size_px}, 3), got {crops_rgb.shape}")
    return crops_rgb


def resize_rgb(rgb: np.ndarray, size_px: int, interpolation: str = DEFAULT_RESIZE) -> np.ndarray:
    """Resize a uint8 (H, W, 3) image to (size_px, size_px, 3) with the named interpolation."""
    import cv2

    if interpolation not in RESIZE_INTERPOLATIONS:
        raise ValueError(f"interpolation must be one of {RESIZE_INTERPOLATIONS}, got {interpolation!r}")
    h, w = rgb.shape[:2]
    if (h, w) == (size_px, size_px):
        return np.ascontiguousarray(rgb)
    if interpolation == "nearest":
        # pixel-centre mapping, bit-exact with Pillow's NEAREST (Keras' load_img, so the seed's
        # flow_from_directory); cv2.INTER_NEAREST maps corners and picks other pixels
        flag = cv2.INTER_NEAREST_EXACT
    elif interpolation == "bilinear" or (size_px > h or size_px > w):
        flag = cv2.INTER_LINEAR
    else:
        flag = cv2.INTER_AREA
    return cv2.resize(rgb, (size_px, size_px), interpolation=flag)


def cut_face_rgb(frame_rgb: np.ndarray, box_xyxy, *, margin: float = CROP_MARGIN) -> np.ndarray:
    """The face's square box with ``margin`` (a factor of the face's longer side, see
    :func:`pipeline.faces.boxes.square_box_xyxy`) at the frame's own resolution.

    ``frame_rgb``: uint8 (H, W, 3) full-resolution RGB; ``box_xyxy`` in its pixels. Returns a
    uint8 (h, w, 3) *view* into ``frame_rgb`` (square unless the box meets the frame border):
    copy it to keep it after the frame is gone. Raises ``ValueError`` for ``margin`` <= 0.
    """
    h, w = frame_rgb.shape[:2]
    left, top, right, bottom = square_box_xyxy(box_xyxy, margin, (w, h))
    return frame_rgb[top:bottom, left:right]


def crop_face_rgb(
    frame_rgb: np.ndarray,
    box_xyxy,
    *,
    margin: float = CROP_MARGIN,
    size_px: int = CROP_SIZE_PX,
    interpolation: str = DEFAULT_RESIZE,
) -> np.ndarray:
    """Cut a square face crop with ``margin`` out of a full-resolution RGB frame
    (:func:`cut_face_rgb`) and resize it (:func:`resize_rgb`).

    Returns uint8 ``(size_px, size_px, 3)`` RGB; scaling to the model's range is the scorer's job.
    Raises ``ValueError`` for ``margin`` <= 0 or an unknown ``interpolation``.
    """
    return resize_rgb(cut_face_rgb(frame_rgb, box_xyxy, margin=margin), size_px, interpolation)
