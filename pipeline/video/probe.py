"""Video metadata from ``ffmpeg -i`` alone (no ffprobe needed: the imageio-ffmpeg wheel has none).

``ffmpeg -i FILE`` prints the container and stream description to stderr and exits with
"At least one output file must be specified". That text is stable across ffmpeg 4 to 9 for
the fields read here: duration, every video stream (attached cover pictures are never
chosen), its coded size, sample aspect ratio, pixel format and colour description, frame
rate, disposition and rotation (the ``rotate`` tag of old muxers and the display matrix side
data of new ones).

Which stream: the one marked default (the largest by pixels among several so marked), else
the largest by pixels, first on ties (ffmpeg's own rule for ``-map`` by default).

When the container gives no duration (Matroska/WebM from pipes, browser MediaRecorder, live
captures), the stream's ``DURATION`` tag is read, else one fast pass over the packets (no
decoding) measures it: see :func:`measure_duration_s`.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import re
import stat
import subprocess
from pathlib import Path

from pipeline.errors import DecodeError, NoVideoStreamError
from pipeline.video.animated import is_animated_image
from pipeline.video.ffmpeg_bin import ffmpeg_exe
from pipeline.video.interlace import detect_field_order, should_measure_interlacing

log = logging.getLogger(__name__)

PROBE_TIMEOUT_S = 60.0
# Input options for every ffmpeg run on a user's file: local files only, so a playlist (HLS,
# concat) renamed .mp4 cannot make ffmpeg open URLs.
INPUT_OPTIONS = ("-protocol_whitelist", "file")

_INPUT_RE = re.compile(r"^Input #0, ([\w,]+), from ")
# Demuxers of single still images: a photo renamed .mp4 is not a video.
_IMAGE_FORMATS = ("image2", "image2pipe")
# Demuxers of image formats that may hold an animation (a clip) or a single frame (a still image).
_ANIMATABLE_FORMATS = ("gif", "webp_anim", "apng")
_DURATION_RE = re.compile(r"Duration:\s*(N/A|(\d+):(\d+):(\d+(?:\.\d+)?))")
_START_RE = re.compile(r"start:\s*(-?\d+(?:\.\d+)?)")
_STREAM_RE = re.compile(r"^\s*Stream #\d+:(\d+)(?:\[[^\]]*\])?(?:\([^)]*\))?: (\w+): (.*)$")
_SIZE_RE = re.compile(r"(?:^|[ ,])(\d{1,6})x(\d{1,6})(?=[ ,\]]|$)")
_FPS_RE = re.compile(r"(\d+(?:\.\d+)?)(k?) fps")
_TBR_RE = re.compile(r"(\d+(?:\.\d+)?)(k?) tbr")
_DISPLAYMATRIX_RE = re.compile(r"rotation of (-?\d+(?:\.\d+)?) degrees", re.IGNORECASE)
_ROTATE_TAG_RE = re.compile(r"^\s*rotate\s*:\s*(-?\d+(?:\.\d+)?)\s*$")
_SAR_RE = re.compile(r"\[SAR (\d+):(\d+) DAR \d+:\d+\]")
# "yuv420p10le(tv, bt2020nc/bt2020/arib-std-b67, progressive)": pixel format, then in brackets
# the range, the colour space/primaries/transfer (one name when all three agree), field order.
_PIX_FMT_RE = re.compile(r"(?:^|, )(\w+)(?:\(((?:[^()]|\([^()]*\))*)\))?(?=, \d{1,6}x\d{1,6})")
# The field order ffmpeg prints among the pixel format's details: "yuv420p(tv, top first)".
_FIELD_ORDER_RE = re.compile(r"\b(progressive|top first|bottom first|top coded first|bottom coded first)\b")
FIELD_ORDERS = {
    "progressive": "progressive",
    "top first": "tff",
    "bottom first": "bff",
    "top coded first": "tb",
    "bottom coded first": "bt",
}
INTERLACED_FIELD_ORDERS = frozenset({"tff", "bff", "tb", "bt"})
_STREAM_DURATION_TAG_RE = re.compile(r"^\s*DURATION(?:-\w+)?\s*:\s*(\d+):(\d+):(\d+(?:\.\d+)?)\s*$")
# Names ffmpeg prints once when colour space, primaries and transfer agree.
_SAME_COLOUR_NAMES = frozenset({"bt709", "smpte170m", "smpte240m", "unknown"})
# Transfer characteristics of HDR video: PQ (SMPTE ST 2084, HDR10, Dolby Vision) and HLG (ARIB STD-B67).
HDR_TRANSFERS = frozenset({"smpte2084", "arib-std-b67"})
# A sample aspect ratio outside this range is taken as damage, not as a display shape.
_SAR_RANGE = (0.2, 5.0)
MEASURE_TIMEOUT_S = 60.0


@dataclasses.dataclass(frozen=True)
class VideoInfo:
    """What a clip is, as far as its container says.

    ``width``/``height`` are the displayed size: the size of the frames the decoder delivers,
    stretched to square pixels by the sample aspect ratio, then turned by the rotation metadata.
    ``coded_width``/``coded_height`` are the stored size. ``sample_aspect_ratio`` is the
    stored pixels' shape as (num, den), 1:1 for square pixels (anamorphic 640x720 at 2:1
    displays as 1280x720; PAL 720x576 at 64:45 as 1024x576). ``rotation_deg`` is clockwise,
    one of 0, 90, 180, 270. ``color_space``/``color_primaries``/``color_transfer`` are
    ffmpeg's names ("" when the stream does not say); HLG is ``arib-std-b67``, PQ
    ``smpte2084``. ``stream_index`` is the chosen video stream's index in the container,
    ``n_video_streams`` how many it has (cover pictures not counted). ``duration_source``
    says where ``duration_s`` came from: ``container``, ``stream_tag``, ``packets`` (measured
    by :func:`measure_duration_s`) or ``""`` (unknown). ``format_name`` is the
    demuxer ffmpeg chose (``mov,mp4,m4a,3gp,3g2,mj2``, ``matroska,webm``, ``gif``).
    ``field_order``: ``progressive``, interlaced ``tff``/``bff`` (top or bottom field first) or
    ``tb``/``bt`` (top or bottom coded first, the other shown first), as the stream states it;
    ``""`` when it does not say;
    ``interlace_source`` says how it was known (``stream``, or ``idet`` when measured,
    :func:`pipeline.video.interlace.detect_field_order`).
    """

    stream_index: int
    coded_width: int
    coded_height: int
    rotation_deg: int
    fps: float | None
    duration_s: float | None
    start_s: float
    codec: str
    sample_aspect_ratio: tuple[int, int] = (1, 1)
    pix_fmt: str = ""
    color_space: str = ""
    color_primaries: str = ""
    color_transfer: str = ""
    n_video_streams: int = 1
    duration_source: str = ""
    format_name: str = ""
    field_order: str = ""
    interlace_source: str = ""

    def __post_init__(self) -> None:
        if self.coded_width <= 0 or self.coded_height <= 0:
            raise ValueError(f"frame size must be positive, got {self.coded_width}x{self.coded_height}")
        if self.rotation_deg not in (0, 90, 180, 270):
            raise ValueError(f"rotation_deg must be 0, 90, 180 or 270, got {self.rotation_deg}")
        num, den = self.sample_aspect_ratio
        if num <= 0 or den <= 0:
            raise ValueError(f"sample_aspect_ratio must be positive, got {num}:{den}")
        if not self.duration_source and self.duration_s is not None:
            object.__setattr__(self, "duration_source", "container")

    @property
    def display_coded_wh(self) -> tuple[int, int]:
        """The stored frame stretched to square pixels, before rotation (ffmpeg's
        ``scale=iw*sar:ih``, rounded to whole pixels)."""
        num, den = self.sample_aspect_ratio
        if num == den:
            return self.coded_width, self.coded_height
        return max(1, round(self.coded_width * num / den)), self.coded_height

    @property
    def upright_coded_wh(self) -> tuple[int, int]:
        """The stored frame turned upright (what ffmpeg delivers before any scaling)."""
        if self.rotation_deg in (90, 270):
            return self.coded_height, self.coded_width
        return self.coded_width, self.coded_height

    @property
    def width(self) -> int:
        w, h = self.display_coded_wh
        return h if self.rotation_deg in (90, 270) else w

    @property
    def height(self) -> int:
        w, h = self.display_coded_wh
        return w if self.rotation_deg in (90, 270) else h

    @property
    def resolution_wh(self) -> tuple[int, int]:
        return (self.width, self.height)

    @property
    def sar_text(self) -> str:
        """The sample aspect ratio as ffmpeg writes it, e.g. ``"2:1"``."""
        return f"{self.sample_aspect_ratio[0]}:{self.sample_aspect_ratio[1]}"

    @property
    def is_interlaced(self) -> bool:
        """True when the stream is interlaced (:data:`INTERLACED_FIELD_ORDERS`), as stated or measured."""
        return self.field_order in INTERLACED_FIELD_ORDERS

    @property
    def is_hdr(self) -> bool:
        """True for PQ and HLG video (:data:`HDR_TRANSFERS`)."""
        return self.color_transfer in HDR_TRANSFERS


@dataclasses.dataclass(frozen=True)
class _StreamCandidate:
    info: VideoInfo
    is_default: bool

    @property
    def n_pixels(self) -> int:
        return self.info.coded_width * self.info.coded_height


def _rate(match: re.Match | None) -> float | None:
    if match is None:
        return None
    value = float(match.group(1)) * (1000.0 if match.group(2) == "k" else 1.0)
    return value if value > 0 else None


def _parse_colour(description: str) -> tuple[str, str, str, str]:
    """(pix_fmt, color_space, color_primaries, color_transfer) from a video stream's
    description; empty strings for what it does not say."""
    m = _PIX_FMT_RE.search(description)
    if m is None:
        return "", "", "", ""
    pix_fmt, details = m.group(1), m.group(2) or ""
    for part in (p.strip() for p in details.split(",")):
        names = part.split("/")
        if len(names) == 1 and part in _SAME_COLOUR_NAMES:
            names = [part] * 3
        if len(names) == 3:
            space, primaries, transfer = ("" if n == "unknown" else n for n in names)
            return pix_fmt, space, primaries, transfer
    return pix_fmt, "", "", ""


def _parse_field_order(description: str) -> str:
    """The stream's field order (:data:`FIELD_ORDERS` values), ``""`` when it states none."""
    m = _PIX_FMT_RE.search(description)
    if m is None or not m.group(2):
        return ""
    found = _FIELD_ORDER_RE.search(m.group(2))
    return FIELD_ORDERS[found.group(1)] if found else ""


def _parse_sar(description: str) -> tuple[int, int]:
    """The sample aspect ratio in lowest terms; 1:1 when absent, unknown (0:1) or absurd."""
    m = _SAR_RE.search(description)
    if m is None:
        return 1, 1
    num, den = int(m.group(1)), int(m.group(2))
    if num <= 0 or den <= 0 or not _SAR_RANGE[0] <= num / den <= _SAR_RANGE[1]:
        return 1, 1
    g = math.gcd(num, den)
    return num // g, den // g


def _stream_block(lines: list[str], i: int) -> list[str]:
    """The indented lines (metadata, side data) of the stream described on line ``i``."""
    block = []
    for line in lines[i + 1 :]:
        if _STREAM_RE.match(line) or not line.startswith("    "):
            break
        block.append(line)
    return block


def _parse_rotation(block: list[str]) -> int:
    rotation_deg = 0.0
    for line in block:
        tag = _ROTATE_TAG_RE.match(line)
        if tag:  # old muxers: clockwise degrees
            rotation_deg = float(tag.group(1)) % 360
        matrix = _DISPLAYMATRIX_RE.search(line)
        if matrix:  # display matrix: counter-clockwise degrees
            rotation_deg = -float(matrix.group(1)) % 360
    # ffmpeg turns frames only for angles within 1 degree of a right angle; other angles
    # are drawn rotated inside the stored size, so the frame size stays as stored.
    right_angle = round(rotation_deg / 90) * 90
    return right_angle % 360 if abs(rotation_deg - right_angle) <= 1.0 else 0


def _parse_stream_duration(block: list[str]) -> float | None:
    """The stream's ``DURATION`` tag (Matroska muxers write one per track), in seconds."""
    for line in block:
        m = _STREAM_DURATION_TAG_RE.match(line)
        if m:
            value = int(m.group(1)) * 3600 + int(m.group(2)) * 60 + float(m.group(3))
            return value if value > 0 else None
    return None


def choose_stream(candidates: list[_StreamCandidate]) -> _StreamCandidate:
    """The stream marked default (the largest by pixels if several are), else the largest by
    pixels; the first on ties. ``candidates`` must not be empty."""
    pool = [c for c in candidates if c.is_default] or candidates
    return max(pool, key=lambda c: c.n_pixels)  # max keeps the first of equals


def parse_ffmpeg_info(stderr_text: str) -> VideoInfo:
    """Parse the stderr of ``ffmpeg -i FILE`` into a :class:`VideoInfo` of the chosen video
    stream (:func:`choose_stream`; attached pictures never).

    Raises :class:`DecodeError` when the input is a still image and
    :class:`NoVideoStreamError` when the text names no decodable video stream.
    """
    candidates = parse_stream_candidates(stderr_text)
    return dataclasses.replace(choose_stream(candidates).info, n_video_streams=len(candidates))


def parse_stream_candidates(stderr_text: str) -> list[_StreamCandidate]:
    """Every video stream ``ffmpeg -i`` describes that could be the clip (attached pictures and
    streams of no size left out), in file order, each with the container's facts. Raises as
    :func:`parse_ffmpeg_info` does.
    """
    lines = stderr_text.splitlines()
    format_name = ""
    for line in lines:
        m = _INPUT_RE.match(line)
        if m:
            format_name = m.group(1)
            if format_name.endswith("_pipe") or format_name in _IMAGE_FORMATS:
                raise DecodeError(f"a still image ({format_name.removesuffix('_pipe')}), not a video")
            break
    duration_s: float | None = None
    start_s = 0.0
    for line in lines:
        m = _DURATION_RE.search(line)
        if m:
            if m.group(1) != "N/A":
                duration_s = int(m.group(2)) * 3600 + int(m.group(3)) * 60 + float(m.group(4))
            s = _START_RE.search(line)
            if s:
                start_s = float(s.group(1))
            break
    duration_s = duration_s if duration_s and duration_s > 0 else None

    candidates: list[_StreamCandidate] = []
    for i, line in enumerate(lines):
        m = _STREAM_RE.match(line)
        if not m or m.group(2) != "Video" or "attached pic" in line:
            continue
        description = m.group(3)
        size = _SIZE_RE.search(description)
        if size is None or int(size.group(1)) == 0 or int(size.group(2)) == 0:
            continue
        block = _stream_block(lines, i)
        stream_duration_s = None if duration_s else _parse_stream_duration(block)
        pix_fmt, color_space, color_primaries, color_transfer = _parse_colour(description)
        info = VideoInfo(
            stream_index=int(m.group(1)),
            coded_width=int(size.group(1)),
            coded_height=int(size.group(2)),
            rotation_deg=_parse_rotation(block),
            fps=_rate(_FPS_RE.search(description)) or _rate(_TBR_RE.search(description)),
            duration_s=duration_s or stream_duration_s,
            start_s=start_s,
            codec=description.split(",")[0].split()[0] if description else "",
            sample_aspect_ratio=_parse_sar(description),
            pix_fmt=pix_fmt,
            color_space=color_space,
            color_primaries=color_primaries,
            color_transfer=color_transfer,
            duration_source="container" if duration_s else ("stream_tag" if stream_duration_s else ""),
            field_order=(field_order := _parse_field_order(description)),
            interlace_source="stream" if field_order else "",
        )
        candidates.append(_StreamCandidate(info, "(default)" in description))
    if not candidates:
        if any(_STREAM_RE.match(line) and "attached pic" in line for line in lines):
            raise NoVideoStreamError("no video stream found: only a still cover picture (attached pic)")
        tail = summarize_ffmpeg_errors(stderr_text)
        raise NoVideoStreamError(f"no video stream found{': ' + tail if tail else ''}")
    return [dataclasses.replace(c, info=dataclasses.replace(c.info, format_name=format_name)) for c in candidates]


def summarize_ffmpeg_errors(stderr_text: str, max_lines: int = 3) -> str:
    """ffmpeg's first distinct complaints (the cause comes first) on one line, without
    ``[demuxer @ 0x..]`` prefixes, lines naming the file, and the usage complaint of ``-i``
    alone, e.g. "moov atom not found; Error opening input: Invalid data found..."."""
    kept: list[str] = []
    for raw in stderr_text.splitlines():
        if raw[:1].isspace():  # indented: the description of a stream, not a complaint
            continue
        line = re.sub(r"^\[[^\]]*@ 0x[0-9a-f]+\]\s*", "", raw.strip())
        if (
            not line
            or line in kept
            or "At least one output file must be specified" in line
            or line.startswith(("Error opening input file", "Input #"))
        ):
            continue
        kept.append(line)
    return "; ".join(kept[:max_lines])[:400]


def probe_video(path: str | Path, timeout_s: float = PROBE_TIMEOUT_S) -> VideoInfo:
    """Read a clip's metadata with ``ffmpeg -i``.

    Raises :class:`DecodeError` for anything that is not a readable video (zero bytes,
    truncated container, text or audio only), :class:`TimeoutError` past ``timeout_s``.
    """
    path = Path(path)
    if not stat.S_ISREG(os.stat(path).st_mode):  # a FIFO or device would block or never end
        raise DecodeError("not a regular file (a pipe, socket or device)")
    with open(path, "rb") as f:  # FileNotFoundError / PermissionError name the real cause
        if not f.read(1):
            raise DecodeError("empty file (0 bytes)")
    # An absolute path: ffmpeg would read a bare "take:1.mp4" as protocol "take".
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", *INPUT_OPTIONS, "-i", os.path.abspath(path)]
    try:
        proc = subprocess.run(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            timeout=timeout_s,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise TimeoutError(f"ffmpeg probe took more than {timeout_s:g} s") from exc
    text = proc.stderr.decode("utf-8", errors="replace")
    if "Input #0" not in text:
        tail = summarize_ffmpeg_errors(text)
        raise DecodeError(f"not a readable video: {tail or 'ffmpeg could not open it'}")
    candidates = parse_stream_candidates(text)
    info = _choose_moving_stream(path, candidates, timeout_s)
    if info.format_name in _ANIMATABLE_FORMATS and not is_animated_image(path):
        # one rule with the web app: an image file is a clip only when it has more than one frame
        raise DecodeError(f"a still image ({info.format_name.removesuffix('_anim')}), not a video")
    if should_measure_interlacing(info) and info.format_name not in _ANIMATABLE_FORMATS:
        measured = detect_field_order(path, info.stream_index, timeout_s=min(timeout_s, MEASURE_TIMEOUT_S))
        if not info.field_order or measured in INTERLACED_FIELD_ORDERS:
            info = dataclasses.replace(info, field_order=measured, interlace_source="idet" if measured else "")
    if info.duration_s is None:
        measured_s = measure_duration_s(path, info, timeout_s=min(timeout_s, MEASURE_TIMEOUT_S))
        if measured_s is not None:
            info = dataclasses.replace(info, duration_s=measured_s, duration_source="packets")
    return info


_PACKETS_READ_RE = re.compile(r"Input stream #0:(\d+) \(video\): (\d+) packets read")
# A stream is reported as much smaller than another when it has under this share of its pixels.
_SMALL_STREAM_SHARE = 0.25


def _choose_moving_stream(path: str | Path, candidates: list[_StreamCandidate], timeout_s: float) -> VideoInfo:
    """:func:`choose_stream`, and with several video streams, one pass over the packets first
    (:func:`count_video_packets`) so that a one-frame stream (cover art the muxer did not flag
    as an attached picture) is never chosen over a moving one. Logs a warning when the chosen
    stream is much smaller than another (a preview track marked default)."""
    if len(candidates) == 1:
        return candidates[0].info
    counts = count_video_packets(path, timeout_s=min(timeout_s, MEASURE_TIMEOUT_S))
    moving = [c for c in candidates if counts.get(c.info.stream_index, 2) > 1] or candidates
    chosen = choose_stream(moving)
    largest = max(moving, key=lambda c: c.n_pixels)
    if chosen.n_pixels < _SMALL_STREAM_SHARE * largest.n_pixels:
        log.warning(
            "%s: scoring video stream %d (%dx%d, marked default); the file also has stream %d (%dx%d)",
            path,
            chosen.info.stream_index,
            chosen.info.coded_width,
            chosen.info.coded_height,
            largest.info.stream_index,
            largest.info.coded_width,
            largest.info.coded_height,
        )
    return dataclasses.replace(chosen.info, n_video_streams=len(candidates))


def _demux_pass(
    path: str | Path, stream: str, global_args: tuple[str, ...], output_args: tuple[str, ...], timeout_s: float
) -> subprocess.CompletedProcess | None:
    """One pass over the packets of the ``stream`` map (``0:v``, ``0:3``) without decoding
    (``-c copy -f null -``); ``None`` past ``timeout_s``."""
    cmd = [
        ffmpeg_exe(),
        "-hide_banner",
        "-nostdin",
        "-nostats",
        *global_args,
        *INPUT_OPTIONS,
        "-i",
        os.path.abspath(path),
        "-map",
        stream,
        "-c",
        "copy",
        "-f",
        "null",
        *output_args,
        "-",
    ]
    try:
        return subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired:
        return None


def count_video_packets(path: str | Path, timeout_s: float = MEASURE_TIMEOUT_S) -> dict[int, int]:
    """Packets per video stream index, from one pass over the file without decoding (ffmpeg's
    verbose end-of-run statistics; 0.05 s for a 4-s clip). Empty when the pass fails or times
    out: the caller then keeps the container's word."""
    proc = _demux_pass(path, "0:v", ("-v", "verbose"), (), timeout_s)
    if proc is None:
        return {}
    text = proc.stderr.decode("utf-8", errors="replace")
    return {int(i): int(n) for i, n in _PACKETS_READ_RE.findall(text)}


_PROGRESS_RE = re.compile(r"^(out_time_us|frame)=(\d+)\s*$", re.MULTILINE)


def _progress_pass(path: str | Path, stream: str, timeout_s: float) -> tuple[subprocess.CompletedProcess, dict] | None:
    """:func:`_demux_pass` over ``stream`` with ffmpeg's ``-progress`` report: the process and the
    last progress block's integer values (``out_time_us``, ``frame``); ``None`` past ``timeout_s``."""
    proc = _demux_pass(path, stream, (), ("-progress", "pipe:1"), timeout_s)
    if proc is None:
        return None
    values: dict[str, int] = {}
    for key, value in _PROGRESS_RE.findall(proc.stdout.decode("ascii", errors="replace")):
        values[key] = int(value)  # the last progress block wins
    return proc, values


def packets_end_s(path: str | Path, stream: str = "0", timeout_s: float = MEASURE_TIMEOUT_S) -> float | None:
    """Where the packets of the ``stream`` map (``0``: every stream, the latest of them; ``0:3``)
    that the file actually holds end, in seconds from its start: one pass over the packets
    without decoding (:func:`_progress_pass`). ``None`` when the pass fails or times out. A file
    cut short ends here before the duration its header states."""
    passed = _progress_pass(path, stream, timeout_s)
    if passed is None or "out_time_us" not in passed[1]:
        return None
    return round(passed[1]["out_time_us"] / 1e6, 3)


def measure_duration_s(path: str | Path, info: VideoInfo, timeout_s: float = MEASURE_TIMEOUT_S) -> float | None:
    """The length of the chosen video stream, in seconds, measured by one pass over its packets
    (``ffmpeg -map 0:N -c copy -f null -``: demuxing only, no decoding; an 82-second Matroska
    file takes about 0.05 s). The end is the later of the last packet's time and the frame
    count at the stream's rate. ``None`` (with a warning) when the pass fails, times out or
    reads no packet: the caller then cannot know how much of the clip it covers.
    """
    passed = _progress_pass(path, f"0:{info.stream_index}", timeout_s)
    if passed is None:
        log.warning("%s: no duration in the container, and measuring it took more than %g s", path, timeout_s)
        return None
    proc, values = passed
    end_s = values.get("out_time_us", 0) / 1e6
    if info.fps and values.get("frame"):
        end_s = max(end_s, values["frame"] / info.fps)
    if proc.returncode != 0 or end_s <= 0:
        tail = summarize_ffmpeg_errors(proc.stderr.decode("utf-8", errors="replace"))
        log.warning("%s: no duration in the container, and it could not be measured: %s", path, tail or "no packets")
        return None
    return round(end_s, 3)
