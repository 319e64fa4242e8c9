"""Video metadata from ``ffmpeg -i`` alone (no ffprobe needed: the imageio-ffmpeg wheel has none).

``ffmpeg -i FILE`` prints the container and stream description to stderr and exits with
"At least one output file must be specified". That text is stable across ffmpeg 4 to 9 for
the fields read here: duration, the first real video stream (attached cover pictures are
skipped), its coded size, frame rate and rotation (the ``rotate`` tag of old muxers and the
display matrix side data of new ones).
"""

from __future__ import annotations

import dataclasses
import os
import re
import stat
import subprocess
from pathlib import Path

from pipeline.errors import DecodeError, NoVideoStreamError
from pipeline.video.ffmpeg_bin import ffmpeg_exe

PROBE_TIMEOUT_S = 60.0
# Input options for every ffmpeg run on a user's file: local files only, so a playlist (HLS,
# concat) renamed .mp4 cannot make ffmpeg open URLs.
INPUT_OPTIONS = ("-protocol_whitelist", "file")

_INPUT_RE = re.compile(r"^Input #0, ([\w,]+), from ")
# Demuxers of single still images: a photo renamed .mp4 is not a video.
_IMAGE_FORMATS = ("image2", "image2pipe")
_DURATION_RE = re.compile(r"Duration:\s*(N/A|(\d+):(\d+):(\d+(?:\.\d+)?))")
_START_RE = re.compile(r"start:\s*(-?\d+(?:\.\d+)?)")
_STREAM_RE = re.compile(r"^\s*Stream #\d+:(\d+)(?:\[[^\]]*\])?(?:\([^)]*\))?: (\w+): (.*)$")
_SIZE_RE = re.compile(r"(?:^|[ ,])(\d{1,6})x(\d{1,6})(?=[ ,\]]|$)")
_FPS_RE = re.compile(r"(\d+(?:\.\d+)?)(k?) fps")
_TBR_RE = re.compile(r"(\d+(?:\.\d+)?)(k?) tbr")
_DISPLAYMATRIX_RE = re.compile(r"rotation of (-?\d+(?:\.\d+)?) degrees", re.IGNORECASE)
_ROTATE_TAG_RE = re.compile(r"^\s*rotate\s*:\s*(-?\d+(?:\.\d+)?)\s*$")


@dataclasses.dataclass(frozen=True)
class VideoInfo:
    """What a clip is, as far as its container says.

    ``width``/``height`` are the upright (displayed) size: the size of the frames the decoder
    delivers, after rotation metadata is applied. ``coded_width``/``coded_height`` are the
    stored size. ``rotation_deg`` is clockwise, one of 0, 90, 180, 270.
    """

    stream_index: int
    coded_width: int
    coded_height: int
    rotation_deg: int
    fps: float | None
    duration_s: float | None
    start_s: float
    codec: str

    def __post_init__(self) -> None:
        if self.coded_width <= 0 or self.coded_height <= 0:
            raise ValueError(f"frame size must be positive, got {self.coded_width}x{self.coded_height}")
        if self.rotation_deg not in (0, 90, 180, 270):
            raise ValueError(f"rotation_deg must be 0, 90, 180 or 270, got {self.rotation_deg}")

    @property
    def width(self) -> int:
        return self.coded_height if self.rotation_deg in (90, 270) else self.coded_width

    @property
    def height(self) -> int:
        return self.coded_width if self.rotation_deg in (90, 270) else self.coded_height

    @property
    def resolution_wh(self) -> tuple[int, int]:
        return (self.width, self.height)


def _rate(match: re.Match | None) -> float | None:
    if match is None:
        return None
    value = float(match.group(1)) * (1000.0 if match.group(2) == "k" else 1.0)
    return value if value > 0 else None


def parse_ffmpeg_info(stderr_text: str) -> VideoInfo:
    """Parse the stderr of ``ffmpeg -i FILE`` into a :class:`VideoInfo`.

    Raises :class:`DecodeError` when the text names no decodable video stream.
    """
    lines = stderr_text.splitlines()
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

    for i, line in enumerate(lines):
        m = _STREAM_RE.match(line)
        if not m or m.group(2) != "Video" or "attached pic" in line:
            continue
        description = m.group(3)
        size = _SIZE_RE.search(description)
        if size is None or int(size.group(1)) == 0 or int(size.group(2)) == 0:
            continue
        # The stream's indented block (metadata, side data) runs until the next stream.
        rotation_deg = 0
        for block_line in lines[i + 1 :]:
            if _STREAM_RE.match(block_line) or not block_line.startswith("    "):
                break
            tag = _ROTATE_TAG_RE.match(block_line)
            if tag:  # old muxers: clockwise degrees
                rotation_deg = float(tag.group(1)) % 360
            matrix = _DISPLAYMATRIX_RE.search(block_line)
            if matrix:  # display matrix: counter-clockwise degrees
                rotation_deg = -float(matrix.group(1)) % 360
        # ffmpeg turns frames only for angles within 1 degree of a right angle; other angles
        # are drawn rotated inside the stored size, so the frame size stays as stored.
        right_angle = round(rotation_deg / 90) * 90
        rotation_deg = right_angle % 360 if abs(rotation_deg - right_angle) <= 1.0 else 0
        fps = _rate(_FPS_RE.search(description)) or _rate(_TBR_RE.search(description))
        return VideoInfo(
            stream_index=int(m.group(1)),
            coded_width=int(size.group(1)),
            coded_height=int(size.group(2)),
            rotation_deg=rotation_deg,
            fps=fps,
            duration_s=duration_s if duration_s and duration_s > 0 else None,
            start_s=start_s,
            codec=description.split(",")[0].split()[0] if description else "",
        )
    tail = summarize_ffmpeg_errors(stderr_text)
    raise NoVideoStreamError(f"no video stream found{': ' + tail if tail else ''}")


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
    return parse_ffmpeg_info(text)
