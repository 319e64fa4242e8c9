"""Stream sampled RGB frames of a clip out of one ffmpeg pipe.

A clip is never held whole in memory: frames arrive one at a time from a generator. ffmpeg
does the sampling (``fps`` filter, so variable frame rate clips are sampled by timestamp), the
rotation (ffmpeg auto-rotates by the display matrix), the display shape (non-square pixels are
stretched to square ones, as players show them) and, for HDR video (PQ or HLG), the tone
mapping to SDR BT.709, so every frame is upright RGB as a viewer sees it.
"""

from __future__ import annotations

import atexit
import collections
import dataclasses
import functools
import logging
import math
import mmap
import os
import queue
import re
import signal
import subprocess
import threading
import weakref
from collections.abc import Generator
from pathlib import Path

import numpy as np

from pipeline import settings
from pipeline.errors import DecodeError, DecodeTimeoutError
from pipeline.video.ffmpeg_bin import ffmpeg_exe, ffmpeg_filters
from pipeline.video.interlace import DEINTERLACE_FILTER, DISPLAY_PARITY, can_deinterlace
from pipeline.video.memory import read_frame
from pipeline.video.probe import INPUT_OPTIONS, VideoInfo, summarize_ffmpeg_errors

log = logging.getLogger(__name__)

# Frames wider than this are scaled down inside ffmpeg: an 8K frame is 100 MB of RGB and
# its faces are shrunk to 256 px anyway.
MAX_DECODE_LONG_SIDE_PX = 3840


READ_AHEAD_BYTES = 64 * 1024 * 1024
_END = object()  # end of frames, from the reader thread


@dataclasses.dataclass(frozen=True)
class Frame:
    """One sampled frame.

    ``rgb`` is ``uint8`` of shape ``(height, width, 3)``, upright, RGB order.
    ``frame_index`` is the index of the source frame shown (``timestamp_s * fps``).
    ``timestamp_s``: when decoding every frame, the sampling time (``sample_index / sample_fps``,
    the frame on screen then); when non-reference frames are skipped (:func:`skips_frames`), the
    presentation time of the frame actually delivered, at most one decoded-frame interval from
    the sampling time. ``sampling_time_s``: the time this sample stands for
    (``sample_index / sample_fps``; ``None`` when not known): what schedules depend on, so
    they do not move with the frame delivered.
    """

    sample_index: int
    frame_index: int
    timestamp_s: float
    rgb: np.ndarray
    sampling_time_s: float | None = None

    @property
    def schedule_s(self) -> float:
        """``sampling_time_s`` where known, else ``timestamp_s``."""
        return self.timestamp_s if self.sampling_time_s is None else self.sampling_time_s

    def __post_init__(self) -> None:
        if self.rgb.ndim != 3 or self.rgb.shape[2] != 3 or self.rgb.dtype != np.uint8:
            raise ValueError(f"rgb must be uint8 (H, W, 3), got {self.rgb.dtype} {self.rgb.shape}")


@dataclasses.dataclass
class DecodeReport:
    """What one decode delivered, filled in by :func:`iter_frames` as its frames arrive.

    ``n_frames``: frames delivered; ``first_timestamp_s``/``last_timestamp_s``: the first and last
    delivered frame's time (seconds from the file's start, as ffmpeg counts it; ``None`` before
    any); ``ended``: the decoder finished (set once the frames are exhausted); ``stopped_by``:
    the signal that stopped ffmpeg from outside (``"SIGINT"``, ``"SIGKILL"``), ``""`` when it ended by
    itself; ``errors``: ffmpeg's complaints, on one line; ``timed_out_after_all``: the time budget
    ran out after every expected sample had arrived (ffmpeg was still decoding the tail): not a timeout.
    """

    n_frames: int = 0
    first_timestamp_s: float | None = None
    last_timestamp_s: float | None = None
    ended: bool = False
    stopped_by: str = ""
    errors: str = ""
    timed_out_after_all: bool = False

    def add(self, timestamp_s: float) -> None:
        """Count one delivered frame shown at ``timestamp_s``."""
        if self.first_timestamp_s is None:
            self.first_timestamp_s = timestamp_s
        self.last_timestamp_s = timestamp_s
        self.n_frames += 1


# Sparse sampling decodes fewer frames. When samples are far apart (at least this many source
# frames per sample), the decoder is told to skip non-reference frames (``-skip_frame noref``):
# no other frame is predicted from them, so every frame still decoded is bit-exact, and each
# sample is the first decoded frame from the one on screen at the sampling time on. Measured
# with ffmpeg 9 (frames decoded of 300, pixels against a full decode): h264 with B-pyramid 152-169,
# exact; hevc (x265) 148, exact; mpeg2video/mpeg4 101, exact; av1 (libdav1d) 151, exact;
# vp9 300 (nothing to skip, altref or not); intra-only codecs (prores, mjpeg, ...) nothing to skip.
# ``bidir`` (skip every B-frame) is NOT safe: x264's B-pyramid makes some B-frames references of
# P-frames, and h264 then silently delivered wrong pixels in 75 of 79 frames (no error logged);
# hevc lost all but 5 frames with reference errors.
SKIP_NONREF_CODECS = frozenset({"h264", "hevc", "mpeg2video", "mpeg4", "av1"})
SPARSE_MIN_FRAMES_PER_SAMPLE = 16
# Elementary streams without a container carry no reliable timestamps to sample by.
_RAW_STREAM_FORMATS = frozenset({"h264", "hevc", "mpegvideo", "m4v", "obu", "ivf"})
# Set to 0 to decode every frame whatever the sampling (exact sampling times, the way before
# 0.4.0); sparse decoding is on by default (docs/performance.md). The scan's own setting is
# ``ScanConfig.sparse_decode``; this variable only sets its default (pipeline.settings).
SPARSE_DECODE_ENV = settings.SPARSE_DECODE_ENV

# Shot cuts: ffmpeg's ``scdet`` filter scores the change between consecutive decoded frames
# (0-100) before sampling, in the same decode (1-4% more decode time on the four DFDC clips,
# ``bench/cut_cost.py``; a second decoding pass, PySceneDetect's way, would double it). Measured
# (``bench/identity_links.py``): cuts between shots of different clips score 14.6-28; inside the
# 30 shared clips, no cut, the highest score is 8.1 (a picture inset changing in a news studio)
# and motion stays under 7. ffmpeg's default threshold, 10, separates them.
CUT_SCORE_THRESHOLD = 10.0


def sparse_decode_enabled() -> bool:
    """The default of sparse decoding: true unless ``$DEEPFAKE_SCANNER_SPARSE_DECODE`` is ``0``,
    ``false``, ``no`` or ``off`` (any case). A scan states its own (``ScanConfig.sparse_decode``)
    and passes it down, so its workers and the evidence re-decode agree whatever their environment."""
    return settings.setting("sparse_decode").from_env(True)


# How long to wait for the decoder's report of a delivered frame's timestamp: it is written
# before the frame, so it is normally there already.
TIMESTAMP_WAIT_S = 5.0


@functools.lru_cache(maxsize=1)
def can_skip_frames() -> bool:
    """True when the ffmpeg in use has ``-fps_mode`` (ffmpeg 5.1 and later), which sparse
    sampling needs to pass the selected frames through unchanged."""
    try:
        done = subprocess.run(
            [ffmpeg_exe(), "-hide_banner", "-h", "long"], capture_output=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return b"fps_mode" in done.stdout + done.stderr


def skips_frames(info: VideoInfo, sample_fps: float, sparse: bool | None = None) -> bool:
    """Whether :func:`iter_frames` skips non-reference frames for this clip at ``sample_fps``.

    Only when the clip's frame rate is known, samples are at least
    :data:`SPARSE_MIN_FRAMES_PER_SAMPLE` source frames apart (dense sampling and rates close to
    the clip's decode everything), the codec is in :data:`SKIP_NONREF_CODECS` (inter-frame
    codecs with frames nothing refers to; intra-only codecs and vp9 gain nothing), the clip is
    in a container (not a raw elementary stream), the ffmpeg in use can (:func:`can_skip_frames`)
    and sparse decoding is not switched off (``sparse``; ``None``: :func:`sparse_decode_enabled`).
    """
    if sparse is None:
        sparse = sparse_decode_enabled()
    if not sparse or will_deinterlace(info):  # deinterlacing needs every field
        return False
    if not info.fps or not sample_fps > 0 or info.fps / sample_fps < SPARSE_MIN_FRAMES_PER_SAMPLE:
        return False
    if info.codec not in SKIP_NONREF_CODECS or info.format_name in _RAW_STREAM_FORMATS:
        return False
    return can_skip_frames()


def _sparse_select_expr(sample_fps: float, source_fps: float) -> str:
    """The ``select`` expression: the first decoded frame whose time ``t`` is past the start of
    the frame on screen at each sampling time ``k / sample_fps`` (``t > k/sample_fps - 1/fps``),
    one frame per sampling time at most. Register 0 holds the next sampling time; after a gap
    in the decoded frames the sampling times it covered are passed over, not filled with copies.
    With nothing skipped this is the frame the ``fps`` filter picks (``round=up``)."""
    lead_s = 1.0 / source_fps - 1e-6
    rate = f"{sample_fps:.6f}"
    shifted = f"(t+{lead_s:.6f})"
    return f"if(lt({shifted},ld(0)),0,st(0,(floor({shifted}*{rate})+1)/{rate}))"


def sampling_fps(info: VideoInfo, fps: float, max_frames: int) -> float:
    """The rate to sample at: ``fps``, lowered so that at most ``max_frames`` spread evenly over
    the clip, and never above the clip's own rate (which would only duplicate frames)."""
    settings.check("fps", fps)
    settings.check("max_frames", max_frames)
    rate = fps
    if info.fps:
        rate = min(rate, info.fps)
    if info.duration_s:
        rate = min(rate, max_frames / info.duration_s)
    return rate


# HDR to SDR: linear light at 100 nits nominal peak (SDR white, zscale's default), BT.709
# primaries, the Mobius tone curve kept linear up to 0.8 of SDR white (faces, which sit in the
# SDR range, keep their brightness; only highlights above roll off instead of clipping), BT.709
# transfer and matrix. Measured on HLG and PQ made from an SDR clip (the case file and two
# generated ones): p_fake 0.411-0.423 against 0.410 for the SDR frames (Mobius at its default
# 0.3: 0.421-0.427; Reinhard 0.434-0.446; Hable darkens faces: mean level 54 against 81 of 255;
# npl=203 makes SDR content carried in HDR 25% too dark).
TONE_MAP_FILTERS = ("zscale", "tonemap")
TONE_MAP_NOMINAL_PEAK_NITS = 100
TONE_MAP_CURVE = "mobius"
TONE_MAP_LINEAR_UP_TO = 0.8


def can_tone_map() -> bool:
    """True when the ffmpeg in use has the filters HDR to SDR conversion needs
    (:data:`TONE_MAP_FILTERS`; ``zscale`` comes with libzimg, which not every build has)."""
    return set(TONE_MAP_FILTERS) <= ffmpeg_filters()


def will_deinterlace(info: VideoInfo) -> bool:
    """Whether frames of this clip are deinterlaced (:mod:`pipeline.video.interlace`): interlaced
    streams, where this ffmpeg has the filter (else a warning is logged and frames stay combed)."""
    return info.is_interlaced and can_deinterlace()


def passthrough_options() -> dict[str, str]:
    """The output option that writes exactly the frames the filter graph gives, no more:
    ``-fps_mode passthrough`` (ffmpeg 5.1 and later), else the older ``-vsync passthrough``.
    Without it the rawvideo output is constant frame rate from time 0, so a video stream that
    starts late (after an audio-only lead) gets its first frame repeated over the lead."""
    return {"fps_mode": "passthrough"} if can_skip_frames() else {"vsync": "passthrough"}


def can_detect_cuts() -> bool:
    """True when the ffmpeg in use has the ``scdet`` filter (ffmpeg 4.4 and later)."""
    return "scdet" in ffmpeg_filters()


def will_tone_map(info: VideoInfo) -> bool | None:
    """For HDR clips, whether frames are converted to SDR (``False``: this ffmpeg cannot);
    ``None`` for SDR clips, which decode as they always did."""
    return can_tone_map() if info.is_hdr else None


def decode_size_wh(info: VideoInfo, max_long_side_px: int = MAX_DECODE_LONG_SIDE_PX) -> tuple[int, int]:
    """Size of the frames ffmpeg will deliver: the displayed size (square pixels, upright),
    long side capped at ``max_long_side_px``."""
    w, h = info.width, info.height
    long_side = max(w, h)
    if long_side <= max_long_side_px:
        return w, h
    scale = max_long_side_px / long_side
    return max(1, round(w * scale)), max(1, round(h * scale))


def build_decode_command(
    path: str | Path,
    info: VideoInfo,
    *,
    sample_fps: float,
    max_frames: int,
    size_wh: tuple[int, int],
    skip_frames: bool = False,
    detect_cuts: bool = False,
) -> list[str]:
    """The ffmpeg command line that writes sampled, upright ``rgb24`` frames of ``size_wh`` to stdout.

    Interlaced streams are deinterlaced first (``bwdif``, one frame per frame, :func:`will_deinterlace`).
    ``sample_fps`` goes to the ``fps`` filter with ``round=up``; with ``skip_frames``
    (:func:`skips_frames`) the decoder skips non-reference frames instead and a ``select`` filter
    (:func:`_sparse_select_expr`) picks one decoded frame per sampling time. Either way
    ``showinfo`` logs each sampled frame's time (the log is at ``level+info``, each line tagged
    with its level) and the sampled frames pass through unchanged (:func:`passthrough_options`):
    only frames the video stream has are written, never copies over a stretch without picture
    (an audio-only lead). HDR clips are then tone-mapped
    (:func:`will_tone_map`); the ``scale`` filter is added only when ``size_wh`` differs from
    the stored frame turned upright (area averaging when shrinking, bicubic when a side grows,
    as non-square pixels stretched to their display shape do), followed by ``setsar=1``. An
    SDR clip with square pixels at its own size gets exactly the command it always did. Audio,
    subtitle and data streams are dropped; at most ``max_frames`` frames are written. ``path``
    is made absolute: ffmpeg would read a bare ``take:1.mp4`` as protocol ``take``. With
    ``detect_cuts``, ``scdet`` (:data:`CUT_SCORE_THRESHOLD`) sees every decoded frame before
    sampling and logs each cut at info level.
    """
    import ffmpeg  # ffmpeg-python: builds the command line

    width, height = size_wh
    # ffmpeg-python hashes its arguments as UTF-8, which a file name with non-UTF-8 bytes is
    # not: the graph is built on a placeholder and the real path put into the command line.
    placeholder = "input-path-placeholder"
    input_options = {"protocol_whitelist": INPUT_OPTIONS[1]}
    if skip_frames:
        input_options["skip_frame"] = "noref"
    stream = ffmpeg.input(placeholder, **input_options)[str(info.stream_index)]
    if will_deinterlace(info):
        parity = DISPLAY_PARITY[info.field_order]
        stream = stream.filter(DEINTERLACE_FILTER, mode="send_frame", parity=parity, deint="all")
    if detect_cuts:
        stream = stream.filter("scdet", threshold=CUT_SCORE_THRESHOLD)
    if skip_frames:
        assert info.fps is not None, "skip_frames needs the clip's frame rate (see skips_frames)"
        stream = stream.filter("select", _sparse_select_expr(sample_fps, info.fps))
    else:
        # round=up: the sample at t is the frame on screen at t (the default, near, passes the
        # last frame of each interval, up to half an interval late).
        stream = stream.filter("fps", fps=f"{sample_fps:.6f}", round="up")
    stream = stream.filter("showinfo")
    if will_tone_map(info):
        stream = _tone_map(stream, info)
    upright_w, upright_h = info.upright_coded_wh
    if (width, height) != (upright_w, upright_h):
        grows = width > upright_w or height > upright_h
        stream = stream.filter("scale", width, height, flags="bicubic" if grows else "area")
        stream = stream.filter("setsar", 1)
    output_options = {"frames:v": max_frames, "an": None, "sn": None, "dn": None, **passthrough_options()}
    out = ffmpeg.output(stream, "pipe:", format="rawvideo", pix_fmt="rgb24", **output_options)
    out = out.global_args("-nostdin", "-hide_banner", "-loglevel", "level+info", "-nostats")
    return [os.path.abspath(path) if a == placeholder else a for a in out.compile(cmd=ffmpeg_exe())]


def _tone_map(stream, info: VideoInfo):
    """HDR (PQ or HLG, BT.2020) to SDR BT.709 in the filter graph: see :data:`TONE_MAP_CURVE`."""
    return (
        stream.filter(
            "zscale",
            tin=info.color_transfer,
            pin=info.color_primaries or "bt2020",
            min=info.color_space or "bt2020nc",
            t="linear",
            npl=TONE_MAP_NOMINAL_PEAK_NITS,
        )
        .filter("format", "gbrpf32le")
        .filter("zscale", p="bt709")
        .filter("tonemap", tonemap=TONE_MAP_CURVE, param=TONE_MAP_LINEAR_UP_TO, desat=0)
        .filter("zscale", t="bt709", m="bt709", r="tv")
        .filter("format", "yuv420p")
    )


# "[Parsed_showinfo_1 @ 0x...] [info] n:   3 pts:  36800 pts_time:3.069736 ..."
_LEVEL_RE = re.compile(r"^(\[[^\]]* @ [^\]]*\] )?\[(trace|debug|verbose|info|warning|error|fatal|panic|quiet)\] ?(.*)$")
_SHOWINFO_RE = re.compile(r"^\[Parsed_showinfo_\d+ @ [^\]]*\] \[info\] n:\s*\d+ pts:\s*-?\d+ pts_time:(\S+)")
# "[Parsed_scdet_0 @ 0x...] [info] lavfi.scd.score: 28.144, lavfi.scd.time: 3"
_SCDET_RE = re.compile(r"^\[Parsed_scdet_\d+ @ [^\]]*\] \[info\] lavfi\.scd\.score: (\S+), lavfi\.scd\.time: (\S+)")
# "[info] Exiting normally, received signal 2.": ffmpeg stopped from outside (SIGINT, SIGTERM), on its own terms.
_RECEIVED_SIGNAL_RE = re.compile(r"received signal (\d+)")
# The levels kept in the tail when the log is at level+info: what "-loglevel error" shows.
_TAIL_LEVELS = frozenset({"error", "fatal", "panic"})


class _StderrTail:
    """Drains a process's stderr on a daemon thread, keeping its last ``max_lines`` lines.

    Draining keeps ffmpeg from blocking on a full stderr pipe; the tail is what an error
    message quotes. With ``tagged_levels`` (ffmpeg run with ``-loglevel level+info``) only
    error lines enter the tail, without their level tag, as ``-loglevel error`` would print
    them, the ``pts_time`` of each ``showinfo`` line goes to :meth:`next_timestamp_s`, and the
    time of each ``scdet`` cut is appended to ``cut_times_s`` (when given).
    """

    def __init__(
        self, pipe, max_lines: int = 20, *, tagged_levels: bool = False, cut_times_s: list[float] | None = None
    ):
        self.lines: collections.deque[str] = collections.deque(maxlen=max_lines)
        self._tagged = tagged_levels
        self._cut_times_s = cut_times_s
        self._timestamps: queue.Queue = queue.Queue()
        self.received_signal: int | None = None
        self._thread = threading.Thread(target=self._drain, args=(pipe,), daemon=True)
        self._thread.start()

    def _drain(self, pipe) -> None:
        level = "error"
        for raw in pipe:
            line = raw.decode("utf-8", errors="replace").rstrip()
            if not self._tagged:
                self.lines.append(line)
                continue
            if (found := _SHOWINFO_RE.match(line)) is not None:
                try:
                    self._timestamps.put(float(found.group(1)))
                except ValueError:  # "nan" parses; anything else is not a time
                    self._timestamps.put(math.nan)
                continue
            if (cut := _SCDET_RE.match(line)) is not None:
                try:
                    cut_s = float(cut.group(2))
                except ValueError:
                    cut_s = math.nan
                if self._cut_times_s is not None and math.isfinite(cut_s):
                    self._cut_times_s.append(cut_s)
                continue
            if (tagged := _LEVEL_RE.match(line)) is not None:
                context, level, message = tagged.groups()
                line = (context or "") + message
                if level == "info" and (got := _RECEIVED_SIGNAL_RE.search(message)) is not None:
                    self.received_signal = int(got.group(1))
            if level in _TAIL_LEVELS:  # an untagged line continues the last tagged one
                self.lines.append(line)
        self._timestamps.put(None)

    def next_timestamp_s(self, timeout_s: float = TIMESTAMP_WAIT_S) -> float | None:
        """The next ``showinfo`` frame time in seconds, in frame order; ``None`` when the log
        ended or gave none within ``timeout_s`` (never blocks longer)."""
        try:
            value = self._timestamps.get(timeout=timeout_s)
        except queue.Empty:
            return None
        if value is None:
            self._timestamps.put(None)  # the end stays the end for later calls
            return None
        return value if math.isfinite(value) else None

    def join(self, timeout_s: float = 5.0) -> None:
        self._thread.join(timeout=timeout_s)

    def text(self) -> str:
        return "\n".join(self.lines)


class _Watchdog:
    """Kills ``proc`` once ``timeout_s`` seconds have passed, unless cancelled first.

    ``timeout_s=None``: no time limit (no thread). ``starts``: the seconds are counted only
    from when this event is set (a clip opened ahead of its turn: waiting for the turn does not
    count). ``timed_out`` is set when it fired; the killed process then ends its stdout, so the
    frame reader stops by itself.
    """

    def __init__(self, proc: subprocess.Popen, timeout_s: float | None, starts: threading.Event | None = None):
        self.timed_out = threading.Event()
        self._cancelled = threading.Event()
        if timeout_s is not None:
            thread = threading.Thread(target=self._run, args=(proc, timeout_s, starts), daemon=True)
            thread.start()

    def _run(self, proc: subprocess.Popen, timeout_s: float, starts: threading.Event | None) -> None:
        if starts is not None:
            while not starts.wait(0.5):
                if self._cancelled.is_set():
                    return
        if not self._cancelled.wait(timeout_s):
            self.timed_out.set()
            proc.kill()

    def cancel(self) -> None:
        self._cancelled.set()


# ffmpeg processes of decodes still running, with what :func:`_shut_down` needs to stop them.
# At interpreter exit a decode left unfinished (a generator never closed) would be closed after
# daemon threads are frozen, one of them holding its pipe's lock: Python then aborts
# ("_enter_buffered_busy"). They are shut down at exit first, while their threads still run.
_LIVE_DECODERS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


@functools.cache
def _kill_live_decoders_at_exit() -> None:
    atexit.register(_kill_live_decoders)


def _kill_live_decoders() -> None:
    for proc, (reader, stderr_tail, watchdog) in list(_LIVE_DECODERS.items()):
        _shut_down(proc, reader, stderr_tail, watchdog)


class _FrameReader:
    """Reads whole raw frames of ``frame_bytes`` from ``pipe`` on a daemon thread, ahead of the caller.

    It keeps ffmpeg decoding while the caller detects faces in earlier frames; the bounded
    queue holds about ``READ_AHEAD_BYTES`` (2 to 8 frames). At most ``max_frames`` are read; a
    short last read (end of stream, or the process killed) ends the frames. :meth:`stop` lets
    the thread give up on a queue nobody drains any more.
    """

    def __init__(self, pipe, frame_bytes: int, max_frames: int):
        read_ahead = max(2, min(8, READ_AHEAD_BYTES // frame_bytes))
        self._buffers: queue.Queue = queue.Queue(maxsize=read_ahead)
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._read, args=(pipe, frame_bytes, max_frames), daemon=True)
        self._thread.start()

    def next_buffer(self) -> mmap.mmap | None:
        """The next frame's ``frame_bytes`` bytes (:func:`pipeline.video.memory.read_frame`), or
        ``None`` after the last one (blocks)."""
        buf = self._buffers.get()
        return None if buf is _END else buf

    def stop(self) -> None:
        self._stopped.set()

    def join(self, timeout_s: float = 5.0) -> None:
        self._thread.join(timeout=timeout_s)

    def _read(self, pipe, frame_bytes: int, max_frames: int) -> None:
        try:
            for _ in range(max_frames):
                buf = read_frame(pipe, frame_bytes)  # its own memory map: memory flat in clip length
                if buf is None:
                    break
                self._put(buf)
        except (OSError, ValueError):  # the pipe was closed under us: the consumer has gone
            pass
        finally:
            self._put(_END)

    def _put(self, item) -> None:
        while not self._stopped.is_set():
            try:
                self._buffers.put(item, timeout=0.1)
                return
            except queue.Full:
                continue


def iter_frames(
    path: str | Path,
    info: VideoInfo,
    *,
    sample_fps: float,
    max_frames: int,
    timeout_s: float | None = None,
    decode_all: bool = False,
    cut_times_s: list[float] | None = None,
    clock_starts: threading.Event | None = None,
    report: DecodeReport | None = None,
    sparse: bool | None = None,
) -> Generator[Frame, None, None]:
    """Yield up to ``max_frames`` frames sampled at ``sample_fps`` from one ffmpeg process.

    Only frames of the video stream are sampled, at their own times: a stream that starts late
    gives its first sample then (``timestamp_s`` from ffmpeg's ``showinfo``), never copies of its
    first frame over the stretch before. Where :func:`skips_frames` says so (sparse sampling of
    inter-frame codecs), non-reference frames are not decoded and each frame carries its actual
    time and index; ``decode_all`` decodes every frame whatever the sampling (the ``fps``
    filter's exact sampling times); ``sparse``: the scan's ``sparse_decode`` setting (``None``:
    :func:`sparse_decode_enabled`).
    Frames are ``uint8 (height, width, 3)`` RGB of :func:`decode_size_wh`. Raises
    :class:`DecodeError` if ffmpeg fails before the first frame, and
    :class:`DecodeTimeoutError` if the clip is not done within ``timeout_s`` (frames already
    yielded stay yielded). A clip that breaks after some frames ends early with a warning:
    the good frames are kept. Closing the generator early kills and reaps ffmpeg.

    ``cut_times_s``: a list to which the times (seconds) of the shot cuts found in the decoded
    part of the clip are appended (ffmpeg's ``scdet``, :data:`CUT_SCORE_THRESHOLD`); complete
    once the generator is exhausted.

    ``clock_starts``: ``timeout_s`` counts only from when this event is set (a clip decoded
    ahead of its turn, :func:`pipeline.scan.analyze.open_clip`); ``None``: from now.

    ``report``: filled in with what was delivered and how the decode ended (:class:`DecodeReport`):
    where the frames stopped, and whether ffmpeg was stopped from outside (those frames are kept;
    the scan then says the clip was seen in part). A budget that runs out after every expected
    sample arrived is no timeout (``report.timed_out_after_all``).
    """
    if info.is_interlaced and not can_deinterlace():
        log.warning(
            "%s: interlaced video, but this ffmpeg has no %s filter: frames stay combed", path, DEINTERLACE_FILTER
        )
    if will_tone_map(info) is False:
        log.warning(
            "%s: HDR video (%s), but this ffmpeg has no %s filters: frames are not converted to SDR, "
            "so faces look washed out and scores may be off (set $DEEPFAKE_SCANNER_FFMPEG to an ffmpeg with libzimg)",
            path,
            info.color_transfer,
            "+".join(TONE_MAP_FILTERS),
        )

    width, height = decode_size_wh(info)
    sparse = not decode_all and skips_frames(info, sample_fps, sparse)
    detect_cuts = cut_times_s is not None
    args = build_decode_command(
        path,
        info,
        sample_fps=sample_fps,
        max_frames=max_frames,
        size_wh=(width, height),
        skip_frames=sparse,
        detect_cuts=detect_cuts,
    )
    proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    stderr_tail = _StderrTail(proc.stderr, tagged_levels=True, cut_times_s=cut_times_s)
    watchdog = _Watchdog(proc, timeout_s, clock_starts)
    reader = _FrameReader(proc.stdout, width * height * 3, max_frames)
    _kill_live_decoders_at_exit()
    _LIVE_DECODERS[proc] = (reader, stderr_tail, watchdog)
    report = DecodeReport() if report is None else report
    count = 0
    try:
        while (buf := reader.next_buffer()) is not None:
            timestamp_s, frame_index = _actual_time(path, stderr_tail, count, sample_fps, info, sparse=sparse)
            rgb = np.frombuffer(buf, dtype=np.uint8).reshape(height, width, 3)
            report.add(timestamp_s)
            yield Frame(count, frame_index, timestamp_s, rgb, count / sample_fps if sparse else timestamp_s)
            count += 1
        reader.join()
        if proc.stdout is not None:  # a pipe: never None
            proc.stdout.close()
        returncode = proc.wait()
        stderr_tail.join()
    finally:
        _shut_down(proc, reader, stderr_tail, watchdog)
    expected = expected_sample_count(info, sample_fps, max_frames)
    if watchdog.timed_out.is_set():
        if count < expected:
            raise DecodeTimeoutError(f"decoding took more than {timeout_s:g} s ({count} frames read)")
        log.info(
            "%s: all %d samples arrived before the %g s budget ran out (ffmpeg was decoding the tail)",
            path,
            count,
            timeout_s,
        )
        report.timed_out_after_all = True
        returncode = 0
    _report_end(path, count, returncode, stderr_tail, expected, report)


def _actual_time(
    path: str | Path, stderr_tail: _StderrTail, count: int, sample_fps: float, info: VideoInfo, *, sparse: bool
) -> tuple[float, int]:
    """(``timestamp_s``, ``frame_index``) of the ``count``-th delivered frame, from the ``showinfo``
    log: under sparse sampling the frame actually delivered (``round(t * fps)``), else the sampling
    time and the frame on screen then (``floor(t * fps)``). Where the log gave none (logged, never
    waited on for more than :data:`TIMESTAMP_WAIT_S`), the ``count``-th sampling time."""
    actual_s = stderr_tail.next_timestamp_s()
    if actual_s is not None and actual_s >= 0 and sparse:
        assert info.fps is not None, "sparse sampling needs the clip's frame rate (see skips_frames)"
        return actual_s, round(actual_s * info.fps)
    if actual_s is None or actual_s < 0:
        actual_s = count / sample_fps
        log.warning(
            "%s: sample %d: no frame time from ffmpeg; the sampling time %.3f s is recorded", path, count, actual_s
        )
    return actual_s, math.floor(actual_s * info.fps + 1e-9) if info.fps else count


def _shut_down(proc: subprocess.Popen, reader: _FrameReader, stderr_tail: _StderrTail, watchdog: _Watchdog) -> None:
    """Leave nothing behind, however the frames ended: ffmpeg killed if still running and
    reaped (no zombie), both threads joined, both pipes closed."""
    reader.stop()
    watchdog.cancel()
    if proc.poll() is None:
        proc.kill()
        proc.wait()
    reader.join()
    stderr_tail.join()
    for pipe in (proc.stdout, proc.stderr):  # pipes: never None
        if pipe is not None:
            pipe.close()


def _report_end(
    path: str | Path, count: int, returncode: int, stderr_tail: _StderrTail, expected: int, report: DecodeReport
) -> None:
    """After the last frame: :class:`DecodeError` when none came; else ``report`` says how it ended
    (``stopped_by``: a signal from outside, by which ffmpeg was killed or on which it exited; its
    frames end where it stopped, not where the clip does) and a warning is logged when ffmpeg
    complained, failed or was stopped after some frames (those frames are kept)."""
    message = summarize_ffmpeg_errors(stderr_tail.text())
    if count == 0:
        raise DecodeError(f"no frame could be decoded: {message or 'the video stream is empty'}")
    killed_by = _killing_signal(returncode)
    if killed_by is None and stderr_tail.received_signal is not None and returncode != 0:
        killed_by = _signal_name(stderr_tail.received_signal)
    report.ended, report.errors = True, message
    if killed_by is not None and count < expected:
        report.stopped_by = killed_by
        log.warning("%s: the decoder was stopped by %s after %d of %d frames", path, killed_by, count, expected)
    elif returncode != 0 or message:
        log.warning("%s: decoding ended with errors after %d frames: %s", path, count, message)


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _killing_signal(returncode: int) -> str | None:
    """The name of the signal that killed ffmpeg (a negative return code), or ``None``; a
    broken pipe (ours to close) does not count."""
    if returncode >= 0 or -returncode == signal.SIGPIPE:
        return None
    return _signal_name(-returncode)


def expected_sample_count(info: VideoInfo, sample_fps: float, max_frames: int) -> int:
    """How many frames :func:`iter_frames` should deliver, from the metadata (for progress bars)."""
    if not info.duration_s:
        return max_frames
    return max(1, min(max_frames, math.ceil(info.duration_s * sample_fps - 1e-9)))


def decode_sampled_frame(
    path: str | Path,
    info: VideoInfo,
    *,
    sample_fps: float,
    sample_index: int,
    timeout_s: float | None = 60.0,
    sparse: bool | None = None,
) -> Frame:
    """The sampled frame ``sample_index`` of a scan at ``sample_fps`` (its ``timestamp_s`` is
    ``sample_index / sample_fps``, or under sparse sampling (:func:`skips_frames`) the actual
    time the scan recorded), decoded again: the same pixels :func:`iter_frames` gave the
    scan (display shape, rotation, HDR tone mapping, size cap), because it is the same ffmpeg
    command stopped after ``sample_index + 1`` samples; the earlier samples are read and
    dropped one at a time. Costs one decode of the clip up to that sample (an input seek would
    be cheaper but can land on a neighbouring frame, and evidence must show the frame the
    boxes were found in). Raises :class:`DecodeError` when the clip has no such sample,
    :class:`DecodeTimeoutError` past ``timeout_s``, ``ValueError`` for a negative index.
    ``sparse``: the scan's ``sparse_decode`` (as :func:`iter_frames`).
    """
    if sample_index < 0:
        raise ValueError(f"sample_index must be >= 0, got {sample_index}")
    last = None
    frames = iter_frames(
        path, info, sample_fps=sample_fps, max_frames=sample_index + 1, timeout_s=timeout_s, sparse=sparse
    )
    try:
        for frame in frames:
            last = frame
    finally:
        frames.close()
    if last is None or last.sample_index != sample_index:
        got = 0 if last is None else last.sample_index + 1
        raise DecodeError(f"{path}: no sample {sample_index} at {sample_fps:g} fps (the clip gave {got})")
    return last
