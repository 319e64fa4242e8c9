"""Stream sampled RGB frames of a clip out of one ffmpeg pipe.

A clip is never held whole in memory: frames arrive one at a time from a generator. ffmpeg
does the sampling (``fps`` filter, so variable frame rate clips are sampled by timestamp), the
rotation (ffmpeg auto-rotates by the display matrix), the display shape (non-square pixels are
stretched to square ones, as players show them) and, for HDR video (PQ or HLG), the tone
mapping to SDR BT.709, so every frame is upright RGB as a viewer sees it.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import math
import os
import queue
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from pipeline.errors import DecodeError
from pipeline.video.ffmpeg_bin import ffmpeg_exe, ffmpeg_filters
from pipeline.video.memory import keep_large_buffers_on_mmap
from pipeline.video.probe import INPUT_OPTIONS, VideoInfo, summarize_ffmpeg_errors

log = logging.getLogger(__name__)

# Frames wider than this are scaled down inside ffmpeg: an 8K frame is 100 MB of RGB and
# its faces are shrunk to 256 px anyway.
MAX_DECODE_LONG_SIDE_PX = 3840


READ_AHEAD_BYTES = 64 * 1024 * 1024
_END = object()  # end of frames, from the reader thread


class DecodeTimeoutError(TimeoutError):
    """Decoding a clip exceeded its time budget."""


@dataclasses.dataclass(frozen=True)
class Frame:
    """One sampled frame.

    ``rgb`` is ``uint8`` of shape ``(height, width, 3)``, upright, RGB order.
    ``frame_index`` is the index of the nearest source frame (``timestamp_s * fps``).
    """

    sample_index: int
    frame_index: int
    timestamp_s: float
    rgb: np.ndarray

    def __post_init__(self) -> None:
        if self.rgb.ndim != 3 or self.rgb.shape[2] != 3 or self.rgb.dtype != np.uint8:
            raise ValueError(f"rgb must be uint8 (H, W, 3), got {self.rgb.dtype} {self.rgb.shape}")


def sampling_fps(info: VideoInfo, fps: float, max_frames: int) -> float:
    """The rate to sample at: ``fps``, lowered so that at most ``max_frames`` spread evenly over
    the clip, and never above the clip's own rate (which would only duplicate frames)."""
    if not (fps > 0 and math.isfinite(fps)):
        raise ValueError(f"fps must be positive, got {fps}")
    if max_frames <= 0:
        raise ValueError(f"max_frames must be positive, got {max_frames}")
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
) -> list[str]:
    """The ffmpeg command line that writes sampled, upright ``rgb24`` frames of ``size_wh`` to stdout.

    ``sample_fps`` goes to the ``fps`` filter with ``round=up``; HDR clips are then tone-mapped
    (:func:`will_tone_map`); the ``scale`` filter is added only when ``size_wh`` differs from
    the stored frame turned upright (area averaging when shrinking, bicubic when a side grows,
    as non-square pixels stretched to their display shape do), followed by ``setsar=1``. An
    SDR clip with square pixels at its own size gets exactly the command it always did. Audio,
    subtitle and data streams are dropped; at most ``max_frames`` frames are written. ``path``
    is made absolute: ffmpeg would read a bare ``take:1.mp4`` as protocol ``take``.
    """
    import ffmpeg  # ffmpeg-python: builds the command line

    width, height = size_wh
    # ffmpeg-python hashes its arguments as UTF-8, which a file name with non-UTF-8 bytes is
    # not: the graph is built on a placeholder and the real path put into the command line.
    placeholder = "input-path-placeholder"
    stream = ffmpeg.input(placeholder, protocol_whitelist=INPUT_OPTIONS[1])[str(info.stream_index)]
    # round=up: the sample at t is the frame on screen at t (the default, near, passes the last
    # frame of each interval, up to half an interval late).
    stream = stream.filter("fps", fps=f"{sample_fps:.6f}", round="up")
    if will_tone_map(info):
        stream = _tone_map(stream, info)
    upright_w, upright_h = info.upright_coded_wh
    if (width, height) != (upright_w, upright_h):
        grows = width > upright_w or height > upright_h
        stream = stream.filter("scale", width, height, flags="bicubic" if grows else "area")
        stream = stream.filter("setsar", 1)
    out = ffmpeg.output(
        stream,
        "pipe:",
        format="rawvideo",
        pix_fmt="rgb24",
        **{"frames:v": max_frames, "an": None, "sn": None, "dn": None},
    )
    out = out.global_args("-nostdin", "-hide_banner", "-loglevel", "error")
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


class _StderrTail:
    """Drains a process's stderr on a daemon thread, keeping its last ``max_lines`` lines.

    Draining keeps ffmpeg from blocking on a full stderr pipe; the tail is what an error
    message quotes.
    """

    def __init__(self, pipe, max_lines: int = 20):
        self.lines: collections.deque[str] = collections.deque(maxlen=max_lines)
        self._thread = threading.Thread(target=self._drain, args=(pipe,), daemon=True)
        self._thread.start()

    def _drain(self, pipe) -> None:
        for raw in pipe:
            self.lines.append(raw.decode("utf-8", errors="replace").rstrip())

    def join(self, timeout_s: float = 5.0) -> None:
        self._thread.join(timeout=timeout_s)

    def text(self) -> str:
        return "\n".join(self.lines)


class _Watchdog:
    """Kills ``proc`` once ``timeout_s`` seconds have passed, unless cancelled first.

    ``timeout_s=None``: no time limit (no thread). ``timed_out`` is set when it fired; the
    killed process then ends its stdout, so the frame reader stops by itself.
    """

    def __init__(self, proc: subprocess.Popen, timeout_s: float | None):
        self.timed_out = threading.Event()
        self._timer: threading.Timer | None = None
        if timeout_s is not None:
            self._timer = threading.Timer(timeout_s, self._kill, args=(proc,))
            self._timer.daemon = True
            self._timer.start()

    def _kill(self, proc: subprocess.Popen) -> None:
        self.timed_out.set()
        proc.kill()

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()


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

    def next_buffer(self) -> bytes | None:
        """The next frame's ``frame_bytes`` bytes, or ``None`` after the last one (blocks)."""
        buf = self._buffers.get()
        return None if buf is _END else buf

    def stop(self) -> None:
        self._stopped.set()

    def join(self, timeout_s: float = 5.0) -> None:
        self._thread.join(timeout=timeout_s)

    def _read(self, pipe, frame_bytes: int, max_frames: int) -> None:
        try:
            for _ in range(max_frames):
                buf = _read_exactly(pipe, frame_bytes)
                if len(buf) < frame_bytes:
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
) -> Iterator[Frame]:
    """Yield up to ``max_frames`` frames sampled at ``sample_fps`` from one ffmpeg process.

    Frames are ``uint8 (height, width, 3)`` RGB of :func:`decode_size_wh`. Raises
    :class:`DecodeError` if ffmpeg fails before the first frame, and
    :class:`DecodeTimeoutError` if the clip is not done within ``timeout_s`` (frames already
    yielded stay yielded). A clip that breaks after some frames ends early with a warning:
    the good frames are kept. Closing the generator early kills and reaps ffmpeg.
    """
    keep_large_buffers_on_mmap()  # frame buffers go back to the system: memory flat in clip length
    if will_tone_map(info) is False:
        log.warning(
            "%s: HDR video (%s), but this ffmpeg has no %s filters: frames are not converted to SDR, "
            "so faces look washed out and scores may be off (set $DEEPFAKE_SCANNER_FFMPEG to an ffmpeg with libzimg)",
            path,
            info.color_transfer,
            "+".join(TONE_MAP_FILTERS),
        )

    width, height = decode_size_wh(info)
    args = build_decode_command(path, info, sample_fps=sample_fps, max_frames=max_frames, size_wh=(width, height))
    proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    stderr_tail = _StderrTail(proc.stderr)
    watchdog = _Watchdog(proc, timeout_s)
    reader = _FrameReader(proc.stdout, width * height * 3, max_frames)
    count = 0
    try:
        while (buf := reader.next_buffer()) is not None:
            timestamp_s = count / sample_fps
            frame_index = math.floor(timestamp_s * info.fps + 1e-9) if info.fps else count
            rgb = np.frombuffer(buf, dtype=np.uint8).reshape(height, width, 3)
            yield Frame(count, frame_index, timestamp_s, rgb)
            count += 1
        reader.join()
        proc.stdout.close()
        returncode = proc.wait()
        stderr_tail.join()
    finally:
        _shut_down(proc, reader, stderr_tail, watchdog)
    if watchdog.timed_out.is_set():
        raise DecodeTimeoutError(f"decoding took more than {timeout_s:g} s ({count} frames read)")
    _report_end(path, count, returncode, stderr_tail.text())


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
    proc.stdout.close()
    proc.stderr.close()


def _report_end(path: str | Path, count: int, returncode: int, stderr_text: str) -> None:
    """After the last frame: :class:`DecodeError` when none came, a warning when ffmpeg
    complained or failed after some frames (those frames are kept)."""
    message = summarize_ffmpeg_errors(stderr_text)
    if count == 0:
        raise DecodeError(f"no frame could be decoded: {message or 'the video stream is empty'}")
    if returncode != 0 or message:
        log.warning("%s: decoding ended with errors after %d frames: %s", path, count, message)


def _read_exactly(pipe, n: int) -> bytes:
    """Read ``n`` bytes from a pipe, or fewer at end of stream."""
    chunks = []
    remaining = n
    while remaining > 0:
        chunk = pipe.read(remaining)
        if not chunk:
            break
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


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
) -> Frame:
    """The sampled frame ``sample_index`` of a scan at ``sample_fps`` (its ``timestamp_s`` is
    ``sample_index / sample_fps``), decoded again: the same pixels :func:`iter_frames` gave the
    scan (display shape, rotation, HDR tone mapping, size cap), because it is the same ffmpeg
    command stopped after ``sample_index + 1`` samples; the earlier samples are read and
    dropped one at a time. Costs one decode of the clip up to that sample (an input seek would
    be cheaper but can land on a neighbouring frame, and evidence must show the frame the
    boxes were found in). Raises :class:`DecodeError` when the clip has no such sample,
    :class:`DecodeTimeoutError` past ``timeout_s``, ``ValueError`` for a negative index.
    """
    if sample_index < 0:
        raise ValueError(f"sample_index must be >= 0, got {sample_index}")
    last = None
    frames = iter_frames(path, info, sample_fps=sample_fps, max_frames=sample_index + 1, timeout_s=timeout_s)
    try:
        for frame in frames:
            last = frame
    finally:
        frames.close()
    if last is None or last.sample_index != sample_index:
        got = 0 if last is None else last.sample_index + 1
        raise DecodeError(f"{path}: no sample {sample_index} at {sample_fps:g} fps (the clip gave {got})")
    return last
