"""Build a face dataset from labelled clips: ``extract_faces.py SOURCES -o DATASET``.

The faces are found and cropped exactly as the scanner does (same decoder, MTCNN detector and
crop function), so a face in a dataset and a face the scanner scores look alike. Layout:

    DATASET/<label>/<source>_f<frame>_t<track>.jpg   crops (256x256 unless --keep-size)
    DATASET/manifest.csv       the dataset: one row per face, with its split (train/val/test)
    DATASET/faces_all.csv      every face kept by the filters, before stratification and split
    DATASET/sources.csv        one row per source clip: status and counts (resume state)
    DATASET/errors.csv         the clips that failed, and why
    DATASET/stratification.csv counts per pose/size bin per class, before and after

Rerunning continues where it stopped (clips in ``sources.csv`` are skipped) and rewrites the
manifest; a crop is written atomically before its row, so no listed crop is ever half-written.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import hashlib
import logging
import random
import re
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Iterable, Sequence

from pipeline.atomic import atomic_path
from pipeline.cli.common import start_logging
from pipeline.faces.detect import DetectorConfig
from pipeline.scan.records import CsvRow

log = logging.getLogger(__name__)

SPLIT_NAMES = ("train", "val", "test")
YAW_BIN_EDGES_DEG = (-45.0, -15.0, 15.0, 45.0)  # 5 bins: profile left ... profile right
YAW_BIN_NAMES = ("yaw<-45", "yaw-45..-15", "yaw-15..15", "yaw15..45", "yaw>45")
SIZE_BIN_EDGES_PX = (64.0, 128.0, 256.0)  # 4 bins of face size in source pixels
SIZE_BIN_NAMES = ("size<64", "size64-128", "size128-256", "size>=256")


@dataclasses.dataclass(frozen=True)
class ExtractConfig:
    """Settings of a dataset build; the CLI maps its flags onto these one to one.

    ``fps``: frames sampled per second of each clip; ``max_per_video``: faces kept per source
    clip at most, spread evenly over the clip; ``min_face_px``: smaller faces (source pixels)
    are skipped; ``min_sharpness``: crops whose Laplacian variance is below are skipped as
    blurred; ``dedup_max_diff``: a crop whose 32 px grey thumbnail differs from the last kept
    crop of the same person by less than this many grey levels (mean absolute) is a near
    duplicate and skipped; ``split``: train/val/test fractions by source video.
    """

    fps: float = 2.0
    max_per_video: int = 50
    keep_size: bool = False
    min_face_px: int = 64
    min_sharpness: float = 10.0
    dedup_max_diff: float = 2.0
    stratify: bool = False
    split: tuple[float, float, float] = (0.8, 0.1, 0.1)
    seed: int = 0
    labels: tuple[str, ...] = ("real", "fake")
    jpeg_quality: int = 95
    timeout_s: float | None = 900.0
    # the detector keeps every face; min_face_px above decides, and counts what it drops
    detector: DetectorConfig = DetectorConfig(min_face_px=1)

    def __post_init__(self) -> None:
        if not self.fps > 0:
            raise ValueError(f"fps must be positive, got {self.fps}")
        if self.max_per_video < 1:
            raise ValueError(f"max_per_video must be >= 1, got {self.max_per_video}")
        if len(self.split) != 3 or any(f < 0 for f in self.split) or abs(sum(self.split) - 1.0) > 1e-6:
            raise ValueError(f"split must be three fractions (train, val, test) summing to 1, got {self.split}")
        if self.split[0] <= 0:
            raise ValueError(f"the train fraction must be positive, got {self.split}")


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


def find_sources(sources: str | Path, labels: Sequence[str] = ("real", "fake")) -> list[SourceClip]:
    """Labelled clips from a folder with one subfolder per label (clips anywhere below), or from a
    manifest CSV ``path,label[,source_id]`` (paths relative to the CSV). Other labels are skipped
    with a log line."""
    from pipeline.video.discover import iter_videos

    root = Path(sources)
    clips: list[SourceClip] = []
    if root.is_file():
        base = root.resolve().parent
        with open(root, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            if not reader.fieldnames or not {"path", "label"} <= set(reader.fieldnames):
                raise ValueError(f"{root}: a sources manifest needs columns path,label[,source_id]; "
                                 f"found {reader.fieldnames}")
            for row in reader:
                label = canonical_label(row["label"] or "")
                if label not in labels:
                    log.info("skipping %s: label %r is not one of %s", row["path"], row["label"], list(labels))
                    continue
                path = Path(row["path"])
                path = path if path.is_absolute() else base / path
                source = (row.get("source_id") or "").strip() or Path(row["path"]).with_suffix("").as_posix()
                clips.append(SourceClip(str(path), label, source))
        return clips
    if not root.is_dir():
        raise FileNotFoundError(f"sources not found: {root}")
    for child in sorted(root.iterdir()):
        if not child.is_dir():
            continue
        label = canonical_label(child.name)
        if label not in labels:
            log.info("skipping folder %s: not one of the labels %s", child, list(labels))
            continue
        for path in iter_videos([child]):
            rel = Path(path).relative_to(root).with_suffix("").as_posix()
            clips.append(SourceClip(path, label, rel))
    return clips


def safe_stem(source_video: str) -> str:
    """A file-name-safe, collision-free stem for a source: readable part plus a short hash."""
    readable = re.sub(r"[^A-Za-z0-9._-]+", "_", source_video).strip("._")[-60:] or "clip"
    return f"{readable}-{hashlib.sha1(source_video.encode('utf-8', 'surrogateescape')).hexdigest()[:8]}"


# --- one clip -----------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class _Candidate:
    sample_index: int
    frame_index: int
    timestamp_s: float
    box_xyxy: tuple[float, float, float, float]
    confidence: float
    yaw_deg: float
    size_px: float
    crop_rgb: object  # np.ndarray, uint8


def _write_jpeg_atomic(path: Path, rgb, quality: int) -> None:
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


def extract_clip(clip: SourceClip, dataset_dir: Path, detector, config: ExtractConfig
                 ) -> tuple[SourceRow, list[FaceRecord]]:
    """Find, filter and write the faces of one clip. Raises on unreadable clips (the caller
    records them)."""
    from pipeline.faces.boxes import square_box_xyxy
    from pipeline.faces.crop import CROP_MARGIN, CROP_SIZE_PX, crop_face_rgb, resize_rgb
    from pipeline.video.decode import iter_frames, sampling_fps
    from pipeline.faces.pose import yaw_deg
    from pipeline.video.probe import probe_video
    from pipeline.faces.quality import sharpness, thumb_distance, thumbnail
    from pipeline.scan.analyze import batched
    from pipeline.faces.tracks import link_tracks

    started = time.perf_counter()
    info = probe_video(clip.path, timeout_s=config.timeout_s or 60.0)
    # sample more frames than faces wanted: filters drop some, the cap spreads the rest
    max_frames = 4 * config.max_per_video
    rate = sampling_fps(info, config.fps, max_frames)
    counts: Counter = Counter()
    candidates: list[_Candidate] = []
    boxes_per_sample: list[list] = []
    n_frames = 0
    frames = iter_frames(clip.path, info, sample_fps=rate, max_frames=max_frames, timeout_s=config.timeout_s)
    for chunk in batched(frames, detector.config.batch_size):
        for frame, faces in zip(chunk, detector.detect([f.rgb for f in chunk])):
            boxes_per_sample.append([f.box_xyxy for f in faces])
            for face in faces:
                counts["detected"] += 1
                if face.size_px < config.min_face_px:
                    counts["small"] += 1
                    crop = None
                elif config.keep_size:
                    h, w = frame.rgb.shape[:2]
                    left, top, right, bottom = square_box_xyxy(face.box_xyxy, CROP_MARGIN, (w, h))
                    crop = frame.rgb[top:bottom, left:right].copy()
                else:
                    crop = crop_face_rgb(frame.rgb, face.box_xyxy, size_px=CROP_SIZE_PX)
                yaw = yaw_deg(face.landmarks_xy) if face.landmarks_xy else 0.0
                candidates.append(_Candidate(frame.sample_index, frame.frame_index, frame.timestamp_s,
                                             tuple(face.box_xyxy), face.confidence, yaw, face.size_px, crop))
        n_frames += len(chunk)

    track_ids = [t for per_sample in link_tracks(boxes_per_sample) for t in per_sample]
    kept_per_track: dict[int, list[tuple[_Candidate, float]]] = defaultdict(list)
    last_thumb: dict[int, object] = {}
    for cand, track in zip(candidates, track_ids):
        if cand.crop_rgb is None:
            continue
        # measured at the model's crop size, so native-size crops compare with resized ones
        sharp = sharpness(resize_rgb(cand.crop_rgb, CROP_SIZE_PX) if config.keep_size else cand.crop_rgb)
        if sharp < config.min_sharpness:
            counts["blurred"] += 1
            continue
        thumb = thumbnail(cand.crop_rgb)
        if track in last_thumb and thumb_distance(thumb, last_thumb[track]) < config.dedup_max_diff:
            counts["duplicates"] += 1
            continue
        last_thumb[track] = thumb
        kept_per_track[track].append((cand, sharp))

    capped = _cap_per_track(kept_per_track, config.max_per_video)
    counts["over_cap"] = sum(len(v) for v in kept_per_track.values()) - len(capped)

    label_dir = dataset_dir / clip.label
    label_dir.mkdir(parents=True, exist_ok=True)
    stem = safe_stem(clip.source_video)
    records = []
    for cand, sharp, track in capped:
        name = f"{stem}_f{cand.frame_index:06d}_t{track}.jpg"
        _write_jpeg_atomic(label_dir / name, cand.crop_rgb, config.jpeg_quality)
        x1, y1, x2, y2 = cand.box_xyxy
        records.append(FaceRecord(
            file=f"{clip.label}/{name}", label=clip.label, source_video=clip.source_video,
            frame_index=cand.frame_index, timestamp_s=round(cand.timestamp_s, 4),
            x1=round(x1, 1), y1=round(y1, 1), x2=round(x2, 1), y2=round(y2, 1),
            det_confidence=round(cand.confidence, 5), yaw_deg=round(cand.yaw_deg, 2),
            face_size_px=round(cand.size_px, 1), sharpness=round(sharp, 2), split="", track_id=track,
            source_path=clip.path,
        ))
    row = SourceRow(clip.path, clip.label, clip.source_video, "ok" if records else "no_face", n_frames,
                    counts["detected"], counts["small"], counts["blurred"], counts["duplicates"],
                    counts["over_cap"], len(records), round(time.perf_counter() - started, 3))
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
    distribution over bins. Deterministic in ``seed``; keeps the input order."""
    rng = random.Random(seed)
    by_bin: dict[tuple[str, str], dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    for i, r in enumerate(records):
        by_bin[bin_of(r)][r.label].append(i)
    keep: set[int] = set()
    for key in sorted(by_bin):
        groups = by_bin[key]
        n = min(len(groups.get(label, [])) for label in labels)
        for label in labels:
            members = groups.get(label, [])
            keep.update(rng.sample(members, n) if n < len(members) else members)
    return [r for i, r in enumerate(records) if i in keep]


def assign_splits(records: Sequence[FaceRecord], fractions: tuple[float, float, float], seed: int
                  ) -> list[FaceRecord]:
    """Split by source video, stratified by label (never one clip in two splits), deterministic.

    Uses the training code's split twice: test carved out first, then val from the rest.
    """
    from pipeline.training.dataset import FaceItem, split_by_source_video

    train_f, val_f, test_f = fractions
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


def _read_records(path: Path) -> list[FaceRecord]:
    if not path.exists():
        return []
    types = {f.name: f.type for f in dataclasses.fields(FaceRecord)}
    out = []
    with open(path, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            values = {}
            for k, v in row.items():
                kind = types[k]
                values[k] = int(v) if kind in ("int", int) else float(v) if kind in ("float", float) else v
            out.append(FaceRecord(**values))
    return out


def _write_table(path: Path, before: dict, after: dict | None, labels: Sequence[str]) -> str:
    keys = sorted(set(before) | set(after or {}))
    lines = ["yaw_bin,size_bin," + ",".join(f"{label}_before" for label in labels)
             + ("," + ",".join(f"{label}_after" for label in labels) if after is not None else "")]
    for key in keys:
        cells = [str(before.get(key, Counter())[label]) for label in labels]
        if after is not None:
            cells += [str(after.get(key, Counter())[label]) for label in labels]
        lines.append(",".join([*key, *cells]))
    text = "\n".join(lines) + "\n"
    path.write_text(text)
    return text


def write_manifest(dataset_dir: Path, config: ExtractConfig) -> dict:
    """(Re)derive ``manifest.csv`` from ``faces_all.csv``: stratify if asked, then split."""
    from pipeline.scan.sink import CsvSink

    records = _read_records(dataset_dir / "faces_all.csv")
    labels = config.labels
    before = bin_table(records)
    chosen = stratify(records, labels, config.seed) if config.stratify else list(records)
    table = _write_table(dataset_dir / "stratification.csv", before, bin_table(chosen) if config.stratify else None,
                         labels)
    present = {r.label for r in chosen}
    if len(present) == len(labels) and len({r.source_video for r in chosen}) >= 2:
        chosen = assign_splits(chosen, config.split, config.seed)
    else:
        log.warning("not enough labelled source videos to split (labels %s): all faces go to train", sorted(present))
        chosen = [dataclasses.replace(r, split="train") for r in chosen]
    with atomic_path(dataset_dir / "manifest.csv") as tmp, \
            CsvSink(tmp, FaceRecord.columns(), resume=False, lock=False) as sink:
        sink.write_many(chosen)
    counts = Counter((r.split, r.label) for r in chosen)
    return {"faces": len(chosen), "faces_before_stratify": len(records), "per_split": dict(counts),
            "table": table}


def build_dataset(clips: Sequence[SourceClip], dataset_dir: str | Path, detector, config: ExtractConfig,
                  *, progress: bool | None = None) -> dict:
    """Extract every clip not already done into ``dataset_dir`` and write the manifest."""
    from tqdm import tqdm

    from pipeline.video.decode import DecodeTimeoutError
    from pipeline.errors import DecodeError
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
        with CsvSink(faces_csv, FaceRecord.columns(), resume=True, lock=False) as faces, \
                CsvSink(errors_csv, SourceRow.columns(), resume=True, lock=False) as errors, \
                tqdm(total=len(todo), unit="clip", disable=not progress) as bar:
            for clip in todo:
                clip_started = time.perf_counter()
                try:
                    row, records = extract_clip(clip, dataset_dir, detector, config)
                except (DecodeError, DecodeTimeoutError, TimeoutError, OSError, ValueError) as exc:
                    status = ("decode_error" if isinstance(exc, DecodeError)
                              else "timeout" if isinstance(exc, TimeoutError) else "error")
                    row = SourceRow(display_path(clip.path), clip.label, clip.source_video, status,
                                    elapsed_s=round(time.perf_counter() - clip_started, 3),
                                    error=" ".join(str(exc).split())[:500])
                    records = []
                    log.warning("%s: %s: %s", clip.path, status, row.error)
                    errors.write(row)
                row = dataclasses.replace(row, source_path=display_path(row.source_path))
                faces.write_many([dataclasses.replace(r, source_path=display_path(r.source_path)) for r in records])
                sources.write(row)
                n_new_faces += len(records)
                bar.update(1)
    elapsed = time.perf_counter() - started
    summary = write_manifest(dataset_dir, config)
    summary.update(new_faces=n_new_faces, seconds=round(elapsed, 2),
                   crops_per_second=round(n_new_faces / elapsed, 2) if elapsed > 0 else 0.0)
    return summary


# --- command line -------------------------------------------------------------------------------

def _fractions(text: str) -> tuple[float, float, float]:
    parts = [float(p) for p in text.split(",")]
    if len(parts) != 3:
        raise argparse.ArgumentTypeError(f"expected three fractions like 0.8,0.1,0.1, got {text!r}")
    return tuple(parts)  # type: ignore[return-value]


def build_parser(prog: str) -> argparse.ArgumentParser:
    d = ExtractConfig()
    p = argparse.ArgumentParser(prog=prog, formatter_class=argparse.ArgumentDefaultsHelpFormatter,
                                description="Build a labelled face dataset from clips, cropped as the scanner "
                                            "crops them.")
    p.add_argument("sources", help="folder with one subfolder per label (real/, fake/), or a CSV path,label[,source_id]")
    p.add_argument("-o", "--output", required=True, help="dataset folder (resumed if it exists)")
    p.add_argument("--fps", type=float, default=d.fps, help="frames sampled per second of each clip")
    p.add_argument("--max-per-video", type=int, default=d.max_per_video, help="faces kept per clip at most")
    p.add_argument("--stratify", action="store_true", help="even out the pose and resolution bins across classes")
    p.add_argument("--split", type=_fractions, default=d.split, help="train,val,test fractions by source video")
    p.add_argument("--seed", type=int, default=d.seed, help="seed of the split and the stratification")
    p.add_argument("--keep-size", action="store_true", help="keep the native crop size instead of 256x256")
    p.add_argument("--min-face", type=int, default=d.min_face_px, help="skip faces smaller than this (source px)")
    p.add_argument("--min-sharpness", type=float, default=d.min_sharpness,
                   help="skip crops whose Laplacian variance is below this (blurred)")
    p.add_argument("--dedup", type=float, default=d.dedup_max_diff,
                   help="skip a crop within this mean grey-level difference of the previous one of the same person")
    p.add_argument("--labels", default=",".join(d.labels), help="labels (subfolders) to take")
    p.add_argument("-q", "--quiet", action="store_true")
    return p


def main(argv: list[str] | None = None, prog: str = "extract_faces.py") -> int:
    args = build_parser(prog).parse_args(argv)
    start_logging(args.quiet)
    try:
        config = ExtractConfig(fps=args.fps, max_per_video=args.max_per_video, keep_size=args.keep_size,
                               min_face_px=args.min_face, min_sharpness=args.min_sharpness,
                               dedup_max_diff=args.dedup, stratify=args.stratify, split=args.split, seed=args.seed,
                               labels=tuple(canonical_label(x) or x for x in args.labels.split(",")))
        clips = find_sources(args.sources, config.labels)
    except (ValueError, FileNotFoundError) as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    if not clips:
        print(f"{prog}: error: no labelled clips under {args.sources} (labels {list(config.labels)})", file=sys.stderr)
        return 2
    from pipeline.faces.detect import FaceDetector
    from pipeline.errors import OutputLockedError

    detector = FaceDetector.create(config.detector)
    try:
        summary = build_dataset(clips, args.output, detector, config)
    except (OutputLockedError, OSError) as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    print(summary.pop("table"), end="")
    log.info("%s", summary)
    return 0
