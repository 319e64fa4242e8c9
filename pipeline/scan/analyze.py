"""Score one clip: decode -> detect -> crop -> Meso-4 -> tracks -> one ``p_fake``."""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.errors import DecodeError
from pipeline.faces.boxes import FaceBox
from pipeline.faces.crop import crop_face_rgb
from pipeline.faces.detector import Detector
from pipeline.faces.quality import QUALITY_MEASURES, FaceQuality, clip_quality, face_quality, outside_range
from pipeline.models.factory import neutral_p_fake
from pipeline.models.meso4 import SCORE_BATCH_SIZE
from pipeline.models.scorer import Scorer
from pipeline.scan.aggregate import (
    AGGREGATIONS,
    COUNTED,
    TrackSummary,
    summarize_tracks,
    verdict_track,
)
from pipeline.scan.config import ScanConfig
from pipeline.scan.decision import LEARNED, ClipDecision, person_features
from pipeline.scan.face_loop import FaceLoop, FrameFaces, add_elapsed, batched  # noqa: F401 (batched: public here too)
from pipeline.scan.notes import (
    LITTLE_FACE_EVIDENCE,
    OUTSIDE_VALIDATED_RANGE,
    join_notes,
    little_face_evidence,
)
from pipeline.scan.records import FaceRow, TrackRow, VideoRow, display_path, label_for
from pipeline.scan.rotation import (
    ProbeFrameKeeper,
    choose_rotation,
    needs_probe,
    probe_rotations,
    probe_sample_indices,
    turn_frames,
    upright_probe,
)
from pipeline.video.completeness import Coverage, check_coverage
from pipeline.video.decode import (
    DecodeReport,
    DecodeTimeoutError,
    Frame,
    can_detect_cuts,
    expected_sample_count,
    iter_frames,
    sampling_fps,
    will_deinterlace,
    will_tone_map,
)
from pipeline.video.hashing import BackgroundSha256
from pipeline.video.probe import VideoInfo, probe_video

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class ScoredFace:
    """One face found and scored: where (sampled frame, full-resolution ``xyxy`` pixels), which
    person (``track_id``), MTCNN's ``det_confidence`` and Meso-4's ``p_fake`` (1 = fake);
    ``crop_rgb`` (uint8, the model's input size square, RGB) only when asked for;
    ``landmarks_xy``: MTCNN's five points (full-resolution pixels, ``FaceBox`` order; ``()`` when
    the detector gave none), which say whether the face is upright
    (:func:`pipeline.scan.rotation.looks_upright`); ``track_static``: the face's track never
    moves nor changes (a photo, a poster, a screen: :func:`pipeline.faces.tracks.is_static`); ``quality``:
    the picture quality of the crop the model scored (:func:`pipeline.faces.quality.face_quality`)."""

    sample_index: int
    frame_index: int
    timestamp_s: float
    track_id: int
    box_xyxy: tuple[float, float, float, float]
    det_confidence: float
    p_fake: float
    crop_rgb: np.ndarray | None = None
    landmarks_xy: tuple[tuple[float, float], ...] = ()
    track_static: bool = False
    quality: FaceQuality | None = None

    @property
    def size_px(self) -> float:
        """The longer side of the face box, in source pixels."""
        x1, y1, x2, y2 = self.box_xyxy
        return max(x2 - x1, y2 - y1)


@dataclasses.dataclass(frozen=True)
class VideoResult:
    """A clip's row plus its scored faces and its tracks (people) with their part in the
    verdict (both empty unless the clip was ok)."""

    row: VideoRow
    faces: tuple[ScoredFace, ...] = ()
    tracks: tuple[TrackSummary, ...] = ()

    def face_rows(self) -> list[FaceRow]:
        """One ``faces.csv`` row per scored face (:meth:`FaceRow.from_face`)."""
        return [FaceRow.from_face(self.row.video_path, f) for f in self.faces]

    def track_rows(self) -> list[TrackRow]:
        """One ``--tracks-csv`` row per track (:meth:`TrackRow.from_summary`); under ``mean`` and
        ``median`` (every face counts as it is) without a ``verdict_score``."""
        verdict = self.row.verdict_track_id
        rows = [
            TrackRow.from_summary(
                self.row.video_path, t, frames_sampled=self.row.frames_sampled, sets_verdict=t.track_id == verdict
            )
            for t in self.tracks
        ]
        if self.row.aggregation not in ("", "track_max"):
            rows = [dataclasses.replace(r, verdict_score=None) for r in rows]
        return rows


class _CropScorer:
    """The scoring step of :func:`analyze_faces`: crops each face as the weights spec frames it
    (margin, input size, interpolation) and scores the crops with Meso-4 in batches.

    Only the crops and where each face was are kept until :meth:`flush`, never a frame.
    ``timings`` accumulates ``score_s``.
    """

    def __init__(self, scorer: Scorer, *, keep_crops: bool, timings: dict[str, float]):
        self._scorer = scorer
        self._keep_crops = keep_crops
        self._timings = timings
        self._crops: list[np.ndarray] = []
        self._where: list[tuple[tuple[int, int, float], FaceBox]] = []
        self._scored: list[tuple[tuple[int, int, float], FaceBox, float, np.ndarray | None, FaceQuality]] = []

    @property
    def n_pending(self) -> int:
        return len(self._crops)

    def add(self, item: FrameFaces) -> None:
        """Crop the faces of one frame (uint8 (S, S, 3), S the model's input side)."""
        spec, frame = self._scorer.spec, item.frame
        for face in item.faces:
            self._crops.append(
                crop_face_rgb(
                    frame.rgb,
                    face.box_xyxy,
                    margin=spec.crop_margin,
                    size_px=spec.input_size_px,
                    interpolation=spec.resize_interpolation,
                )
            )
            self._where.append(((frame.sample_index, frame.frame_index, frame.timestamp_s), face))

    def flush(self) -> None:
        """Score the pending crops in one call."""
        if not self._crops:
            return
        started = time.perf_counter()
        p_fake = self._scorer.score_p_fake(np.stack(self._crops))
        add_elapsed(self._timings, "score_s", started)
        for (where, face), p, crop in zip(self._where, p_fake, self._crops):
            quality = face_quality(crop, face.size_px)
            self._scored.append((where, face, float(p), crop if self._keep_crops else None, quality))
        self._crops.clear()
        self._where.clear()

    def scored_faces(self, track_ids: Sequence[int], static_tracks: Collection[int] = frozenset()) -> list[ScoredFace]:
        """Every face scored, in the order added, with its track id (one per face)."""
        return [
            ScoredFace(
                sample_index,
                frame_index,
                timestamp_s,
                track_id,
                face.box_xyxy,
                face.confidence,
                p,
                crop,
                face.landmarks_xy,
                track_id in static_tracks,
                quality,
            )
            for ((sample_index, frame_index, timestamp_s), face, p, crop, quality), track_id in zip(
                self._scored, track_ids
            )
        ]


def analyze_faces(
    frames: Iterator[Frame],
    detector: Detector,
    scorer: Scorer,
    *,
    keep_crops: bool = False,
    on_frames: Callable[[int], None] | None = None,
    timings: dict[str, float] | None = None,
    cut_times_s: list[float] | None = None,
) -> tuple[int, list[ScoredFace]]:
    """Detect, select, crop and score the faces of a stream of frames, and link them into
    tracks (by position within shots, checked and joined by ``detector.describer``'s face
    embeddings when it has one; ``cut_times_s``: where shots start, read once the frames are
    done, see :class:`pipeline.scan.face_loop.FaceLoop`).

    The faces come from the shared face loop (:class:`pipeline.scan.face_loop.FaceLoop`:
    detection in batches of ``detector.config.batch_size`` frames, whole or by regions around
    known faces, selection by the detector config); scoring is the separate step after it,
    in batches of at least ``SCORE_BATCH_SIZE`` crops cut at detection-batch boundaries. No
    frame is kept past its batch, so memory stays flat whatever the clip length.
    ``timings``, if given, accumulates ``decode_wait_s`` (waiting for frames that the
    read-ahead thread did not have ready), ``detect_s``, ``crop_s`` and ``score_s``, and counts
    frames searched whole (``full_frames``, ``fallback_frames``) and by regions
    (``region_frames``), ``identity_s`` and ``embedded_faces``. ``on_frames`` is called with the
    number of frames of each batch.
    Returns (number of frames seen, faces with track ids, in frame order).
    """
    clock = timings if timings is not None else {}
    describer = getattr(detector, "describer", None)
    loop = FaceLoop(frames, detector, timings=clock, describer=describer, cut_times_s=cut_times_s)
    scoring = _CropScorer(scorer, keep_crops=keep_crops, timings=clock)
    for batch in loop:
        started = time.perf_counter()
        for item in batch:
            scoring.add(item)
        add_elapsed(clock, "crop_s", started)
        if on_frames is not None:
            on_frames(len(batch))
        if scoring.n_pending >= SCORE_BATCH_SIZE:
            scoring.flush()
    scoring.flush()
    track_ids = loop.track_ids()
    static_tracks = loop.static_tracks()
    for key, count in loop.follower.stats.items():
        clock[key] = clock.get(key, 0) + count
    clock["embedded_faces"] = clock.get("embedded_faces", 0) + loop.n_embedded
    return loop.n_frames, scoring.scored_faces(track_ids, static_tracks)


def track_summaries(
    faces: Sequence[ScoredFace], config: ScanConfig, *, neutral_p_fake: float = 0.5
) -> list[TrackSummary]:
    """Every track of a clip with whether it counts toward ``config.aggregation`` and why
    (:func:`pipeline.scan.aggregate.summarize_tracks`; under ``mean`` and ``median`` every face,
    so every track, counts). ``neutral_p_fake``: the scorer's own threshold
    (:func:`pipeline.models.factory.neutral_p_fake`), toward which small faces are pulled.
    Empty for no faces."""
    if not faces:
        return []
    tracks = summarize_tracks(
        [f.p_fake for f in faces],
        [f.track_id for f in faces],
        [f.size_px for f in faces],
        timestamps_s=[f.timestamp_s for f in faces],
        static=[f.track_static for f in faces],
        neutral_p_fake=neutral_p_fake,
        sample_indices=[f.sample_index for f in faces],
    )
    if config.aggregation not in ("track_max", LEARNED):
        tracks = [dataclasses.replace(t, counted=True, reason=COUNTED) for t in tracks]
    return tracks


def learned_verdict(
    faces: Sequence[ScoredFace], tracks: Sequence[TrackSummary], decision: ClipDecision
) -> tuple[int, float]:
    """(track id, clip ``p_fake``) under the learned decision: each counted person scored alone from their
    faces' logits (:func:`pipeline.scan.decision.person_features`), the clip their maximum."""
    times = [f.timestamp_s for f in faces]
    span_s = max(times) - min(times) if times else 0.0
    best: tuple[int, float] | None = None
    for track in tracks:
        if not track.counted:
            continue
        mine = [f for f in faces if f.track_id == track.track_id]
        z = decision.face_logits([f.p_fake for f in mine])
        features = person_features(z, [f.size_px for f in mine], [f.timestamp_s for f in mine], span_s)
        p = float(decision.p_fake(features)[0])
        if best is None or p > best[1]:
            best = (track.track_id, p)
    if best is None:
        raise ValueError("the learned decision needs at least one counted person")
    return best


def validated_range_of(scorer: Scorer) -> tuple:
    """The picture quality ``scorer``'s model was validated on (its spec's ``validated_range``; empty when unknown)."""
    return getattr(getattr(scorer, "spec", None), "validated_range", ()) or ()


def verdict_row(
    video_path: str,
    faces: Sequence[ScoredFace],
    config: ScanConfig,
    *,
    model: str,
    n_frames: int,
    started_s: float,
    tracks: Sequence[TrackSummary] | None = None,
    partial_reason: str = "",
    still_image: bool = False,
    notes: Iterable[str] = (),
    validated_range=(),
    **media,
) -> VideoRow:
    """The row of a clip or still image that was read: status ``ok`` with the faces' ``p_fake``
    aggregated by ``config.aggregation`` and labelled at ``config.threshold``, or ``no_face``
    (no probability) when ``faces`` is empty; with ``partial_reason`` (the frames stopped short of the
    clip's end, :func:`pipeline.video.completeness.check_coverage`) status ``partial`` instead, the
    verdict of what was seen (none without faces) and ``error`` the reason. A clip's verdict that
    rests on too little (:func:`pipeline.scan.notes.little_face_evidence`; not for a
    ``still_image``) is labelled UNCERTAIN with the note ``little_face_evidence``; ``notes``: other
    note codes to record. The clip's picture quality (medians over its faces,
    :func:`pipeline.faces.quality.clip_quality`) goes into the ``quality_*`` columns, and outside the
    model's ``validated_range`` (its spec's) it gets the note ``outside_validated_range``, naming the
    measures in ``quality_outside``. Under ``track_max`` the clip's ``p_fake`` is its
    most suspicious counted track's score (small faces pulled toward the model's own threshold
    by their reliability), named by ``verdict_track_id``; ``n_tracks_counted`` says how many tracks
    took part.

    ``model``: the scorer's name; ``n_frames``: frames sampled; ``started_s``: the
    ``time.perf_counter()`` value when work on this input began (``elapsed_s`` is measured to
    now); ``tracks``: :func:`track_summaries` of ``faces`` (computed when ``None``);
    ``media``: the other :class:`VideoRow` fields (``duration_s``, ``fps``, ``width``,
    ``height``, ``rotation_deg``, ``sample_fps``). Raises ``ValueError`` (from the row) for
    values outside their range.
    """
    p_fake, label, status = None, "", "no_face"
    face_stats: dict[str, Any] = {}
    codes = set(notes)
    if faces:
        status = "ok"
        tracks = track_summaries(faces, config) if tracks is None else tracks
        if config.aggregation == LEARNED:
            assert config.decision is not None  # ScanConfig refuses 'learned' without a clip decision
            track_id, p_fake = learned_verdict(faces, tracks, config.decision)
            face_stats["verdict_track_id"] = track_id
        elif config.aggregation == "track_max":
            verdict = verdict_track(tracks)
            p_fake = verdict.verdict_score
            face_stats["verdict_track_id"] = verdict.track_id
        else:
            p_fake = AGGREGATIONS[config.aggregation]([f.p_fake for f in faces], [f.track_id for f in faces])
        p_fake = float(np.clip(p_fake, 0.0, 1.0))
        label = label_for(p_fake, config.threshold, config.uncertain_below)
        if not still_image and little_face_evidence(n_frames, [t.frames_with_faces for t in tracks], len(faces)):
            codes.add(LITTLE_FACE_EVIDENCE)
            label = "UNCERTAIN"
        measured = [f.quality for f in faces if f.quality is not None]
        if measured:
            quality = clip_quality(measured)
            outside = outside_range(quality, validated_range)
            face_stats.update(
                {f"quality_{name}": round(getattr(quality, name), 4) for name in QUALITY_MEASURES},
                quality_outside=";".join(outside),
            )
            if outside:
                codes.add(OUTSIDE_VALIDATED_RANGE)
        worst = max(faces, key=lambda f: f.p_fake)  # the first of equals: the earliest
        face_stats.update(
            max_face_p_fake=worst.p_fake,
            most_suspicious_timestamp_s=round(worst.timestamp_s, 4),
            n_faces_over_threshold=sum(f.p_fake >= config.threshold for f in faces),
            n_tracks_counted=sum(t.counted for t in tracks),
        )
    if partial_reason:
        status = "partial"
        media["error"] = partial_reason if faces else f"{partial_reason}; no face in what was decoded"
    return VideoRow(
        video_path=video_path,
        status=status,
        p_fake=p_fake,
        label=label,
        notes=join_notes(codes),
        n_frames=n_frames,
        frames_sampled=n_frames,
        frames_with_faces=len({f.sample_index for f in faces}),
        n_faces=len(faces),
        n_tracks=len({f.track_id for f in faces}),
        **face_stats,
        aggregation=config.aggregation,
        label_rule=config.label_rule,
        model=model,
        threshold=config.threshold,
        uncertain_below=config.uncertain_below,
        elapsed_s=round(time.perf_counter() - started_s, 3),
        **media,
    )


class _PrimedFrames:
    """A frame iterator whose first frame was asked for at construction (so its decoder runs
    from then on), on whichever thread built it; iterating gives that frame, then the rest, and
    raises, on the iterating thread, what asking for the first one raised."""

    def __init__(self, frames: Iterator[Frame]):
        self._frames = frames
        self._first: Frame | None = None
        self._error: BaseException | None = None
        self._ended = False
        try:
            self._first = next(frames)
        except StopIteration:
            self._ended = True
        except Exception as exc:  # noqa: BLE001 - raised again where the frames are used
            self._error = exc

    def __iter__(self) -> Iterator[Frame]:
        if self._error is not None:
            error, self._error = self._error, None
            raise error
        if self._first is not None:
            first, self._first = self._first, None
            yield first
        if not self._ended:
            yield from self._frames

    def close(self) -> None:
        """Stop the decoder (kills and reaps ffmpeg if it still runs)."""
        self._first = None
        close = getattr(self._frames, "close", None)
        if close is not None:
            close()


@dataclasses.dataclass
class OpenedClip:
    """A clip probed and its decoder set up, possibly ahead of its turn (:func:`open_clip`).

    ``frames``: the sampled frames (when primed, decoding from the moment the clip was opened,
    bounded by the decoder's read-ahead: ffmpeg waits once about 64 MB of frames are ready);
    ``cuts``: the list the shot cuts are appended to (``None`` where this ffmpeg cannot detect
    cuts); ``probe_s``: seconds probing took; ``report``: what the decode delivered and how it
    ended (:class:`pipeline.video.decode.DecodeReport`, complete once the frames are exhausted).
    Not frozen: it holds a decoder, which :meth:`close` stops if the clip is never scored.
    """

    path: str | Path
    info: VideoInfo
    sample_fps: float
    cuts: list[float] | None
    frames: Iterable[Frame]
    probe_s: float
    report: DecodeReport = dataclasses.field(default_factory=DecodeReport)

    def close(self) -> None:
        """Stop the decoder (kills and reaps ffmpeg if it still runs)."""
        close = getattr(self.frames, "close", None)
        if close is not None:
            close()


def open_clip(
    path: str | Path,
    config: ScanConfig | None = None,
    *,
    prime: bool = False,
    clock_starts: threading.Event | None = None,
) -> OpenedClip:
    """Probe ``path`` and set up its sampled decode (with cut detection where this ffmpeg can).

    ``prime``: also ask for the first frame now, so that ffmpeg starts decoding (and keeps going
    up to its read-ahead) before the clip is scored: how :func:`pipeline.scan.batch.run_batch`
    decodes the next clip while the current one is detected and scored, and the first clip
    while TensorFlow loads. An error starting the decoder is then raised when the frames are
    iterated. Probing errors (:class:`DecodeError`, ``TimeoutError``, ``OSError``) are raised
    here. The decode's time budget (``config.timeout_s``, less the probe's time) runs from here,
    or with ``clock_starts`` (the whole budget) from when that event is set: when the clip's
    turn comes, so that neither waiting for it nor probing ahead counts (set it before waiting
    for a primed clip: a decoder that never delivers its first frame is stopped only by that
    clock). The decoder runs beside detection, so the budget covers both.
    """
    config = ScanConfig() if config is None else config
    started = time.perf_counter()
    info = probe_video(path, timeout_s=config.timeout_s or 60.0)
    probe_s = time.perf_counter() - started
    sample_fps = sampling_fps(info, config.fps, config.max_frames)
    cuts = _new_cut_log()
    remaining = config.timeout_s
    if remaining is not None and clock_starts is None:  # the budget runs from here: probing spent some
        remaining = max(1.0, remaining - probe_s)
    report = DecodeReport()
    decoded = iter_frames(
        path,
        info,
        sample_fps=sample_fps,
        max_frames=config.max_frames,
        timeout_s=remaining,
        cut_times_s=cuts,
        clock_starts=clock_starts,
        report=report,
        sparse=config.sparse_decode,
    )
    frames: Iterable[Frame] = _PrimedFrames(decoded) if prime else decoded
    return OpenedClip(path, info, sample_fps, cuts, frames, probe_s, report)


def _new_cut_log() -> list[float] | None:
    """An empty list for a decode to append its shot cuts to, or ``None`` where this ffmpeg
    cannot detect cuts (:func:`pipeline.video.decode.can_detect_cuts`)."""
    return [] if can_detect_cuts() else None


def _then(frames: Iterable[Frame], callback: Callable[[], None] | None) -> Iterator[Frame]:
    """``frames``, then ``callback()`` once they are exhausted."""
    yield from frames
    if callback is not None:
        callback()


def score_video(
    path: str | Path,
    detector: Detector,
    scorer: Scorer,
    config: ScanConfig | None = None,
    *,
    keep_crops: bool = False,
    on_frames: Callable[[int], None] | None = None,
    on_info: Callable[[VideoInfo, float], None] | None = None,
    timings: dict[str, float] | None = None,
    opened: OpenedClip | Callable[[], OpenedClip] | None = None,
    on_decoded: Callable[[], None] | None = None,
) -> VideoResult:
    """Score one clip. Raises :class:`DecodeError`, :class:`DecodeTimeoutError` or others;
    :func:`score_video_safe` turns those into a row with a status. ``timings``: as in
    :func:`analyze_faces`, plus ``probe_s``, and for clips whose faces were not all upright
    ``rotation_probe_s`` (searching a few frames turned) and, when a turn was taken,
    ``rotation_rescan_s`` (the second pass, whose detection and scoring also add to
    ``detect_s``, ``crop_s`` and ``score_s``).

    Sideways faces (:mod:`pipeline.scan.rotation`): a few sampled frames are kept while the
    clip streams past; unless the upright pass found an upright-looking face on each of them,
    they are searched turned by 90, 180 and 270 degrees, and when a turn finds upright faces
    (:func:`pipeline.scan.rotation.choose_rotation`) the clip is decoded again and scored with
    every frame turned so. The row then records ``rotation_guess_deg`` (the clockwise turn);
    ``width``/``height`` stay the decoded frame's, while the faces' boxes are in the turned
    frame's pixels. ``on_frames`` is not called during that second pass (progress has already
    counted every frame once).

    ``opened``: the clip already opened (:func:`open_clip`; its decoder may be running ahead),
    or a callable giving it (such as a ``Future``'s ``result``, which raises what opening
    raised); ``None`` opens it here. ``on_decoded``: called once all the clip's (upright)
    frames have been delivered, while its last frames are still being detected and scored: when
    the next clip may start decoding.
    """
    config = ScanConfig() if config is None else config
    started = time.perf_counter()
    video_path = display_path(path)
    deadline_s = config.timeout_s
    if opened is None:
        clip = open_clip(path, config)
    else:
        clip = opened() if callable(opened) else opened
    info, sample_fps = clip.info, clip.sample_fps
    if timings is not None:
        timings["probe_s"] = timings.get("probe_s", 0.0) + clip.probe_s
    if on_info is not None:
        on_info(info, sample_fps)

    def decode(cut_times_s: list[float] | None, report: DecodeReport) -> Iterator[Frame]:
        remaining = None if deadline_s is None else max(1.0, deadline_s - (time.perf_counter() - started))
        return iter_frames(
            path,
            info,
            sample_fps=sample_fps,
            max_frames=config.max_frames,
            timeout_s=remaining,
            cut_times_s=cut_times_s,
            report=report,
            sparse=config.sparse_decode,
        )

    keeper = ProbeFrameKeeper(
        probe_sample_indices(expected_sample_count(info, sample_fps, config.max_frames)),
        detector.config.detect_long_side_px,
    )
    cuts, report = clip.cuts, clip.report
    n_frames, faces = analyze_faces(
        keeper.keep_from(_then(clip.frames, on_decoded)),
        detector,
        scorer,
        keep_crops=keep_crops,
        on_frames=on_frames,
        timings=timings,
        cut_times_s=cuts,
    )
    extra = {}
    rotation_deg = _rotation_to_try(path, keeper, faces, detector, timings)
    if rotation_deg is not None:
        rescan_started = time.perf_counter()
        turned_cuts, turned_report = _new_cut_log(), DecodeReport()
        turned_n_frames, turned_faces = analyze_faces(
            turn_frames(decode(turned_cuts, turned_report), rotation_deg),
            detector,
            scorer,
            keep_crops=keep_crops,
            timings=timings,
            cut_times_s=turned_cuts,
        )
        if timings is not None:
            add_elapsed(timings, "rotation_rescan_s", rescan_started)
        if turned_faces:
            tag = (
                f"after the rotation tag's {info.rotation_deg} degrees were applied (the tag looks wrong)"
                if info.rotation_deg
                else "and no rotation tag says so"
            )
            log.warning(
                "%s: faces are upright only with the frames turned %d degrees clockwise, %s: scored turned "
                "(rotation_guess_deg); face boxes are in the turned frame's pixels",
                path,
                rotation_deg,
                tag,
            )
            n_frames, faces, cuts, report = turned_n_frames, turned_faces, turned_cuts, turned_report
            extra["rotation_guess_deg"] = rotation_deg
        else:
            log.info("%s: a few frames turned %d degrees showed faces, the whole clip did not", path, rotation_deg)
    if cuts is not None:
        extra["n_cuts"] = len(cuts)
    seen = check_coverage(path, info, sample_fps, report, max_frames=config.max_frames)
    media = media_columns(info, sample_fps, seen, **extra)
    if seen.partial:
        log.warning("%s: partial: %s", path, seen.reason)
    elif not seen.reached_end:
        log.warning(
            "%s: only the first %.0f s were sampled: the container gives no duration and it could not be "
            "measured (raise --max-frames to cover more)",
            path,
            seen.covered_s,
        )
    tracks = track_summaries(faces, config, neutral_p_fake=neutral_p_fake(scorer))
    row = verdict_row(
        video_path,
        faces,
        config,
        model=scorer.name,
        n_frames=n_frames,
        started_s=started,
        tracks=tracks,
        partial_reason=seen.reason if seen.partial else "",
        validated_range=validated_range_of(scorer),
        **media,
    )
    return VideoResult(row, tuple(faces), tuple(tracks))


def _rotation_to_try(
    path: str | Path,
    keeper: ProbeFrameKeeper,
    faces: Sequence[ScoredFace],
    detector: Detector,
    timings: dict[str, float] | None,
) -> int | None:
    """The clockwise turn at which to score the clip again, or ``None``: nothing to try when
    the upright pass saw an upright-looking face on every probe frame (no detector call), else
    the probe frames are searched turned (:func:`pipeline.scan.rotation.choose_rotation`)."""
    probe_frames = keeper.frames
    upright = upright_probe(faces, [f.sample_index for f in probe_frames])
    if not needs_probe(upright):
        return None
    started = time.perf_counter()
    probes = [upright, *probe_rotations(probe_frames, detector, upright_hits=upright.n_hits)]
    if timings is not None:
        add_elapsed(timings, "rotation_probe_s", started)
    log.debug("%s: rotation probe: %s", path, probes)
    return choose_rotation(probes)


def media_columns(info: VideoInfo, sample_fps: float, seen: Coverage, **extra) -> dict:
    """The :class:`VideoRow` fields that describe the clip and how it was sampled (displayed
    size, stream, pixel shape, colour, interlacing, duration and ``seen``: how much of it the
    decode covered, :func:`pipeline.video.completeness.check_coverage`); ``extra`` adds or overrides."""
    return dict(
        duration_s=info.duration_s,
        fps=info.fps,
        width=info.width,
        height=info.height,
        rotation_deg=info.rotation_deg,
        sample_fps=round(sample_fps, 4),
        stream_index=info.stream_index,
        sample_aspect_ratio=info.sar_text,
        color_transfer=info.color_transfer,
        tone_mapped=will_tone_map(info),
        deinterlaced=will_deinterlace(info),
        duration_source=info.duration_source,
        covered_s=seen.covered_s,
        reached_end=seen.reached_end,
        **extra,
    )


def error_row(video_path: str, status: str, error: str, elapsed_s: float, config: ScanConfig, model: str) -> VideoRow:
    """The row of a clip that gave no probability."""
    one_line = " ".join(str(error).split())[:500]
    return VideoRow(
        video_path=video_path,
        status=status,
        aggregation=config.aggregation,
        label_rule=config.label_rule,
        model=model,
        threshold=config.threshold,
        uncertain_below=config.uncertain_below,
        elapsed_s=round(elapsed_s, 3),
        error=one_line,
    )


def score_video_safe(
    path: str | Path,
    detector: Detector,
    scorer: Scorer,
    config: ScanConfig | None = None,
    **kwargs,
) -> VideoResult:
    """:func:`score_video`, with every failure of this one clip turned into a row with a status.

    This is the one boundary where per-clip errors are caught: ``decode_error`` for files that
    are not readable video, ``timeout`` past the time budget, ``error`` for anything else.
    """
    config = ScanConfig() if config is None else config
    started = time.perf_counter()
    hasher = BackgroundSha256(path)  # reads the file while it is decoded
    try:
        result = score_video(path, detector, scorer, config, **kwargs)
        return dataclasses.replace(result, row=dataclasses.replace(result.row, file_sha256=hasher.hexdigest()))
    except DecodeError as exc:
        status, message = "decode_error", str(exc)
    except (DecodeTimeoutError, TimeoutError) as exc:
        status, message = "timeout", str(exc)
    except FileNotFoundError as exc:
        status, message = "error", f"file not found: {exc.filename or exc}"
    except PermissionError as exc:
        status, message = "error", f"permission denied: {exc.filename or exc}"
    except Exception as exc:  # one broken clip never stops a batch; its traceback is logged
        log.exception("%s: unexpected error", path)
        status, message = "error", f"{type(exc).__name__}: {exc}"
    log.warning("%s: %s: %s", path, status, message)
    row = error_row(display_path(path), status, message, time.perf_counter() - started, config, scorer.name)
    return VideoResult(dataclasses.replace(row, file_sha256=hasher.hexdigest()))
