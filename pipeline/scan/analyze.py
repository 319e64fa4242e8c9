"""Score one clip: decode -> detect -> crop -> Meso-4 -> tracks -> one ``p_fake``."""

from __future__ import annotations

import dataclasses
import itertools
import logging
import time
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from pipeline.scan.aggregate import AGGREGATIONS, DEFAULT_AGGREGATION, aggregate
from pipeline.faces.crop import crop_face_rgb
from pipeline.video.decode import DecodeTimeoutError, Frame, iter_frames, sampling_fps
from pipeline.faces.detect import DetectorConfig, FaceDetector
from pipeline.errors import DecodeError
from pipeline.faces.follow import FaceFollower
from pipeline.models.meso4 import SCORE_BATCH_SIZE, MesoScorer
from pipeline.video.probe import VideoInfo, probe_video
from pipeline.scan.records import FaceRow, VideoRow, display_path, label_for
from pipeline.faces.tracks import link_tracks

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class ScanConfig:
    """Settings of a scan; the CLI maps its flags onto these one to one.

    ``fps``: frames sampled per second of video; ``max_frames``: cap per clip (long clips are
    sampled evenly at a lower rate); ``threshold``: ``p_fake`` at or above which the label is
    FAKE; ``aggregation``: name in :data:`pipeline.scan.aggregate.AGGREGATIONS`; ``timeout_s``: time budget per clip (status ``timeout``).
    """

    fps: float = 1.0
    max_frames: int = 40
    threshold: float = 0.5
    aggregation: str = DEFAULT_AGGREGATION
    timeout_s: float | None = 900.0
    detector: DetectorConfig = DetectorConfig()

    def __post_init__(self) -> None:
        if not self.fps > 0:
            raise ValueError(f"fps must be positive, got {self.fps}")
        if self.max_frames < 1:
            raise ValueError(f"max_frames must be >= 1, got {self.max_frames}")
        if not 0.0 < self.threshold < 1.0:
            raise ValueError(f"threshold must be in (0, 1), got {self.threshold}")
        if self.aggregation not in AGGREGATIONS:
            raise ValueError(f"aggregation must be one of {sorted(AGGREGATIONS)}, got {self.aggregation!r}")
        if self.timeout_s is not None and self.timeout_s <= 0:
            raise ValueError(f"timeout_s must be positive, got {self.timeout_s}")


@dataclasses.dataclass(frozen=True)
class ScoredFace:
    """One face found and scored; ``crop_rgb`` (uint8 256x256x3) only when asked for."""

    sample_index: int
    frame_index: int
    timestamp_s: float
    track_id: int
    box_xyxy: tuple[float, float, float, float]
    det_confidence: float
    p_fake: float
    crop_rgb: np.ndarray | None = None


@dataclasses.dataclass(frozen=True)
class VideoResult:
    """A clip's row plus its scored faces (empty unless the clip was ok)."""

    row: VideoRow
    faces: tuple[ScoredFace, ...] = ()

    def face_rows(self) -> list[FaceRow]:
        x = self.row.video_path
        return [
            FaceRow(x, f.frame_index, round(f.timestamp_s, 4), f.track_id, *(round(v, 1) for v in f.box_xyxy),
                    round(f.det_confidence, 5), f.p_fake)
            for f in self.faces
        ]


def batched(frames: Iterator[Frame], n: int) -> Iterator[list[Frame]]:
    """Frames in lists of ``n`` (the last one shorter)."""
    while chunk := list(itertools.islice(frames, n)):
        yield chunk


def analyze_faces(
    frames: Iterator[Frame],
    detector: FaceDetector,
    scorer: MesoScorer,
    *,
    keep_crops: bool = False,
    on_frames: Callable[[int], None] | None = None,
    timings: dict[str, float] | None = None,
) -> tuple[int, list[ScoredFace]]:
    """Detect, crop and score the faces of a stream of frames.

    Detection runs in batches of ``detector.config.batch_size`` frames (whole frames, or regions
    around known faces between full-frame checks: :mod:`pipeline.faces.follow`), scoring in batches of
    up to ``SCORE_BATCH_SIZE`` crops; no frame is kept past its batch, so memory stays flat
    whatever the clip length. ``timings``, if given, accumulates ``decode_wait_s`` (waiting for
    frames that the read-ahead thread did not have ready), ``detect_s``, ``crop_s`` and
    ``score_s``, and counts frames searched whole (``full_frames``, ``fallback_frames``) and by
    regions (``region_frames``). Returns (number of frames seen, faces with track ids).
    """
    clock = timings if timings is not None else {}
    pending: list[np.ndarray] = []
    pending_meta: list[tuple[tuple[int, int, float], object]] = []
    scored: list[tuple[tuple[int, int, float], object, float, np.ndarray | None]] = []
    boxes_per_sample: list[list[tuple[float, float, float, float]]] = []
    n_frames = 0

    def timed(key: str, started: float) -> None:
        clock[key] = clock.get(key, 0.0) + time.perf_counter() - started

    def flush() -> None:
        if not pending:
            return
        started = time.perf_counter()
        p_fake = scorer.score_p_fake(np.stack(pending))
        timed("score_s", started)
        for (where, face), p, crop in zip(pending_meta, p_fake, pending):
            scored.append((where, face, float(p), crop if keep_crops else None))
        pending.clear()
        pending_meta.clear()

    follower = FaceFollower(detector)
    chunks = batched(frames, detector.config.batch_size)
    while True:
        started = time.perf_counter()
        chunk = next(chunks, None)
        timed("decode_wait_s", started)
        if chunk is None:
            break
        started = time.perf_counter()
        detections = follower.detect([f.rgb for f in chunk], [f.timestamp_s for f in chunk])
        timed("detect_s", started)
        started = time.perf_counter()
        for frame, faces in zip(chunk, detections):
            boxes_per_sample.append([face.box_xyxy for face in faces])
            for face in faces:
                pending.append(crop_face_rgb(frame.rgb, face.box_xyxy, margin=scorer.spec.crop_margin,
                                             size_px=scorer.spec.input_size_px,
                                             interpolation=scorer.spec.resize_interpolation))
                pending_meta.append(((frame.sample_index, frame.frame_index, frame.timestamp_s), face))
        timed("crop_s", started)
        n_frames += len(chunk)
        if on_frames is not None:
            on_frames(len(chunk))
        if len(pending) >= SCORE_BATCH_SIZE:
            flush()
    flush()
    for key, count in follower.stats.items():
        clock[key] = clock.get(key, 0) + count

    track_ids = iter(itertools.chain.from_iterable(link_tracks(boxes_per_sample)))
    faces = [
        ScoredFace(sample_index, frame_index, timestamp_s, next(track_ids), tuple(face.box_xyxy), face.confidence,
                   p, crop)
        for (sample_index, frame_index, timestamp_s), face, p, crop in scored
    ]
    return n_frames, faces


def score_video(
    path: str | Path,
    detector: FaceDetector,
    scorer: MesoScorer,
    config: ScanConfig = ScanConfig(),
    *,
    keep_crops: bool = False,
    on_frames: Callable[[int], None] | None = None,
    on_info: Callable[[VideoInfo, int], None] | None = None,
    timings: dict[str, float] | None = None,
) -> VideoResult:
    """Score one clip. Raises :class:`DecodeError`, :class:`DecodeTimeoutError` or others;
    :func:`score_video_safe` turns those into a row with a status. ``timings``: as in
    :func:`analyze_faces`, plus ``probe_s``."""
    started = time.perf_counter()
    video_path = display_path(path)
    deadline_s = config.timeout_s
    info = probe_video(path, timeout_s=deadline_s or 60.0)
    if timings is not None:
        timings["probe_s"] = timings.get("probe_s", 0.0) + time.perf_counter() - started
    sample_fps = sampling_fps(info, config.fps, config.max_frames)
    if on_info is not None:
        on_info(info, sample_fps)
    remaining = None if deadline_s is None else max(1.0, deadline_s - (time.perf_counter() - started))
    frames = iter_frames(path, info, sample_fps=sample_fps, max_frames=config.max_frames, timeout_s=remaining)
    n_frames, faces = analyze_faces(frames, detector, scorer,
                                    keep_crops=keep_crops, on_frames=on_frames, timings=timings)
    common = dict(
        video_path=video_path, n_frames=n_frames, n_faces=len(faces),
        n_tracks=len({f.track_id for f in faces}), duration_s=info.duration_s, fps=info.fps,
        width=info.width, height=info.height, rotation_deg=info.rotation_deg,
        sample_fps=round(sample_fps, 4), aggregation=config.aggregation, model=scorer.name,
    )
    if not faces:
        status = "no_face"
        p_fake, label = None, ""
    else:
        status = "ok"
        p_fake = aggregate(config.aggregation, [f.p_fake for f in faces], [f.track_id for f in faces],
                           [max(f.box_xyxy[2] - f.box_xyxy[0], f.box_xyxy[3] - f.box_xyxy[1]) for f in faces])
        label = label_for(p_fake, config.threshold)
    row = VideoRow(status=status, p_fake=p_fake, label=label,
                   elapsed_s=round(time.perf_counter() - started, 3), **common)
    return VideoResult(row, tuple(faces))


def error_row(video_path: str, status: str, error: str, elapsed_s: float, config: ScanConfig, model: str) -> VideoRow:
    """The row of a clip that gave no probability."""
    one_line = " ".join(str(error).split())[:500]
    return VideoRow(video_path=video_path, status=status, aggregation=config.aggregation, model=model,
                    elapsed_s=round(elapsed_s, 3), error=one_line)


def score_video_safe(
    path: str | Path,
    detector: FaceDetector,
    scorer: MesoScorer,
    config: ScanConfig = ScanConfig(),
    **kwargs,
) -> VideoResult:
    """:func:`score_video`, with every failure of this one clip turned into a row with a status.

    This is the one boundary where per-clip errors are caught: ``decode_error`` for files that
    are not readable video, ``timeout`` past the time budget, ``error`` for anything else.
    """
    started = time.perf_counter()
    try:
        return score_video(path, detector, scorer, config, **kwargs)
    except DecodeError as exc:
        status, message = "decode_error", str(exc)
    except (DecodeTimeoutError, TimeoutError) as exc:
        status, message = "timeout", str(exc)
    except FileNotFoundError as exc:
        status, message = "error", f"file not found: {exc.filename or exc}"
    except PermissionError as exc:
        status, message = "error", f"permission denied: {exc.filename or exc}"
    except Exception as exc:  # noqa: BLE001 - one broken clip never stops a batch
        log.exception("%s: unexpected error", path)
        status, message = "error", f"{type(exc).__name__}: {exc}"
    log.warning("%s: %s: %s", path, status, message)
    row = error_row(display_path(path), status, message, time.perf_counter() - started, config, scorer.name)
    return VideoResult(row)
