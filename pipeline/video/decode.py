"""Stream sampled RGB frames of a clip out of one ffmpeg pipe.

A clip is never held whole in memory: frames arrive one at a time from a generator. ffmpeg
does the sampling (``fps`` filter, so variable frame rate clips are sampled by timestamp) and
the rotation (ffmpeg auto-rotates by the display matrix), so every frame is upright RGB.
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
from pathlib import Path
from typing import Iterator

import numpy as np

from pipeline.errors import DecodeError
from pipeline.video.ffmpeg_bin import ffmpeg_exe
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


def decode_size_wh(info: VideoInfo, max_long_side_px: int = MAX_DECODE_LONG_SIDE_PX) -> tuple[int, int]:
    """Size of the frames ffmpeg will deliver: upright, long side capped, even-free."""
    w, h = info.width, info.height
    long_side = max(w, h)
    if long_side <= max_long_side_px:
        return w, h
    scale = max_long_side_px / long_side
    return max(1, round(w * scale)), max(1, round(h * scale))


def iter_frames(
    path: str | Path,
    info: VideoInfo,
    *,
    sample_fps: float,
    max_frames: int,
    timeout_s: float | None = None,
) -> Iterator[Frame]:
    """Yield up to ``max_frames`` frames sampled at ``sample_fps`` from one ffmpeg process.

    Raises :class:`DecodeError` if ffmpeg fails before the first frame, and
    :class:`DecodeTimeoutError` if the clip is not done within ``timeout_s`` (frames already
    yielded stay yielded). A clip that breaks after some frames ends early with a warning:
    the good frames are kept.
    """
    import ffmpeg  # ffmpeg-python: builds the command line

    keep_large_buffers_on_mmap()  # frame buffers go back to the system: memory flat in clip length

    width, height = decode_size_wh(info)
    # ffmpeg-python hashes its arguments as UTF-8, which a file name with non-UTF-8 bytes is
    # not: the graph is built on a placeholder and the real path put into the command line.
    placeholder = "input-path-placeholder"
    stream = ffmpeg.input(placeholder, protocol_whitelist=INPUT_OPTIONS[1])[str(info.stream_index)]
    # round=up: the sample at t is the frame on screen at t (the default, near, passes the last
    # frame of each interval, up to half an interval late).
    stream = stream.filter("fps", fps=f"{sample_fps:.6f}", round="up")
    if (width, height) != (info.width, info.height):
        stream = stream.filter("scale", width, height, flags="area")
    out = ffmpeg.output(stream, "pipe:", format="rawvideo", pix_fmt="rgb24",
                        **{"frames:v": max_frames, "an": None, "sn": None, "dn": None})
    out = out.global_args("-nostdin", "-hide_banner", "-loglevel", "error")
    # An absolute path: ffmpeg would read a bare "take:1.mp4" as protocol "take".
    args = [os.path.abspath(path) if a == placeholder else a for a in out.compile(cmd=ffmpeg_exe())]
    proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    stderr_tail: collections.deque[str] = collections.deque(maxlen=20)

    def drain_stderr() -> None:
        for raw in proc.stderr:
            stderr_tail.append(raw.decode("utf-8", errors="replace").rstrip())

    drainer = threading.Thread(target=drain_stderr, daemon=True)
    drainer.start()
    timed_out = threading.Event()
    watchdog = None
    if timeout_s is not None:
        def kill() -> None:
            timed_out.set()
            proc.kill()
        watchdog = threading.Timer(timeout_s, kill)
        watchdog.daemon = True
        watchdog.start()

    frame_bytes = width * height * 3
    # A reader thread keeps ffmpeg decoding while the caller detects faces in earlier frames;
    # the queue bounds the frames held ahead (about 64 MB, 2 to 8 frames).
    read_ahead = max(2, min(8, READ_AHEAD_BYTES // frame_bytes))
    buffers: queue.Queue = queue.Queue(maxsize=read_ahead)
    stop = threading.Event()

    def put(item) -> None:
        while not stop.is_set():
            try:
                buffers.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def read_frames() -> None:
        try:
            for _ in range(max_frames):
                buf = _read_exactly(proc.stdout, frame_bytes)
                if len(buf) < frame_bytes:
                    break
                put(buf)
        except (OSError, ValueError):  # the pipe was closed under us: the consumer has gone
            pass
        finally:
            put(_END)

    reader = threading.Thread(target=read_frames, daemon=True)
    reader.start()
    count = 0
    try:
        while (buf := buffers.get()) is not _END:
            timestamp_s = count / sample_fps
            frame_index = math.floor(timestamp_s * info.fps + 1e-9) if info.fps else count
            rgb = np.frombuffer(buf, dtype=np.uint8).reshape(height, width, 3)
            yield Frame(count, frame_index, timestamp_s, rgb)
            count += 1
        reader.join(timeout=5)
        proc.stdout.close()
        returncode = proc.wait()
        drainer.join(timeout=5)
    finally:
        stop.set()
        if watchdog is not None:
            watchdog.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        reader.join(timeout=5)
        drainer.join(timeout=5)
        proc.stdout.close()
        proc.stderr.close()
    if timed_out.is_set():
        raise DecodeTimeoutError(f"decoding took more than {timeout_s:g} s ({count} frames read)")
    message = summarize_ffmpeg_errors("\n".join(stderr_tail))
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
