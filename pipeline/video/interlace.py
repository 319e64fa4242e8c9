"""Interlaced video: is it, and how the decode turns it into whole frames.

An interlaced frame holds two fields captured 1/50 s (or 1/60 s) apart; scored as it is, every
moving edge is combed, which a detector reads as manipulation (the SD 576i case in
``../shared/cases``: MesoNet's DF weights 0.544 FAKE, against 0.430 REAL progressive and 0.470
after ``bwdif``). The decode deinterlaces such streams with ffmpeg's ``bwdif`` (Bob Weaver,
one frame per frame) before sampling.

Which streams: those whose field order the stream states (``top first``, ``bottom first``:
:attr:`pipeline.video.probe.VideoInfo.field_order`), and those measured interlaced with ffmpeg's
``idet`` filter on their first frames (:func:`detect_field_order`): streams that state no field
order, and broadcast-family ones (MPEG-2, DV, VC-1, anything in MPEG-TS) that say progressive
(:func:`should_measure_interlacing`).
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
from pathlib import Path

from pipeline.video.ffmpeg_bin import ffmpeg_exe, ffmpeg_filters

log = logging.getLogger(__name__)

# Frames idet looks at for a stream that states no field order (about 0.07 s for SD MPEG-2).
IDET_FRAMES = 60
IDET_TIMEOUT_S = 30.0
# A stream is taken as interlaced when idet's multi-frame count of interlaced frames (TFF + BFF)
# is at least this share of the frames it decided on, and it decided on at least IDET_MIN_DECIDED.
IDET_MIN_INTERLACED_SHARE = 0.5
IDET_MIN_DECIDED = 10
# "[Parsed_idet_0 @ 0x...] Multi frame detection: TFF:    61 BFF:     0 Progressive:     0 Undetermined:     0"
_IDET_RE = re.compile(r"Multi frame detection: TFF:\s*(\d+) BFF:\s*(\d+) Progressive:\s*(\d+) Undetermined:\s*(\d+)")
DEINTERLACE_FILTER = "bwdif"
# bwdif's ``parity`` (the field shown first) for each field order of
# :attr:`pipeline.video.probe.VideoInfo.field_order`: ``tb`` is top coded first, bottom shown first.
DISPLAY_PARITY = {"tff": "tff", "bff": "bff", "tb": "bff", "bt": "tff"}
# Broadcast and camcorder codecs and containers, whose "progressive" flag is often wrong (interlaced
# captures re-encoded as progressive): measured with idet whatever the stream states.
IDET_ALWAYS_CODECS = frozenset({"mpeg2video", "mpeg1video", "dvvideo", "vc1"})
IDET_ALWAYS_FORMATS = frozenset({"mpegts"})


def should_measure_interlacing(info) -> bool:
    """Whether :func:`detect_field_order` should look at this stream
    (:class:`pipeline.video.probe.VideoInfo`): it states no field order, or it is of the broadcast
    family (:data:`IDET_ALWAYS_CODECS`, :data:`IDET_ALWAYS_FORMATS`), whose progressive flag is not trusted."""
    if not info.field_order:
        return True
    return info.field_order == "progressive" and (
        info.codec in IDET_ALWAYS_CODECS or info.format_name in IDET_ALWAYS_FORMATS
    )


def can_deinterlace() -> bool:
    """True when the ffmpeg in use has :data:`DEINTERLACE_FILTER` (ffmpeg 4.0 and later)."""
    return DEINTERLACE_FILTER in ffmpeg_filters()


def parse_idet(stderr_text: str) -> str:
    """``tff``, ``bff``, ``progressive`` or ``""`` (too few frames decided) from the log of an
    ``idet`` run: its last multi-frame count (:data:`IDET_MIN_INTERLACED_SHARE`, :data:`IDET_MIN_DECIDED`)."""
    found = _IDET_RE.findall(stderr_text)
    if not found:
        return ""
    tff, bff, progressive, _ = (int(v) for v in found[-1])
    decided = tff + bff + progressive
    if decided < IDET_MIN_DECIDED:
        return ""
    if tff + bff >= IDET_MIN_INTERLACED_SHARE * decided:
        return "tff" if tff >= bff else "bff"
    return "progressive"


def detect_field_order(path: str | Path, stream_index: int, *, timeout_s: float = IDET_TIMEOUT_S) -> str:
    """Measure whether the video stream ``stream_index`` of ``path`` is interlaced: ffmpeg's
    ``idet`` over its first :data:`IDET_FRAMES` frames. Returns as :func:`parse_idet` does;
    ``""`` when the run fails or times out (the stream is then decoded as progressive)."""
    if "idet" not in ffmpeg_filters():
        return ""
    cmd = [
        ffmpeg_exe(),
        "-hide_banner",
        "-nostdin",
        "-nostats",
        "-protocol_whitelist",
        "file",
        "-i",
        os.path.abspath(path),
        "-map",
        f"0:{stream_index}",
        "-vf",
        "idet",
        "-frames:v",
        str(IDET_FRAMES),
        "-an",
        "-sn",
        "-dn",
        "-f",
        "null",
        "-",
    ]
    try:
        done = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout_s, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        log.info("%s: interlace detection failed: %s", path, exc)
        return ""
    return parse_idet(done.stderr.decode("utf-8", errors="replace"))
