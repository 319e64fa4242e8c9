"""Detection that follows known faces between full-frame checks.

On dense sampling most of the scanner's time is MTCNN on whole frames (17-23 ms a frame at
480 px in batches), yet a face rarely moves far between samples a fifth of a second apart.
:class:`FaceFollower` runs full-frame detection at most every ``full_frame_every_s`` seconds
of video and, on the samples in between, runs MTCNN only on a small square region (96 px)
around each face found last (about 3 ms a region in batches). A frame where every region lost
its face goes back to full-frame detection, so a face that moved away is found again at once;
a face that enters the picture is found at the next full-frame check. Samples that are
``full_frame_every_s`` or more apart (the default 1 fps) all get full-frame detection.

The follower is also where the faces of a frame are *selected*
(:func:`pipeline.faces.select.select_faces`, with the detector config's ``min_confidence`` and
``min_face_px``): the detector reports every face, and only selected faces are returned,
followed, or count as a region having found its face.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import cast

import numpy as np

from pipeline.faces.boxes import FaceBox, iou_xyxy
from pipeline.faces.detector import Detector
from pipeline.faces.select import select_faces

# A face found in a region is the followed one if its centre lies within this many face
# sizes of where the followed face was, and its size is within this ratio of the followed
# face's; otherwise the region missed.
MAX_FOLLOW_SHIFT = 0.75
MAX_FOLLOW_SIZE_RATIO = 1.6
# Two regions that found the same face (overlapping people): keep one.
DUPLICATE_IOU = 0.5
# Timestamps within this of a full-frame interval count as reaching it (1 fps = every sample).
SCHEDULE_SLACK_S = 1e-3


@dataclasses.dataclass(frozen=True)
class Region:
    """A square region of a frame, ``side_px`` on a side from (``left``, ``top``) in
    full-resolution pixels (it may reach past the frame border, which is padded black), cut
    around the face ``around``."""

    left: int
    top: int
    side_px: int
    around: FaceBox

    @classmethod
    def around_face(cls, face: FaceBox, margin: float) -> Region:
        x1, y1, x2, y2 = face.box_xyxy
        side = max(2, int(round(face.size_px * margin)))
        left = int(round((x1 + x2) / 2.0 - side / 2.0))
        top = int(round((y1 + y2) / 2.0 - side / 2.0))
        return cls(left, top, side, face)

    def cut(self, frame_rgb: np.ndarray, size_px: int) -> np.ndarray:
        """The region as a uint8 (size_px, size_px, 3) image. The part inside the frame is
        resized first and padded after, so a region far past the border of a large frame never
        costs a full-size canvas."""
        import cv2

        h, w = frame_rgb.shape[:2]
        x0, y0 = max(0, self.left), max(0, self.top)
        x1, y1 = min(w, self.left + self.side_px), min(h, self.top + self.side_px)
        out = np.zeros((size_px, size_px, 3), dtype=np.uint8)
        if x1 <= x0 or y1 <= y0:
            return out
        scale = size_px / self.side_px
        dx0, dy0 = round((x0 - self.left) * scale), round((y0 - self.top) * scale)
        dx1 = min(size_px, max(dx0 + 1, round((x1 - self.left) * scale)))
        dy1 = min(size_px, max(dy0 + 1, round((y1 - self.top) * scale)))
        dx0, dy0 = min(dx0, dx1 - 1), min(dy0, dy1 - 1)
        interpolation = cv2.INTER_AREA if scale < 1.0 else cv2.INTER_LINEAR
        out[dy0:dy1, dx0:dx1] = cv2.resize(frame_rgb[y0:y1, x0:x1], (dx1 - dx0, dy1 - dy0), interpolation=interpolation)
        return out

    def to_frame(self, face: FaceBox, size_px: int) -> FaceBox:
        """A face found in the region image (``size_px`` square) in full-resolution pixels."""
        scaled = face.scaled(self.side_px / size_px)
        x1, y1, x2, y2 = scaled.box_xyxy
        return FaceBox(
            (x1 + self.left, y1 + self.top, x2 + self.left, y2 + self.top),
            scaled.confidence,
            tuple((x + self.left, y + self.top) for x, y in scaled.landmarks_xy),
        )


def full_frame_schedule(timestamps_s: Sequence[float], last_full_s: float | None, every_s: float) -> list[bool]:
    """Which samples get full-frame detection: the first, then the first one at least
    ``every_s`` after the previous full-frame one (``every_s`` <= 0: all of them)."""
    plan = []
    for t in timestamps_s:
        due = every_s <= 0 or last_full_s is None or t - last_full_s >= every_s - SCHEDULE_SLACK_S
        if due:
            last_full_s = t
        plan.append(due)
    return plan


def match_in_region(region: Region, found: Sequence[FaceBox]) -> FaceBox | None:
    """The face (full-resolution pixels) in ``found`` that is the one the region followed:
    the nearest to where it was, if within :data:`MAX_FOLLOW_SHIFT` face sizes of it and of a
    similar size (:data:`MAX_FOLLOW_SIZE_RATIO`)."""
    followed = region.around
    fx, fy = _centre(followed)
    best, best_shift = None, MAX_FOLLOW_SHIFT
    for face in found:
        x, y = _centre(face)
        shift = float(np.hypot(x - fx, y - fy)) / followed.size_px
        ratio = face.size_px / followed.size_px
        if shift <= best_shift and 1 / MAX_FOLLOW_SIZE_RATIO <= ratio <= MAX_FOLLOW_SIZE_RATIO:
            best, best_shift = face, shift
    return best


def _centre(face: FaceBox) -> tuple[float, float]:
    x1, y1, x2, y2 = face.box_xyxy
    return (x1 + x2) / 2.0, (y1 + y2) / 2.0


def drop_duplicates(faces: Sequence[FaceBox]) -> list[FaceBox]:
    """Faces best first, without a second copy of one already kept (IoU >= DUPLICATE_IOU)."""
    kept: list[FaceBox] = []
    for face in sorted(faces, key=lambda f: f.confidence, reverse=True):
        if all(iou_xyxy(face.box_xyxy, k.box_xyxy) < DUPLICATE_IOU for k in kept):
            kept.append(face)
    return kept


class FaceFollower:
    """One clip's detection and selection, sample by sample in order; build one per clip.

    :meth:`detect` takes consecutive batches of frames and returns the *selected* faces of each
    frame in full-resolution pixels, best first. ``stats`` counts frames by how they were
    searched: ``full_frames``, ``region_frames`` and ``fallback_frames`` (frames whose regions
    all lost their faces, searched whole again). ``selection`` counts faces at the selection
    points: ``confident`` (at or above ``min_confidence``: every such face of a whole frame,
    the followed face a region found) and ``small`` (of those, dropped for being under
    ``min_face_px``), so a dataset builder can report what its size rule cost.
    """

    def __init__(self, detector: Detector):
        self._detector = detector
        self._known: list[FaceBox] = []
        self._last_full_s: float | None = None
        self.stats = {"full_frames": 0, "region_frames": 0, "fallback_frames": 0}
        self.selection = {"confident": 0, "small": 0}

    def detect(self, frames_rgb: Sequence[np.ndarray], timestamps_s: Sequence[float]) -> list[list[FaceBox]]:
        cfg = self._detector.config
        plan = full_frame_schedule(timestamps_s, self._last_full_s, cfg.full_frame_every_s)
        self._last_full_s = max((t for t, full in zip(timestamps_s, plan) if full), default=self._last_full_s)
        results: list[list[FaceBox] | None] = [None] * len(frames_rgb)
        self._run_full(frames_rgb, [i for i, full in enumerate(plan) if full], results, "full_frames")

        # Regions for each in-between frame come from the latest frame before it whose faces
        # are known: a full-frame one of this batch, or the end of the previous batch.
        jobs: list[tuple[int, Region]] = []
        known = self._known
        for i, full in enumerate(plan):
            if full:
                found = results[i]
                assert found is not None  # _run_full filled every full frame
                known = found
                continue
            results[i] = []
            jobs.extend((i, Region.around_face(face, cfg.region_margin)) for face in known)
        missed = self._run_regions(frames_rgb, jobs, results)
        self.stats["region_frames"] += sum(1 for full in plan if not full) - len(missed)
        self._run_full(frames_rgb, sorted(missed), results, "fallback_frames")
        # every frame is filled now: the full ones by _run_full, the others set to [] above
        filled = cast("list[list[FaceBox]]", results)
        if filled:
            self._known = filled[-1]
        return filled

    def _run_full(self, frames_rgb, indices: list[int], results: list, stat: str) -> None:
        if not indices:
            return
        for i, faces in zip(indices, self._detector.detect([frames_rgb[i] for i in indices])):
            results[i] = self._select(faces)
        self.stats[stat] += len(indices)

    def _select(self, faces: Sequence[FaceBox]) -> list[FaceBox]:
        """:func:`select_faces` with the detector config's thresholds, counted in ``selection``."""
        cfg = self._detector.config
        confident = select_faces(faces, min_confidence=cfg.min_confidence, min_face_px=0)
        kept = select_faces(confident, min_confidence=cfg.min_confidence, min_face_px=cfg.min_face_px)
        self.selection["confident"] += len(confident)
        self.selection["small"] += len(confident) - len(kept)
        return kept

    def _run_regions(self, frames_rgb, jobs: list[tuple[int, Region]], results: list) -> set[int]:
        """Detect in every region and fill ``results``. Returns the frames where every region
        lost its face (they go to full-frame detection). A frame where only some regions lost
        theirs keeps the faces found: on these clips such a face is mostly one MTCNN misses on
        the whole frame too (turned away, half hidden), so searching the whole frame again
        rarely finds it; the next full-frame check does, if it is there.

        Selection is split around the match on purpose: only confident faces are candidates for
        the followed one, and the size rule applies to the face matched (a too-small match is a
        lost face, not a reason to pick another box), so a region that found only
        low-confidence or too-small boxes sends its frame back to full-frame search."""
        if not jobs:
            return set()
        cfg = self._detector.config
        found = self._detector.detect_in_images([region.cut(frames_rgb[i], cfg.region_px) for i, region in jobs])
        for (i, region), faces in zip(jobs, found):
            confident = select_faces(faces, min_confidence=cfg.min_confidence, min_face_px=0)
            face = match_in_region(region, [region.to_frame(f, cfg.region_px) for f in confident])
            if face is not None:
                results[i].extend(self._select([face]))
        followed = {i for i, _ in jobs}
        for i in followed:
            results[i] = drop_duplicates(results[i])
        return {i for i in followed if not results[i]}
