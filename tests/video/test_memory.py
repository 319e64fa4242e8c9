"""Frames are read into their own memory maps (pipeline/video/memory.py): returned to the system
when dropped, so memory stays flat in the number of frames, without touching how the rest of
the process (TensorFlow's tensors) allocates. Checked with glibc's own counters, not RSS, which
the host's memory reclaim makes noisy."""

from __future__ import annotations

import ctypes
import io
import mmap
import os
import platform
import subprocess
import sys

import numpy as np
import pytest

from pipeline.video.memory import read_frame

GLIBC = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"
HAS_MALLINFO2 = GLIBC and hasattr(ctypes.CDLL(None), "mallinfo2")


def test_read_frame_reads_exactly_one_frame_into_a_memory_map():
    pipe = io.BufferedReader(io.BytesIO(bytes(range(256)) * 3 + b"xy"))
    first = read_frame(pipe, 256)
    assert isinstance(first, mmap.mmap)
    assert np.array_equal(np.frombuffer(first, np.uint8), np.arange(256))
    assert read_frame(pipe, 256) is not None and read_frame(pipe, 256) is not None
    assert read_frame(pipe, 256) is None  # 2 bytes left: a partial frame is dropped
    assert read_frame(pipe, 256) is None


def test_read_frame_collects_a_frame_from_short_reads():
    class Trickle(io.RawIOBase):  # a pipe that hands over at most 7 bytes a call
        def __init__(self, data):
            self._data = data

        def readable(self):
            return True

        def readinto(self, b):
            n = min(7, len(b), len(self._data))
            b[:n], self._data = self._data[:n], self._data[n:]
            return n

    frame = read_frame(Trickle(bytes(100)), 100)
    assert frame is not None and len(frame) == 100


# 40 frames of 1080p decoded one after another, each dropped before the next (as the scan does):
# the heap (arena) must not keep frame-sized fragments, and TensorFlow-sized buffers (numpy here)
# allocated in between must still come from the heap, not from a fixed mmap threshold.
MANY_FRAMES = """
import ctypes, os, sys, subprocess
import numpy as np
class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd",
                "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]
libc = ctypes.CDLL(None)
libc.mallinfo2.restype = MallInfo2
from pipeline.video.probe import probe_video
from pipeline.video.decode import iter_frames
info = probe_video(sys.argv[1])
peak_arena = 0
for frame in iter_frames(sys.argv[1], info, sample_fps=25.0, max_frames=40):
    work = np.ones(8 * 2**20, np.uint8)  # a tensor-sized buffer beside the frame
    del work
    peak_arena = max(peak_arena, libc.mallinfo2().arena)
tensor = np.ones(6 * 2**20, np.uint8); del tensor
second = np.ones(6 * 2**20, np.uint8)
print(peak_arena // 2**20, libc.mallinfo2().hblkhd // 2**20)
"""


@pytest.mark.skipif(not HAS_MALLINFO2, reason="mallinfo2 is glibc's (2.33+)")
def test_memory_flat_over_many_frames_and_malloc_left_alone(tmp_path):
    from pipeline.video.ffmpeg_bin import ffmpeg_exe

    clip = tmp_path / "hd.mp4"
    subprocess.run(
        [ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=1920x1080:rate=25:duration=1.6"]
        + ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(clip)],
        check=True,
    )
    # Any MALLOC_*_ variable also fixes glibc's thresholds, and Dask's nanny puts
    # MALLOC_TRIM_THRESHOLD_ into the environment of the process that starts a local cluster.
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_") and k != "GLIBC_TUNABLES"}
    done = subprocess.run(
        [sys.executable, "-c", MANY_FRAMES, str(clip)], capture_output=True, text=True, timeout=300, env=env
    )
    assert done.returncode == 0, done.stderr
    peak_arena_mib, mmapped_mib = (int(v) for v in done.stdout.split())
    # measured: 13 MiB (the 8 MB buffer and small ones); frames read into heap bytes instead: 31 MiB
    assert peak_arena_mib < 24  # 40 frames of 6 MB passed through; none stayed in the heap
    assert mmapped_mib == 0  # glibc's own threshold: a second 6 MB buffer comes from the heap
