"""Evidence on disk: the most suspicious face crops of each clip, with Grad-CAM saliency, and the
frame they came from with every face boxed and scored.

For each clip scored ``ok``, :func:`write_evidence` writes into one folder:

- up to ``max_crops_per_track`` crops per counted track (the tracks the clip's aggregation
  counts: for ``track_max`` those with enough faces, :mod:`pipeline.scan.aggregate`; for ``mean``
  and ``median`` every track), worst (highest ``p_fake``) first, numbered over the whole clip:
  ``<prefix>__<nn>_track<id>_t<timestamp_s>s_p<p_fake>.jpg``, each the crop as the model saw it
  beside the same crop with its saliency map (:mod:`pipeline.models.saliency`) over it, so
  (S, 2S) pixels for S the model's input side;
- ``<prefix>__frame_t<timestamp_s>s.jpg``: the sampled frame of the most suspicious face,
  decoded again (:func:`pipeline.video.decode.decode_sampled_frame`), turned as the scan turned
  it, with every face found in it boxed (red at or above the threshold, green below) and its
  ``p_fake`` written above the box.

``<prefix>`` is the clip's file stem reduced to ``[A-Za-z0-9._-]`` (60 characters at most) and
the first 8 hex digits of the sha1 of its ``video_path``: files of one clip sort together, and
two clips named alike in different folders never collide. Every file is written atomically
(:func:`pipeline.atomic.atomic_path`); a clip's older files (same prefix) are removed first, so
rescoring a clip replaces its evidence. :class:`EvidenceSink` adds one row per file to
``evidence.csv`` in the folder (:class:`EvidenceRow`), after the clip's files are on disk.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import re
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np

from pipeline.atomic import atomic_path
from pipeline.models.scorer import Scorer
from pipeline.scan.aggregate import summarize_tracks
from pipeline.scan.analyze import ScanConfig, ScoredFace, VideoResult
from pipeline.scan.records import CsvRow, display_path

log = logging.getLogger(__name__)

EVIDENCE_INDEX_NAME = "evidence.csv"
EVIDENCE_KINDS = ("crop", "frame")
# Crops kept per counted track: enough to see whether the worst face is a fluke or a pattern.
MAX_CROPS_PER_TRACK = 3
JPEG_QUALITY = 90
# Longest file-stem part of a name: clip stem + hash + the longest suffix stays far below the
# 255-byte limit of common file systems.
MAX_STEM_CHARS = 60
FAKE_BOX_RGB = (230, 30, 30)
REAL_BOX_RGB = (30, 200, 60)


@dataclasses.dataclass(frozen=True)
class EvidenceRow(CsvRow):
    """One file of evidence, one row of ``evidence.csv``.

    ``video_path``: the clip's row key (as in ``scores.csv``); ``file``: the file name inside the
    evidence folder; ``kind``: ``crop`` or ``frame``; ``track_id``: the face's track (for a
    frame, the track of the face it was chosen for); ``timestamp_s``: seconds into the clip of
    the sampled frame; ``p_fake``: the face's score (for a frame, that of its most suspicious
    face), 1 = fake.
    """

    video_path: str
    file: str
    kind: str
    track_id: int
    timestamp_s: float
    p_fake: float

    def __post_init__(self) -> None:
        if self.kind not in EVIDENCE_KINDS:
            raise ValueError(f"kind must be one of {EVIDENCE_KINDS}, got {self.kind!r}")
        if not 0.0 <= self.p_fake <= 1.0:
            raise ValueError(f"p_fake must be in [0, 1], got {self.p_fake}")
        if "/" in self.file or not self.file:
            raise ValueError(f"file must be a bare file name, got {self.file!r}")


def evidence_prefix(video_path: str) -> str:
    """``<stem>_<hash8>``: the clip's file stem with every character outside ``[A-Za-z0-9._-]``
    (and runs of them) replaced by one ``_``, no leading ``.``/``-`` (no hidden or option-like
    names), at most :data:`MAX_STEM_CHARS` characters (``clip`` when nothing is left), then the
    first 8 hex digits of the sha1 of ``video_path`` (as text, UTF-8)."""
    stem = Path(video_path).stem
    stem = re.sub(r"[^A-Za-z0-9.-]+", "_", stem).lstrip(".-")[:MAX_STEM_CHARS].strip("_") or "clip"
    digest = hashlib.sha1(video_path.encode("utf-8", "surrogateescape")).hexdigest()[:8]
    return f"{stem}_{digest}"


def counted_track_ids(faces: Sequence[ScoredFace], aggregation: str) -> set[int]:
    """The tracks ``aggregation`` lets decide the clip: for ``track_max`` the tracks
    :func:`pipeline.scan.aggregate.summarize_tracks` counts (enough faces, not a still picture
    beside moving people), so the rule lives in one place; for ``mean`` and ``median`` every
    track."""
    ids = [f.track_id for f in faces]
    if aggregation != "track_max" or not faces:
        return set(ids)
    tracks = summarize_tracks(
        [f.p_fake for f in faces], ids, [f.size_px for f in faces], static=[f.track_static for f in faces]
    )
    return {t.track_id for t in tracks if t.counted}


def select_evidence_faces(
    faces: Sequence[ScoredFace], aggregation: str, max_crops_per_track: int = MAX_CROPS_PER_TRACK
) -> list[ScoredFace]:
    """The faces to show: the ``max_crops_per_track`` highest-``p_fake`` faces of each counted
    track (:func:`counted_track_ids`), all of them worst first (ties: earlier frame first).
    Raises ``ValueError`` for ``max_crops_per_track`` < 1."""
    if max_crops_per_track < 1:
        raise ValueError(f"max_crops_per_track must be >= 1, got {max_crops_per_track}")
    counted = counted_track_ids(faces, aggregation)
    worst_first = sorted(faces, key=lambda f: (-f.p_fake, f.sample_index, f.track_id))
    taken: dict[int, int] = {}
    chosen = []
    for face in worst_first:
        if face.track_id in counted and taken.get(face.track_id, 0) < max_crops_per_track:
            taken[face.track_id] = taken.get(face.track_id, 0) + 1
            chosen.append(face)
    return chosen


def prune_crops(result: VideoResult, max_crops_per_track: int = MAX_CROPS_PER_TRACK) -> VideoResult:
    """``result`` with ``crop_rgb`` kept only on the faces :func:`select_evidence_faces` picks
    (the rest set to ``None``): a clip scored with ``keep_crops`` holds 196 KB per face, and only
    these few are written. Call it where the clip was scored, before the result crosses a
    process boundary."""
    if not result.faces:
        return result
    keep = {id(f) for f in select_evidence_faces(result.faces, result.row.aggregation, max_crops_per_track)}
    faces = tuple(
        f if id(f) in keep or f.crop_rgb is None else dataclasses.replace(f, crop_rgb=None) for f in result.faces
    )
    return dataclasses.replace(result, faces=faces)


def crop_panel(crop_rgb: np.ndarray, saliency: np.ndarray) -> np.ndarray:
    """The crop (uint8 (S, S, 3) RGB) beside itself with ``saliency`` (float (S, S) in [0, 1])
    over it: uint8 (S, 2S, 3) RGB."""
    from pipeline.models.saliency import overlay_saliency

    return np.concatenate([crop_rgb, overlay_saliency(crop_rgb, saliency)], axis=1)


def draw_faces(
    frame_rgb: np.ndarray, faces: Sequence[ScoredFace], threshold: float, *, who: str = "track"
) -> np.ndarray:
    """A copy of ``frame_rgb`` (uint8 (H, W, 3) RGB) with each face's ``box_xyxy`` drawn
    (:data:`FAKE_BOX_RGB` when ``p_fake >= threshold``, else :data:`REAL_BOX_RGB`; lines
    ``max(2, long side / 400)`` px thick) and ``<who> <track_id>: p_fake <p>`` on a filled label
    above the box (below its top edge when there is no room above); ``who``: "track" as in the
    CSVs, or "person" where people are numbered from 1. Returns uint8 (H, W, 3) RGB."""
    import cv2

    canvas = np.ascontiguousarray(frame_rgb).copy()
    height, width = canvas.shape[:2]
    thickness = max(2, round(max(height, width) / 400))
    font_scale = max(0.5, max(height, width) / 1600)
    for face in faces:
        colour = FAKE_BOX_RGB if face.p_fake >= threshold else REAL_BOX_RGB
        x1, y1, x2, y2 = (int(round(v)) for v in face.box_xyxy)
        cv2.rectangle(canvas, (x1, y1), (x2, y2), colour, thickness)
        text = f"{who} {face.track_id}: p_fake {face.p_fake:.2f}"
        (text_w, text_h), baseline = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font_scale, thickness // 2 + 1)
        label_h = text_h + baseline + 2 * thickness
        top = y1 - label_h if y1 - label_h >= 0 else y1
        left = min(max(0, x1), max(0, width - text_w - 2 * thickness))
        cv2.rectangle(canvas, (left, top), (left + text_w + 2 * thickness, top + label_h), colour, cv2.FILLED)
        cv2.putText(
            canvas,
            text,
            (left + thickness, top + text_h + thickness),
            cv2.FONT_HERSHEY_SIMPLEX,
            font_scale,
            (255, 255, 255),
            thickness // 2 + 1,
            cv2.LINE_AA,
        )
    return canvas


def write_jpeg(path: Path, rgb: np.ndarray, quality: int = JPEG_QUALITY) -> None:
    """Write uint8 (H, W, 3) RGB as a JPEG, atomically. Raises ``OSError`` when it cannot."""
    import cv2

    ok, encoded = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise OSError(f"could not encode {path.name} as JPEG")
    with atomic_path(path) as tmp:
        tmp.write_bytes(encoded.tobytes())


def _decode_frame_of(video_path: str | Path, face: ScoredFace, config: ScanConfig, rotation_guess_deg: int | None):
    """The sampled frame ``face`` was found in, as the scan saw it (uint8 (H, W, 3) RGB)."""
    from pipeline.scan.rotation import rotate_cw
    from pipeline.video.decode import decode_sampled_frame, sampling_fps
    from pipeline.video.probe import probe_video

    timeout_s = config.timeout_s or 60.0
    info = probe_video(video_path, timeout_s=timeout_s)
    sample_fps = sampling_fps(info, config.fps, config.max_frames)
    frame = decode_sampled_frame(
        video_path,
        info,
        sample_fps=sample_fps,
        sample_index=face.sample_index,
        timeout_s=timeout_s,
        sparse=config.sparse_decode,
    )
    if abs(frame.timestamp_s - face.timestamp_s) > 1e-6:
        raise ValueError(
            f"sample {face.sample_index} decodes at {frame.timestamp_s:.3f} s, the face was found at "
            f"{face.timestamp_s:.3f} s: the scan's fps/max_frames differ from the config given"
        )
    return rotate_cw(frame.rgb, rotation_guess_deg) if rotation_guess_deg else frame.rgb


def write_evidence(
    result: VideoResult,
    evidence_dir: str | Path,
    scorer: Scorer,
    *,
    video_path: str | Path,
    config: ScanConfig,
    max_crops_per_track: int = MAX_CROPS_PER_TRACK,
) -> list[EvidenceRow]:
    """Write a clip's evidence files (see the module docstring) and return their rows.

    ``result``: the clip scored with ``keep_crops=True`` (possibly :func:`prune_crops`-ed);
    ``scorer``: the scorer that scored it, built once by the caller (for the saliency maps);
    ``video_path``: the clip's path on disk (the result's ``video_path`` is its display text,
    which differs for file names that are not UTF-8); ``config``: the scan's settings, so the
    frame decoded again is the sample the faces were found in. Clips not ``ok`` get nothing
    (``[]``). Raises ``ValueError`` when a chosen face has no crop (scored without
    ``keep_crops``), :class:`pipeline.errors.DecodeError` or ``TimeoutError`` when the frame
    cannot be decoded again, ``OSError`` when a file cannot be written; files written before
    the error stay.
    """
    from pipeline.models.saliency import saliency_maps

    row = result.row
    if row.p_fake is None or not result.faces:  # ok, or partial with faces: evidence of what was seen
        return []
    chosen = select_evidence_faces(result.faces, row.aggregation, max_crops_per_track)
    shown = [f.crop_rgb for f in chosen if f.crop_rgb is not None]
    if len(shown) < len(chosen):
        missing = len(chosen) - len(shown)
        raise ValueError(f"{row.video_path}: {missing} faces to show have no crop: score with keep_crops=True")
    evidence_dir = Path(evidence_dir)
    evidence_dir.mkdir(parents=True, exist_ok=True)
    prefix = evidence_prefix(row.video_path)
    for old in evidence_dir.glob(f"{prefix}__*.jpg"):
        old.unlink(missing_ok=True)

    rows: list[EvidenceRow] = []
    crops = np.stack(shown)
    maps = saliency_maps(scorer, crops)
    for rank, (face, crop, saliency) in enumerate(zip(chosen, crops, maps), start=1):
        name = f"{prefix}__{rank:02d}_track{face.track_id}_t{face.timestamp_s:.2f}s_p{face.p_fake:.3f}.jpg"
        write_jpeg(evidence_dir / name, crop_panel(crop, saliency))
        rows.append(EvidenceRow(row.video_path, name, "crop", face.track_id, face.timestamp_s, face.p_fake))

    worst = chosen[0]
    frame_rgb = _decode_frame_of(video_path, worst, config, row.rotation_guess_deg)
    in_frame = [f for f in result.faces if f.sample_index == worst.sample_index]
    name = f"{prefix}__frame_t{worst.timestamp_s:.2f}s.jpg"
    write_jpeg(evidence_dir / name, draw_faces(frame_rgb, in_frame, config.threshold))
    rows.append(EvidenceRow(row.video_path, name, "frame", worst.track_id, worst.timestamp_s, worst.p_fake))
    return rows


class EvidenceSink:
    """Writes each ok clip's evidence into ``evidence_dir`` and indexes it in ``evidence.csv``
    (:class:`EvidenceRow`; appended when ``resume``, else started afresh; locked against a second
    run like every CSV of the scanner).

    ``scorer`` and ``config``: as :func:`write_evidence` takes them. Results carry only the
    display text of their path: pass the clips through :meth:`remember_paths` on their way to
    the scanner so :meth:`write` can decode each one again from its real path.
    """

    def __init__(
        self,
        evidence_dir: str | Path,
        scorer: Scorer,
        config: ScanConfig,
        *,
        resume: bool,
        max_crops_per_track: int = MAX_CROPS_PER_TRACK,
    ):
        from pipeline.scan.sink import CsvSink

        self.evidence_dir = Path(evidence_dir)
        self.scorer = scorer
        self.config = config
        self.max_crops_per_track = max_crops_per_track
        self.evidence_dir.mkdir(parents=True, exist_ok=True)
        self._index = CsvSink(self.evidence_dir / EVIDENCE_INDEX_NAME, EvidenceRow.columns(), resume=resume)
        self._paths: dict[str, str | Path] = {}

    def __enter__(self) -> EvidenceSink:
        self._index.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._index.__exit__(*exc)

    def remember_paths(self, paths: Iterable[str | Path]) -> Iterator[str | Path]:
        """Yield ``paths`` unchanged, remembering each one's real path under its display text
        until its result is written (so at most the clips in flight are held)."""
        for path in paths:
            self._paths[display_path(path)] = path
            yield path

    def write(self, result: VideoResult) -> list[EvidenceRow]:
        """Write one clip's evidence and index rows; ``[]`` for clips not ``ok``. Raises as
        :func:`write_evidence` does (the caller decides that a clip's row matters more)."""
        video_path = self._paths.pop(result.row.video_path, result.row.video_path)
        rows = write_evidence(
            result,
            self.evidence_dir,
            self.scorer,
            video_path=video_path,
            config=self.config,
            max_crops_per_track=self.max_crops_per_track,
        )
        if rows:
            self._index.write_many(rows)
        return rows
