"""What the web app does with one upload: check what it is, score it, and shape the result.

Uploads are identified by content, never by name: images by Pillow (a fixed list of formats),
videos by the signature of a known container and then by ffmpeg itself (probe, then one decoded
frame). Only a file that starts like a video container, or that Pillow has read as an animated
GIF, WebP or APNG, is ever handed to ffmpeg: ffmpeg also reads playlists and concat scripts
(plain text that names other files or URLs), which an upload must never get to open.

An image with more than one frame is a clip (:mod:`pipeline.video.animated`): it is checked and
scored as a video (probe, duration cap, sampled frames), with one frame it is a still image.
The duration cap holds for clips whose container states no length (Matroska/WebM written to a
pipe, browser MediaRecorder, live captures): the probe measures them, and one whose length
cannot be measured is refused while a cap is set.

Scoring reuses the scanner: :func:`pipeline.scan.analyze.score_video_safe` for clips, and for images
the same detect -> crop -> score -> aggregate steps on a single frame (:func:`score_image`).

The evidence a job page shows is the batch's (:mod:`pipeline.scan.evidence`): saliency overlays of
the face thumbnails (Grad-CAM or occlusion, as the model's family takes, :mod:`pipeline.models.saliency`)
and the frame of the most suspicious face with every face in it boxed and scored (:func:`gather_evidence`,
while the upload is still on disk). :func:`build_result` turns it all into the JSON payload, with the
reasons to trust the verdict less said in words (``notes``) and the model described for people
(:func:`model_summary`).
"""

from __future__ import annotations

import dataclasses
import io
import logging
import time
from pathlib import Path

import numpy as np

from pipeline.errors import DecodeError, NoVideoStreamError, UploadRejected
from pipeline.faces.detector import Detector
from pipeline.faces.quality import QUALITY_MEASURES
from pipeline.models.factory import neutral_p_fake
from pipeline.models.scorer import Scorer
from pipeline.report.explain import (  # noqa: F401 (the web's names for them, used by the routes and tests)
    AGGREGATION_MEANINGS,
    P_FAKE_MEANING,
    SALIENCY_NAMES,
    _num,
    model_summary,
    reason_text,
    threshold_text,
    uncertain_below_of,
    uncertainty_notes,
    verdict_text,
)
from pipeline.scan.aggregate import (
    TrackSummary,
    verdict_track,
)
from pipeline.scan.analyze import (
    ScanConfig,
    ScoredFace,
    VideoResult,
    analyze_faces,
    score_video_safe,
    track_summaries,
    validated_range_of,
    verdict_row,
)
from pipeline.scan.notes import split_notes
from pipeline.scan.records import FaceRow, TrackRow, VideoRow
from pipeline.video.animated import is_animated
from pipeline.video.decode import (
    MAX_DECODE_LONG_SIDE_PX,
    Frame,
    expected_sample_count,
    iter_frames,
    sampling_fps,
)
from pipeline.video.probe import VideoInfo, probe_video
from pipeline.web.jobs import JobProgress

log = logging.getLogger(__name__)

# Pillow plugins tried, and only these: others (EPS runs Ghostscript, PDF, ...) never see an upload.
IMAGE_FORMATS = ("JPEG", "PNG", "WEBP", "BMP", "GIF", "TIFF")
# A 50 MP photo is 150 MB of RGB; beyond that an "image" is more likely a decompression bomb.
MAX_IMAGE_PIXELS = 50_000_000
# The boxed frame is sent to phones too: its long side is shrunk to this (1080p -> 1280x720),
# after the boxes are drawn, so their lines and labels shrink with it and stay in proportion.
FRAME_MAX_LONG_SIDE_PX = 1280
JPEG_QUALITY = 90
SNIFF_BYTES = 512
# How an animated image is named in messages and in the result ("container"), by Pillow format.
ANIMATED_CONTAINERS = {"GIF": "animated GIF", "WEBP": "animated WebP", "PNG": "animated PNG (APNG)"}


@dataclasses.dataclass(frozen=True)
class CheckedUpload:
    """An upload that passed the checks: ``kind`` is "image" or "video" (animated images are
    videos); ``container``: the image format or video container, as shown to people (e.g.
    "JPEG", "MP4/MOV", "animated GIF"); ``info`` for videos."""

    kind: str
    container: str
    info: VideoInfo | None = None


def sniff_video_container(head: bytes) -> str | None:
    """Name of the video container ``head`` (the file's first bytes) starts like, or ``None``."""
    if len(head) >= 8 and head[4:8] in (b"ftyp", b"moov", b"mdat", b"free", b"wide", b"skip", b"pnot"):
        return "MP4/MOV"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "Matroska/WebM"
    if head.startswith(b"RIFF") and head[8:12] in (b"AVI ", b"AVIX"):
        return "AVI"
    if head.startswith(b"FLV\x01"):
        return "FLV"
    if head.startswith(b"OggS"):
        return "Ogg"
    if head.startswith(bytes.fromhex("3026b2758e66cf11a6d900aa0062ce6c")):
        return "ASF/WMV"
    if head.startswith((b"\x00\x00\x01\xba", b"\x00\x00\x01\xb3")):
        return "MPEG"
    if len(head) > 376 and head[0] == 0x47 and head[188] == 0x47 and head[376] == 0x47:
        return "MPEG-TS"
    if len(head) > 388 and head[4] == 0x47 and head[196] == 0x47 and head[388] == 0x47:
        return "M2TS"
    return None


def check_upload(
    path: Path, config: ScanConfig, *, max_duration_s: float | None, probe_timeout_s: float = 30.0
) -> CheckedUpload:
    """Decide by content whether ``path`` is an image or a video the app can score.

    Raises :class:`UploadRejected`. Still images are fully decoded once here (a truncated JPEG
    fails now, not in the queue); videos and animated images (GIF, WebP, APNG with more than one
    frame) are probed and their first sampled frame decoded. ``max_duration_s`` (seconds, or
    ``None`` for no cap) refuses longer clips with 422, and, while set, clips whose length cannot
    be known (no duration in the container and none measurable from its packets).
    """
    with open(path, "rb") as f:
        head = f.read(SNIFF_BYTES)
    if not head:
        raise UploadRejected(422, "The file is empty (0 bytes).")
    sniffed = _sniff_image(path)
    container: str | None
    if sniffed is not None:
        image_format, animated = sniffed
        if not animated:
            load_image_rgb(path)
            return CheckedUpload("image", image_format)
        container = ANIMATED_CONTAINERS[image_format]
    else:
        container = sniff_video_container(head)
    if container is None:
        raise UploadRejected(
            415,
            "This is not an image or a video this app reads (files are recognised by "
            f"their content, not their name). Images: {', '.join(IMAGE_FORMATS)} (animated GIF, "
            "WebP and PNG are clips); videos: MP4, MOV, MKV, WebM, AVI, FLV, OGG, WMV, MPEG, MPEG-TS.",
        )
    info = _probe_upload(path, container, probe_timeout_s)
    _check_duration(info, container, max_duration_s)
    _check_first_frame(path, info, config, probe_timeout_s)
    return CheckedUpload("video", container, info)


def _probe_upload(path: Path, container: str, timeout_s: float) -> VideoInfo:
    """:func:`probe_video`, its failures turned into :class:`UploadRejected` (415 for a container
    with no video in it, 422 for a broken one or one too slow to read)."""
    try:
        return probe_video(path, timeout_s=timeout_s)
    except DecodeError as exc:
        # A readable container with no video in it (audio only) is the wrong kind of media;
        # anything else is a video file that is broken.
        detail = redact_path(str(exc), path)
        if isinstance(exc, NoVideoStreamError):
            raise UploadRejected(415, f"This {container} file holds no video stream (audio only?): {detail}.") from exc
        if container == ANIMATED_CONTAINERS["WEBP"]:
            # ffmpeg before 8 has no animated WebP decoder and takes the file for a still image
            raise UploadRejected(
                422,
                "This animated WebP cannot be played by this server's ffmpeg (animated WebP needs "
                f"FFmpeg 8 or newer). ffmpeg says: {detail}.",
            ) from exc
        raise UploadRejected(
            422,
            f"This file looks like {container} video but it cannot be read; it may be "
            f"incomplete or damaged. ffmpeg says: {detail}.",
        ) from exc
    except TimeoutError as exc:
        raise UploadRejected(
            422, f"This file looks like {container} video but reading it took too long: {exc}."
        ) from exc


def _check_duration(info: VideoInfo, container: str, max_duration_s: float | None) -> None:
    """Refuse (422) a clip longer than ``max_duration_s`` seconds, or, while a cap is set, one
    whose length is unknown: such a clip could be of any length, and an hour-long upload would
    hold the one worker that every other upload waits for."""
    if max_duration_s is None:
        return
    cap = f"this server takes clips up to {max_duration_s:g} s"
    if info.duration_s is None:
        raise UploadRejected(
            422,
            f"The length of this clip cannot be told: its {container} container states no duration "
            f"and counting its frames failed, so it cannot be checked against the limit ({cap}). "
            "Saving it again with a duration (for example `ffmpeg -i IN -c copy OUT.mkv`) may help.",
        )
    if info.duration_s > max_duration_s:
        measured = " (measured: the container states no duration)" if info.duration_source == "packets" else ""
        raise UploadRejected(
            422, f"The clip is {_length_text(info.duration_s, max_duration_s)} s long{measured}; {cap}."
        )


def _length_text(duration_s: float, cap_s: float) -> str:
    """``duration_s`` in whole seconds, or to a tenth where whole seconds would read like the cap
    (a 60.4 s clip is "60.4 s long" next to a 60 s cap, not "60 s long")."""
    whole = f"{duration_s:.0f}"
    return f"{duration_s:.1f}" if whole == f"{cap_s:g}" else whole


def _sniff_image(path: Path) -> tuple[str, bool] | None:
    """(Pillow's format name, whether it is animated: :func:`pipeline.video.animated.is_animated`),
    or ``None`` when ``path`` is not an image of :data:`IMAGE_FORMATS`. An animated image larger
    than ``MAX_IMAGE_PIXELS`` is refused (422) here: ffmpeg would decode every frame at full size."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path, formats=IMAGE_FORMATS) as im:
            try:
                animated = is_animated(im)
            except (OSError, ValueError, SyntaxError, EOFError):
                animated = False  # frames past the first are damaged: the still check decides
            if animated:
                _check_image_pixels(im.width, im.height)
            assert im.format is not None, "Pillow names the format of every image it opened from a file"
            return im.format, animated
    except (UnidentifiedImageError, Image.DecompressionBombError):
        return None
    except OSError:
        return None


def _check_image_pixels(width: int, height: int) -> None:
    if width * height > MAX_IMAGE_PIXELS:
        raise UploadRejected(
            422,
            f"The image is {width}x{height}; this server takes images up to "
            f"{MAX_IMAGE_PIXELS // 1_000_000} megapixels.",
        )


def load_image_rgb(path: Path) -> np.ndarray:
    """An uploaded image as upright RGB: uint8 (H, W, 3), EXIF orientation applied, long side
    at most ``MAX_DECODE_LONG_SIDE_PX`` (as for video frames). Raises :class:`UploadRejected`."""
    from PIL import Image, ImageOps

    try:
        with Image.open(path, formats=IMAGE_FORMATS) as im:
            _check_image_pixels(im.width, im.height)
            im.load()
            upright = ImageOps.exif_transpose(im).convert("RGB")
    except UploadRejected:
        raise
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise UploadRejected(
            422, f"This image cannot be decoded; it may be incomplete or damaged: {redact_path(str(exc), path)}."
        ) from exc
    long_side = max(upright.size)
    if long_side > MAX_DECODE_LONG_SIDE_PX:
        scale = MAX_DECODE_LONG_SIDE_PX / long_side
        size_wh = (max(1, round(upright.width * scale)), max(1, round(upright.height * scale)))
        upright = upright.resize(size_wh, Image.Resampling.BOX)  # area averaging, as ffmpeg's flags=area
    return np.asarray(upright, dtype=np.uint8)


def _check_first_frame(path: Path, info: VideoInfo, config: ScanConfig, timeout_s: float) -> None:
    frames = iter_frames(
        path, info, sample_fps=sampling_fps(info, config.fps, config.max_frames), max_frames=1, timeout_s=timeout_s
    )
    try:
        first = next(frames, None)
    except (DecodeError, TimeoutError) as exc:
        # ffmpeg's decoder chatter means nothing to a person; the log keeps it
        log.info("%s: first frame: %s", path.name, exc)
        raise UploadRejected(422, "No frame of this video can be decoded; it may be incomplete or damaged.") from exc
    finally:
        frames.close()
    if first is None:
        raise UploadRejected(422, "No frame of this video can be decoded; it may be incomplete or damaged.")


def score_image(rgb: np.ndarray, detector: Detector, scorer: Scorer, config: ScanConfig, *, name: str) -> VideoResult:
    """Score one still image as a one-frame clip: the scanner's face loop (detect, select,
    crop, score, :func:`pipeline.scan.analyze.analyze_faces`) and its row builder
    (:func:`pipeline.scan.analyze.verdict_row`, ``config``'s aggregation: each face is its own
    track, so ``track_max`` gives the most suspicious face of the main size).

    ``rgb``: uint8 (H, W, 3) upright RGB. Returns a :class:`VideoResult` whose row has status
    ok or no_face, ``n_frames`` 1, ``rotation_deg`` 0 and no duration or fps; crops are kept."""
    started = time.perf_counter()
    n_frames, faces = analyze_faces(iter([Frame(0, 0, 0.0, rgb)]), detector, scorer, keep_crops=True)
    tracks = track_summaries(faces, config, neutral_p_fake=neutral_p_fake(scorer))
    height, width = rgb.shape[:2]
    row = verdict_row(
        name,
        faces,
        config,
        model=scorer.name,
        n_frames=n_frames,
        started_s=started,
        width=width,
        height=height,
        rotation_deg=0,
        tracks=tracks,
        still_image=True,
        validated_range=validated_range_of(scorer),
    )
    return VideoResult(row, tuple(faces), tuple(tracks))


def score_upload(
    path: Path,
    checked: CheckedUpload,
    detector: Detector,
    scorer: Scorer,
    config: ScanConfig,
    progress: JobProgress,
    *,
    name: str,
) -> VideoResult:
    """Score a checked upload, reporting progress (``progress``: a :class:`JobProgress`)."""
    if checked.kind == "image":
        progress.set_total(1)
        progress.set_stage("detecting faces")
        result = score_image(load_image_rgb(path), detector, scorer, config, name=name)
        progress.add_frames(1)
        return result

    def on_info(info: VideoInfo, sample_fps: float) -> None:
        progress.set_total(expected_sample_count(info, sample_fps, config.max_frames))
        progress.set_stage("decoding and detecting faces")

    progress.set_stage("reading the clip")
    result = score_video_safe(
        path, detector, scorer, config, keep_crops=True, on_frames=progress.add_frames, on_info=on_info
    )
    row = dataclasses.replace(result.row, video_path=name, error=redact_path(result.row.error, path))
    return dataclasses.replace(result, row=row)


def redact_path(text: str, path: Path) -> str:
    """``text`` without the upload's private path (ffmpeg and OS errors name the file)."""
    for form in {str(Path(path).resolve()), str(path)}:
        text = text.replace(form, "<upload>")
    return text


# --- evidence: the frame, the saliency overlays --------------------------------------------


@dataclasses.dataclass(frozen=True)
class WorstFrame:
    """The sampled frame of the most suspicious face as the page shows it: ``rgb`` uint8
    (H, W, 3) with every face found in it boxed and scored (long side at most
    :data:`FRAME_MAX_LONG_SIDE_PX`), ``sample_index`` and ``timestamp_s`` (seconds into the clip,
    0 for an image) of that sample, ``n_faces`` boxed."""

    rgb: np.ndarray
    sample_index: int
    timestamp_s: float
    n_faces: int


@dataclasses.dataclass(frozen=True)
class Evidence:
    """What :func:`gather_evidence` adds to a scored upload: ``saliency`` float32 (N, S, S) in
    [0, 1], one saliency map per face of :func:`shown_faces` (``None`` when it could not be
    made), ``frame`` (``None`` for no face, or when it could not be decoded again) and
    ``elapsed_s``, the wall time it took."""

    saliency: np.ndarray | None = None
    frame: WorstFrame | None = None
    elapsed_s: float = 0.0


@dataclasses.dataclass(frozen=True)
class ResultImages:
    """The JPEGs a finished job serves from memory, by index into ``faces`` of its result:
    ``faces_jpeg`` (the crops as the model saw them), ``saliency_jpeg`` (the same crops with
    their saliency map over them; empty when there is none) and ``frame_jpeg``."""

    faces_jpeg: tuple[bytes, ...] = ()
    saliency_jpeg: tuple[bytes, ...] = ()
    frame_jpeg: bytes | None = None


def worst_first(faces) -> list[ScoredFace]:
    """``faces`` sorted as the page lists them: highest ``p_fake`` first, then earlier, then by track."""
    return sorted(faces, key=lambda f: (-f.p_fake, f.timestamp_s, f.track_id))


def shown_faces(faces, max_thumbnails: int) -> list[ScoredFace]:
    """The faces that get a thumbnail: the first ``max_thumbnails`` of :func:`worst_first`, up to
    the first one scored without a crop (the web app always keeps crops)."""
    shown = []
    for face in worst_first(faces)[:max_thumbnails]:
        if face.crop_rgb is None:
            break
        shown.append(face)
    return shown


def _crop(face: ScoredFace) -> np.ndarray:
    """The crop of a face :func:`shown_faces` picked (it picks faces with a crop only)."""
    assert face.crop_rgb is not None, "shown_faces picks faces with a crop"
    return face.crop_rgb


def encode_jpeg(rgb: np.ndarray, quality: int = JPEG_QUALITY) -> bytes:
    """uint8 (H, W, 3) RGB -> JPEG bytes."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def boxed_frame(frame_rgb: np.ndarray, faces, worst: ScoredFace, threshold: float) -> WorstFrame:
    """``frame_rgb`` (uint8 (H, W, 3), the sample ``worst`` was found in, as the scan saw it)
    with every face of that sample boxed by :func:`pipeline.scan.evidence.draw_faces` (red at or
    above ``threshold``, green below), then shrunk to :data:`FRAME_MAX_LONG_SIDE_PX`. Boxes are
    labelled "person N", N the person's ``track_id`` as every file and page numbers them (from 0)."""
    import cv2

    from pipeline.scan.evidence import draw_faces

    in_frame = [f for f in faces if f.sample_index == worst.sample_index]
    rgb = draw_faces(frame_rgb, in_frame, threshold, who="person")
    long_side = max(rgb.shape[:2])
    if long_side > FRAME_MAX_LONG_SIDE_PX:
        scale = FRAME_MAX_LONG_SIDE_PX / long_side
        size_wh = (max(1, round(rgb.shape[1] * scale)), max(1, round(rgb.shape[0] * scale)))
        rgb = cv2.resize(rgb, size_wh, interpolation=cv2.INTER_AREA)
    return WorstFrame(rgb, worst.sample_index, worst.timestamp_s, len(in_frame))


def decode_worst_frame(path: Path, checked: CheckedUpload, result: VideoResult, face: ScoredFace, config: ScanConfig):
    """The frame ``face`` was found in, as the scan saw it: uint8 (H, W, 3) RGB. An image is
    read again; a clip's sample is decoded again with
    :func:`pipeline.video.decode.decode_sampled_frame` from the probe the upload check made, and
    turned as the scan turned it (``rotation_guess_deg``). Raises :class:`DecodeError`,
    ``TimeoutError``, ``ValueError`` (the sample decodes at another time than the face's: the
    sampling differs) or :class:`UploadRejected`."""
    from pipeline.scan.rotation import rotate_cw
    from pipeline.video.decode import decode_sampled_frame

    if checked.kind == "image":
        return load_image_rgb(path)
    assert checked.info is not None, "a checked video carries its probe"
    sample_fps = sampling_fps(checked.info, config.fps, config.max_frames)
    frame = decode_sampled_frame(
        path, checked.info, sample_fps=sample_fps, sample_index=face.sample_index, timeout_s=config.timeout_s or 60.0
    )
    if abs(frame.timestamp_s - face.timestamp_s) > 1e-6:
        raise ValueError(
            f"sample {face.sample_index} decodes at {frame.timestamp_s:.3f} s, "
            f"the face was found at {face.timestamp_s:.3f} s"
        )
    turn = result.row.rotation_guess_deg
    return rotate_cw(frame.rgb, turn) if turn else frame.rgb


def gather_evidence(
    path: Path, checked: CheckedUpload, result: VideoResult, scorer: Scorer, config: ScanConfig, *, max_thumbnails: int
) -> Evidence:
    """The evidence of a scored upload, made while ``path`` is still on disk: saliency maps
    (:func:`pipeline.models.saliency.saliency_maps`: Grad-CAM or occlusion, by the model's family) of the
    faces :func:`shown_faces` picks, and the frame of the worst face of a track the aggregation counts
    (:func:`pipeline.scan.evidence.select_evidence_faces`, as the batch picks it), boxed
    (:func:`boxed_frame`). Evidence is an extra: what fails is logged and left out, the verdict
    still stands. Nothing for a result that is not ok."""
    from pipeline.models.saliency import saliency_maps
    from pipeline.scan.evidence import select_evidence_faces

    started = time.perf_counter()
    if result.row.p_fake is None or not result.faces:
        return Evidence()
    shown = shown_faces(result.faces, max_thumbnails)
    saliency = None
    if shown:
        try:
            saliency = saliency_maps(scorer, np.stack([_crop(f) for f in shown]))
        except Exception:  # an extra: whatever TensorFlow or onnxruntime raises, the verdict is still shown
            log.exception("%s: saliency maps failed", result.row.video_path)
    worst = select_evidence_faces(result.faces, config.aggregation, max_crops_per_track=1)[0]
    frame = None
    try:
        frame_rgb = decode_worst_frame(path, checked, result, worst, config)
        frame = boxed_frame(frame_rgb, result.faces, worst, config.threshold)
    except (DecodeError, TimeoutError, ValueError, OSError, UploadRejected) as exc:
        detail = redact_path(str(exc), path)
        log.warning("%s: the frame at %.2f s: %s", result.row.video_path, worst.timestamp_s, detail)
    return Evidence(saliency, frame, round(time.perf_counter() - started, 3))


# --- the result as the page and the API show it --------------------------------------------


# Face sets as a mix's provenance names them ("on the mix X (dfdc 50%, ffpp 30%, mesonet 20%)",
# pipeline.training.train_mix), as people know them.
def _verdict_track_id(row: VideoRow, tracks: list[TrackSummary], config: ScanConfig) -> int | None:
    """The person whose score is the clip's ``p_fake`` (``track_max`` and ``learned`` only): the
    row's ``verdict_track_id``, or, under ``track_max`` for a row that does not name one, the one
    the rule picks."""
    if config.aggregation not in ("track_max", "learned") or row.p_fake is None or not any(t.counted for t in tracks):
        return None
    if row.verdict_track_id is not None or config.aggregation == "learned":
        return row.verdict_track_id
    return verdict_track(tracks).track_id


def _person(track: TrackSummary, verdict_id: int | None, frames_sampled: int) -> dict:
    """One person of the payload's ``tracks`` (see :func:`build_result`): the ``--tracks-csv``
    record (:class:`pipeline.scan.records.TrackRow`, the same fields by the same names, less
    ``video_path``), with ``reason_text``, its ``reason`` in words."""
    row = TrackRow.from_summary("", track, frames_sampled=frames_sampled, sets_verdict=track.track_id == verdict_id)
    return {**row.to_json(without=("video_path",)), "reason_text": reason_text(track)}


def build_result(
    result: VideoResult,
    *,
    kind: str,
    config: ScanConfig,
    scorer: Scorer,
    job_id: str,
    max_thumbnails: int,
    container: str = "",
    evidence: Evidence | None = None,
) -> tuple[dict, ResultImages]:
    """The JSON-ready facts of a scored upload and the JPEGs it refers to (:class:`ResultImages`).

    ``faces`` are the ``--faces-csv`` records (:class:`pipeline.scan.records.FaceRow`: the same fields by
    the same names, less ``video_path``) with ``sample_index``, sorted worst first (:func:`worst_first`);
    the first ``max_thumbnails`` carry a
    ``thumbnail_url`` and, when ``evidence`` holds their saliency maps, a ``saliency_url``, served
    from memory by job id and index. ``frame``: the boxed frame of the worst face (URL, time,
    sample, size, faces boxed), or ``null``. ``media`` carries the row's facts about the file
    (``container``: the checked format, e.g. "animated GIF"; for clips also the stream scored,
    pixel shape, transfer, tone mapping, where the duration came from, and
    ``covered_s``/``reached_end``: how much of the clip the samples span; ``null`` where a fact
    does not apply, as for still images). ``tracks``: the people (person N is ``track_id`` N-1),
    by ``track_id``, from ``result.tracks`` (:class:`pipeline.scan.aggregate.TrackSummary`, the
    same the verdict was made from), as the ``--tracks-csv`` records (:class:`pipeline.scan.records.TrackRow`,
    less ``video_path``): ``n_faces``, ``first_timestamp_s``/``last_timestamp_s``, ``median_face_px``,
    ``mean_p_fake``/``max_p_fake``, ``static``, ``size_weight`` (the model's reliability at their
    face size), ``verdict_score`` (their score as the rule compares it), ``counted`` with its
    ``reason`` (a code of :data:`pipeline.scan.aggregate.REASONS`) and ``reason_text``
    (:func:`reason_text`), ``sets_verdict`` (their score is the clip's ``p_fake``; also as
    ``sets_clip_p_fake`` under ``track_max`` and ``learned``). ``label``: FAKE, UNCERTAIN or REAL;
    ``threshold`` and ``uncertain_below`` (the lower threshold of the UNCERTAIN band, ``null`` for
    one cut); ``label_rule``: how the label was made, one line (the row's ``label_rule``);
    ``verdict_text``: why the label is what it is, one plain sentence (:func:`verdict_text`).
    ``notes``: :func:`uncertainty_notes`. ``model.summary``:
    :func:`model_summary`; ``model.saliency``: how the overlays were made (``method``, ``grad-cam`` or
    ``occlusion``, :func:`pipeline.models.saliency.saliency_method`, and its ``name`` for people). Nothing
    here names a file on disk. Raises ``ValueError`` when ``evidence.saliency`` has another count than the
    faces shown.
    """
    from pipeline.models.saliency import overlay_saliency, saliency_method

    evidence = evidence or Evidence()
    row = result.row
    faces = worst_first(result.faces)
    shown = shown_faces(result.faces, max_thumbnails)
    thumbnails = tuple(encode_jpeg(_crop(f)) for f in shown)
    overlays: tuple[bytes, ...] = ()
    if evidence.saliency is not None:
        if len(evidence.saliency) != len(shown):
            raise ValueError(f"{len(evidence.saliency)} saliency maps for {len(shown)} faces shown")
        overlays = tuple(encode_jpeg(overlay_saliency(_crop(f), m)) for f, m in zip(shown, evidence.saliency))
    base = f"/api/v1/jobs/{job_id}"
    face_items = []
    for i, f in enumerate(faces):  # the --faces-csv record, with where its images are
        face_items.append(
            {
                **FaceRow.from_face("", f).to_json(without=("video_path",)),
                "sample_index": f.sample_index,
                "thumbnail_url": f"{base}/faces/{i}.jpg" if i < len(thumbnails) else None,
                "saliency_url": f"{base}/saliency/{i}.jpg" if i < len(overlays) else None,
            }
        )
    summaries = result.tracks or track_summaries(result.faces, config, neutral_p_fake=neutral_p_fake(scorer))
    summaries = sorted(summaries, key=lambda t: t.track_id)
    verdict_id = _verdict_track_id(row, summaries, config)
    tracks = [_person(t, verdict_id, row.frames_sampled) for t in summaries]
    if config.aggregation in ("track_max", "learned") and row.p_fake is not None:
        # the clip's p_fake is one person's score: name them, so a FAKE next to REAL-looking people reads right
        for track in tracks:
            track["sets_clip_p_fake"] = track["sets_verdict"]
    frame = evidence.frame
    frame_jpeg = encode_jpeg(frame.rgb) if frame is not None else None
    spec = scorer.spec
    payload = {
        "status": row.status,
        "p_fake": _num(row.p_fake, 4),
        "p_fake_meaning": P_FAKE_MEANING,
        "label": row.label or None,
        "threshold": config.threshold,
        "uncertain_below": uncertain_below_of(row, config),
        "label_rule": row.label_rule or config.label_rule,
        "verdict_text": verdict_text(row, config),
        "model": {
            "name": scorer.name,
            "summary": model_summary(spec, scorer.name, config.threshold, uncertain_below_of(row, config)),
            "saliency": {"method": (method := saliency_method(scorer)), "name": SALIENCY_NAMES[method]},
            "provenance": spec.provenance,
            "license": spec.license,
        },
        "aggregation": {
            "name": config.aggregation,
            "meaning": AGGREGATION_MEANINGS.get(config.aggregation, config.aggregation),
        },
        "media": {
            "kind": kind,
            "container": container or None,
            "duration_s": _num(row.duration_s, 3),
            "duration_source": row.duration_source or None,
            "width": row.width,
            "height": row.height,
            "fps": _num(row.fps, 3),
            "rotation_deg": row.rotation_deg,
            "rotation_guess_deg": row.rotation_guess_deg,
            "stream_index": row.stream_index,
            "sample_aspect_ratio": row.sample_aspect_ratio or None,
            "color_transfer": row.color_transfer or None,
            "tone_mapped": row.tone_mapped,
            "deinterlaced": row.deinterlaced,
            "sample_fps": _num(row.sample_fps, 4),
            "frames_sampled": row.n_frames,
            "frames_with_faces": row.frames_with_faces,
            "quality": {name: getattr(row, f"quality_{name}") for name in QUALITY_MEASURES},
            "quality_outside": split_notes(row.quality_outside),
            "covered_s": _num(row.covered_s, 3),
            "reached_end": row.reached_end,
            "faces_found": row.n_faces,
            "tracks": row.n_tracks,
        },
        "processing_s": row.elapsed_s,
        "evidence_s": evidence.elapsed_s,
        "error": row.error or None,
        "caveats": (caveats := uncertainty_notes(row, faces, summaries, kind=kind, config=config)),
        "notes": caveats,  # the same list under its name before 0.7.0, kept for scripts written then
        "note_codes": split_notes(row.notes),
        "frame": None
        if frame is None
        else {
            "url": f"{base}/frame.jpg",
            "timestamp_s": _num(frame.timestamp_s, 3),
            "sample_index": frame.sample_index,
            "width": int(frame.rgb.shape[1]),
            "height": int(frame.rgb.shape[0]),
            "n_faces": frame.n_faces,
        },
        "tracks": tracks,
        "faces": face_items,
    }
    return payload, ResultImages(thumbnails, overlays, frame_jpeg)
