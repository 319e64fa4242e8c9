"""pipeline/video/probe.py: parse ``ffmpeg -i`` text, and probe real (tiny, generated) files."""

from __future__ import annotations

import dataclasses
import subprocess
from pathlib import Path

import numpy as np
import pytest

from pipeline.errors import DecodeError
from pipeline.video.ffmpeg_bin import ffmpeg_exe
from pipeline.video.probe import VideoInfo, measure_duration_s, parse_ffmpeg_info, probe_video
from tests.helpers import ffmpeg, make_lavfi_clip

# --------------------------------------------------------------------------------------------
# Canned ``ffmpeg -i`` stderr texts (abridged from real output of the versions named)
# --------------------------------------------------------------------------------------------

# ffmpeg 7-9: two-space stream indent, "Display Matrix" side data; a portrait phone clip.
MODERN_DISPLAY_MATRIX = """\
Input #0, mov,mp4,m4a,3gp,3g2,mj2, from 'portrait.mp4':
  Metadata:
    major_brand     : isom
    minor_version   : 512
    compatible_brands: isomiso2avc1mp41
    encoder         : Lavf61.7.100
  Duration: 00:00:03.00, start: 0.000000, bitrate: 1520 kb/s
  Stream #0:0[0x1](und): Video: h264 (High) (avc1 / 0x31637661), yuv420p(tv, bt709, progressive), 1920x1080 [SAR 1:1 DAR 16:9], 1512 kb/s, 30 fps, 30 tbr, 15360 tbn (default)
    Metadata:
      handler_name    : VideoHandler
      vendor_id       : [0][0][0][0]
    Side data:
      Display Matrix: rotation of -90.00 degrees
  Stream #0:1[0x2](und): Audio: aac (LC) (mp4a / 0x6134706D), 48000 Hz, stereo, fltp, 128 kb/s (default)
    Metadata:
      handler_name    : SoundHandler
      vendor_id       : [0][0][0][0]
At least one output file must be specified
"""

# ffmpeg 4: four-space stream indent, a ``rotate`` tag (clockwise) AND "displaymatrix" side data
# (counter-clockwise) that agree; an iPhone .MOV.
OLD_ROTATE_TAG = """\
Input #0, mov,mp4,m4a,3gp,3g2,mj2, from 'IMG_0420.MOV':
  Metadata:
    major_brand     : qt  
    minor_version   : 0
    compatible_brands: qt  
    creation_time   : 2019-05-04T10:00:00.000000Z
    com.apple.quicktime.make: Apple
  Duration: 00:00:05.03, start: 0.000000, bitrate: 17045 kb/s
    Stream #0:0(und): Video: h264 (High) (avc1 / 0x31637661), yuv420p(tv, bt709), 1920x1080, 16932 kb/s, 29.98 fps, 29.97 tbr, 600 tbn, 1200 tbc (default)
    Metadata:
      rotate          : 90
      creation_time   : 2019-05-04T10:00:00.000000Z
      handler_name    : Core Media Data Handler
      encoder         : H.264
    Side data:
      displaymatrix: rotation of -90.00 degrees
    Stream #0:1(und): Audio: aac (LC) (mp4a / 0x6134706D), 44100 Hz, mono, fltp, 87 kb/s (default)
    Metadata:
      creation_time   : 2019-05-04T10:00:00.000000Z
      handler_name    : Core Media Data Handler
At least one output file must be specified
"""

# ffmpeg 2: only the ``rotate`` tag, no side data printed; audio stream first.
OLDEST_ROTATE_TAG_ONLY = """\
Input #0, mov,mp4,m4a,3gp,3g2,mj2, from 'upside_left.mp4':
  Duration: 00:00:02.50, start: 0.000000, bitrate: 800 kb/s
    Stream #0:0(und): Audio: aac (mp4a / 0x6134706D), 44100 Hz, stereo, fltp, 96 kb/s (default)
    Metadata:
      handler_name    : SoundHandler
    Stream #0:1(und): Video: h264 (Main) (avc1 / 0x31637661), yuv420p, 640x480, 700 kb/s, 25 fps, 25 tbr, 12800 tbn, 50 tbc (default)
    Metadata:
      rotate          : 270
      handler_name    : VideoHandler
At least one output file must be specified
"""

MODERN_UPSIDE_DOWN = """\
Input #0, mov,mp4,m4a,3gp,3g2,mj2, from 'upside_down.mp4':
  Duration: 00:00:01.00, start: 0.000000, bitrate: 300 kb/s
  Stream #0:0[0x1](und): Video: h264 (High) (avc1 / 0x31637661), yuv420p(progressive), 320x240 [SAR 1:1 DAR 4:3], 269 kb/s, 25 fps, 25 tbr, 12800 tbn (default)
    Metadata:
      handler_name    : VideoHandler
    Side data:
      Display Matrix: rotation of -180.00 degrees
At least one output file must be specified
"""

# What ``ffmpeg -display_rotation 90`` writes: +90 counter-clockwise = 270 clockwise.
MODERN_CCW_90 = MODERN_UPSIDE_DOWN.replace("-180.00", "90.00")

# An iTunes-style .m4v: the cover picture is stream 0, the real video stream 1.
COVER_BEFORE_VIDEO = """\
Input #0, mov,mp4,m4a,3gp,3g2,mj2, from 'episode.m4v':
  Metadata:
    major_brand     : M4V 
    minor_version   : 1
  Duration: 00:00:10.00, start: 0.000000, bitrate: 800 kb/s
  Stream #0:0[0x0]: Video: mjpeg (Baseline), yuvj420p(pc, bt470bg/unknown/unknown), 600x600 [SAR 1:1 DAR 1:1], 90k tbr, 90k tbn (attached pic)
  Stream #0:1[0x1](und): Video: h264 (Main) (avc1 / 0x31637661), yuv420p(tv, bt709, progressive), 640x360 [SAR 1:1 DAR 16:9], 700 kb/s, 23.98 fps, 23.98 tbr, 24k tbn (default)
    Metadata:
      handler_name    : VideoHandler
  Stream #0:2[0x2](eng): Audio: aac (LC) (mp4a / 0x6134706D), 44100 Hz, stereo, fltp, 96 kb/s (default)
At least one output file must be specified
"""

# What ffmpeg 9 prints for an mp4 with a cover added (the mp4 muxer puts it last).
COVER_AFTER_VIDEO = """\
Input #0, mov,mp4,m4a,3gp,3g2,mj2, from 'withcover.mp4':
  Duration: 00:00:02.00, start: 0.000000, bitrate: 284 kb/s
  Stream #0:0[0x1](und): Video: h264 (High) (avc1 / 0x31637661), yuv420p(progressive), 320x240 [SAR 1:1 DAR 4:3], 269 kb/s, 25 fps, 25 tbr, 12800 tbn (default)
    Metadata:
      handler_name    : VideoHandler
  Stream #0:1[0x0]: Video: png, rgb24(pc, gbr/unknown/unknown), 64x64 [SAR 1:1 DAR 1:1], 90k tbr, 90k tbn (attached pic)
At least one output file must be specified
"""

# A raw .h264 elementary stream: no container duration, no start.
DURATION_NA = """\
Input #0, h264, from 'clip.h264':
  Duration: N/A, bitrate: N/A
  Stream #0:0: Video: h264 (High), yuv420p(progressive), 320x240 [SAR 1:1 DAR 4:3], 25 fps, 50 tbr, 1200k tbn
At least one output file must be specified
"""

# Old ffmpeg on a raw stream: only tbr (real base rate) is printed, no "fps".
TBR_ONLY = """\
Input #0, h264, from 'old.h264':
  Duration: N/A, bitrate: N/A
    Stream #0:0: Video: h264 (Main), yuv420p, 640x480, 25 tbr, 1200k tbn, 50 tbc
At least one output file must be specified
"""

# Old ffmpeg on a variable-rate Matroska file: tbr is the millisecond time base, printed "1k".
TBR_1K = """\
Input #0, matroska,webm, from 'vfr.mkv':
  Metadata:
    ENCODER         : Lavf58.29.100
  Duration: 01:02:03.50, start: 0.000000, bitrate: 120 kb/s
    Stream #0:0: Video: h264 (High), yuv420p(progressive), 640x480 [SAR 1:1 DAR 4:3], 1k tbr, 1k tbn, 2k tbc (default)
    Metadata:
      DURATION        : 01:02:03.500000000
At least one output file must be specified
"""

# An .m4a (or an .mp4 with only sound): no video stream at all.
AUDIO_ONLY = """\
Input #0, mov,mp4,m4a,3gp,3g2,mj2, from 'voice.mp4':
  Duration: 00:00:01.00, start: 0.000000, bitrate: 98 kb/s
  Stream #0:0[0x1](und): Audio: aac (LC) (mp4a / 0x6134706D), 44100 Hz, mono, fltp, 70 kb/s (default)
    Metadata:
      handler_name    : SoundHandler
At least one output file must be specified
"""

# A song with cover art: the only "video" is the attached picture, which is not a video.
AUDIO_WITH_COVER = """\
Input #0, mov,mp4,m4a,3gp,3g2,mj2, from 'song.m4a':
  Duration: 00:00:01.00, start: 0.000000, bitrate: 98 kb/s
  Stream #0:0[0x1](und): Audio: aac (LC) (mp4a / 0x6134706D), 44100 Hz, mono, fltp, 70 kb/s (default)
  Stream #0:1[0x0]: Video: png, rgb24(pc, gbr/unknown/unknown), 64x64 [SAR 1:1 DAR 1:1], 90k tbr, 90k tbn (attached pic)
At least one output file must be specified
"""

# A stream ffmpeg could not size (codec parameters not found): nothing to decode.
ZERO_SIZE = """\
Input #0, mpegts, from 'broken.ts':
  Duration: 00:00:04.00, start: 1.400000, bitrate: 188 kb/s
  Stream #0:0[0x100]: Video: h264, none, 0x0, 90k tbn
At least one output file must be specified
"""


@pytest.mark.parametrize(
    "text, stream_index, wh, coded_wh, rotation_deg, fps, duration_s",
    [
        # modern display matrix -90 (counter-clockwise) = 90 clockwise: upright size is swapped
        (MODERN_DISPLAY_MATRIX, 0, (1080, 1920), (1920, 1080), 90, 30.0, 3.0),
        # old rotate tag 90 (clockwise) and displaymatrix -90 agree: 90, swapped
        (OLD_ROTATE_TAG, 0, (1080, 1920), (1920, 1080), 90, 29.98, 5.03),
        # oldest: the rotate tag alone, on the second stream (audio first)
        (OLDEST_ROTATE_TAG_ONLY, 1, (480, 640), (640, 480), 270, 25.0, 2.5),
        # upside down: 180, size not swapped
        (MODERN_UPSIDE_DOWN, 0, (320, 240), (320, 240), 180, 25.0, 1.0),
        # +90 counter-clockwise (what `-display_rotation 90` writes) is 270 clockwise
        (MODERN_CCW_90, 0, (240, 320), (320, 240), 270, 25.0, 1.0),
        # attached cover picture first: skipped, the real video is stream 1
        (COVER_BEFORE_VIDEO, 1, (640, 360), (640, 360), 0, 23.98, 10.0),
        # attached cover picture after the video: the video (stream 0) is taken
        (COVER_AFTER_VIDEO, 0, (320, 240), (320, 240), 0, 25.0, 2.0),
        # Duration: N/A -> None; "25 fps" wins over "50 tbr"
        (DURATION_NA, 0, (320, 240), (320, 240), 0, 25.0, None),
        # no "fps", only "25 tbr": the rate comes from tbr
        (TBR_ONLY, 0, (640, 480), (640, 480), 0, 25.0, None),
        # "1k tbr" is 1000 (ffmpeg prints multiples of 1000 with a k); hours in the duration
        (TBR_1K, 0, (640, 480), (640, 480), 0, 1000.0, 3723.5),
    ],
)
def test_parse_ffmpeg_info(text, stream_index, wh, coded_wh, rotation_deg, fps, duration_s):
    info = parse_ffmpeg_info(text)
    assert info.stream_index == stream_index
    assert info.resolution_wh == wh
    assert (info.width, info.height) == wh
    assert (info.coded_width, info.coded_height) == coded_wh
    assert info.rotation_deg == rotation_deg
    assert info.rotation_deg in (0, 90, 180, 270)
    assert info.fps == pytest.approx(fps)
    if duration_s is None:
        assert info.duration_s is None
    else:
        assert info.duration_s == pytest.approx(duration_s)


def test_parse_ffmpeg_info_reads_codec_and_start():
    # an mpeg-ts starts at 1.4 s; the codec is the first word of the description
    text = ZERO_SIZE.replace(
        "h264, none, 0x0, 90k tbn",
        "h264 (High) ([27][0][0][0] / 0x001B), yuv420p(progressive), 160x120, 25 fps, 25 tbr, 90k tbn",
    )
    info = parse_ffmpeg_info(text)
    assert (info.codec, info.start_s, info.resolution_wh) == ("h264", 1.4, (160, 120))


@pytest.mark.parametrize(
    "text, match",
    [
        # sound only: nothing to look at
        (AUDIO_ONLY, "no video stream"),
        # sound plus cover art: the picture is not a video stream
        (AUDIO_WITH_COVER, "no video stream"),
        # a video stream ffmpeg could not size
        (ZERO_SIZE, "no video stream"),
        # ffmpeg's own error is passed on
        ("[in#0 @ 0x1] Error opening input: Invalid data found when processing input\n", "Invalid data found"),
        # nothing at all
        ("", "no video stream"),
    ],
)
def test_parse_ffmpeg_info_without_video_raises(text, match):
    with pytest.raises(DecodeError, match=match):
        parse_ffmpeg_info(text)


def test_parse_error_omits_the_usage_complaint():
    with pytest.raises(DecodeError) as excinfo:
        parse_ffmpeg_info(AUDIO_ONLY)
    assert "At least one output file" not in str(excinfo.value)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        # rotations other than right angles are not representable
        (dict(rotation_deg=45), "rotation_deg must be"),
        # a negative angle must be normalised by the caller
        (dict(rotation_deg=-90), "rotation_deg must be"),
        # zero size
        (dict(coded_width=0), "frame size must be positive"),
        # negative size
        (dict(coded_height=-1), "frame size must be positive"),
    ],
)
def test_video_info_validates(kwargs, match):
    fields = dict(
        stream_index=0,
        coded_width=320,
        coded_height=240,
        rotation_deg=0,
        fps=25.0,
        duration_s=1.0,
        start_s=0.0,
        codec="h264",
    )
    with pytest.raises(ValueError, match=match):
        VideoInfo(**{**fields, **kwargs})


# --------------------------------------------------------------------------------------------
# probe_video on real files
# --------------------------------------------------------------------------------------------


def _with_display_rotation(src: Path, dst: Path, ccw_deg: float) -> Path:
    """Copy ``src`` with a display matrix of ``ccw_deg`` (counter-clockwise, as ffmpeg's option)."""
    ffmpeg("-display_rotation", str(ccw_deg), "-i", str(src), "-c", "copy", str(dst))
    return dst


def _ffmpeg_decoded_size_wh(path: Path, tmp_dir: Path) -> tuple[int, int]:
    """The size of the frames ffmpeg itself delivers (after its autorotation), read from a PPM header."""
    out = tmp_dir / f"{path.stem}_first.ppm"
    ffmpeg("-i", str(path), "-frames:v", "1", "-c:v", "ppm", "-f", "image2", str(out))
    magic, w, h = out.read_bytes().split(maxsplit=3)[:3]
    assert magic == b"P6"
    return int(w), int(h)


@pytest.fixture(scope="module")
def clip_160x120(tmp_path_factory) -> Path:
    """2 s, 25 fps, 160x120 H.264; the moov atom at the end (no +faststart)."""
    return make_lavfi_clip(tmp_path_factory.mktemp("probe") / "clip.mp4", size="160x120", duration_s=2.0)


def test_probe_video_normal_clip(clip_160x120):
    info = probe_video(clip_160x120)
    assert info.resolution_wh == (160, 120)
    assert info.rotation_deg == 0
    assert info.fps == pytest.approx(25.0)
    assert info.duration_s == pytest.approx(2.0, abs=0.1)
    assert (info.stream_index, info.codec) == (0, "h264")


@pytest.mark.parametrize(
    "ccw_deg, rotation_deg, wh",
    [
        # -display_rotation 90 is counter-clockwise: 270 clockwise, portrait
        (90, 270, (120, 160)),
        # upside down: landscape
        (180, 180, (160, 120)),
        # 270 counter-clockwise = 90 clockwise, portrait
        (270, 90, (120, 160)),
        # negative counter-clockwise is clockwise
        (-90, 90, (120, 160)),
        # within a degree of 90 (ffmpeg autorotates by transposing): still 270 clockwise
        (89.6, 270, (120, 160)),
        # 60 degrees: ffmpeg rotates in place and keeps the coded size, the probe claims portrait
        pytest.param(60, 0, (160, 120)),
    ],
)
def test_probe_video_display_rotation(clip_160x120, tmp_path, ccw_deg, rotation_deg, wh):
    rotated = _with_display_rotation(clip_160x120, tmp_path / "rotated.mp4", ccw_deg)
    info = probe_video(rotated)
    # the documented contract: width/height are the size of the frames the decoder delivers
    assert info.resolution_wh == _ffmpeg_decoded_size_wh(rotated, tmp_path)
    assert info.rotation_deg == rotation_deg
    assert info.resolution_wh == wh
    assert (info.coded_width, info.coded_height) == (160, 120)


def test_probe_video_skips_attached_cover_picture(tmp_path, clip_160x120):
    # an .m4a with cover art: ffmpeg 9 shows the cover as a video stream marked (attached pic)
    cover = tmp_path / "cover.png"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=64x64:rate=1", "-frames:v", "1", str(cover))
    song = tmp_path / "song.mp4"
    ffmpeg(
        "-f",
        "lavfi",
        "-i",
        "sine=duration=1",
        "-i",
        str(cover),
        "-map",
        "0",
        "-map",
        "1",
        "-c:a",
        "aac",
        "-c:v",
        "copy",
        "-disposition:v",
        "attached_pic",
        str(song),
    )
    with pytest.raises(DecodeError, match="no video stream"):
        probe_video(song)

    # the same cover added to a real clip: the clip's stream is taken, not the 64x64 picture
    with_cover = tmp_path / "with_cover.mp4"
    ffmpeg(
        "-i",
        str(clip_160x120),
        "-i",
        str(cover),
        "-map",
        "0",
        "-map",
        "1",
        "-c",
        "copy",
        "-disposition:v:1",
        "attached_pic",
        str(with_cover),
    )
    info = probe_video(with_cover)
    assert (info.stream_index, info.resolution_wh) == (0, (160, 120))


def test_probe_video_odd_size(tmp_path):
    # 4:4:4 so that libx264 accepts odd dimensions
    clip = make_lavfi_clip(
        tmp_path / "odd.mp4",
        size="321x241",
        duration_s=0.4,
        source="testsrc",
        extra=("-c:v", "libx264", "-pix_fmt", "yuv444p"),
    )
    info = probe_video(clip)
    assert info.resolution_wh == (321, 241)


def _zero_bytes(tmp_path: Path) -> Path:
    path = tmp_path / "empty.mp4"
    path.write_bytes(b"")
    return path


def _random_bytes(tmp_path: Path) -> Path:
    path = tmp_path / "noise.mp4"
    path.write_bytes(np.random.default_rng(0).bytes(64 * 1024))
    return path


def _text(tmp_path: Path) -> Path:
    path = tmp_path / "notes.mp4"
    path.write_text("these are meeting notes, not a video\n" * 20)
    return path


def _truncated(tmp_path: Path) -> Path:
    full = make_lavfi_clip(tmp_path / "full.mp4", size="160x120", duration_s=2.0)
    data = full.read_bytes()
    # without +faststart the moov atom (the index) is written last: half the file has none
    assert data.find(b"moov") > len(data) // 2
    path = tmp_path / "truncated.mp4"
    path.write_bytes(data[: len(data) // 2])
    return path


def _audio_only(tmp_path: Path) -> Path:
    path = tmp_path / "voice.mp4"
    ffmpeg("-f", "lavfi", "-i", "sine=duration=1", "-c:a", "aac", "-f", "mp4", str(path))
    return path


@pytest.mark.parametrize(
    "make, match",
    [
        # 0 bytes: said before ffmpeg runs
        (_zero_bytes, r"empty file \(0 bytes\)"),
        # random bytes named .mp4: ffmpeg's own reason is passed on
        (_random_bytes, "not a readable video: .*Invalid data found"),
        # a text file named .mp4
        (_text, "not a readable video: .*Invalid data found"),
        # the first half of an mp4 whose moov atom is at the end
        (_truncated, "not a readable video: .*Invalid data found"),
        # sound only (AAC in an mp4)
        (_audio_only, "no video stream found"),
    ],
)
def test_probe_video_bad_files_raise_decode_error(tmp_path, make, match):
    path = make(tmp_path)
    with pytest.raises(DecodeError, match=match):
        probe_video(path)


def test_probe_video_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        probe_video(tmp_path / "nope.mp4")


def test_probe_video_timeout(clip_160x120):
    # no ffmpeg starts, reads and exits within 100 microseconds
    with pytest.raises(TimeoutError, match="probe took more than"):
        probe_video(clip_160x120, timeout_s=1e-4)


def test_probe_video_relative_name_with_colon(clip_160x120, tmp_path, monkeypatch):
    (tmp_path / "take:1.mp4").write_bytes(clip_160x120.read_bytes())
    monkeypatch.chdir(tmp_path)
    assert probe_video("take:1.mp4").resolution_wh == (160, 120)


# --------------------------------------------------------------------------------------------
# What the viewer sees: pixel shape, colour, which stream, duration from the stream's tag
# --------------------------------------------------------------------------------------------

_MP4_HEADER = """Input #0, mov,mp4,m4a,3gp,3g2,mj2, from 'x.mp4':
  Duration: 00:00:04.00, start: 0.000000, bitrate: 870 kb/s
"""


def _video_line(index: int, description: str, disposition: str = "(default)") -> str:
    return f"  Stream #0:{index}[0x{index + 1}](und): Video: {description} {disposition}\n    Metadata:\n"


@pytest.mark.parametrize(
    "coded, sar, display_wh, sar_text",
    [
        # anamorphic: 640x720 stored at 2:1 shows as 1280x720
        ("640x720", "2:1", (1280, 720), "2:1"),
        # DVD PAL widescreen and 4:3
        ("720x576", "64:45", (1024, 576), "64:45"),
        ("720x576", "16:15", (768, 576), "16:15"),
        # DVD NTSC widescreen and 4:3 (853.3 rounds to 853)
        ("720x480", "32:27", (853, 480), "32:27"),
        ("720x480", "8:9", (640, 480), "8:9"),
        # HDV
        ("1440x1080", "4:3", (1920, 1080), "4:3"),
        # square pixels, and the unknown 0:1 some muxers write: as stored
        ("1280x720", "1:1", (1280, 720), "1:1"),
        ("1280x720", "0:1", (1280, 720), "1:1"),
        # damage, not a display shape: ignored
        ("1280x720", "100:1", (1280, 720), "1:1"),
        # not in lowest terms
        ("640x720", "4:2", (1280, 720), "2:1"),
    ],
)
def test_parse_ffmpeg_info_sample_aspect_ratio(coded, sar, display_wh, sar_text):
    w, h = coded.split("x")
    description = f"h264 (High) (avc1 / 0x31637661), yuv420p(progressive), {coded} [SAR {sar} DAR 16:9], 25 fps, 25 tbr"
    info = parse_ffmpeg_info(_MP4_HEADER + _video_line(0, description))
    assert info.resolution_wh == display_wh
    assert (info.coded_width, info.coded_height) == (int(w), int(h))
    assert info.sar_text == sar_text


def test_parse_ffmpeg_info_sample_aspect_ratio_with_rotation():
    # a portrait phone clip with non-square pixels: stretch the stored width, then turn
    description = "h264 (High), yuv420p(progressive), 640x720 [SAR 2:1 DAR 16:9], 25 fps, 25 tbr"
    text = (
        _MP4_HEADER + _video_line(0, description) + "    Side data:\n      displaymatrix: rotation of -90.00 degrees\n"
    )
    info = parse_ffmpeg_info(text)
    assert info.rotation_deg == 90
    assert info.resolution_wh == (720, 1280)
    assert info.upright_coded_wh == (720, 640)


@pytest.mark.parametrize(
    "pixel_format, pix_fmt, transfer, primaries, is_hdr",
    [
        # HLG from a phone: 10-bit, BT.2020
        ("yuv420p10le(tv, bt2020nc/bt2020/arib-std-b67, progressive)", "yuv420p10le", "arib-std-b67", "bt2020", True),
        # PQ (HDR10)
        ("yuv420p10le(tv, bt2020nc/bt2020/smpte2084)", "yuv420p10le", "smpte2084", "bt2020", True),
        # all three BT.709: ffmpeg prints the name once
        ("yuv420p(tv, bt709, progressive)", "yuv420p", "bt709", "bt709", False),
        # partly unknown: unknown is ""
        ("yuv420p(tv, bt470bg/unknown/unknown, progressive)", "yuv420p", "", "", False),
        # nothing said
        ("yuv420p(progressive)", "yuv420p", "", "", False),
        ("yuv420p", "yuv420p", "", "", False),
    ],
)
def test_parse_ffmpeg_info_colour(pixel_format, pix_fmt, transfer, primaries, is_hdr):
    description = f"hevc (Main 10) (hvc1 / 0x31637668), {pixel_format}, 1280x720, 560 kb/s, 25 fps, 25 tbr"
    info = parse_ffmpeg_info(_MP4_HEADER + _video_line(0, description))
    assert (info.pix_fmt, info.color_transfer, info.color_primaries) == (pix_fmt, transfer, primaries)
    assert info.is_hdr is is_hdr
    assert info.resolution_wh == (1280, 720)


_PREVIEW = "h264 (High), yuv420p(progressive), 160x90 [SAR 1:1 DAR 16:9], 1 fps, 1 tbr"
_MAIN = "h264 (High), yuv420p(progressive), 1280x720, 25 fps, 25 tbr"
_ANGLE = "h264 (High), yuv420p(progressive), 1920x1080, 25 fps, 25 tbr"


@pytest.mark.parametrize(
    "streams, chosen",
    [
        # a preview track first, the film marked default: the film
        ([(_PREVIEW, ""), (_MAIN, "(default)")], 1),
        # the film first and default
        ([(_MAIN, "(default)"), (_PREVIEW, "")], 0),
        # no default anywhere: the largest by pixels
        ([(_PREVIEW, ""), (_MAIN, "")], 1),
        ([(_MAIN, ""), (_ANGLE, ""), (_PREVIEW, "")], 1),
        # every stream default (Matroska's flag defaults to on): the largest of them
        ([(_PREVIEW, "(default)"), (_MAIN, "(default)")], 1),
        # the default one wins over a larger one that is not
        ([(_ANGLE, ""), (_MAIN, "(default)")], 1),
        # equal sizes: the first
        ([(_MAIN, ""), (_MAIN, "")], 0),
        # cover art marked default is never the video
        ([(_ANGLE, "(default) (attached pic)"), (_MAIN, "")], 1),
    ],
)
def test_parse_ffmpeg_info_chooses_the_stream(streams, chosen):
    text = _MP4_HEADER + "".join(_video_line(i, d, disp) for i, (d, disp) in enumerate(streams))
    info = parse_ffmpeg_info(text)
    assert info.stream_index == chosen
    assert info.n_video_streams == sum("attached pic" not in disp for _, disp in streams)


def test_parse_ffmpeg_info_duration_from_the_stream_tag():
    # mkvmerge writes no segment duration in some modes but a DURATION tag per track
    text = (
        "Input #0, matroska,webm, from 'x.mkv':\n"
        "  Duration: N/A, start: 0.000000, bitrate: N/A\n"
        "  Stream #0:0: Video: h264 (High), yuv420p(progressive), 640x360, 25 fps, 25 tbr, 1k tbn\n"
        "    Metadata:\n"
        "      DURATION        : 00:01:22.040000000\n"
    )
    info = parse_ffmpeg_info(text)
    assert info.duration_s == pytest.approx(82.04)
    assert info.duration_source == "stream_tag"


def test_probe_video_measures_a_missing_duration(tmp_path):
    # Matroska written live to a pipe never writes its duration
    path = tmp_path / "live.mkv"
    with open(path, "wb") as out:
        subprocess.run(
            [
                ffmpeg_exe(),
                "-hide_banner",
                "-loglevel",
                "error",
                "-f",
                "lavfi",
                "-i",
                "testsrc2=size=160x120:rate=25",
                "-t",
                "7",
                "-c:v",
                "libx264",
                "-f",
                "matroska",
                "-live",  # as a live capture or MediaRecorder writes it: no duration, no index
                "1",
                "pipe:1",
            ],
            stdout=out,
            check=True,
            timeout=60,
        )
    text = subprocess.run([ffmpeg_exe(), "-hide_banner", "-i", str(path)], capture_output=True).stderr.decode()
    assert "Duration: N/A" in text
    info = probe_video(path)
    assert info.duration_s == pytest.approx(7.0, abs=0.05)
    assert info.duration_source == "packets"

    # when it cannot be measured either, the duration stays unknown (the scan says so in its row)
    assert measure_duration_s(path, dataclasses.replace(info, stream_index=5)) is None


def test_probe_video_image_files_are_clips_only_when_animated(tmp_path):
    """One rule with the web app: a GIF/WebP/APNG of several frames is a clip, of one a still."""
    from PIL import Image

    frames = [Image.fromarray(np.full((48, 64, 3), 40 * i, dtype=np.uint8)) for i in range(4)]
    frames[0].save(tmp_path / "still.gif")
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:], duration=200, loop=0)
    frames[0].save(tmp_path / "anim.webp", save_all=True, append_images=frames[1:], duration=200, loop=0)
    with pytest.raises(DecodeError, match=r"a still image \(gif\)"):
        probe_video(tmp_path / "still.gif")
    for name in ("anim.gif", "anim.webp"):
        info = probe_video(tmp_path / name)
        assert info.resolution_wh == (64, 48)
        assert info.duration_s == pytest.approx(0.8, abs=0.01)


def _two_stream_mp4(tmp_path: Path, first: Path, second: Path, dispositions: tuple[str, str], name: str) -> Path:
    out = tmp_path / name
    ffmpeg(
        "-i",
        str(first),
        "-i",
        str(second),
        "-map",
        "0:v",
        "-map",
        "1:v",
        "-c",
        "copy",
        "-disposition:v:0",
        dispositions[0],
        "-disposition:v:1",
        dispositions[1],
        str(out),
    )
    return out


def test_a_one_frame_stream_marked_default_is_never_the_clip(tmp_path, clip_160x120):
    # cover art stored as a one-frame MJPEG track: the MP4 muxer drops its attached-picture flag
    cover = tmp_path / "cover.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25", "-frames:v", "1", "-c:v", "mjpeg", str(cover))
    out = _two_stream_mp4(tmp_path, cover, clip_160x120, ("default", "0"), "cover_default.mp4")
    text = subprocess.run([ffmpeg_exe(), "-hide_banner", "-i", str(out)], capture_output=True).stderr.decode()
    assert "attached pic" not in text and "(default)" in text  # the container alone would pick the cover
    info = probe_video(out)
    assert (info.stream_index, info.resolution_wh, info.n_video_streams) == (1, (160, 120), 2)


def test_a_small_stream_marked_default_is_scored_with_a_warning(tmp_path, clip_160x120, caplog):
    large = make_lavfi_clip(tmp_path / "large.mp4", size="640x480", duration_s=1.0)
    out = _two_stream_mp4(tmp_path, clip_160x120, large, ("default", "0"), "preview_default.mp4")
    with caplog.at_level("WARNING"):
        info = probe_video(out)
    assert (info.stream_index, info.resolution_wh) == (0, (160, 120))
    assert "scoring video stream 0 (160x120, marked default); the file also has stream 1 (640x480)" in caplog.text


def test_audio_with_only_a_cover_picture_says_so():
    text = (
        "Input #0, mov,mp4,m4a,3gp,3g2,mj2, from 'song.m4a':\n"
        "  Duration: 00:00:04.00, start: 0.000000, bitrate: 128 kb/s\n"
        "  Stream #0:0[0x1](und): Audio: aac (LC), 44100 Hz, stereo, fltp, 128 kb/s (default)\n"
        "  Stream #0:1[0x0]: Video: mjpeg (Baseline), yuvj420p(pc), 600x338, 90k tbr, 90k tbn (attached pic)\n"
    )
    with pytest.raises(DecodeError, match="only a still cover picture"):
        parse_ffmpeg_info(text)
