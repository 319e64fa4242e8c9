"""Our own face record and box geometry; MTCNN's output is converted into it once, in detect.py."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

LANDMARK_NAMES = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")


@dataclasses.dataclass(frozen=True)
class FaceBox:
    """A detected face in full-resolution frame pixels.

    ``box_xyxy`` is (x1, y1, x2, y2) with x2 > x1 and y2 > y1; ``confidence`` in [0, 1];
    ``landmarks_xy`` holds the five MTCNN points in :data:`LANDMARK_NAMES` order (may be empty).
    """

    box_xyxy: tuple[float, float, float, float]
    confidence: float
    landmarks_xy: tuple[tuple[float, float], ...] = ()

    def __post_init__(self) -> None:
        x1, y1, x2, y2 = self.box_xyxy
        if not (x2 > x1 and y2 > y1):
            raise ValueError(f"box_xyxy must have x2 > x1 and y2 > y1, got {self.box_xyxy}")
        if not 0.0 <= self.confidence <= 1.0:
            raise ValueError(f"confidence must be in [0, 1], got {self.confidence}")
        if self.landmarks_xy and len(self.landmarks_xy) != len(LANDMARK_NAMES):
            raise ValueError(f"expected {len(LANDMARK_NAMES)} landmarks, got {len(self.landmarks_xy)}")

    @property
    def width_px(self) -> float:
        return self.box_xyxy[2] - self.box_xyxy[0]

    @property
    def height_px(self) -> float:
        return self.box_xyxy[3] - self.box_xyxy[1]

    @property
    def size_px(self) -> float:
        """Longer side of the box: the face's resolution in source pixels."""
        return max(self.width_px, self.height_px)

    def scaled(self, factor: float) -> FaceBox:
        """The same face in a frame scaled by ``factor`` (e.g. detection size -> full size)."""
        x1, y1, x2, y2 = self.box_xyxy
        return FaceBox(
            box_xyxy=(x1 * factor, y1 * factor, x2 * factor, y2 * factor),
            confidence=self.confidence,
            landmarks_xy=tuple((x * factor, y * factor) for x, y in self.landmarks_xy),
        )


def iou_xyxy(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two (x1, y1, x2, y2) boxes; 0 when they do not touch."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def square_box_xyxy(box_xyxy: Sequence[float], margin: float, frame_wh: tuple[int, int]) -> tuple[int, int, int, int]:
    """Square crop box around a face: side = ``margin`` x the face's longer side, same centre,
    clipped at the frame border (so a face at the edge gives a non-square crop).

    ``margin`` is a factor, not pixels: MesoNet's crops are about 1.3x the face.
    Returns integer pixel bounds with x2 > x1, y2 > y1 inside the frame.
    """
    if margin <= 0:
        raise ValueError(f"margin must be positive, got {margin}")
    x1, y1, x2, y2 = box_xyxy
    cx, cy = (x1 + x2) / 2.0, (y1 + y2) / 2.0
    half = max(x2 - x1, y2 - y1) * margin / 2.0
    width, height = frame_wh
    left = min(max(0, int(round(cx - half))), width - 1)
    top = min(max(0, int(round(cy - half))), height - 1)
    right = max(min(width, int(round(cx + half))), left + 1)
    bottom = max(min(height, int(round(cy + half))), top + 1)
    return left, top, right, bottom
