"""A batch report: one self-contained HTML file from a scores file, to open from disk in a browser.

    write_report(ReportConfig(scores_path="scores.csv", output_path="report.html",
                              evidence_dir="evidence/", faces_csv="faces.csv"))

What the page holds, top to bottom:

1. the run's provenance (model, sha256, threshold, aggregation, the label rule, scan settings, tool
   version; when rows differ, each value with its count) and notes (rows that differ in threshold,
   a file that records none);
2. counts by status and by label (FAKE, REAL, and UNCERTAIN when the rows have a band: the lower
   threshold ``uncertain_below``, or, in rows written before that column, the ``REAL under`` of
   their ``label_rule``);
3. a histogram of ``p_fake`` (``ok`` clips, 20 bins over [0, 1]) with the threshold (and the band's
   lower one), inline SVG;
4. the clips, worst first (``p_fake`` descending, then the rows without a score by status): a
   table drawn by the page's script from JSON embedded in the page, sortable by any column,
   filtered by text, status and label, 100 rows a page, so 10,000 clips stay fast;
5. for the flagged clips (label FAKE, worst first, at most ``evidence_clips``): their evidence,
   the boxed frame and face crops with saliency (JPEGs embedded as data URIs, at most
   ``images_per_clip`` per clip and ``evidence_budget_bytes`` in all; the page says what was left
   out) and the score over time per person (inline SVG, from ``--faces-csv``);
6. the UNCERTAIN clips, worst first, listed apart (not flagged, no evidence: at most
   :data:`UNCERTAIN_LISTED`; the table's label filter shows them all).

Nothing is fetched: CSS and script are inline, charts are SVG made here, images are data URIs, and
a Content-Security-Policy allows nothing else (the script and stylesheet by hash). Data reaches
the page only as escaped HTML text (here) or as JSON in ``<script type="application/json">`` with
``<``, ``>`` and ``&`` escaped, which the script renders with ``textContent`` only: a clip path
holding quotes, ``<script>`` or newlines stays text.

Inputs: the scores file is the scanner's CSV (formula-escaped cells are unescaped as the scanner
does) or JSON Lines (one object per clip, the same fields), chosen by extension. The evidence
folder is read through its index ``evidence.csv`` (``video_path, file, kind, track_id,
timestamp_s, p_fake``; ``kind`` is ``crop`` or ``frame``), never guessed from file names; a
``file`` outside the folder is refused.
"""

from __future__ import annotations

import base64
import collections
import csv
import dataclasses
import datetime
import hashlib
import html
import json
import logging
import math
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from pipeline.atomic import atomic_path
from pipeline.errors import ConfigError, ReportError, writing
from pipeline.report.notes import row_note_sentences
from pipeline.scan.notes import NOTE_CODES, split_notes
from pipeline.scan.records import LABELS, STATUSES, display_path, labels_in_use
from pipeline.scan.sink import unescape_cell
from pipeline.settings import check

log = logging.getLogger(__name__)

DEFAULT_THRESHOLD = 0.5
SCORES_FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
REQUIRED_COLUMNS = ("video_path", "status")
PROVENANCE_FIELDS = ("model", "model_sha256", "threshold", "aggregation", "scan_settings", "tool_version")
EVIDENCE_INDEX = "evidence.csv"
EVIDENCE_COLUMNS = ("video_path", "file", "kind", "track_id", "timestamp_s", "p_fake")
EVIDENCE_KINDS = ("crop", "frame")
FACE_COLUMNS = ("video_path", "timestamp_s", "track_id", "p_fake")
HISTOGRAM_BINS = 20
# UNCERTAIN clips listed by name (worst first); the table's label filter shows every one.
UNCERTAIN_LISTED = 100
# The band's lower threshold as a label rule states it ("..., REAL under 0.301 (...)"), for rows
# written before the uncertain_below column.
_REAL_UNDER = re.compile(r"\bREAL under (\d+(?:\.\d+)?|\.\d+)")
# Images of every flagged clip embedded before any clip gets more: the boxed frame and the worst crop.
FIRST_ROUND_IMAGES = 2
# Tracks drawn per chart: the most suspicious ones; more lines than this are unreadable.
MAX_TRACKS_PER_CHART = 8
# The table's columns, as the page's script receives them (one array per clip, in this order).
TABLE_COLUMNS = (
    ("rank", "#", "num"),
    ("video_path", "clip", "text"),
    ("status", "status", "text"),
    ("p_fake", "p_fake", "num"),
    ("label", "label", "text"),
    ("n_faces", "faces", "num"),
    ("n_tracks", "people", "num"),
    ("seen", "faces in (sampled frames)", "text"),
    ("duration_s", "duration (s)", "num"),
    ("error", "error", "text"),
    ("notes", "notes", "text"),
    ("evidence", "evidence", "num"),
)
_JPEG_MAGIC = b"\xff\xd8\xff"


@dataclasses.dataclass(frozen=True)
class ReportConfig:
    """What to read and how much to embed.

    ``threshold`` is used only when the rows record none (older CSVs); else 0.5 with a note. It
    is one cut: the band of rows that have one (``uncertain_below``) is always the rows' own.
    ``evidence_clips``: flagged (FAKE) clips shown with evidence, worst first;
    ``images_per_clip``: JPEGs embedded per clip (the boxed frame first, then crops by
    ``p_fake``); ``evidence_budget_bytes``: JPEG bytes embedded in all (base64 adds a third), so
    the page stays quick to open; ``page_size``: table rows per page.
    """

    scores_path: Path
    output_path: Path
    evidence_dir: Path | None = None
    faces_csv: Path | None = None
    threshold: float | None = None
    evidence_clips: int = 50
    images_per_clip: int = 6
    evidence_budget_bytes: int = 10_000_000
    page_size: int = 100

    def __post_init__(self) -> None:
        for name in ("scores_path", "output_path", "evidence_dir", "faces_csv"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, Path):
                object.__setattr__(self, name, Path(value))
        if self.threshold is not None:
            check("threshold", self.threshold)
        for name in ("evidence_clips", "images_per_clip", "evidence_budget_bytes"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.page_size < 1:
            raise ConfigError(f"page_size must be >= 1, got {self.page_size}")


@dataclasses.dataclass(frozen=True)
class ClipRecord:
    """One clip of the scores file, as the report reads it (``p_fake``, 1 = fake, set when ok).
    ``uncertain_below``: the band's lower threshold (the row's column, else read from its
    ``label_rule``; ``None``: one cut); ``label_rule``: how the row says its label was made."""

    video_path: str
    status: str
    p_fake: float | None = None
    label: str = ""
    n_faces: int | None = None
    n_tracks: int | None = None
    duration_s: float | None = None
    error: str = ""
    threshold: float | None = None
    model: str = ""
    model_sha256: str = ""
    aggregation: str = ""
    scan_settings: str = ""
    tool_version: str = ""
    uncertain_below: float | None = None
    label_rule: str = ""
    notes: str = ""
    frames_with_faces: int | None = None
    frames_sampled: int | None = None
    quality_outside: str = ""
    caveats: tuple[str, ...] = ()

    @property
    def seen_text(self) -> str:
        """In how many sampled frames faces were found: "7 of 9" ("" when the row does not say)."""
        if self.frames_with_faces is None or not self.frames_sampled:
            return ""
        return f"{self.frames_with_faces} of {self.frames_sampled}"

    @property
    def note_sentences(self) -> list[str]:
        """The row's caveats in words, as the web page says them: those a JSON Lines object carries
        (``caveats``, :func:`pipeline.report.explain.row_explanation`), else its note codes' texts
        (:mod:`pipeline.report.notes`)."""
        if self.caveats:
            return list(self.caveats)
        return [sentence for _, sentence in row_note_sentences(self.notes, self.quality_outside)]


@dataclasses.dataclass(frozen=True)
class EvidenceImage:
    """One row of ``evidence.csv``: an image file (relative to the folder) of one clip;
    ``kind`` ``crop`` (a face with saliency, of ``track_id``) or ``frame`` (the boxed frame)."""

    video_path: str
    file: str
    kind: str
    track_id: int | None
    timestamp_s: float | None
    p_fake: float | None


@dataclasses.dataclass(frozen=True)
class ReportSummary:
    """What was written: clip counts, the threshold drawn (and ``uncertain_below``, the band's
    lower threshold, ``None`` for one cut), notes shown in the page, and the evidence embedded or
    left out (``left_out``: reason -> images); ``ok_label_counts``: the labels of the ``ok`` rows alone
    (what :func:`pipeline.scan.records.counts_text` shows under ``ok``, as the scan's summary does)."""

    output_path: Path
    n_clips: int
    status_counts: dict[str, int]
    label_counts: dict[str, int]
    threshold: float
    notes: tuple[str, ...]
    evidence_clips: int
    embedded_images: int
    embedded_bytes: int
    left_out: dict[str, int]
    size_bytes: int
    uncertain_below: float | None = None
    ok_label_counts: dict[str, int] = dataclasses.field(default_factory=dict)


# --- reading -----------------------------------------------------------------------------------


def _text(value) -> str:
    """A cell as text that is valid UTF-8 (undecodable bytes as escapes, as ``video_path`` is)."""
    if value is None:
        return ""
    text = value if isinstance(value, str) else str(value)
    try:
        return display_path(text)
    except UnicodeEncodeError:  # a lone surrogate from a JSON \\ud800 escape
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _number(value, column: str, where: str) -> float | None:
    """A numeric cell: empty -> None; anything else must be a finite number."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ReportError(f"{where}: {column} {value!r} is not a number")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ReportError(f"{where}: {column} {value!r} is not a number") from None
    if not math.isfinite(number):
        raise ReportError(f"{where}: {column} {value!r} is not a finite number")
    return number


def _count(value, column: str, where: str) -> int | None:
    number = _number(value, column, where)
    return None if number is None else int(number)


def _record(fields: Mapping, where: str) -> ClipRecord:
    """One clip from a row's cells (CSV text or JSON values). Raises :class:`ReportError`."""
    p_fake = _number(fields.get("p_fake"), "p_fake", where)
    if p_fake is not None and not 0.0 <= p_fake <= 1.0:
        raise ReportError(f"{where}: p_fake {p_fake} is outside [0, 1]")
    threshold = _number(fields.get("threshold"), "threshold", where)
    label_rule = _text(fields.get("label_rule"))
    uncertain_below = _number(fields.get("uncertain_below"), "uncertain_below", where)
    if uncertain_below is None:
        uncertain_below = band_from_rule(label_rule)
    elif not 0.0 <= uncertain_below <= 1.0:
        raise ReportError(f"{where}: uncertain_below {uncertain_below} is outside [0, 1]")
    notes = _text(fields.get("notes"))
    unknown = set(split_notes(notes)) - set(NOTE_CODES)
    if unknown:
        known = ", ".join(NOTE_CODES)
        raise ReportError(f"{where}: notes {sorted(unknown)} are not codes this version knows ({known})")
    return ClipRecord(
        video_path=_text(fields.get("video_path")),
        status=_text(fields.get("status")),
        p_fake=p_fake,
        label=_text(fields.get("label")),
        n_faces=_count(fields.get("n_faces"), "n_faces", where),
        n_tracks=_count(fields.get("n_tracks"), "n_tracks", where),
        duration_s=_number(fields.get("duration_s"), "duration_s", where),
        error=_text(fields.get("error")),
        threshold=threshold,
        **{name: _text(fields.get(name)) for name in PROVENANCE_FIELDS if name != "threshold"},
        uncertain_below=uncertain_below,
        label_rule=label_rule,
        notes=notes,
        frames_with_faces=_count(fields.get("frames_with_faces"), "frames_with_faces", where),
        frames_sampled=_count(fields.get("frames_sampled"), "frames_sampled", where),
        quality_outside=_text(fields.get("quality_outside")),
        caveats=_caveat_texts(fields.get("caveats"), where),
    )


def _caveat_texts(caveats, where: str) -> tuple[str, ...]:
    """The texts of a JSON Lines object's ``caveats`` (``[{"kind", "text"}, ...]``; absent in CSV)."""
    if caveats in (None, ""):
        return ()
    items = caveats if isinstance(caveats, list) else [None]
    well_formed = all(isinstance(c, dict) and isinstance(c.get("text"), str) for c in items)
    if not well_formed:
        raise ReportError(f"{where}: caveats is not a list of {{kind, text}} objects")
    return tuple(_text(c["text"]) for c in caveats)


def band_from_rule(label_rule: str) -> float | None:
    """The lower threshold a label rule states (``"..., REAL under 0.301 (...), UNCERTAIN between"``),
    or ``None`` (one cut, or no rule)."""
    if "UNCERTAIN" not in label_rule:
        return None
    match = _REAL_UNDER.search(label_rule)
    value = float(match.group(1)) if match else None
    return value if value is not None and 0.0 <= value <= 1.0 else None


def _csv_rows(path: Path, required: Sequence[str], what: str) -> Iterable[tuple[int, dict[str, str]]]:
    """``(line, cells)`` of the complete rows of a CSV written by the scanner, cells unescaped.
    A torn last row (a run killed mid-write, or one still writing) is skipped."""
    with open(path, newline="", encoding="utf-8", errors="surrogateescape") as f:
        reader = csv.DictReader(f)
        header = reader.fieldnames or []
        missing = [c for c in required if c not in header]
        if missing and any(_binary(name) for name in header):  # a clip or an image, not a CSV
            raise ReportError(f"{path} is not {what}: not text")
        if missing:
            shown = ", ".join(repr(_text(name)[:40]) for name in header[:8]) or "nothing"
            raise ReportError(f"{path} is not {what}: no column {', '.join(missing)} (has {shown})")
        for row in reader:
            if None in row or None in row.values():
                log.warning("%s: skipping an incomplete row at line %d", path, reader.line_num)
                continue
            yield reader.line_num, {k: unescape_cell(v) for k, v in row.items()}


def _binary(text: str) -> bool:
    """Whether a header cell read with ``surrogateescape`` holds a NUL or bytes that are not
    UTF-8: the file is binary (a clip, an image), not a CSV."""
    return any(c == "\x00" or "\udc80" <= c <= "\udcff" for c in text)


def read_scores(path: str | Path) -> list[ClipRecord]:
    """The clips of a scores file: the scanner's CSV, or JSON Lines (``.jsonl``/``.ndjson``: one
    object per clip with the same fields), in file order. Raises :class:`ReportError` for a
    missing file, an unknown extension, a file without ``video_path``/``status``, or a bad cell."""
    path = Path(path)
    kind = SCORES_FORMATS.get(path.suffix.lower())
    if kind is None:
        raise ReportError(f"{path}: a scores file ends in one of {sorted(SCORES_FORMATS)}, got {path.suffix!r}")
    if not path.is_file():
        raise ReportError(f"scores file {path} not found")
    try:
        if kind == "csv":
            return [
                _record(cells, f"{path}:{line}") for line, cells in _csv_rows(path, REQUIRED_COLUMNS, "a scores CSV")
            ]
        return _read_jsonl(path)
    except UnicodeDecodeError as exc:
        raise ReportError(f"{path} is not a scores file (not UTF-8 text: {exc.reason})") from None
    except csv.Error as exc:
        raise ReportError(f"{path} is not a scores file ({exc})") from None
    except OSError as exc:
        raise ReportError(f"cannot read {path}: {exc.strerror or exc}") from None


def _jsonl_objects(path: Path) -> Iterable[tuple[int, dict]]:
    """``(line, object)`` of each clip of a JSON Lines file; a torn last line is skipped."""
    lines = path.read_bytes().decode("utf-8", "surrogateescape").split("\n")
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            fields = json.loads(line)
        except json.JSONDecodeError as exc:
            if not any(rest.strip() for rest in lines[number:]):  # a torn last line: skip it
                log.warning("%s: skipping an incomplete last line %d", path, number)
                continue
            raise ReportError(f"{path}:{number} is not JSON ({exc.msg}); not a JSON Lines scores file") from None
        if not isinstance(fields, dict) or any(c not in fields for c in REQUIRED_COLUMNS):
            raise ReportError(f"{path}:{number} is not a clip row: needs an object with {', '.join(REQUIRED_COLUMNS)}")
        yield number, fields


def _read_jsonl(path: Path) -> list[ClipRecord]:
    return [_record(fields, f"{path}:{number}") for number, fields in _jsonl_objects(path)]


def read_nested_face_series(path: str | Path, wanted: set[str]) -> dict[str, dict[int, list[tuple[float, float]]]]:
    """As :func:`read_face_series`, from the ``faces`` list a JSON Lines scores file nests in each
    clip's object (``score -o scores.jsonl`` with faces nested); empty when it nests none."""
    path = Path(path)
    series: dict[str, dict[int, list[tuple[float, float]]]] = {}
    for number, fields in _jsonl_objects(path):
        video_path = _text(fields["video_path"])
        faces = fields.get("faces")
        if video_path not in wanted or not isinstance(faces, list):
            continue
        for face in faces:
            if not isinstance(face, dict):
                raise ReportError(f"{path}:{number}: a face is not an object")
            where = f"{path}:{number} faces"
            track_id = _count(face.get("track_id"), "track_id", where)
            timestamp_s = _number(face.get("timestamp_s"), "timestamp_s", where)
            p_fake = _number(face.get("p_fake"), "p_fake", where)
            if track_id is not None and timestamp_s is not None and p_fake is not None:
                series.setdefault(video_path, {}).setdefault(track_id, []).append((timestamp_s, p_fake))
    for tracks in series.values():
        for points in tracks.values():
            points.sort()
    return series


def worst_first(records: Iterable[ClipRecord]) -> list[ClipRecord]:
    """Scored clips by ``p_fake`` descending, then the clips without a score by status (in
    :data:`~pipeline.scan.records.STATUSES` order) and path. Ties keep file order."""
    order = {status: i for i, status in enumerate(STATUSES)}

    def key(record: ClipRecord):
        if record.p_fake is not None:
            return (0, -record.p_fake, 0, "")
        return (1, 0.0, order.get(record.status, len(order)), record.video_path)

    return sorted(records, key=key)


def read_face_series(path: str | Path, wanted: set[str]) -> dict[str, dict[int, list[tuple[float, float]]]]:
    """Per clip of ``wanted``, per track: ``(timestamp_s, p_fake)`` of each scored face, in time
    order, from the scanner's ``--faces-csv``. Raises :class:`ReportError` for a missing file or
    one without the face columns."""
    path = Path(path)
    if not path.is_file():
        raise ReportError(f"faces CSV {path} not found")
    series: dict[str, dict[int, list[tuple[float, float]]]] = {}
    try:
        for line, cells in _csv_rows(path, FACE_COLUMNS, "a faces CSV"):
            if cells["video_path"] not in wanted:
                continue
            where = f"{path}:{line}"
            track_id = _count(cells["track_id"], "track_id", where)
            timestamp_s = _number(cells["timestamp_s"], "timestamp_s", where)
            p_fake = _number(cells["p_fake"], "p_fake", where)
            if track_id is None or timestamp_s is None or p_fake is None:
                continue
            series.setdefault(cells["video_path"], {}).setdefault(track_id, []).append((timestamp_s, p_fake))
    except (UnicodeDecodeError, csv.Error) as exc:
        raise ReportError(f"{path} is not a faces CSV ({exc})") from None
    except OSError as exc:
        raise ReportError(f"cannot read {path}: {exc.strerror or exc}") from None
    for tracks in series.values():
        for points in tracks.values():
            points.sort()
    return series


def read_evidence_index(evidence_dir: str | Path) -> dict[str, list[EvidenceImage]]:
    """The images of each clip, from ``evidence_dir/evidence.csv`` (never from file names).
    Raises :class:`ReportError` when the folder or its index is missing or malformed."""
    evidence_dir = Path(evidence_dir)
    index = evidence_dir / EVIDENCE_INDEX
    if not evidence_dir.is_dir():
        raise ReportError(f"evidence folder {evidence_dir} not found")
    if not index.is_file():
        raise ReportError(f"evidence folder {evidence_dir} has no {EVIDENCE_INDEX}")
    by_clip: dict[str, list[EvidenceImage]] = {}
    try:
        for line, cells in _csv_rows(index, EVIDENCE_COLUMNS, "an evidence index"):
            where = f"{index}:{line}"
            if cells["kind"] not in EVIDENCE_KINDS:
                raise ReportError(f"{where}: kind {cells['kind']!r} is not one of {EVIDENCE_KINDS}")
            image = EvidenceImage(
                video_path=cells["video_path"],
                file=cells["file"],
                kind=cells["kind"],
                track_id=_count(cells["track_id"], "track_id", where),
                timestamp_s=_number(cells["timestamp_s"], "timestamp_s", where),
                p_fake=_number(cells["p_fake"], "p_fake", where),
            )
            by_clip.setdefault(image.video_path, []).append(image)
    except (UnicodeDecodeError, csv.Error) as exc:
        raise ReportError(f"{index} is not an evidence index ({exc})") from None
    except OSError as exc:
        raise ReportError(f"cannot read {index}: {exc.strerror or exc}") from None
    return by_clip


# --- deciding ----------------------------------------------------------------------------------


def resolve_threshold(records: Sequence[ClipRecord], flag: float | None = None) -> tuple[float, list[str]]:
    """The threshold the histogram marks, and notes for the page.

    The rows' own when they record one; when they differ, the most common, with a note listing
    each; when they record none (CSVs made before the column), ``flag``, else 0.5, with a note.
    """
    counts = collections.Counter(round(r.threshold, 6) for r in records if r.threshold is not None)
    notes = []
    if not counts:
        if flag is not None:
            return flag, [f"This file records no threshold; --threshold {flag:g} is used."]
        return DEFAULT_THRESHOLD, [
            f"This file records no threshold; {DEFAULT_THRESHOLD:g} is assumed (pass --threshold to choose)."
        ]
    threshold = counts.most_common(1)[0][0]
    if len(counts) > 1:
        listed = ", ".join(f"{t:g} ({n:,} clips)" for t, n in counts.most_common())
        notes.append(
            f"Rows differ in threshold: {listed}. The histogram marks {threshold:g}, the most common; "
            "each clip's label is as its row records it."
        )
    unrecorded = sum(1 for r in records if r.threshold is None)
    if unrecorded:
        notes.append(f"{unrecorded:,} rows record no threshold.")
    if flag is not None and abs(flag - threshold) > 1e-9:
        notes.append(f"--threshold {flag:g} is not used: the rows record their own.")
    return threshold, notes


def resolve_band(records: Sequence[ClipRecord], threshold: float) -> tuple[float | None, list[str]]:
    """The lower threshold of the UNCERTAIN band the histogram marks (``None``: the rows have no
    band, one cut), and notes for the page: the most common of the rows', with a note when they
    differ or when some rows record a rule without a band. A band above ``threshold`` (rows mixed
    from two runs) is not drawn."""
    counts = collections.Counter(round(r.uncertain_below, 6) for r in records if r.uncertain_below is not None)
    if not counts:
        return None, []
    notes = []
    band = counts.most_common(1)[0][0]
    if len(counts) > 1:
        listed = ", ".join(f"{b:g} ({n:,} clips)" for b, n in counts.most_common())
        notes.append(
            f"Rows differ in the lower threshold (REAL under): {listed}. The histogram marks {band:g}, the most "
            "common; each clip's label is as its row records it."
        )
    one_cut = sum(1 for r in records if r.uncertain_below is None and r.label_rule)
    if one_cut:
        notes.append(f"{one_cut:,} rows were labelled with one cut (FAKE or REAL, no UNCERTAIN band).")
    if band > threshold + 1e-9:
        notes.append(f"The lower threshold {band:g} is above the threshold {threshold:g}: no band is drawn.")
        return None, notes
    return band, notes


@dataclasses.dataclass(frozen=True)
class _Embedded:
    image: EvidenceImage
    data_uri: str


@dataclasses.dataclass
class _EvidencePlan:
    """The images chosen for each flagged clip, and what was left out and why."""

    images: dict[str, list[_Embedded]] = dataclasses.field(default_factory=dict)
    left_out: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    left_out_by_clip: dict[str, collections.Counter] = dataclasses.field(default_factory=dict)
    embedded_bytes: int = 0


def _evidence_order(images: Sequence[EvidenceImage]) -> list[EvidenceImage]:
    """The boxed frame(s) first, then crops, each by ``p_fake`` descending."""
    return sorted(images, key=lambda i: (i.kind != "frame", -(i.p_fake if i.p_fake is not None else -1.0)))


def _jpeg_size(path: Path) -> int | str:
    """The file's size in bytes, or why it cannot be embedded."""
    try:
        with open(path, "rb") as f:
            if f.read(len(_JPEG_MAGIC)) != _JPEG_MAGIC:
                return "not a JPEG"
            return os.fstat(f.fileno()).st_size
    except OSError:
        return "missing"


def plan_evidence(
    clips: Sequence[ClipRecord],
    index: Mapping[str, Sequence[EvidenceImage]],
    evidence_dir: Path,
    images_per_clip: int,
    budget_bytes: int,
) -> _EvidencePlan:
    """Read and encode the images of ``clips`` (worst first), at most ``images_per_clip`` per clip
    and ``budget_bytes`` of JPEG in all. The budget goes first to the first
    :data:`FIRST_ROUND_IMAGES` images of every clip (the boxed frame and the worst crop), worst
    clip first, and only then to further crops, so a tight budget still shows every flagged clip.
    Files outside the folder, missing, or not JPEG are left out with a reason; so is everything
    past a limit."""
    plan = _EvidencePlan()
    root = evidence_dir.resolve()
    candidates = []  # (round, clip order, image order, image, path, size)
    for c, clip in enumerate(clips):
        left = plan.left_out_by_clip.setdefault(clip.video_path, collections.Counter())
        plan.images.setdefault(clip.video_path, [])
        usable = 0
        for image in _evidence_order(index.get(clip.video_path, ())):
            path = (evidence_dir / image.file).resolve()
            if Path(image.file).is_absolute() or not path.is_relative_to(root):
                left["outside the evidence folder"] += 1
                continue
            size = _jpeg_size(path)
            if isinstance(size, str):
                left[size] += 1
                continue
            if usable >= images_per_clip:
                left["over the per-clip limit"] += 1
                continue
            candidates.append((usable >= FIRST_ROUND_IMAGES, c, usable, image, path, size))
            usable += 1
    chosen = []
    for candidate in sorted(candidates, key=lambda item: item[:3]):
        _, _, _, image, path, size = candidate
        if plan.embedded_bytes + size > budget_bytes:
            plan.left_out_by_clip[image.video_path]["over the size budget"] += 1
            continue
        plan.embedded_bytes += size
        chosen.append(candidate)
    for _, _, _, image, path, size in sorted(chosen, key=lambda item: item[1:3]):
        try:
            data = path.read_bytes()
        except OSError:  # gone since it was looked at
            plan.left_out_by_clip[image.video_path]["missing"] += 1
            plan.embedded_bytes -= size
            continue
        plan.images[image.video_path].append(
            _Embedded(image, "data:image/jpeg;base64," + base64.b64encode(data).decode("ascii"))
        )
    for left in plan.left_out_by_clip.values():
        plan.left_out.update(left)
    return plan


# --- drawing -----------------------------------------------------------------------------------


def _fmt(value: float | None, digits: int = 3) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def histogram_svg(
    p_fakes: Sequence[float], threshold: float, bins: int = HISTOGRAM_BINS, uncertain_below: float | None = None
) -> str:
    """An inline SVG histogram of ``p_fakes`` (in [0, 1]) in ``bins`` equal bins, bars at or
    above ``threshold`` in the fake colour, and the threshold as a dashed line. With
    ``uncertain_below`` (a band), bars from it up to ``threshold`` in the uncertain colour, the
    lower threshold a second dashed line, and the two lines labelled "FAKE at" and "REAL under"
    (a bar takes the colour of its lower edge)."""
    counts = [0] * bins
    for p in p_fakes:
        counts[min(int(p * bins), bins - 1)] += 1
    width, height, left, right, top, bottom = 640, 220, 44, 12, 14, 40
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = max(counts) or 1
    rule = f"threshold {threshold:g}"
    if uncertain_below is not None:
        rule = f"FAKE at {threshold:g}, REAL under {uncertain_below:g}, UNCERTAIN between"
    parts = [
        f'<svg class="chart-svg histogram" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="histogram of p_fake over {len(p_fakes)} scored clips; {rule}">',
        f'<line class="axis" x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}"/>',
        f'<line class="grid" x1="{left}" y1="{top}" x2="{left + plot_w}" y2="{top}"/>',
        f'<text class="tick" x="{left - 6}" y="{top + 4}" text-anchor="end">{peak}</text>',
        f'<text class="tick" x="{left - 6}" y="{top + plot_h + 4}" text-anchor="end">0</text>',
    ]
    bar_w = plot_w / bins
    for i, n in enumerate(counts):
        lo = i / bins
        h = plot_h * n / peak
        if lo >= threshold - 1e-9:
            cls = "bar fake"
        elif uncertain_below is not None and lo >= uncertain_below - 1e-9:
            cls = "bar uncertain"
        else:
            cls = "bar real"
        parts.append(
            f'<rect class="{cls}" x="{left + i * bar_w + 1:.1f}" y="{top + plot_h - h:.1f}" '
            f'width="{bar_w - 2:.1f}" height="{h:.1f}"><title>{lo:.2f}-{lo + 1 / bins:.2f}: {n} clips</title></rect>'
        )
    for tick in (0.0, 0.25, 0.5, 0.75, 1.0):
        x = left + tick * plot_w
        parts.append(f'<text class="tick" x="{x:.1f}" y="{top + plot_h + 16}" text-anchor="middle">{tick:g}</text>')
    parts.append(
        f'<text class="axis-title" x="{left + plot_w / 2:.1f}" y="{height - 4}" text-anchor="middle">'
        "p_fake (1 = fake)</text>"
    )
    x = left + threshold * plot_w
    parts.append(f'<line class="threshold" x1="{x:.1f}" y1="{top - 4}" x2="{x:.1f}" y2="{top + plot_h}"/>')
    anchor = "end" if threshold > 0.8 else "start"
    offset = -4 if anchor == "end" else 4
    upper = f"threshold {threshold:g}" if uncertain_below is None else f"FAKE at {threshold:g}"
    parts.append(
        f'<text class="threshold-label" x="{x + offset:.1f}" y="{top + 8}" text-anchor="{anchor}">{upper}</text>'
    )
    if uncertain_below is not None:
        # the lower line's label one row down and, room allowing, to its left: clear of the upper one
        x = left + uncertain_below * plot_w
        parts.append(
            f'<line class="threshold threshold-low" x1="{x:.1f}" y1="{top - 4}" x2="{x:.1f}" y2="{top + plot_h}"/>'
        )
        anchor = "start" if uncertain_below < 0.2 else "end"
        offset = -4 if anchor == "end" else 4
        parts.append(
            f'<text class="threshold-label low" x="{x + offset:.1f}" y="{top + 22}" text-anchor="{anchor}">'
            f"REAL under {uncertain_below:g}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def series_svg(tracks: Mapping[int, Sequence[tuple[float, float]]], threshold: float) -> str:
    """An inline SVG of ``p_fake`` over time, one line and dots per track (``track_id`` ->
    ``(timestamp_s, p_fake)`` points), the threshold dashed, the fake zone shaded."""
    width, height, left, right, top, bottom = 560, 190, 40, 12, 10, 36
    plot_w, plot_h = width - left - right, height - top - bottom
    t_max = max((t for points in tracks.values() for t, _ in points), default=0.0) or 1.0

    def xy(t: float, p: float) -> tuple[float, float]:
        return left + plot_w * t / t_max, top + plot_h * (1.0 - p)

    y_thr = xy(0, threshold)[1]
    parts = [
        f'<svg class="chart-svg series" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="p_fake over time, {len(tracks)} people">',
        f'<rect class="zone-fake" x="{left}" y="{top}" width="{plot_w}" height="{y_thr - top:.1f}"/>',
        f'<line class="axis" x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}"/>',
        f'<line class="axis" x1="{left}" y1="{top}" x2="{left}" y2="{top + plot_h}"/>',
    ]
    for p in (0.0, 0.5, 1.0):
        parts.append(f'<text class="tick" x="{left - 5}" y="{xy(0, p)[1] + 4:.1f}" text-anchor="end">{p:g}</text>')
    for t in (0.0, t_max / 2, t_max):
        parts.append(
            f'<text class="tick" x="{xy(t, 0)[0]:.1f}" y="{top + plot_h + 15}" text-anchor="middle">{t:.1f}</text>'
        )
    parts.append(
        f'<text class="axis-title" x="{left + plot_w / 2:.1f}" y="{height - 3}" text-anchor="middle">time (s)</text>'
    )
    parts.append(f'<line class="threshold" x1="{left}" y1="{y_thr:.1f}" x2="{left + plot_w}" y2="{y_thr:.1f}"/>')
    for i, (track_id, points) in enumerate(tracks.items()):
        coords = [xy(t, p) for t, p in points]
        cls = f"s{i % MAX_TRACKS_PER_CHART}"
        if len(coords) > 1:
            line = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
            parts.append(f'<polyline class="series-line {cls}" points="{line}"/>')
        for (t, p), (x, y) in zip(points, coords):
            parts.append(
                f'<circle class="series-dot {cls}" cx="{x:.1f}" cy="{y:.1f}" r="3">'
                f"<title>person {track_id}: {p:.3f} at {t:.1f} s</title></circle>"
            )
    parts.append("</svg>")
    return "".join(parts)


def _top_tracks(tracks: Mapping[int, Sequence[tuple[float, float]]]) -> dict[int, Sequence[tuple[float, float]]]:
    """The most suspicious tracks (by mean ``p_fake``), at most :data:`MAX_TRACKS_PER_CHART`."""
    ranked = sorted(tracks.items(), key=lambda item: -sum(p for _, p in item[1]) / len(item[1]))
    return dict(ranked[:MAX_TRACKS_PER_CHART])


# --- the page ----------------------------------------------------------------------------------


def _esc(text) -> str:
    return html.escape(str(text), quote=True)


def json_for_script(value) -> str:
    """JSON safe inside ``<script type="application/json">``: ``<``, ``>`` and ``&`` escaped as
    ``\\u003c`` etc., so no text in it can close the element or open a comment; U+2028/2029
    escaped too. ``JSON.parse`` reads it back unchanged."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    for char, escape in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("\u2028", "\\u2028")):
        text = text.replace(char, escape)
    return text.replace("\u2029", "\\u2029")


def _distinct(records: Sequence[ClipRecord], field: str) -> list[tuple[str, int]]:
    counts = collections.Counter(getattr(r, field) for r in records)
    return [(value, n) for value, n in counts.most_common() if value != ""]


def _provenance_html(
    records: Sequence[ClipRecord], threshold: float, scores_name: str, uncertain_below: float | None = None
) -> str:
    items = [("scores file", _esc(scores_name)), ("clips", f"{len(records):,}")]
    for field in ("model", "model_sha256", "aggregation", "label_rule", "scan_settings", "tool_version"):
        values = _distinct(records, field)
        if field == "label_rule" and not values:
            text = f'<span class="muted">not recorded:</span> {_rule_text(threshold, uncertain_below)}'
        elif not values:
            text = '<span class="muted">not recorded</span>'
        elif len(values) == 1:
            text = f"<code>{_esc(values[0][0])}</code>"
        else:
            shown = ", ".join(f"<code>{_esc(v)}</code> ({n:,})" for v, n in values[:5])
            more = f", and {len(values) - 5} more" if len(values) > 5 else ""
            text = f'<span class="differs">{len(values)} different:</span> {shown}{more}'
        items.append(("label rule" if field == "label_rule" else field, text))
        if field == "model_sha256":
            items.append(("threshold", _threshold_html(records, threshold, uncertain_below)))
    return "".join(f"<div><dt>{name}</dt><dd>{value}</dd></div>" for name, value in items)


def _rule_text(threshold: float, uncertain_below: float | None) -> str:
    """The rule the histogram draws, in words (HTML)."""
    if uncertain_below is None:
        return f"FAKE when p_fake &ge; {threshold:g}, else REAL"
    return f"FAKE when p_fake &ge; {threshold:g}, REAL under {uncertain_below:g}, UNCERTAIN between"


def _threshold_html(records: Sequence[ClipRecord], threshold: float, uncertain_below: float | None = None) -> str:
    counts = collections.Counter(f"{r.threshold:g}" for r in records if r.threshold is not None)
    if uncertain_below is None:
        text = f"<code>{threshold:g}</code> (FAKE when p_fake &ge; threshold)"
    else:
        text = (
            f"<code>{threshold:g}</code> and <code>{uncertain_below:g}</code> (FAKE when p_fake &ge; "
            f"{threshold:g}, REAL under {uncertain_below:g}, UNCERTAIN between)"
        )
    if len(counts) > 1:
        shown = ", ".join(f"<code>{_esc(t)}</code> ({n:,})" for t, n in counts.most_common())
        text = f'<span class="differs">{len(counts)} different:</span> {shown}; the histogram marks {text}'
    return text


def _counts_html(
    records: Sequence[ClipRecord], uncertain_below: float | None = None
) -> tuple[str, dict[str, int], dict[str, int]]:
    """The counts card and the counts by status and by label. The labels are those the rule can
    give (UNCERTAIN only with a band, ``uncertain_below``), then any other met (``(none)``: rows
    without a label)."""
    status_counts = collections.Counter(r.status for r in records)
    label_counts = collections.Counter(r.label or "(none)" for r in records)
    statuses = [s for s in STATUSES] + sorted(s for s in status_counts if s not in STATUSES)
    possible = labels_in_use(uncertain_below)
    labels = [
        *(lbl for lbl in LABELS if lbl in possible or label_counts.get(lbl)),
        *sorted(lbl for lbl in label_counts if lbl not in LABELS),
    ]
    status_dict = {s: status_counts.get(s, 0) for s in statuses}
    label_dict = {lbl: label_counts.get(lbl, 0) for lbl in labels}

    def block(kind: str, counts: dict[str, int]) -> str:
        cells = "".join(
            f'<div class="count {kind}-{_esc(name)}" data-count="{kind}:{_esc(name)}">'
            f"<dt>{_esc(name)}</dt><dd>{n:,}</dd></div>"
            for name, n in counts.items()
        )
        return f'<dl class="counts" id="counts-{kind}">{cells}</dl>'

    if "UNCERTAIN" in label_dict:
        meaning = (
            "label is FAKE, UNCERTAIN or REAL for scored (ok) clips: UNCERTAIN when p_fake is between the two "
            "thresholds, where the model cannot tell with the confidence it was validated for; the others have none."
        )
    else:
        meaning = "label is FAKE or REAL for scored (ok) clips; the others have none."
    body = (
        f"<h3>by status</h3>{block('status', status_dict)}<h3>by label</h3>{block('label', label_dict)}"
        f'<p class="hint">{_esc(meaning)}</p>'
    )
    return body, status_dict, label_dict


def _options_html(counts: Mapping[str, int]) -> str:
    return '<option value="">all</option>' + "".join(
        f'<option value="{_esc(name)}">{_esc(name)} ({n:,})</option>' for name, n in counts.items() if n
    )


def _evidence_html(
    clips: Sequence[tuple[int, ClipRecord]],
    n_flagged: int,
    plan: _EvidencePlan | None,
    series: Mapping[str, Mapping[int, Sequence[tuple[float, float]]]] | None,
    threshold: float,
    config: ReportConfig,
) -> str:
    parts = []
    summary = [f"{len(clips):,} of {n_flagged:,} FAKE clips shown here, worst first (at most {config.evidence_clips})."]
    if plan is not None:
        images = sum(len(v) for v in plan.images.values())
        summary.append(f"{images:,} images embedded ({plan.embedded_bytes / 1e6:.1f} MB of JPEG).")
        if plan.left_out:
            reasons = ", ".join(f"{n:,} {reason}" for reason, n in plan.left_out.most_common())
            summary.append(
                f"Left out: {reasons} (at most {config.images_per_clip} per clip, "
                f"{config.evidence_budget_bytes / 1e6:g} MB in all)."
            )
    else:
        summary.append("No evidence folder was given (--evidence-dir): no images.")
    if series is None:
        summary.append("No faces CSV was given (--faces-csv): no score over time.")
    parts.append(f'<p class="hint" id="evidence-summary">{_esc(" ".join(summary))}</p>')
    for rank, clip in clips:
        head = (
            f'<h3><span class="rank">#{rank}</span> <code class="path">{_esc(clip.video_path)}</code> '
            f'<span class="tag tag-fake">{_fmt(clip.p_fake)} FAKE</span> <a class="back" href="#clips">table</a></h3>'
        )
        body = []
        if plan is not None:
            chosen = plan.images.get(clip.video_path, [])
            figures = []
            for embedded in chosen:
                image = embedded.image
                what = "boxed frame" if image.kind == "frame" else f"face of person {image.track_id} with saliency"
                when = f" at {image.timestamp_s:.1f} s" if image.timestamp_s is not None else ""
                score = f", p_fake {image.p_fake:.3f}" if image.p_fake is not None else ""
                caption = f"{what}{when}{score}"
                # lazy: decoding every data: image while parsing held the first table render back
                # (1,000 clips with 250 images: about 500 ms instead of about 120 ms, bench/report_size.py)
                figures.append(
                    f'<figure class="{_esc(image.kind)}"><img class="evidence-img" loading="lazy" decoding="async" '
                    f'src="{embedded.data_uri}" alt="{_esc(caption)}"><figcaption>{_esc(caption)}</figcaption></figure>'
                )
            if figures:
                body.append(f'<div class="evidence-images">{"".join(figures)}</div>')
            else:
                body.append('<p class="hint">No evidence images for this clip.</p>')
            left = plan.left_out_by_clip.get(clip.video_path)
            if left:
                reasons = ", ".join(f"{n} {reason}" for reason, n in left.most_common())
                body.append(f'<p class="hint left-out">Images left out: {_esc(reasons)}.</p>')
        tracks = (series or {}).get(clip.video_path)
        if tracks:
            shown = _top_tracks(tracks)
            legend = "".join(
                f'<li><span class="swatch s{i}"></span>person {track_id}: mean '
                f"{sum(p for _, p in pts) / len(pts):.3f}, max {max(p for _, p in pts):.3f}, {len(pts)} faces</li>"
                for i, (track_id, pts) in enumerate(shown.items())
            )
            more = f"<li>{len(tracks) - len(shown)} more people not drawn</li>" if len(tracks) > len(shown) else ""
            body.append(
                f'<div class="chart">{series_svg(shown, threshold)}<ul class="legend">{legend}{more}</ul></div>'
            )
        elif series is not None:
            body.append('<p class="hint">No per-face scores for this clip in the faces CSV.</p>')
        parts.append(f'<section class="card evidence" id="ev-{rank}">{head}{"".join(body)}</section>')
    return "".join(parts)


def _uncertain_html(clips: Sequence[tuple[int, ClipRecord]], uncertain_below: float | None, threshold: float) -> str:
    """The UNCERTAIN clips (``(rank, clip)``, worst first), listed apart from the flagged ones: at
    most :data:`UNCERTAIN_LISTED`, each with its rank in the table and its ``p_fake``."""
    if uncertain_below is not None:
        band = f"p_fake between {uncertain_below:g} and {threshold:g}"
    else:
        band = "p_fake between the two thresholds their rows record"
    listed = clips[:UNCERTAIN_LISTED]
    if not clips:
        summary = f"No clip is UNCERTAIN ({band})."
    else:
        more = ""
        if len(listed) < len(clips):
            more = f" (at most {UNCERTAIN_LISTED}); choose label UNCERTAIN in the table for all"
        summary = (
            f"{len(clips):,} {'clip is' if len(clips) == 1 else 'clips are'} UNCERTAIN ({band}): the model cannot "
            "tell with the confidence it was validated for. They are not flagged as FAKE and have no evidence "
            "here: look at them yourself. "
            f"{len(listed):,} listed, worst first{more}."
        )
    items = "".join(
        f'<li><span class="rank">#{rank}</span> <code class="path">{_esc(clip.video_path)}</code> '
        f'<span class="tag tag-uncertain">{_fmt(clip.p_fake)} UNCERTAIN</span></li>'
        for rank, clip in listed
    )
    listing = f'<ol class="uncertain-list">{items}</ol>' if items else ""
    return (
        '<section class="card" id="uncertain"><h2>Uncertain clips</h2>'
        f'<p class="hint" id="uncertain-summary">{_esc(summary)}</p>{listing}</section>'
    )


def _table_rows(ranked: Sequence[ClipRecord], with_evidence: set[int]) -> list[list]:
    rows = []
    for rank, r in enumerate(ranked, 1):
        rows.append(
            [
                rank,
                r.video_path,
                r.status,
                None if r.p_fake is None else round(r.p_fake, 4),
                r.label,
                r.n_faces,
                r.n_tracks,
                r.seen_text,
                None if r.duration_s is None else round(r.duration_s, 2),
                r.error,
                " ".join(r.note_sentences),
                rank if rank in with_evidence else None,
            ]
        )
    return rows


def _csp_hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii") + "'"


def render_report(
    records: Sequence[ClipRecord],
    config: ReportConfig,
    evidence_index: Mapping[str, Sequence[EvidenceImage]] | None = None,
    series: Mapping[str, Mapping[int, Sequence[tuple[float, float]]]] | None = None,
) -> tuple[str, ReportSummary]:
    """The page (text) and its summary. ``evidence_index`` (from :func:`read_evidence_index`) and
    ``series`` (from :func:`read_face_series`) are optional; without them the flagged clips show
    what there is. ``summary.size_bytes`` is the page's UTF-8 size."""
    ranked = worst_first(records)
    threshold, notes = resolve_threshold(records, config.threshold)
    uncertain_below, band_notes = resolve_band(records, threshold)
    notes += band_notes
    flagged = [(rank, r) for rank, r in enumerate(ranked, 1) if r.label == "FAKE"]
    uncertain = [(rank, r) for rank, r in enumerate(ranked, 1) if r.label == "UNCERTAIN"]
    shown = flagged[: config.evidence_clips]
    plan = None
    if evidence_index is not None and config.evidence_dir is not None:
        plan = plan_evidence(
            [r for _, r in shown],
            evidence_index,
            config.evidence_dir,
            config.images_per_clip,
            config.evidence_budget_bytes,
        )
    counts_body, status_counts, label_counts = _counts_html(records, uncertain_below)
    p_fakes = [r.p_fake for r in records if r.p_fake is not None]
    data = {
        "columns": [{"key": k, "title": t, "type": ty} for k, t, ty in TABLE_COLUMNS],
        "page_size": config.page_size,
        "rows": _table_rows(ranked, {rank for rank, _ in shown}),
    }
    notes_html = "".join(f'<p class="note">{_esc(n)}</p>' for n in notes)
    headers = "".join(
        f'<th data-col="{i}" data-type="{ty}" scope="col" tabindex="0">{_esc(title)}<span class="arrow"></span></th>'
        for i, (_, title, ty) in enumerate(TABLE_COLUMNS)
    )
    if shown or flagged:
        evidence = _evidence_html(shown, len(flagged), plan, series, threshold, config)
    else:
        evidence = '<p class="hint" id="evidence-summary">No clip is labelled FAKE: nothing flagged.</p>'
    uncertain_html = (
        _uncertain_html(uncertain, uncertain_below, threshold) if uncertain or uncertain_below is not None else ""
    )
    if uncertain_below is not None:
        histogram_hint = (
            f'<p class="hint" id="histogram-rule">Dashed lines: FAKE at p_fake &ge; {threshold:g}, '
            f"REAL under {uncertain_below:g}; the bars between are UNCERTAIN.</p>"
        )
    else:
        histogram_hint = ""
    generated = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    csp = (
        f"default-src 'none'; img-src data:; style-src {_csp_hash(_CSS)}; script-src {_csp_hash(_SCRIPT)}; "
        "base-uri 'none'; form-action 'none'"
    )
    page = f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{_esc(csp)}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Deepfake scan report: {len(records):,} clips</title>
<style>{_CSS}</style>
</head>
<body>
<header class="topbar"><span class="brand">Deepfake scan report</span>
<span class="topbar-facts">p_fake: 1 = fake, 0 = real &middot; generated {_esc(generated)}</span></header>
<main>
<section class="card" id="provenance"><h2>The run</h2><dl class="provenance">{
        _provenance_html(records, threshold, config.scores_path.name, uncertain_below)
    }</dl>{notes_html}</section>
<section class="card" id="counts"><h2>Counts</h2>{counts_body}</section>
<section class="card" id="histogram"><h2>p_fake of the {len(p_fakes):,} scored clips</h2>{
        histogram_svg(p_fakes, threshold, uncertain_below=uncertain_below)
    }{histogram_hint}</section>
<section class="card" id="clips"><h2>Clips, worst first</h2>
<div class="controls">
<label>filter <input id="filter" type="search" placeholder="path or error contains&hellip;" autocomplete="off"></label>
<label>status <select id="status-filter">{_options_html(status_counts)}</select></label>
<label>label <select id="label-filter">{_options_html(label_counts)}</select></label>
</div>
<table id="clip-table"><thead><tr>{headers}</tr></thead><tbody></tbody></table>
<div class="pager">
<button type="button" id="first">&laquo; first</button><button type="button" id="prev">&lsaquo; prev</button>
<span id="page-info"></span>
<button type="button" id="next">next &rsaquo;</button><button type="button" id="last">last &raquo;</button>
<span id="shown-info" class="muted"></span></div>
<p class="hint">Click a column title to sort (again to reverse); # restores worst first.</p>
</section>
<script type="application/json" id="report-data">{json_for_script(data)}</script>
<script>{_SCRIPT}</script>
<section id="evidence"><h2>Flagged clips: evidence</h2>{evidence}</section>
{uncertain_html}
</main>
</body>
</html>
"""
    summary = ReportSummary(
        output_path=config.output_path,
        n_clips=len(records),
        status_counts=status_counts,
        label_counts=label_counts,
        threshold=threshold,
        notes=tuple(notes),
        evidence_clips=len(shown),
        embedded_images=sum(len(v) for v in plan.images.values()) if plan else 0,
        embedded_bytes=plan.embedded_bytes if plan else 0,
        left_out=dict(plan.left_out) if plan else {},
        size_bytes=len(page.encode("utf-8", "backslashreplace")),
        uncertain_below=uncertain_below,
        ok_label_counts=dict(collections.Counter(r.label for r in records if r.status == "ok" and r.label)),
    )
    return page, summary


def write_report(config: ReportConfig) -> ReportSummary:
    """Read the inputs of ``config`` and write the page to ``config.output_path`` atomically.
    The score over time per person comes from ``config.faces_csv``, else from the faces a JSON
    Lines scores file nests. Raises :class:`ReportError` for bad input and :class:`OutputError` when the
    page cannot be written."""
    records = read_scores(config.scores_path)
    if not records:
        raise ReportError(f"{config.scores_path} holds no clip rows")
    flagged = [r.video_path for r in worst_first(records) if r.label == "FAKE"]
    shown = set(flagged[: config.evidence_clips])
    index = read_evidence_index(config.evidence_dir) if config.evidence_dir is not None else None
    series = None
    if config.faces_csv is not None:
        series = read_face_series(config.faces_csv, shown)
    elif SCORES_FORMATS[config.scores_path.suffix.lower()] == "jsonl":
        series = read_nested_face_series(config.scores_path, shown) or None
    page, summary = render_report(records, config, index, series)
    with writing(config.output_path), atomic_path(config.output_path) as tmp:
        tmp.write_text(page, encoding="utf-8", errors="backslashreplace")
    return summary


# --- assets (inline; hashed into the page's Content-Security-Policy) ----------------------------

_CSS = """
:root { --ink:#1d2433; --muted:#5d6677; --line:#dde2ea; --bg:#f3f5f8; --card:#fff; --accent:#2454c5;
  --fake:#b42318; --fake-soft:#fdeceb; --real:#0b7a4b; --real-soft:#e7f5ee;
  --uncertain:#7a5c00; --uncertain-soft:#fcf4d4; --warn:#a15c07; --warn-soft:#fdf3e4;
  font-family: system-ui, -apple-system, "Segoe UI", Roboto, Arial, sans-serif; color: var(--ink);
  background: var(--bg); line-height: 1.45; }
* { box-sizing: border-box; }
body { margin: 0; }
code { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 0.92em; word-break: break-all; }
h2 { font-size: 1.1rem; margin: 0 0 0.6rem; } h3 { font-size: 0.95rem; margin: 0.6rem 0 0.4rem; }
.topbar { display: flex; justify-content: space-between; flex-wrap: wrap; gap: 0.5rem; padding: 0.8rem 1.5rem;
  background: #172033; color: #b8c0cf; font-size: 0.85rem; }
.brand { color: #fff; font-weight: 700; font-size: 1.1rem; }
main { max-width: 1180px; margin: 0 auto; padding: 1.2rem 1rem 2rem; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 10px; padding: 1rem 1.3rem;
  margin-bottom: 1rem; }
.muted, .hint { color: var(--muted); } .hint { font-size: 0.9rem; margin: 0.4rem 0; }
.note { background: var(--warn-soft); color: var(--warn); border-radius: 6px; padding: 0.45rem 0.7rem;
  font-size: 0.92rem; }
.provenance { display: grid; grid-template-columns: repeat(auto-fill, minmax(260px, 1fr)); gap: 0.5rem 1.2rem;
  margin: 0; }
.provenance dt, .counts dt { color: var(--muted); font-size: 0.8rem; text-transform: uppercase;
  letter-spacing: 0.04em; }
.provenance dd { margin: 0.1rem 0 0; } .differs { color: var(--warn); font-weight: 600; }
.counts { display: flex; flex-wrap: wrap; gap: 0.6rem; margin: 0; }
.count { border: 1px solid var(--line); border-radius: 8px; padding: 0.35rem 0.8rem; min-width: 6.5rem; }
.count dd { margin: 0; font-size: 1.3rem; font-weight: 700; font-variant-numeric: tabular-nums; }
.label-FAKE dd { color: var(--fake); } .label-REAL dd { color: var(--real); }
.label-UNCERTAIN dd { color: var(--uncertain); }
.chart-svg { width: 100%; max-width: 680px; height: auto; display: block; }
.chart-svg .bar.real { fill: #8cc9ab; } .chart-svg .bar.fake { fill: #e58f86; }
.chart-svg .bar.uncertain { fill: #e6cf72; }
.chart-svg .zone-fake { fill: #fdf0ef; } .chart-svg .grid { stroke: #e8ebf0; }
.chart-svg .axis { stroke: #8a93a3; } .chart-svg .tick { font-size: 11px; fill: var(--muted); }
.chart-svg .axis-title { font-size: 12px; fill: var(--muted); }
.chart-svg .threshold { stroke: var(--fake); stroke-width: 1.5; stroke-dasharray: 6 4; }
.chart-svg .threshold-label { font-size: 11px; fill: var(--fake); }
.chart-svg .threshold-low { stroke: var(--real); } .chart-svg .threshold-label.low { fill: var(--real); }
.series-line { fill: none; stroke-width: 1.8; } .series-dot { stroke: #fff; stroke-width: 1; }
.s0 { stroke: #2454c5; fill: #2454c5; } .s1 { stroke: #b42318; fill: #b42318; }
.s2 { stroke: #0b7a4b; fill: #0b7a4b; } .s3 { stroke: #a15c07; fill: #a15c07; }
.s4 { stroke: #6b3fa0; fill: #6b3fa0; } .s5 { stroke: #0e7490; fill: #0e7490; }
.s6 { stroke: #be185d; fill: #be185d; } .s7 { stroke: #4b5563; fill: #4b5563; }
.series-line.s0, .series-line.s1, .series-line.s2, .series-line.s3, .series-line.s4, .series-line.s5,
.series-line.s6, .series-line.s7 { fill: none; }
.legend { list-style: none; padding: 0; margin: 0.3rem 0 0; font-size: 0.88rem; }
.swatch { display: inline-block; width: 0.8rem; height: 0.8rem; border-radius: 50%; margin-right: 0.4rem;
  vertical-align: -1px; }
.swatch.s0 { background: #2454c5; } .swatch.s1 { background: #b42318; } .swatch.s2 { background: #0b7a4b; }
.swatch.s3 { background: #a15c07; } .swatch.s4 { background: #6b3fa0; } .swatch.s5 { background: #0e7490; }
.swatch.s6 { background: #be185d; } .swatch.s7 { background: #4b5563; }
.controls { display: flex; flex-wrap: wrap; gap: 1rem; margin-bottom: 0.6rem; align-items: center; }
.controls input, .controls select { font: inherit; padding: 0.25rem 0.4rem; margin-left: 0.3rem; }
.controls input { width: 22rem; max-width: 100%; }
table { border-collapse: collapse; width: 100%; font-size: 0.88rem; }
th, td { text-align: left; padding: 0.3rem 0.45rem; border-bottom: 1px solid var(--line); vertical-align: top; }
th { cursor: pointer; user-select: none; white-space: nowrap; background: #f8fafc; }
th:hover { background: #eef3fd; } th .arrow { color: var(--accent); margin-left: 0.2rem; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.video_path { font-family: ui-monospace, Menlo, Consolas, monospace; word-break: break-all; white-space: pre-wrap;
  max-width: 30rem; }
td.error { color: var(--muted); max-width: 18rem; word-break: break-word; }
tr.FAKE td.label { color: var(--fake); font-weight: 700; } tr.REAL td.label { color: var(--real); }
tr.UNCERTAIN td.label { color: var(--uncertain); font-weight: 700; }
.pager { display: flex; gap: 0.5rem; align-items: center; margin-top: 0.6rem; flex-wrap: wrap; }
.pager button { font: inherit; padding: 0.25rem 0.7rem; border: 1px solid var(--accent); background: #fff;
  color: var(--accent); border-radius: 6px; cursor: pointer; }
.pager button:disabled { opacity: 0.45; cursor: default; }
.tag { display: inline-block; padding: 0 0.4rem; border-radius: 4px; font-weight: 700; font-size: 0.85rem; }
.tag-fake { background: var(--fake-soft); color: var(--fake); }
.tag-uncertain { background: var(--uncertain-soft); color: var(--uncertain); }
.uncertain-list { margin: 0.3rem 0 0; padding-left: 0; list-style: none; font-size: 0.9rem; }
.uncertain-list li { margin: 0.15rem 0; }
.rank { color: var(--muted); } .back { font-size: 0.8rem; font-weight: normal; margin-left: 0.4rem; }
.evidence-images { display: flex; flex-wrap: wrap; gap: 0.6rem; }
.evidence-images figure { margin: 0; max-width: 300px; }
.evidence-images img { display: block; height: 150px; width: auto; max-width: 300px; object-fit: contain;
  border-radius: 6px; border: 1px solid var(--line); }
.evidence-images figure.frame { max-width: 420px; }
.evidence-images figure.frame img { height: 236px; max-width: 420px; }
.evidence-images figcaption { font-size: 0.8rem; color: var(--muted); }
.evidence:target { outline: 3px solid #9db5ea; }
"""

_SCRIPT = """
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("report-data").textContent);
  var columns = data.columns, rows = data.rows, pageSize = data.page_size;
  var at = {};  // each column's index, by its key
  columns.forEach(function (c, i) { at[c.key] = i; });
  var PATH = at.video_path, STATUS = at.status, LABEL = at.label, ERROR = at.error, EVIDENCE = at.evidence;
  var LABEL_ROWS = { FAKE: true, UNCERTAIN: true, REAL: true };  // a row's class: its label (tr.FAKE ...)
  var haystack = rows.map(function (r) { return (r[PATH] + "\\n" + r[ERROR]).toLowerCase(); });
  var state = { col: 0, desc: false, text: "", status: "", label: "", page: 0 };
  var view = rows.map(function (_, i) { return i; });
  var tbody = document.querySelector("#clip-table tbody");
  var heads = document.querySelectorAll("#clip-table th");

  function compare(a, b) {
    var x = rows[a][state.col], y = rows[b][state.col];
    var xn = x === null || x === "", yn = y === null || y === "";
    if (xn || yn) { return xn === yn ? rows[a][0] - rows[b][0] : (xn ? 1 : -1); }  // empty cells last
    var c = columns[state.col].type === "num" ? x - y : (x < y ? -1 : x > y ? 1 : 0);
    if (c === 0) { return rows[a][0] - rows[b][0]; }
    return state.desc ? -c : c;
  }

  function rebuild() {
    var text = state.text;
    view = [];
    for (var i = 0; i < rows.length; i++) {
      var r = rows[i];
      if (state.status && r[STATUS] !== state.status) { continue; }
      if (state.label && (r[LABEL] || "(none)") !== state.label) { continue; }
      if (text && haystack[i].indexOf(text) < 0) { continue; }
      view.push(i);
    }
    view.sort(compare);
  }

  function cell(tr, value, cls) {
    var td = document.createElement("td");
    td.className = cls;
    td.textContent = value === null ? "" : String(value);
    tr.appendChild(td);
    return td;
  }

  function render() {
    var pages = Math.max(1, Math.ceil(view.length / pageSize));
    state.page = Math.min(state.page, pages - 1);
    var start = state.page * pageSize, end = Math.min(view.length, start + pageSize);
    var fragment = document.createDocumentFragment();
    for (var i = start; i < end; i++) {
      var r = rows[view[i]];
      var tr = document.createElement("tr");
      if (LABEL_ROWS.hasOwnProperty(r[LABEL])) { tr.className = r[LABEL]; }
      for (var c = 0; c < columns.length; c++) {
        var col = columns[c];
        if (c === EVIDENCE) {
          var td = cell(tr, null, "evidence");
          if (r[c] !== null) {
            var a = document.createElement("a");
            a.setAttribute("href", "#ev-" + Number(r[c]));
            a.textContent = "evidence";
            td.appendChild(a);
          }
        } else if (col.key === "p_fake") {
          cell(tr, r[c] === null ? null : r[c].toFixed(3), "num p_fake");
        } else {
          cell(tr, r[c], (col.type === "num" ? "num " : "") + col.key);
        }
      }
      fragment.appendChild(tr);
    }
    tbody.replaceChildren(fragment);
    document.getElementById("page-info").textContent = "page " + (state.page + 1) + " of " + pages;
    document.getElementById("shown-info").textContent = view.length
      ? "rows " + (start + 1) + "\\u2013" + end + " of " + view.length.toLocaleString("en") +
        (view.length < rows.length ? " (filtered from " + rows.length.toLocaleString("en") + ")" : "")
      : "no clip matches";
    document.getElementById("first").disabled = document.getElementById("prev").disabled = state.page === 0;
    document.getElementById("next").disabled = document.getElementById("last").disabled = state.page >= pages - 1;
    for (var h = 0; h < heads.length; h++) {
      var on = h === state.col;
      heads[h].setAttribute("aria-sort", on ? (state.desc ? "descending" : "ascending") : "none");
      heads[h].querySelector(".arrow").textContent = on ? (state.desc ? "\\u25bc" : "\\u25b2") : "";
    }
    if (window.reportFirstRenderMs === undefined) { window.reportFirstRenderMs = performance.now(); }
  }

  function update(resetPage) { if (resetPage) { state.page = 0; } rebuild(); render(); }

  function sortBy(col) {
    if (state.col === col) { state.desc = !state.desc; }
    else { state.col = col; state.desc = columns[col].type === "num" && col !== 0; }
    update(true);
  }
  Array.prototype.forEach.call(heads, function (th) {
    var col = Number(th.getAttribute("data-col"));
    th.addEventListener("click", function () { sortBy(col); });
    th.addEventListener("keydown", function (e) {
      if (e.key === "Enter" || e.key === " ") { e.preventDefault(); sortBy(col); }
    });
  });
  document.getElementById("filter").addEventListener("input", function (e) {
    state.text = e.target.value.toLowerCase(); update(true);
  });
  document.getElementById("status-filter").addEventListener("change", function (e) {
    state.status = e.target.value; update(true);
  });
  document.getElementById("label-filter").addEventListener("change", function (e) {
    state.label = e.target.value; update(true);
  });
  function go(page) { state.page = page; render(); }
  document.getElementById("first").addEventListener("click", function () { go(0); });
  document.getElementById("prev").addEventListener("click", function () { go(Math.max(0, state.page - 1)); });
  document.getElementById("next").addEventListener("click", function () { go(state.page + 1); });
  document.getElementById("last").addEventListener("click", function () {
    go(Math.max(0, Math.ceil(view.length / pageSize) - 1));
  });
  update(true);
})();
"""
