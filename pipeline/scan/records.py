"""Output rows: one frozen dataclass per CSV, the header comes from its fields."""

from __future__ import annotations

import dataclasses
import math

STATUSES = ("ok", "no_face", "decode_error", "timeout", "error")
LABELS = ("FAKE", "REAL")


class CsvRow:
    """Mixin for frozen dataclasses written as CSV rows: the header is the field names."""

    @classmethod
    def columns(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]


@dataclasses.dataclass(frozen=True)
class VideoRow(CsvRow):
    """One clip's verdict. ``p_fake`` (1 = fake) and ``label`` are set only when ``status`` is ok.

    ``n_frames``: sampled frames decoded; ``n_faces``: faces scored; ``duration_s``/``fps``/
    ``width``/``height``: from the container, width/height upright; ``elapsed_s``: wall time
    spent on this clip; ``error``: why, when not ok.
    """

    video_path: str
    status: str
    p_fake: float | None = None
    label: str = ""
    n_frames: int = 0
    n_faces: int = 0
    n_tracks: int = 0
    duration_s: float | None = None
    fps: float | None = None
    width: int | None = None
    height: int | None = None
    rotation_deg: int | None = None
    sample_fps: float | None = None
    aggregation: str = ""
    model: str = ""
    elapsed_s: float = 0.0
    error: str = ""

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, got {self.status!r}")
        if self.status == "ok":
            if self.p_fake is None or not (0.0 <= self.p_fake <= 1.0) or math.isnan(self.p_fake):
                raise ValueError(f"an ok row needs p_fake in [0, 1], got {self.p_fake!r}")
            if self.label not in LABELS:
                raise ValueError(f"an ok row needs label in {LABELS}, got {self.label!r}")
        elif self.p_fake is not None or self.label:
            raise ValueError(f"a {self.status} row carries no p_fake or label, got {self.p_fake!r}, {self.label!r}")


@dataclasses.dataclass(frozen=True)
class FaceRow(CsvRow):
    """One scored face: where it is (full-resolution pixels, ``xyxy``) and its ``p_fake``."""

    video_path: str
    frame_index: int
    timestamp_s: float
    track_id: int
    x1: float
    y1: float
    x2: float
    y2: float
    det_confidence: float
    p_fake: float

    def __post_init__(self) -> None:
        if not 0.0 <= self.p_fake <= 1.0:
            raise ValueError(f"p_fake must be in [0, 1], got {self.p_fake}")


def display_path(path) -> str:
    """The path as text that is always valid UTF-8: bytes that are not (a file name made on
    another system) are written as ``\\xNN`` escapes. This is the ``video_path`` of every row."""
    text = str(path)
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def label_for(p_fake: float, threshold: float) -> str:
    """FAKE when ``p_fake >= threshold``, else REAL."""
    return "FAKE" if p_fake >= threshold else "REAL"
