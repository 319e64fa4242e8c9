"""Build a face dataset from labelled clips (the library of ``extract_faces.py`` /
``python -m pipeline extract``; the command line is :mod:`pipeline.cli.extract`).

The faces come from the scanner's own face loop (:class:`pipeline.scan.face_loop.FaceLoop`:
same decoder, MTCNN detector, selection, tracker) and crop function
(:mod:`pipeline.faces.crop`), so a face in a dataset and a face the scanner scores look alike.
Layout:

    DATASET/<label>/<stem>_<hash>_f<frame>_t<track>.jpg   crops (256x256 unless keep_size)
    DATASET/manifest.csv       the dataset: one row per face, with its split (train/val/test)
    DATASET/faces_all.csv      every face kept by the filters, before stratification and split
    DATASET/sources.csv        one row per source clip: status and counts (resume state)
    DATASET/errors.csv         the clips that failed, and why
    DATASET/stratification.csv counts per pose/size bin per class, before and after
    DATASET/stratification_clips.csv  with --stratify: faces per source clip before and after

Crop names (:func:`crop_file_name`) are short and stable: the source clip's file stem (made
file-name safe, at most 40 characters), 8 hex digits of the SHA-1 of its ``source_video`` (two
clips with one stem never collide), the source frame index (6 digits) and the track id.

Rerunning continues where it stopped (clips in ``sources.csv`` are skipped) and rewrites the
manifest; a crop is written atomically before its row, so no listed crop is ever half-written.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import logging
import random
import re
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.atomic import atomic_path
from pipeline.errors import ConfigError, DatasetError
from pipeline.faces.boxes import FaceBox
from pipeline.faces.detect import DetectorConfig
from pipeline.faces.detector import Detector
from pipeline.report.explain import and_list
from pipeline.scan.records import CsvRow, face_columns
from pipeline.settings import check

log = logging.getLogger(__name__)

YAW_BIN_EDGES_DEG = (-45.0, -15.0, 15.0, 45.0)  # 5 bins: profile left ... profile right
YAW_BIN_NAMES = ("yaw<-45", "yaw-45..-15", "yaw-15..15", "yaw15..45", "yaw>45")
SIZE_BIN_EDGES_PX = (64.0, 128.0, 256.0)  # 4 bins of face size in source pixels
SIZE_BIN_NAMES = ("size<64", "size64-128", "size128-256", "size>=256")
# the dataset's own selection: a larger minimum face than the scanner's (a 40 px face enlarged to
# 256 px teaches texture that is not there), and every sampled frame searched whole, since the
# builder is not time-bound and full-frame boxes are the most exact
DATASET_DETECTOR = DetectorConfig(min_face_px=64, full_frame_every_s=0.0)


@dataclasses.dataclass(frozen=True)
class ExtractConfig:
    """Settings of a dataset build; the CLI maps its flags onto these one to one.

    ``fps``: frames sampled per second of each clip; ``max_per_video``: faces kept per source
    clip at most, spread evenly over the clip; ``min_sharpness``: crops whose Laplacian variance
    is below are skipped as blurred; ``dedup_max_diff``: a crop whose 32 px grey thumbnail
    differs from the last kept crop of the same person by less than this many grey levels (mean
    absolute) is a near duplicate and skipped; ``split``: train/val/test fractions by source
    video. ``detector``: detection and selection, the one owner of the minimum face size
    (``detector.min_face_px``, source pixels, ``--min-face``) and confidence; see
    :data:`DATASET_DETECTOR` for why its defaults differ from the scanner's.
    """

    fps: float = 2.0
    max_per_video: int = 50
    keep_size: bool = False
    min_sharpness: float = 10.0
    dedup_max_diff: float = 2.0
    stratify: bool = False
    split: tuple[float, float, float] = (0.8, 0.1, 0.1)
    seed: int = 0
    labels: tuple[str, ...] = ("real", "fake")
    jpeg_quality: int = 95
    timeout_s: float | None = 900.0
    detector: DetectorConfig = DATASET_DETECTOR

    def __post_init__(self) -> None:
        check("fps", self.fps)
        if self.max_per_video < 1:
            raise ConfigError(f"max_per_video must be >= 1, got {self.max_per_video}")
        if len(self.split) != 3 or any(f < 0 for f in self.split) or abs(sum(self.split) - 1.0) > 1e-6:
            raise ConfigError(f"split must be three fractions (train, val, test) summing to 1, got {self.split}")
        if self.split[0] <= 0:
            raise ConfigError(f"the train fraction must be positive, got {self.split}")

    @property
    def min_face_px(self) -> int:
        """Faces smaller than this (source pixels) are skipped: ``detector.min_face_px``."""
        return self.detector.min_face_px


@dataclasses.dataclass(frozen=True)
class SourceClip:
    """A labelled clip. ``source_video`` groups clips cut from one source (never split apart)."""

    path: str
    label: str
    source_video: str


@dataclasses.dataclass(frozen=True)
class FaceRecord(CsvRow):
    """One face crop of the dataset (a manifest row). Boxes are full-resolution ``xyxy`` pixels;
    ``file`` is relative to the dataset folder."""

    file: str
    label: str
    source_video: str
    frame_index: int
    timestamp_s: float
    x1: float
    y1: float
    x2: float
    y2: float
    det_confidence: float
    yaw_deg: float
    face_size_px: float
    sharpness: float
    split: str
    track_id: int
    source_path: str


@dataclasses.dataclass(frozen=True)
class SourceRow(CsvRow):
    """What happened to one source clip (``sources.csv``, ``errors.csv``)."""

    source_path: str
    label: str
    source_video: str
    status: str
    n_frames: int = 0
    n_detected: int = 0
    n_small: int = 0
    n_blurred: int = 0
    n_duplicates: int = 0
    n_over_cap: int = 0
    n_kept: int = 0
    elapsed_s: float = 0.0
    error: str = ""


# --- sources ------------------------------------------------------------------------------------


def canonical_label(name: str) -> str | None:
    """``real``/``fake`` for a folder or manifest label (also the seed's ``DeepFake``, ``df``)."""
    from pipeline.training.dataset import LABEL_ALIASES

    return LABEL_ALIASES.get(name.strip().lower())


def find_sources(
    sources: str | Path, labels: Sequence[str] = ("real", "fake"), *, label: str | None = None
) -> list[SourceClip]:
    """Labelled clips from a folder with one subfolder per label (clips anywhere below), from a
    manifest CSV ``path,label[,source_id]`` (paths relative to the CSV), or one clip
    (:func:`pipeline.video.discover.is_clip_file`): labelled ``label``, else by the name of
    the folder it is in (``real/``, ``fake/``, ``DeepFake/``), its ``source_video`` that folder's
    name and its stem, as a build of the folder above names it. Other labels are skipped with a
    log line. Raises ``FileNotFoundError`` for missing sources and ``ValueError`` naming what is
    expected for sources of the wrong kind (a file neither a CSV nor a clip, a clip with no
    label, ``label`` given for a folder or a CSV)."""
    from pipeline.video.discover import is_clip_file, iter_videos

    root = Path(sources)
    if is_clip_file(root):
        return [_single_clip(root, labels, label)]
    if label is not None and root.exists():
        raise DatasetError(
            f"a label is given to one clip only; the clips of {root} take theirs from its "
            f"{'subfolders' if root.is_dir() else 'label column'}"
        )
    clips: list[SourceClip] = []
    if root.is_file():
        try:
            return _read_sources_csv(root, labels)
        except UnicodeDecodeError:
            raise DatasetError(f"{root} is neither a sources CSV (path,label[,source_id]) nor a video clip") from None
    if not root.is_dir():
        raise DatasetError(f"sources not found: {root}")
    for child in sorted(root.iterdir()):
        if not child.is_dir():
            continue
        folder_label = canonical_label(child.name)
        if folder_label is None or folder_label not in labels:
            log.info("skipping folder %s: not one of the labels %s", child, list(labels))
            continue
        for path in iter_videos([child]):
            rel = Path(path).relative_to(root).with_suffix("").as_posix()
            clips.append(SourceClip(path, folder_label, rel))
    return clips


def _single_clip(path: Path, labels: Sequence[str], label: str | None) -> SourceClip:
    """The :class:`SourceClip` of one clip named as the sources (see :func:`find_sources`)."""
    folder = path.resolve().parent.name
    chosen = canonical_label(label) if label is not None else canonical_label(folder)
    if label is not None and chosen is None:
        raise DatasetError(f"label {label!r} is not one of {list(labels)}")
    if chosen is None:
        raise DatasetError(
            f"{path} is one clip with no label: give it one (--label real or --label fake), or put it in a "
            "real/ or fake/ folder"
        )
    if chosen not in labels:
        raise DatasetError(f"{path} is labelled {chosen}, not one of the labels taken {list(labels)}")
    return SourceClip(str(path), chosen, Path(folder, path.stem).as_posix())


def _read_sources_csv(root: Path, labels: Sequence[str]) -> list[SourceClip]:
    """The clips of a sources manifest ``path,label[,source_id]`` (see :func:`find_sources`)."""
    base = root.resolve().parent
    clips: list[SourceClip] = []
    with open(root, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        if not reader.fieldnames or not {"path", "label"} <= set(reader.fieldnames):
            raise DatasetError(
                f"{root}: a sources manifest needs columns path,label[,source_id]; found {reader.fieldnames}"
            )
        for row in reader:
            row_label = canonical_label(row["label"] or "")
            if row_label is None or row_label not in labels:
                log.info("skipping %s: label %r is not one of %s", row["path"], row["label"], list(labels))
                continue
            path = Path(row["path"])
            path = path if path.is_absolute() else base / path
            source = (row.get("source_id") or "").strip() or Path(row["path"]).with_suffix("").as_posix()
            clips.append(SourceClip(str(path), row_label, source))
    return clips


def safe_stem(source_video: str) -> str:
    """The short, stable, file-name-safe prefix of a source's crops: ``<stem>_<hash>``.

    ``stem``: the last path part of ``source_video`` with characters other than letters,
    digits, ``.``, ``_`` and ``-`` replaced by ``_``, at most 40 characters (``clip`` if none is
    left); ``hash``: the first 8 hex digits of the SHA-1 of the whole ``source_video``, so
    ``real/a`` and ``fake/a`` never share a prefix. E.g. ``real/sub/b`` -> ``b_1c6f3a95``.
    """
    name = source_video.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]
    readable = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._")[:40] or "clip"
    return f"{readable}_{hashlib.sha1(source_video.encode('utf-8', 'surrogateescape')).hexdigest()[:8]}"


def crop_file_name(source_video: str, frame_index: int, track_id: int) -> str:
    """The crop's file name: ``<stem>_<hash>_f<frame, 6 digits>_t<track>.jpg`` (see
    :func:`safe_stem`); the same face of the same source always gets the same name."""
    return f"{safe_stem(source_video)}_f{frame_index:06d}_t{track_id}.jpg"


# --- one clip -----------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Candidate:
    """A selected face of one sampled frame, cropped: ``crop_rgb`` uint8 (256, 256, 3), or the
    native-size square cut with ``keep_size``; ``track_id`` -1 until the clip's tracks are linked."""

    sample_index: int
    frame_index: int
    timestamp_s: float
    face: FaceBox
    yaw_deg: float
    crop_rgb: np.ndarray
    track_id: int = -1


@dataclasses.dataclass
class _ClipCounts:
    """What happened to the faces of one clip (the counts of :class:`SourceRow`)."""

    frames: int = 0
    detected: int = 0
    small: int = 0
    blurred: int = 0
    duplicates: int = 0
    over_cap: int = 0


def _write_jpeg_atomic(path: Path, rgb: np.ndarray, quality: int) -> None:
    import cv2

    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise OSError(f"could not encode {path.name}")
    with atomic_path(path) as tmp:
        tmp.write_bytes(buf.tobytes())


def _evenly(items: list, n: int) -> list:
    """``n`` items spread evenly over ``items`` (all if fewer)."""
    if len(items) <= n:
        return items
    step = len(items) / n
    return [items[int(i * step)] for i in range(n)]


def _cap_per_track(kept_per_track: dict[int, list], cap: int) -> list[tuple]:
    """At most ``cap`` faces, shared among people in proportion to how often each was seen (at
    least one each while the cap allows), spread evenly over time within each person; returned
    as (candidate, sharpness, track) in time order."""
    total = sum(len(v) for v in kept_per_track.values())
    quotas = {t: len(v) for t, v in kept_per_track.items()}
    if total > cap:
        quotas = {t: max(1, round(cap * len(v) / total)) for t, v in kept_per_track.items()}
        while sum(quotas.values()) > cap:
            quotas[max(quotas, key=lambda t: (quotas[t], -t))] -= 1
    chosen = [(c, s, t) for t, items in kept_per_track.items() for c, s in _evenly(items, quotas[t])]
    return sorted(chosen, key=lambda x: (x[0].sample_index, x[2]))


def _sample_frames(clip: SourceClip, config: ExtractConfig, cut_times_s: list[float] | None = None) -> Iterator:
    """The clip's sampled frames (:class:`pipeline.video.decode.Frame`): ``config.fps``, at most
    4 x ``max_per_video`` of them (filters drop some, the cap spreads the rest); the shot cuts
    found go to ``cut_times_s`` when given. Raises :class:`pipeline.errors.DecodeError` or
    ``TimeoutError`` for an unreadable clip."""
    from pipeline.video.decode import iter_frames, sampling_fps
    from pipeline.video.probe import probe_video

    info = probe_video(clip.path, timeout_s=config.timeout_s or 60.0)
    max_frames = 4 * config.max_per_video
    rate = sampling_fps(info, config.fps, max_frames)
    return iter_frames(
        clip.path, info, sample_fps=rate, max_frames=max_frames, timeout_s=config.timeout_s, cut_times_s=cut_times_s
    )


def _crop_for_dataset(frame_rgb: np.ndarray, face: FaceBox, keep_size: bool) -> np.ndarray:
    """The scanner's crop (:func:`pipeline.faces.crop.crop_face_rgb`, 256 px, 1.3x the face), or
    with ``keep_size`` the same square at source resolution (a copy, so the frame can go)."""
    from pipeline.faces.crop import CROP_SIZE_PX, crop_face_rgb, cut_face_rgb

    if keep_size:
        return cut_face_rgb(frame_rgb, face.box_xyxy).copy()
    return crop_face_rgb(frame_rgb, face.box_xyxy, size_px=CROP_SIZE_PX)


def find_candidates(
    frames: Iterator, detector: Detector, keep_size: bool, counts: _ClipCounts, cut_times_s: list[float] | None = None
) -> list[_Candidate]:
    """The selected faces of a clip's frames, cropped, with their track ids: the scanner's face
    loop (:class:`pipeline.scan.face_loop.FaceLoop`) with ``detector``'s selection, no scorer,
    and the scanner's tracks (people across ``cut_times_s``, by ``detector.describer``'s
    embeddings when it has one).
    Fills ``counts.frames``, ``counts.detected`` (confident faces) and ``counts.small`` (of
    those, under ``detector.config.min_face_px``). Raises as decoding does."""
    from pipeline.faces.pose import yaw_deg
    from pipeline.scan.face_loop import FaceLoop

    loop = FaceLoop(frames, detector, describer=getattr(detector, "describer", None), cut_times_s=cut_times_s)
    candidates: list[_Candidate] = []
    for batch in loop:
        for item in batch:
            frame = item.frame
            candidates.extend(
                _Candidate(
                    frame.sample_index,
                    frame.frame_index,
                    frame.timestamp_s,
                    face,
                    yaw_deg(face.landmarks_xy) if face.landmarks_xy else 0.0,
                    _crop_for_dataset(frame.rgb, face, keep_size),
                )
                for face in item.faces
            )
    counts.frames = loop.n_frames
    counts.detected = loop.follower.selection["confident"]
    counts.small = loop.follower.selection["small"]
    return [dataclasses.replace(c, track_id=t) for c, t in zip(candidates, loop.track_ids())]


def _filter_candidates(
    candidates: Sequence[_Candidate], config: ExtractConfig, counts: _ClipCounts
) -> dict[int, list[tuple[_Candidate, float]]]:
    """Drop blurred crops and near duplicates of the previous kept crop of the same person;
    returns (candidate, sharpness) per track in time order, and counts what it dropped."""
    from pipeline.faces.crop import CROP_SIZE_PX, resize_rgb
    from pipeline.faces.quality import sharpness, thumb_distance, thumbnail

    kept_per_track: dict[int, list[tuple[_Candidate, float]]] = defaultdict(list)
    last_thumb: dict[int, np.ndarray] = {}
    for cand in candidates:
        # measured at the model's crop size, so native-size crops compare with resized ones
        sharp = sharpness(resize_rgb(cand.crop_rgb, CROP_SIZE_PX) if config.keep_size else cand.crop_rgb)
        if sharp < config.min_sharpness:
            counts.blurred += 1
            continue
        thumb = thumbnail(cand.crop_rgb)
        track = cand.track_id
        if track in last_thumb and thumb_distance(thumb, last_thumb[track]) < config.dedup_max_diff:
            counts.duplicates += 1
            continue
        last_thumb[track] = thumb
        kept_per_track[track].append((cand, sharp))
    return kept_per_track


def face_record(clip: SourceClip, cand: _Candidate, sharpness: float, file: str) -> FaceRecord:
    """The manifest row of one written crop (``file`` relative to the dataset folder); box,
    time and confidence rounded as every face row is (:func:`pipeline.scan.records.face_columns`)."""
    face = cand.face
    return FaceRecord(
        file=file,
        label=clip.label,
        source_video=clip.source_video,
        **face_columns(cand.frame_index, cand.timestamp_s, face.box_xyxy, face.confidence),
        yaw_deg=round(cand.yaw_deg, 2),
        face_size_px=round(face.size_px, 1),
        sharpness=round(sharpness, 2),
        split="",
        track_id=cand.track_id,
        source_path=clip.path,
    )


def _write_crops(
    clip: SourceClip, dataset_dir: Path, chosen: Sequence[tuple[_Candidate, float, int]], jpeg_quality: int
) -> list[FaceRecord]:
    """Write each chosen crop atomically to ``<label>/<crop_file_name>``; its manifest rows."""
    label_dir = dataset_dir / clip.label
    label_dir.mkdir(parents=True, exist_ok=True)
    records = []
    for cand, sharp, track in chosen:
        name = crop_file_name(clip.source_video, cand.frame_index, track)
        _write_jpeg_atomic(label_dir / name, cand.crop_rgb, jpeg_quality)
        records.append(face_record(clip, cand, sharp, f"{clip.label}/{name}"))
    return records


def extract_clip(
    clip: SourceClip, dataset_dir: Path, detector: Detector, config: ExtractConfig
) -> tuple[SourceRow, list[FaceRecord]]:
    """Find, select, filter and write the faces of one clip.

    ``detector``: a :class:`pipeline.faces.detect.FaceDetector`; its networks are used under
    ``config.detector``'s settings (:meth:`FaceDetector.with_config`). Steps: sample frames,
    the scanner's face loop (detect, select, track, crop), drop blurred crops and near
    duplicates, cap the faces per clip, write the crops. Returns the clip's ``sources.csv``
    row (status ``ok``, or ``no_face`` when nothing was kept) and its manifest rows. Raises
    on unreadable clips (:class:`pipeline.errors.DecodeError`, ``TimeoutError``, ``OSError``:
    the caller records them).
    """
    from pipeline.video.decode import can_detect_cuts

    started = time.perf_counter()
    counts = _ClipCounts()
    cuts: list[float] | None = [] if can_detect_cuts() else None
    candidates = find_candidates(
        _sample_frames(clip, config, cuts), detector.with_config(config.detector), config.keep_size, counts, cuts
    )
    kept_per_track = _filter_candidates(candidates, config, counts)
    chosen = _cap_per_track(kept_per_track, config.max_per_video)
    counts.over_cap = sum(len(v) for v in kept_per_track.values()) - len(chosen)
    records = _write_crops(clip, dataset_dir, chosen, config.jpeg_quality)
    row = SourceRow(
        clip.path,
        clip.label,
        clip.source_video,
        "ok" if records else "no_face",
        counts.frames,
        counts.detected,
        counts.small,
        counts.blurred,
        counts.duplicates,
        counts.over_cap,
        len(records),
        round(time.perf_counter() - started, 3),
    )
    return row, records


# --- the whole dataset --------------------------------------------------------------------------


def yaw_bin(yaw: float) -> str:
    return YAW_BIN_NAMES[sum(yaw >= e for e in YAW_BIN_EDGES_DEG)]


def size_bin(size_px: float) -> str:
    return SIZE_BIN_NAMES[sum(size_px >= e for e in SIZE_BIN_EDGES_PX)]


def bin_of(record: FaceRecord) -> tuple[str, str]:
    return yaw_bin(record.yaw_deg), size_bin(record.face_size_px)


def bin_table(records: Iterable[FaceRecord]) -> dict[tuple[str, str], Counter]:
    """Counts per (yaw bin, size bin) per label."""
    table: dict[tuple[str, str], Counter] = defaultdict(Counter)
    for r in records:
        table[bin_of(r)][r.label] += 1
    return table


def stratify(records: Sequence[FaceRecord], labels: Sequence[str], seed: int) -> list[FaceRecord]:
    """Subsample so that every label has the same count in every (yaw, size) bin, hence the same
    distribution over bins. Deterministic in ``seed``; keeps the input order.

    Where a bin keeps fewer faces of a label than it has, they are spread over the source clips:
    each face kept comes from the clip with the fewest faces kept so far (ties in an order
    shuffled with ``seed``), so a clip is dropped whole only when its bins leave no room (what
    was dropped is counted by :func:`stratify_message`)."""
    rng = random.Random(seed)
    by_bin: dict[tuple[str, str], dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    for i, r in enumerate(records):
        by_bin[bin_of(r)][r.label].append(i)
    keep: set[int] = set()
    kept_per_source: Counter = Counter()
    for key in sorted(by_bin):
        groups = by_bin[key]
        n = min(len(groups.get(label, [])) for label in labels)
        for label in labels:
            members = groups.get(label, [])
            chosen = members if n >= len(members) else _spread(members, n, records, kept_per_source, rng)
            keep.update(chosen)
            kept_per_source.update(records[i].source_video for i in chosen)
    return [r for i, r in enumerate(records) if i in keep]


def _spread(
    members: Sequence[int], n: int, records: Sequence[FaceRecord], kept_per_source: Counter, rng: random.Random
) -> list[int]:
    """``n`` of ``members`` (indices into ``records``), each from the source clip with the fewest
    faces kept so far (``kept_per_source``, these included), a random face of it."""
    by_source: dict[str, list[int]] = defaultdict(list)
    for i in members:
        by_source[records[i].source_video].append(i)
    order = sorted(by_source)
    rng.shuffle(order)
    for name in order:
        rng.shuffle(by_source[name])
    rank = {name: k for k, name in enumerate(order)}
    taken: Counter = Counter()
    chosen = []
    for _ in range(n):
        name = min((s for s in order if by_source[s]), key=lambda s: (kept_per_source[s] + taken[s], rank[s]))
        chosen.append(by_source[name].pop())
        taken[name] += 1
    return chosen


SPLIT_ORDER = ("train", "val", "test")
# fewest source videos per label for a part of its own: train, val and test each need one
MIN_SOURCES_FOR_TEST = 3
# whole clips named in a message at most (all are in stratification_clips.csv)
MAX_CLIPS_NAMED = 5


def _sources_per_label(records: Iterable[FaceRecord]) -> dict[str, int]:
    videos: dict[str, set[str]] = defaultdict(set)
    for r in records:
        videos[r.label].add(r.source_video)
    return {label: len(v) for label, v in videos.items()}


def assign_splits(records: Sequence[FaceRecord], fractions: tuple[float, float, float], seed: int) -> list[FaceRecord]:
    """Split by source video, stratified by label (never one clip in two splits), deterministic.

    Uses the training code's split twice: test carved out first, then val from the rest; each
    takes at least one source video of every label that has a video to spare. With fewer than
    :data:`MIN_SOURCES_FOR_TEST` source videos of some label there is not one each for train,
    val and test: the test part is then left empty, since ``train`` needs a validation part and
    ``evaluate`` can use any held-out clips later. What the parts came to hold, when some part
    asked for misses a label, is said by :func:`split_message` (:func:`write_manifest` logs it).
    """
    from pipeline.training.dataset import FaceItem, split_by_source_video

    train_f, val_f, test_f = fractions
    per_label = _sources_per_label(records)
    if test_f > 0 and val_f > 0 and min(per_label.values(), default=0) < MIN_SOURCES_FOR_TEST:
        train_f, val_f, test_f = train_f, val_f + test_f, 0.0
    items = [FaceItem(Path(r.file), r.label, r.source_video) for r in records]
    index = {id(item): i for i, item in enumerate(items)}
    split_of = ["train"] * len(records)
    rest = items
    if test_f > 0:
        rest, test = split_by_source_video(items, test_f, seed)
        for item in test:
            split_of[index[id(item)]] = "test"
    if val_f > 0 and rest:
        _, val = split_by_source_video(rest, val_f / (train_f + val_f), seed + 1)
        for item in val:
            split_of[index[id(item)]] = "val"
    return [dataclasses.replace(r, split=s) for r, s in zip(records, split_of)]


def sources_per_part(records: Iterable[FaceRecord]) -> dict[str, dict[str, int]]:
    """Source videos per part per label, ``{"train": {"real": 1, "fake": 1}, "val": {"fake": 1}}``
    (parts and labels holding none left out): what :func:`split_message` reads."""
    videos: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for r in records:
        videos[r.split][r.label].add(r.source_video)
    return {part: {label: len(v) for label, v in by_label.items()} for part, by_label in videos.items()}


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")


def split_message(
    held: dict[str, dict[str, int]],
    fractions: tuple[float, float, float],
    labels: Sequence[str],
    *,
    dropped_by_stratify: int | None = None,
) -> str | None:
    """The one message about a split whose parts cannot each hold every label, derived from the
    counts alone; ``None`` when every part asked for (fraction > 0) holds a source video of every
    label. ``held``: source videos per part per label (:func:`sources_per_part`);
    ``dropped_by_stratify``: whole clips ``--stratify`` removed (``None``: not stratified).

    It says how many source videos there are per label, what each part got, what a part needs to
    measure anything (a source video of each label of its own) and what to do: how many clips of
    which label to add, or a ``--split`` the videos can fill. E.g. for 1 real and 2 fake clips::

        3 source videos with faces (1 real, 2 fake): train gets 1 real + 1 fake, val gets 1 fake,
        test is empty. A part measures something only when it holds a source video of each
        label, and a video goes to one part only, so train, val and test need 3 a label (train
        and val 2: what `train` needs). Add at least 2 real + 1 fake clips (1 real clip for
        train and val alone), or pass --split 1,0,0 to keep every clip in train.
    """
    asked = [part for part, f in zip(SPLIT_ORDER, fractions) if f > 0]
    if all(held.get(part, {}).get(label, 0) > 0 for part in asked for label in labels):
        return None
    totals = {label: sum(held.get(part, {}).get(label, 0) for part in held) for label in labels}
    got, empty, not_asked = [], [], []
    for part in SPLIT_ORDER:
        counts = [f"{held[part][label]} {label}" for label in labels if held.get(part, {}).get(label, 0)]
        if counts:
            got.append(f"{part} gets {' + '.join(counts)}")
        elif part in asked:
            empty.append(part)
        else:
            not_asked.append(part)
    parts = [*got]
    if empty:
        parts.append(f"{and_list(empty)} {'is' if len(empty) == 1 else 'are'} empty")
    if not_asked:
        parts.append(f"{and_list(not_asked)} {'is' if len(not_asked) == 1 else 'are'} not asked for")
    need = 1 + ("val" in asked) + ("test" in asked)
    fewest = min(totals.values(), default=0)
    train_f, val_f, test_f = fractions
    if fewest >= need:  # enough videos a label, yet a part misses one (sources holding both labels)
        advice = "Add clips of each label, or change --split"
    else:
        advice = f"Add at least {_missing(totals, need)}"
    if need == 3 and fewest < 2:
        advice += f" ({_missing(totals, 2)} for train and val alone)"
    if need == 3 and fewest >= 2:
        advice += f", or pass --split {train_f:g},{val_f + test_f:g},0 to ask for no test part"
    elif need > 1 and fewest >= 1:
        advice += ", or pass --split 1,0,0 to keep every clip in train"
    if dropped_by_stratify is None:
        where = ""
    elif dropped_by_stratify == 0:
        where = " after --stratify"
    else:
        where = f" left after --stratify dropped {_n(dropped_by_stratify, 'whole clip')}"
    return (
        f"{_n(sum(totals.values()), 'source video')} with faces{where} "
        f"({', '.join(f'{n} {label}' for label, n in totals.items())}): {', '.join(parts)}. "
        "A part measures something only when it holds a source video of each label, and a video goes to "
        f"one part only, so {_needs(asked)}. {advice}."
    )


def _needs(asked: Sequence[str]) -> str:
    """What the parts asked for need: ``train, val and test need 3 a label (...)``."""
    if len(asked) == 3:
        return "train, val and test need 3 a label (train and val 2: what `train` needs)"
    if asked == ["train", "val"]:
        return "train and val need 2 a label (what `train` needs)"
    if len(asked) == 2:
        return f"{and_list(asked)} need 2 a label"
    return "train needs 1 a label"


def _missing(totals: dict[str, int], need: int) -> str:
    """``2 real + 1 fake clips``: the source videos each label lacks to have ``need``."""
    lacking = {label: need - n for label, n in totals.items() if n < need}
    return " + ".join(f"{k} {label}" for label, k in lacking.items()) + (
        " clip" if sum(lacking.values()) == 1 else " clips"
    )


@dataclasses.dataclass(frozen=True)
class ClipStratified(CsvRow):
    """What ``--stratify`` did to one source clip (``stratification_clips.csv``)."""

    source_video: str
    label: str
    faces_before: int
    faces_after: int
    dropped: int
    whole_clip_dropped: bool


def stratified_clips(before: Iterable[FaceRecord], after: Iterable[FaceRecord]) -> list[ClipStratified]:
    """One row per source clip of ``before``: its faces before and after stratification."""
    counts_before = Counter((r.source_video, r.label) for r in before)
    counts_after = Counter((r.source_video, r.label) for r in after)
    return [
        ClipStratified(
            source,
            label,
            n,
            counts_after[(source, label)],
            n - counts_after[(source, label)],
            counts_after[(source, label)] == 0,
        )
        for (source, label), n in sorted(counts_before.items(), key=lambda kv: (kv[0][1], kv[0][0]))
    ]


def stratify_message(
    before: Sequence[FaceRecord],
    after: Sequence[FaceRecord],
    labels: Sequence[str],
    rows: Sequence[ClipStratified] | None = None,
) -> str | None:
    """What ``--stratify`` removed, counted: faces and clips per label, the clips dropped whole
    (named, at most :data:`MAX_CLIPS_NAMED`), and why (the bin that lost the most); ``None``
    when it removed nothing. ``rows``: :func:`stratified_clips` of the two, when already made.
    E.g. for a fake clip whose faces are all in profile, where no real
    face is::

        --stratify dropped 5 of 13 faces: real 0 of 4; fake 5 of 9, from 2 of 3 clips, dropping
        1 whole clip (fake/f2: 3 faces). Why: --stratify gives every label the same count in
        every pose/size bin, as many as the label with fewer faces has there (most dropped in
        yaw>45 size64-128: 0 real, 3 fake). Per clip: stratification_clips.csv.
    """
    if len(after) == len(before):
        return None
    rows = stratified_clips(before, after) if rows is None else rows
    per_label = []
    for label in labels:
        mine = [r for r in rows if r.label == label]
        n_before = sum(r.faces_before for r in mine)
        dropped = sum(r.dropped for r in mine)
        if not dropped:
            per_label.append(f"{label} 0 of {n_before}")
            continue
        touched = sum(1 for r in mine if r.dropped)
        whole = [r for r in mine if r.whole_clip_dropped]
        text = f"{label} {dropped} of {n_before}, from {touched} of {_n(len(mine), 'clip')}"
        if whole:
            named = ", ".join(f"{r.source_video}: {_n(r.faces_before, 'face')}" for r in whole[:MAX_CLIPS_NAMED])
            more = f" and {len(whole) - MAX_CLIPS_NAMED} more" if len(whole) > MAX_CLIPS_NAMED else ""
            text += f", dropping {_n(len(whole), 'whole clip')} ({named}{more})"
        per_label.append(text)
    table_before, table_after = bin_table(before), bin_table(after)
    worst = max(
        table_before,
        key=lambda k: (sum(table_before[k].values()) - sum(table_after.get(k, Counter()).values()), k),
    )
    in_worst = ", ".join(f"{table_before[worst][label]} {label}" for label in labels)
    return (
        f"--stratify dropped {len(before) - len(after)} of {_n(len(before), 'face')}: {'; '.join(per_label)}. "
        "Why: --stratify gives every label the same count in every pose/size bin, as many as the label with "
        f"fewer faces has there (most dropped in {' '.join(worst)}: {in_worst}). "
        "Per clip: stratification_clips.csv."
    )


def _read_records(path: Path) -> list[FaceRecord]:
    if not path.exists():
        return []
    types = {f.name: f.type for f in dataclasses.fields(FaceRecord)}
    out = []
    with open(path, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            values: dict[str, Any] = {}
            for k, v in row.items():
                kind = types[k]
                values[k] = int(v) if kind in ("int", int) else float(v) if kind in ("float", float) else v
            out.append(FaceRecord(**values))
    return out


def _write_table(path: Path, before: dict, after: dict | None, labels: Sequence[str]) -> str:
    keys = sorted(set(before) | set(after or {}))
    lines = [
        "yaw_bin,size_bin,"
        + ",".join(f"{label}_before" for label in labels)
        + ("," + ",".join(f"{label}_after" for label in labels) if after is not None else "")
    ]
    for key in keys:
        cells = [str(before.get(key, Counter())[label]) for label in labels]
        if after is not None:
            cells += [str(after.get(key, Counter())[label]) for label in labels]
        lines.append(",".join([*key, *cells]))
    text = "\n".join(lines) + "\n"
    path.write_text(text)
    return text


def count_per_split(records: Iterable[FaceRecord]) -> dict[str, dict[str, int]]:
    """Faces per split per label, ``{"train": {"real": 3, "fake": 2}, ...}``, splits in
    train/val/test order (only those holding faces)."""
    counts = Counter((r.split, r.label) for r in records)
    table: dict[str, dict[str, int]] = {}
    for split in sorted({s for s, _ in counts}, key=lambda s: (SPLIT_ORDER + (s,)).index(s)):
        table[split] = {label: n for (s, label), n in sorted(counts.items()) if s == split}
    return table


def write_manifest(dataset_dir: Path, config: ExtractConfig) -> dict:
    """(Re)derive ``manifest.csv`` from ``faces_all.csv``: stratify if asked, then split.

    Returns ``faces`` (rows of the manifest), ``faces_before_stratify``, ``per_split``
    (:func:`count_per_split`), ``sources_per_part`` (:func:`sources_per_part`), ``table`` (the
    text of ``stratification.csv``, written in every case: before-counts, and after-counts with
    ``config.stratify``), ``stratify_message`` (:func:`stratify_message`: what stratification
    removed, also written per clip to ``stratification_clips.csv``) and ``split_message``
    (:func:`split_message`: what the parts can and cannot hold, when some part asked for misses a
    label); each message is logged once, ``None`` when there is nothing to say.
    """
    from pipeline.scan.sink import CsvSink

    records = _read_records(dataset_dir / "faces_all.csv")
    labels = config.labels
    before = bin_table(records)
    chosen = stratify(records, labels, config.seed) if config.stratify else list(records)
    table = _write_table(
        dataset_dir / "stratification.csv", before, bin_table(chosen) if config.stratify else None, labels
    )
    clips_csv = dataset_dir / "stratification_clips.csv"
    stratified, whole_dropped = None, 0
    if config.stratify:
        clip_rows = stratified_clips(records, chosen)
        with (
            atomic_path(clips_csv) as tmp,
            CsvSink(tmp, ClipStratified.columns(), resume=False, lock=False) as sink,
        ):
            sink.write_many(clip_rows)
        whole_dropped = sum(r.whole_clip_dropped for r in clip_rows)
        stratified = stratify_message(records, chosen, labels, clip_rows)
        if stratified:
            log.log(logging.WARNING if whole_dropped else logging.INFO, "%s", stratified)
    else:
        clips_csv.unlink(missing_ok=True)  # from an earlier stratified build: no longer true
    present = {r.label for r in chosen}
    if len(present) == len(labels) and len({r.source_video for r in chosen}) >= 2:
        chosen = assign_splits(chosen, config.split, config.seed)
    else:
        chosen = [dataclasses.replace(r, split="train") for r in chosen]
    held = sources_per_part(chosen)
    message = split_message(held, config.split, labels, dropped_by_stratify=whole_dropped if stratified else None)
    if message:
        log.warning("%s", message)
    with (
        atomic_path(dataset_dir / "manifest.csv") as tmp,
        CsvSink(tmp, FaceRecord.columns(), resume=False, lock=False) as sink,
    ):
        sink.write_many(chosen)
    return {
        "faces": len(chosen),
        "faces_before_stratify": len(records),
        "per_split": count_per_split(chosen),
        "sources_per_part": held,
        "table": table,
        "stratify_message": stratified,
        "split_message": message,
    }


def _extract_or_error(
    clip: SourceClip, dataset_dir: Path, detector: Detector, config: ExtractConfig
) -> tuple[SourceRow, list[FaceRecord], bool]:
    """:func:`extract_clip`, with a clip that cannot be read turned into its ``errors.csv`` row:
    ``decode_error``, ``timeout`` or ``error`` (logged; the build goes on). Returns (row,
    records, failed), paths in rows as :func:`pipeline.scan.records.display_path` text."""
    from pipeline.errors import DecodeError
    from pipeline.scan.records import display_path
    from pipeline.video.decode import DecodeTimeoutError

    started = time.perf_counter()
    try:
        row, records = extract_clip(clip, dataset_dir, detector, config)
    except (DecodeError, DecodeTimeoutError, TimeoutError, OSError, ValueError) as exc:
        status = (
            "decode_error" if isinstance(exc, DecodeError) else "timeout" if isinstance(exc, TimeoutError) else "error"
        )
        row = SourceRow(
            display_path(clip.path),
            clip.label,
            clip.source_video,
            status,
            elapsed_s=round(time.perf_counter() - started, 3),
            error=" ".join(str(exc).split())[:500],
        )
        log.warning("%s: %s: %s", clip.path, status, row.error)
        return row, [], True
    records = [dataclasses.replace(r, source_path=display_path(r.source_path)) for r in records]
    return dataclasses.replace(row, source_path=display_path(row.source_path)), records, False


def build_dataset(
    clips: Sequence[SourceClip],
    dataset_dir: str | Path,
    detector: Detector,
    config: ExtractConfig,
    *,
    progress: bool | None = None,
) -> dict:
    """Extract every clip not already done into ``dataset_dir`` and write the manifest.

    ``detector``: a :class:`pipeline.faces.detect.FaceDetector` (from
    :func:`pipeline.models.factory.load_detector`), used under ``config.detector``'s settings.
    ``progress``: a progress bar (default: when stderr is a terminal). Returns
    :func:`write_manifest`'s summary plus ``new_faces``, ``seconds`` and ``crops_per_second``.
    Raises :class:`pipeline.errors.OutputLockedError` when another build holds the folder.
    """
    from tqdm import tqdm

    from pipeline.scan.records import display_path
    from pipeline.scan.sink import CsvSink, keep_rows_with_keys, read_done_keys

    dataset_dir = Path(dataset_dir)
    dataset_dir.mkdir(parents=True, exist_ok=True)
    if progress is None:
        progress = sys.stderr.isatty()
    sources_csv, faces_csv, errors_csv = (dataset_dir / n for n in ("sources.csv", "faces_all.csv", "errors.csv"))
    started = time.perf_counter()
    n_new_faces = 0
    with CsvSink(sources_csv, SourceRow.columns(), resume=True) as sources:
        done = read_done_keys(sources_csv, "source_path", SourceRow.columns())
        # faces of a clip whose sources row never landed are redone: drop their old rows
        keep_rows_with_keys(faces_csv, done, key_column=FaceRecord.columns().index("source_path"))
        todo = [c for c in clips if display_path(c.path) not in done]
        if done:
            log.info("%s: %d clips already done, %d to go", dataset_dir, len(done), len(todo))
        with (
            CsvSink(faces_csv, FaceRecord.columns(), resume=True, lock=False) as faces,
            CsvSink(errors_csv, SourceRow.columns(), resume=True, lock=False) as errors,
            tqdm(total=len(todo), unit="clip", disable=not progress) as bar,
        ):
            for clip in todo:
                row, records, failed = _extract_or_error(clip, dataset_dir, detector, config)
                if failed:
                    errors.write(row)
                faces.write_many(records)
                sources.write(row)
                n_new_faces += len(records)
                bar.update(1)
    elapsed = time.perf_counter() - started
    summary = write_manifest(dataset_dir, config)
    summary.update(
        new_faces=n_new_faces,
        seconds=round(elapsed, 2),
        crops_per_second=round(n_new_faces / elapsed, 2) if elapsed > 0 else 0.0,
    )
    return summary
