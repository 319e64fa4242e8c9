"""Faces lying sideways or upside down in clips that carry no rotation tag.

Screen recordings and old phones store a portrait clip turned a quarter turn with no display
matrix, so the decoder (which does turn tagged clips upright) hands the scanner sideways faces.
MTCNN does not simply miss them. Measured at 1 fps on the 30 shared clips with faces, each
turned by 90, 180 and 270 degrees: the upright pass found some face in 52 of the 90 turned
versions (in up to 81% of the frames), which would then be scored sideways. Landmarks help only
in part: of the faces MTCNN selects in frames turned a quarter turn, about half have the eyes
beside the mouth (eyes-to-mouth direction more than 45 degrees off image up), the rest look
upright, as upside-down faces always do; on upright faces that direction is never more than
27 degrees off (99% within 16). What does tell is comparing turns on the same frames: the turn
that makes the faces upright shows upright-looking faces on more frames than any other.

So a few sampled frames of each clip (:data:`PROBE_FRAMES`, evenly spaced) are kept, shrunk to
the detector's working size, while the upright pass streams past (:class:`ProbeFrameKeeper`:
memory flat in clip length). When the upright pass shows an upright-looking face on every
probe frame (the ordinary clip) nothing more happens: no detector call, the same row. Otherwise
(no face, faces on some frames only, or faces lying sideways) the probe frames are turned by
90, 180 and 270 degrees clockwise and searched again (:func:`probe_rotations`, which stops as
soon as no turn can be chosen: six MTCNN searches on a clip with no face), and
:func:`choose_rotation` picks a turn only when it shows upright-looking faces on at least
:data:`MIN_PROBE_HITS` probe frames and on more of them than the frames as decoded did.

``rotation_deg`` here, as ``VideoRow.rotation_guess_deg``, is the clockwise turn applied to
the decoded frame to make its faces upright: a clip stored turned 90 degrees clockwise (ffmpeg
``transpose=1``) needs 270.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator, Sequence
from typing import Protocol

import numpy as np

from pipeline.faces.detector import Detector
from pipeline.faces.select import select_faces
from pipeline.video.decode import Frame

ROTATIONS_CW_DEG = (90, 180, 270)
TURNS_CW_DEG = (0, *ROTATIONS_CW_DEG)  # 0: the frame as decoded
# Probe frames per clip, each searched at three turns (on a clip with no face, the third frame
# is not searched: it could not make two hits alone).
PROBE_FRAMES = 3
# A turn is taken only when it shows upright faces on this many probe frames (fewer when the
# clip gave fewer probe frames): one frame of texture that MTCNN takes for a face is not enough.
MIN_PROBE_HITS = 2
# A face counts as upright when its eyes-to-mouth direction is within this of image up
# (upright faces: at most 27 degrees off; about half the sideways faces MTCNN keeps: 45-100).
UPRIGHT_TOLERANCE_DEG = 45.0


def rotate_cw(rgb: np.ndarray, rotation_deg: int) -> np.ndarray:
    """``rgb`` (H, W, C) turned ``rotation_deg`` (0, 90, 180 or 270) degrees clockwise, as a new
    C-contiguous array ((W, H, C) for a quarter turn; the input itself for 0). Raises
    ``ValueError`` for other angles."""
    if rotation_deg not in TURNS_CW_DEG:
        raise ValueError(f"rotation_deg must be one of {TURNS_CW_DEG}, got {rotation_deg!r}")
    if rotation_deg == 0:
        return rgb
    # np.rot90 turns counter-clockwise for positive k
    return np.ascontiguousarray(np.rot90(rgb, k=-(rotation_deg // 90)))


def turn_frames(frames: Iterator[Frame], rotation_deg: int) -> Iterator[Frame]:
    """The same frames turned ``rotation_deg`` degrees clockwise (:func:`rotate_cw`), one at a
    time; closing this generator closes ``frames`` (so a decoder is stopped at once)."""
    try:
        for frame in frames:
            yield dataclasses.replace(frame, rgb=rotate_cw(frame.rgb, rotation_deg))
    finally:
        close = getattr(frames, "close", None)
        if close is not None:
            close()


def face_up_deg(landmarks_xy: Sequence[tuple[float, float]]) -> float:
    """Where the top of a face points: the direction from the mouth corners' midpoint to the
    eyes' midpoint, in degrees clockwise from image up, in (-180, 180]; 0 for an upright face,
    90 for one whose top points right. ``landmarks_xy``: MTCNN's five points in pixels
    (:data:`pipeline.faces.boxes.LANDMARK_NAMES` order). Using both eyes and both mouth corners
    makes it independent of which eye MTCNN calls left."""
    (lx, ly), (rx, ry), _nose, (mlx, mly), (mrx, mry) = landmarks_xy
    dx = (lx + rx - mlx - mrx) / 2.0
    dy = (ly + ry - mly - mry) / 2.0
    return math.degrees(math.atan2(dx, -dy))


def looks_upright(landmarks_xy: Sequence[tuple[float, float]], tolerance_deg: float = UPRIGHT_TOLERANCE_DEG) -> bool:
    """Whether a face's top points within ``tolerance_deg`` of image up (:func:`face_up_deg`).
    A face without landmarks counts as upright: nothing says otherwise."""
    if not landmarks_xy:
        return True
    return abs(face_up_deg(landmarks_xy)) <= tolerance_deg


def probe_sample_indices(n_expected: int, n_probe: int = PROBE_FRAMES) -> tuple[int, ...]:
    """Which sampled frames to keep for probing: ``n_probe`` evenly spaced over ``n_expected``
    samples, each in the middle of its share (so not the first frame, often a fade-in), sorted,
    without repeats (fewer when ``n_expected < n_probe``). Raises ``ValueError`` for counts
    below 1."""
    if n_expected < 1 or n_probe < 1:
        raise ValueError(f"n_expected and n_probe must be >= 1, got {n_expected} and {n_probe}")
    return tuple(sorted({min(n_expected - 1, int((i + 0.5) * n_expected / n_probe)) for i in range(n_probe)}))


@dataclasses.dataclass(frozen=True)
class ProbeFrame:
    """A sampled frame kept for probing: ``rgb`` uint8 (h, w, 3), shrunk so that its long side
    is at most the detector's working size; ``scale`` = kept size / decoded size (<= 1), so a
    box found in ``rgb`` times ``1 / scale`` is in decoded-frame pixels."""

    sample_index: int
    rgb: np.ndarray
    scale: float

    def __post_init__(self) -> None:
        if self.rgb.ndim != 3 or self.rgb.shape[2] != 3 or self.rgb.dtype != np.uint8:
            raise ValueError(f"rgb must be uint8 (H, W, 3), got {self.rgb.dtype} {self.rgb.shape}")
        if not 0.0 < self.scale <= 1.0:
            raise ValueError(f"scale must be in (0, 1], got {self.scale}")


class ProbeFrameKeeper:
    """Keeps a few frames of a stream for probing, while passing every frame on unchanged.

    ``sample_indices``: which samples to keep (:func:`probe_sample_indices` of the expected
    count); ``long_side_px``: kept copies are shrunk to this (the detector's
    ``detect_long_side_px``, so probing sees what detection sees, and a 4K clip keeps 0.4 MB a
    frame instead of 25 MB). If the clip ends before a planned index (its duration was unknown
    or wrong), its last frame is kept instead, so a clip that gave frames always has one.
    Memory: at most ``len(sample_indices)`` shrunk frames, whatever the clip length.
    """

    def __init__(self, sample_indices: Sequence[int], long_side_px: int):
        if long_side_px < 1:
            raise ValueError(f"long_side_px must be >= 1, got {long_side_px}")
        self._wanted = frozenset(sample_indices)
        self._n_wanted = len(self._wanted)
        self._long_side_px = long_side_px
        self._kept: list[ProbeFrame] = []
        self._last: Frame | None = None

    def keep_from(self, frames: Iterator[Frame]) -> Iterator[Frame]:
        """``frames`` passed through as they are; closing this generator closes ``frames``."""
        try:
            for frame in frames:
                if frame.sample_index in self._wanted:
                    self._kept.append(self._shrunk(frame))
                self._last = frame
                yield frame
        finally:
            close = getattr(frames, "close", None)
            if close is not None:
                close()

    @property
    def frames(self) -> list[ProbeFrame]:
        """The kept frames in sample order (call after the stream is done)."""
        kept = list(self._kept)
        last = self._last
        if len(kept) < self._n_wanted and last is not None and all(f.sample_index != last.sample_index for f in kept):
            kept.append(self._shrunk(last))
        return kept

    def _shrunk(self, frame: Frame) -> ProbeFrame:
        import cv2

        h, w = frame.rgb.shape[:2]
        scale = min(1.0, self._long_side_px / max(h, w))
        if scale >= 1.0:
            return ProbeFrame(frame.sample_index, np.array(frame.rgb), 1.0)
        size_wh = (max(1, round(w * scale)), max(1, round(h * scale)))
        return ProbeFrame(frame.sample_index, cv2.resize(frame.rgb, size_wh, interpolation=cv2.INTER_AREA), scale)


@dataclasses.dataclass(frozen=True)
class RotationProbe:
    """What one turn of the probe frames showed. ``rotation_deg``: clockwise turn applied (0 =
    as decoded); ``n_frames``: probe frames searched; ``n_hits``: those with at least one
    selected face (the detector config's confidence and size rule) that looks upright
    (:func:`looks_upright`); ``mean_confidence``: mean over the hit frames of their best such
    face's MTCNN confidence (0 when none)."""

    rotation_deg: int
    n_frames: int
    n_hits: int
    mean_confidence: float = 0.0

    def __post_init__(self) -> None:
        if self.rotation_deg not in TURNS_CW_DEG:
            raise ValueError(f"rotation_deg must be one of {TURNS_CW_DEG}, got {self.rotation_deg!r}")
        if not 0 <= self.n_hits <= self.n_frames:
            raise ValueError(f"n_hits must be in [0, n_frames={self.n_frames}], got {self.n_hits}")
        if not 0.0 <= self.mean_confidence <= 1.0:
            raise ValueError(f"mean_confidence must be in [0, 1], got {self.mean_confidence}")

    @classmethod
    def from_faces(
        cls, rotation_deg: int, faces_per_frame: Sequence[Sequence[tuple[float, Sequence[tuple[float, float]]]]]
    ) -> RotationProbe:
        """The probe of one turn from each probe frame's selected faces, given as
        (confidence, landmarks_xy) pairs."""
        best = [
            max((c for c, landmarks in faces if looks_upright(landmarks)), default=None) for faces in faces_per_frame
        ]
        hits = [c for c in best if c is not None]
        return cls(rotation_deg, len(faces_per_frame), len(hits), float(np.mean(hits)) if hits else 0.0)


class UprightFace(Protocol):
    """What :func:`upright_probe` reads of a face the upright pass scored (e.g.
    :class:`pipeline.scan.analyze.ScoredFace`), read-only."""

    @property
    def sample_index(self) -> int: ...
    @property
    def det_confidence(self) -> float: ...
    @property
    def landmarks_xy(self) -> tuple[tuple[float, float], ...]: ...


def upright_probe(faces: Sequence[UprightFace], sample_indices: Sequence[int]) -> RotationProbe:
    """The probe of the frames as decoded, read from the upright pass's selected faces (no new
    detection): hits on the probe frames ``sample_indices``."""
    per_frame: dict[int, list[tuple[float, Sequence[tuple[float, float]]]]] = {i: [] for i in sample_indices}
    for face in faces:
        if face.sample_index in per_frame:
            per_frame[face.sample_index].append((face.det_confidence, face.landmarks_xy))
    return RotationProbe.from_faces(0, [per_frame[i] for i in sample_indices])


def hits_needed(n_frames: int, upright_hits: int, min_hits: int = MIN_PROBE_HITS) -> int:
    """Probe frames with an upright-looking face that a turn needs to be chosen
    (:func:`choose_rotation`): at least ``min_hits`` (all ``n_frames`` when fewer), at least
    one, and more than the frames as decoded showed (``upright_hits``)."""
    return max(min(min_hits, n_frames), upright_hits + 1, 1)


def probe_rotations(
    frames: Sequence[ProbeFrame],
    detector: Detector,
    rotations_deg: Sequence[int] = ROTATIONS_CW_DEG,
    *,
    upright_hits: int = 0,
    min_hits: int = MIN_PROBE_HITS,
) -> list[RotationProbe]:
    """Search ``frames`` turned by each of ``rotations_deg`` (clockwise) with ``detector`` and
    select faces by its config (``min_confidence``; ``min_face_px`` in decoded-frame pixels).

    Frames of one shape go to MTCNN together (the quarter turns share a shape). The search
    stops early when no turn can be chosen any more (:func:`hits_needed`, with
    ``upright_hits`` the upright pass's hits on these frames): of three probe frames and no
    upright face, the first two are searched, and the third only if a turn showed a face on one
    of them. So a clip with no face costs six searches in two detector calls, not nine, and the
    choice is the one searching every frame would give. Returns one :class:`RotationProbe` per
    turn, in the order of ``rotations_deg`` (``n_frames``: the frames searched). Raises
    ``ValueError`` for a turn not in :data:`ROTATIONS_CW_DEG`."""
    bad = [deg for deg in rotations_deg if deg not in ROTATIONS_CW_DEG]
    if bad:
        raise ValueError(f"rotations_deg must be among {ROTATIONS_CW_DEG}, got {bad}")
    cfg = detector.config
    needed = hits_needed(len(frames), upright_hits, min_hits)
    first = max(1, len(frames) - needed + 1)
    found: dict[tuple[int, int], list[tuple[float, tuple[tuple[float, float], ...]]]] = {}

    def search(some: Sequence[ProbeFrame]) -> None:
        turned = [(deg, frame, rotate_cw(frame.rgb, deg)) for deg in rotations_deg for frame in some]
        for shape in dict.fromkeys(rgb.shape for _, _, rgb in turned):
            group = [(deg, frame, rgb) for deg, frame, rgb in turned if rgb.shape == shape]
            for (deg, frame, _), faces in zip(group, detector.detect([rgb for _, _, rgb in group])):
                full_size = [face.scaled(1.0 / frame.scale) if frame.scale != 1.0 else face for face in faces]
                selected = select_faces(full_size, min_confidence=cfg.min_confidence, min_face_px=cfg.min_face_px)
                found[(deg, frame.sample_index)] = [(face.confidence, face.landmarks_xy) for face in selected]

    def probes(searched: Sequence[ProbeFrame]) -> list[RotationProbe]:
        return [
            RotationProbe.from_faces(deg, [found[(deg, f.sample_index)] for f in searched]) for deg in rotations_deg
        ]

    search(frames[:first])
    so_far = probes(frames[:first])
    remaining = len(frames) - first
    if remaining == 0 or all(p.n_hits + remaining < needed for p in so_far):
        return so_far
    search(frames[first:])
    return probes(frames)


def needs_probe(upright: RotationProbe) -> bool:
    """Whether to search turned frames: unless the upright pass showed an upright-looking face
    on every probe frame (the ordinary clip, which is then left exactly as scanned)."""
    return upright.n_hits < upright.n_frames


def choose_rotation(probes: Sequence[RotationProbe], *, min_hits: int = MIN_PROBE_HITS) -> int | None:
    """The clockwise turn to score the clip at, or ``None`` to keep the frames as decoded.

    ``probes``: one per turn searched; the one with ``rotation_deg`` 0 (the upright pass, if
    given) is the bar to beat. A turn qualifies when it shows upright-looking faces on at least
    ``min_hits`` probe frames (or on all of them, when fewer were searched) and on more frames
    than the upright probe; of those, the most hits wins, then the higher mean confidence, then
    the smaller turn. Why this rule: on the 30 shared clips with faces, each turned by 90, 180
    and 270 degrees, it picked the turn that makes them upright in 87 of the 90 (every case
    where that turn showed faces on two probe frames; the other three, a street scene with a
    face on one probe frame, stay as decoded) and never a wrong one; it picked no turn for any
    of the 30 as recorded nor for 6 synthetic clips without faces. Turned faces that MTCNN
    still finds upright-looking, and upside-down ones, reach at most two of three probe frames
    there, so the right turn, on all three, wins. Raises ``ValueError`` for ``min_hits < 1``.
    """
    if min_hits < 1:
        raise ValueError(f"min_hits must be >= 1, got {min_hits}")
    upright_hits = max((p.n_hits for p in probes if p.rotation_deg == 0), default=0)
    candidates = [
        p for p in probes if p.rotation_deg != 0 and p.n_hits >= hits_needed(p.n_frames, upright_hits, min_hits)
    ]
    if not candidates:
        return None
    best = max(candidates, key=lambda p: (p.n_hits, p.mean_confidence, -p.rotation_deg))
    return best.rotation_deg
