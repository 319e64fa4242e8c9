"""Output rows: one frozen dataclass per CSV, the header comes from its fields.

Each row type is built in one place: :meth:`FaceRow.from_face` for the scanner's faces, and
:func:`face_columns` for the columns every face row shares (the scanner's ``faces.csv``, the
dataset builder's manifest), so a face is rounded the same way wherever it is written. The
clip row (:class:`VideoRow`) of a scored clip or image is built by
:func:`pipeline.scan.analyze.verdict_row`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

STATUSES = ("ok", "partial", "no_face", "decode_error", "timeout", "error")
# Statuses whose rows carry a verdict (p_fake and label): ``partial`` only when faces were seen in what was decoded.
VERDICT_STATUSES = ("ok", "partial")
LABELS = ("FAKE", "UNCERTAIN", "REAL")


def json_value(value):
    """A field's value in JSON: floats rounded to 6 decimals (NaN and infinities as ``null``),
    tuples as lists; everything else as it is."""
    if isinstance(value, float):
        return round(value, 6) if math.isfinite(value) else None
    if isinstance(value, tuple):
        return [json_value(v) for v in value]
    return value


class CsvRow:
    """Mixin for the frozen dataclasses that are the package's output records; each writes
    itself to every format, under its field names: a CSV row (the header is :meth:`columns`,
    the cells its fields in that order), a JSON object (:meth:`to_json`, JSON Lines and the web API)."""

    if TYPE_CHECKING:  # what @dataclasses.dataclass gives every subclass
        __dataclass_fields__: ClassVar[dict[str, dataclasses.Field[Any]]]

    @classmethod
    def columns(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    def to_json(self, *, without: Sequence[str] = ()) -> dict:
        """Every field by name but those in ``without``, JSON-ready (:func:`json_value`)."""
        return {name: json_value(getattr(self, name)) for name in self.columns() if name not in without}


@dataclasses.dataclass(frozen=True)
class VideoRow(CsvRow):
    """One clip's verdict. ``p_fake`` (1 = fake) and ``label`` are set when ``status`` is ok, and
    when it is ``partial`` (the frames stopped short of the clip's end: a file cut short, a decoder
    stopped from outside; ``error`` says "decoded 1.0 s of 10.0 s" and why) and faces were seen.

    ``notes``: caveats of the verdict, codes of :data:`pipeline.scan.notes.NOTE_CODES` ``;``-separated
    (``little_face_evidence``: the label is then UNCERTAIN; ``outside_validated_range``);
    ``frames_sampled``: sampled frames looked at (the same as ``n_frames``); ``frames_with_faces``:
    how many of them had a face that was scored; ``deinterlaced``: interlaced video, deinterlaced
    before detection (False: progressive, or no deinterlacer in this ffmpeg). ``quality_face_px``,
    ``quality_brightness``, ``quality_noise_sigma``, ``quality_sharpness``, ``quality_blockiness``: the
    picture quality of the faces scored, medians (:class:`pipeline.faces.quality.FaceQuality`: source
    pixels, luma grey levels, Laplacian variance, block-edge ratio); ``quality_outside``: the measures
    outside the range the model was validated on, ``;``-separated (note ``outside_validated_range``).

    ``n_frames``: sampled frames decoded; ``n_faces``: faces scored; ``max_face_p_fake``: the
    highest ``p_fake`` of one face, at ``most_suspicious_timestamp_s`` (seconds into the clip);
    ``n_faces_over_threshold``: faces at or above ``threshold`` (these three only when ok);
    ``file_sha256``: the sha256 of the file's bytes (empty when it could not be read);
    ``duration_s``/``fps``:
    from the container; ``width``/``height``: the displayed size (square pixels, upright),
    which is what faces were found in; ``stream_index``: the video stream scored (of several,
    the default one, else the largest); ``sample_aspect_ratio``: the stored pixels' shape
    ("2:1" anamorphic, "1:1" square); ``color_transfer``: ffmpeg's name of the transfer
    characteristic ("arib-std-b67" HLG, "smpte2084" PQ, "bt709", "" unstated);
    ``tone_mapped``: for HDR clips, whether frames were converted to SDR BT.709 (empty for
    SDR); ``duration_source``: where ``duration_s`` came from ("container", "stream_tag",
    "packets" when measured, "" unknown); ``covered_s``: seconds of the clip the samples
    span; ``reached_end``: whether sampling reached the clip's end (False: only the first
    ``covered_s`` seconds were looked at); ``rotation_guess_deg``: clockwise turn applied to
    frames of a clip with no rotation tag whose faces were upright only when turned (sideways or
    upside down)
    (empty when upright); ``label_rule``: how ``label`` was decided (under the learned clip
    decision, its two thresholds and the clips they were chosen on); ``uncertain_below``: with a
    band, the lower threshold (UNCERTAIN for ``uncertain_below <= p_fake < threshold``, REAL under
    it; empty: one cut at ``threshold``, FAKE or REAL); ``aggregation``, ``model``,
    ``model_sha256``, ``threshold``,
    ``scan_settings`` (sampling and detector settings), ``tool_version``: what made the row
    (:mod:`pipeline.scan.provenance`; a batch stamps every row); ``elapsed_s``: wall time spent
    on this clip; ``error``: why, when not ok. ``n_tracks``: people (tracks) seen;
    ``n_tracks_counted``: how many took part in the verdict (``--tracks-csv`` says why each
    did or did not); ``verdict_track_id``: under ``track_max``, the track whose score is the
    clip's ``p_fake``; ``n_cuts``: shot cuts found in the decoded part of the clip.
    """

    video_path: str
    status: str
    p_fake: float | None = None
    label: str = ""
    notes: str = ""
    n_frames: int = 0
    frames_sampled: int = 0
    frames_with_faces: int | None = None
    n_faces: int = 0
    n_tracks: int = 0
    n_tracks_counted: int | None = None
    verdict_track_id: int | None = None
    n_cuts: int | None = None
    max_face_p_fake: float | None = None
    most_suspicious_timestamp_s: float | None = None
    n_faces_over_threshold: int | None = None
    quality_face_px: float | None = None
    quality_brightness: float | None = None
    quality_noise_sigma: float | None = None
    quality_sharpness: float | None = None
    quality_blockiness: float | None = None
    quality_outside: str = ""
    duration_s: float | None = None
    fps: float | None = None
    width: int | None = None
    height: int | None = None
    rotation_deg: int | None = None
    sample_fps: float | None = None
    stream_index: int | None = None
    sample_aspect_ratio: str = ""
    color_transfer: str = ""
    tone_mapped: bool | None = None
    deinterlaced: bool | None = None
    duration_source: str = ""
    covered_s: float | None = None
    reached_end: bool | None = None
    rotation_guess_deg: int | None = None
    aggregation: str = ""
    label_rule: str = ""
    model: str = ""
    model_sha256: str = ""
    threshold: float | None = None
    uncertain_below: float | None = None
    scan_settings: str = ""
    tool_version: str = ""
    file_sha256: str = ""
    elapsed_s: float = 0.0
    error: str = ""

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, got {self.status!r}")
        if self.status == "ok" or (self.status == "partial" and self.p_fake is not None):
            if self.p_fake is None or not (0.0 <= self.p_fake <= 1.0) or math.isnan(self.p_fake):
                raise ValueError(f"an ok row needs p_fake in [0, 1], got {self.p_fake!r}")
            if self.label not in LABELS:
                raise ValueError(f"a row with a verdict ({self.status}) needs label in {LABELS}, got {self.label!r}")
        elif self.p_fake is not None or self.label:
            raise ValueError(f"a {self.status} row carries no p_fake or label, got {self.p_fake!r}, {self.label!r}")
        if self.status == "ok" and self.duration_s is not None and self.reached_end is False:
            raise ValueError("an ok row of a clip of known duration must have reached its end; else it is partial")
        if self.covered_s is not None and self.duration_s is not None and self.covered_s > self.duration_s + 1e-3:
            raise ValueError(f"covered_s {self.covered_s} exceeds duration_s {self.duration_s}: more than was decoded")


def face_columns(frame_index: int, timestamp_s: float, box_xyxy: Sequence[float], det_confidence: float) -> dict:
    """The columns every face row shares, rounded one way: ``frame_index``, ``timestamp_s``
    (seconds, 4 decimals), ``x1``, ``y1``, ``x2``, ``y2`` (full-resolution pixels, 0.1 px) and
    ``det_confidence`` (MTCNN's score in [0, 1], 5 decimals). Raises ``ValueError`` when
    ``box_xyxy`` does not hold four numbers."""
    if len(box_xyxy) != 4:
        raise ValueError(f"box_xyxy must hold 4 numbers (x1, y1, x2, y2), got {len(box_xyxy)}")
    x1, y1, x2, y2 = (round(v, 1) for v in box_xyxy)
    return dict(
        frame_index=frame_index,
        timestamp_s=round(timestamp_s, 4),
        x1=x1,
        y1=y1,
        x2=x2,
        y2=y2,
        det_confidence=round(det_confidence, 5),
    )


class ScoredFaceLike(Protocol):
    """What :meth:`FaceRow.from_face` reads (e.g. :class:`pipeline.scan.analyze.ScoredFace`), read-only."""

    @property
    def frame_index(self) -> int: ...
    @property
    def timestamp_s(self) -> float: ...
    @property
    def track_id(self) -> int: ...
    @property
    def box_xyxy(self) -> tuple[float, float, float, float]: ...
    @property
    def det_confidence(self) -> float: ...
    @property
    def p_fake(self) -> float: ...


@dataclasses.dataclass(frozen=True)
class FaceRow(CsvRow):
    """One scored face: where it is (full-resolution pixels, ``xyxy``), its ``p_fake``, and the picture
    quality of the crop the model scored (``face_px`` longer box side in source pixels, ``brightness``,
    ``noise_sigma``, ``sharpness``, ``blockiness``: :class:`pipeline.faces.quality.FaceQuality`; empty when
    not measured). Build it from a scored face with :meth:`from_face`."""

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
    face_px: float | None = None
    brightness: float | None = None
    noise_sigma: float | None = None
    sharpness: float | None = None
    blockiness: float | None = None

    def __post_init__(self) -> None:
        if not 0.0 <= self.p_fake <= 1.0:
            raise ValueError(f"p_fake must be in [0, 1], got {self.p_fake}")

    @classmethod
    def from_face(cls, video_path: str, face: ScoredFaceLike) -> FaceRow:
        """The row of one scored face of the clip ``video_path`` (columns rounded by
        :func:`face_columns`; ``p_fake`` as scored). Raises ``ValueError`` as the row does."""
        quality = getattr(face, "quality", None)
        measures = {} if quality is None else {k: round(v, 4) for k, v in dataclasses.asdict(quality).items()}
        return cls(
            video_path=video_path,
            track_id=face.track_id,
            p_fake=face.p_fake,
            **face_columns(face.frame_index, face.timestamp_s, face.box_xyxy, face.det_confidence),
            **measures,
        )


@dataclasses.dataclass(frozen=True)
class TrackRow(CsvRow):
    """One track (person) of a clip and its part in the verdict, for ``--tracks-csv``. Build it
    from a :class:`pipeline.scan.aggregate.TrackSummary` with :meth:`from_summary`.

    ``n_faces``; ``frames_with_faces``: sampled frames in which the person was seen, of the clip's
    ``frames_sampled``; ``first_timestamp_s``/``last_timestamp_s``: when the person was seen
    (seconds); ``median_face_px``: median longer side of the face box (source pixels);
    ``mean_p_fake``/``max_p_fake`` over the faces; ``counted``: whether it took part in the
    verdict; ``reason``: why or why not (``counted``, ``counted_small_faces``,
    ``counted_static_only``; ``too_few_faces``, ``static``); ``static``: a still picture;
    ``size_weight``: Meso-4's reliability at that face size (1 at 160 px and more);
    ``verdict_score``: the mean pulled toward the model's own threshold by ``1 - size_weight``, compared
    across counted tracks; ``sets_verdict``: this is the clip's ``verdict_track_id``.
    """

    video_path: str
    track_id: int
    n_faces: int
    frames_with_faces: int
    frames_sampled: int
    first_timestamp_s: float
    last_timestamp_s: float
    median_face_px: float
    mean_p_fake: float
    max_p_fake: float
    counted: bool
    reason: str
    static: bool = False
    size_weight: float = 1.0
    verdict_score: float | None = None
    sets_verdict: bool = False

    @classmethod
    def from_summary(cls, video_path: str, track, *, frames_sampled: int, sets_verdict: bool = False) -> TrackRow:
        """The row of one :class:`pipeline.scan.aggregate.TrackSummary` of a clip of ``frames_sampled``
        sampled frames: its fields by the same names (``p_fake`` values to 5 decimals)."""
        fields = {f.name: getattr(track, f.name) for f in dataclasses.fields(track)}
        for name in ("mean_p_fake", "max_p_fake", "verdict_score"):
            fields[name] = round(fields[name], 5)
        return cls(video_path=video_path, frames_sampled=frames_sampled, sets_verdict=sets_verdict, **fields)


def display_path(path) -> str:
    """The path as text that is always valid UTF-8: bytes that are not (a file name made on
    another system) are written as ``\\xNN`` escapes. This is the ``video_path`` of every row."""
    text = str(path)
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def label_for(p_fake: float, threshold: float, uncertain_below: float | None = None) -> str:
    """FAKE when ``p_fake >= threshold``; else UNCERTAIN when ``uncertain_below`` is given and
    ``p_fake >= uncertain_below``; else REAL."""
    if p_fake >= threshold:
        return "FAKE"
    if uncertain_below is not None and p_fake >= uncertain_below:
        return "UNCERTAIN"
    return "REAL"


def labels_in_use(uncertain_below: float | None) -> tuple[str, ...]:
    """The labels a rule can give: :data:`LABELS` with a band (``uncertain_below`` set), else
    FAKE and REAL (one cut)."""
    return LABELS if uncertain_below is not None else ("FAKE", "REAL")


def counts_text(status_counts: Mapping[str, int], label_counts: Mapping[str, int] | None = None) -> str:
    """Counts in one line: statuses in :data:`STATUSES` order (any other after), those with none
    left out, and after ``ok`` the labels of ``label_counts`` in :data:`LABELS` order, zeros
    kept (they say the rule could give that label): ``"ok 27 (FAKE 5, UNCERTAIN 6, REAL 16),
    no_face 2"``. Empty when nothing was counted."""
    statuses = [s for s in STATUSES if status_counts.get(s)]
    statuses += sorted(s for s in status_counts if s not in STATUSES and status_counts[s])
    counted = label_counts or {}
    labels = [lbl for lbl in LABELS if lbl in counted]
    labels += sorted(lbl for lbl in counted if lbl not in LABELS)
    parts = []
    for status in statuses:
        text = f"{status} {status_counts[status]}"
        if status == "ok" and labels:
            text += " (" + ", ".join(f"{lbl} {counted[lbl]}" for lbl in labels) + ")"
        parts.append(text)
    return ", ".join(parts)
