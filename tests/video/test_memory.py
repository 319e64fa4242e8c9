"""glibc's mmap threshold fixed: a frame-sized buffer freed and allocated again is still served
by mmap (returned to the system on free) instead of from the heap, whose fragments made peak
RSS creep with the number of frames. Checked with glibc's own counters, not RSS, which the
host's memory reclaim makes noisy."""

from __future__ import annotations

import ctypes
import os
import platform
import subprocess
import sys

import pytest

from pipeline.video.memory import keep_large_buffers_on_mmap

GLIBC = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"
HAS_MALLINFO2 = GLIBC and hasattr(ctypes.CDLL(None), "mallinfo2")

# After one frame-sized buffer is freed, glibc by default raises its mmap threshold above the
# buffer's size, so the next frame comes from the heap: mmapped bytes (hblkhd) stay 0.
FRAME_TWICE = """
import ctypes, sys
import numpy as np
class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd",
                "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]
libc = ctypes.CDLL(None)
libc.mallinfo2.restype = MallInfo2
if sys.argv[1] == "fixed":
    from pipeline.video.memory import keep_large_buffers_on_mmap
    assert keep_large_buffers_on_mmap()
first = np.ones(6 * 2**20, np.uint8)
del first
second = np.ones(6 * 2**20, np.uint8)
print(libc.mallinfo2().hblkhd // 2**20)
"""


def _mmapped_mib_after_second_frame(mode: str) -> int:
    # Any MALLOC_*_ variable also fixes glibc's thresholds, and Dask's nanny puts
    # MALLOC_TRIM_THRESHOLD_ into the environment of the process that starts a local cluster.
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_") and k != "GLIBC_TUNABLES"}
    done = subprocess.run(
        [sys.executable, "-c", FRAME_TWICE, mode], capture_output=True, text=True, timeout=120, env=env
    )
    assert done.returncode == 0, done.stderr
    return int(done.stdout)


@pytest.mark.skipif(not HAS_MALLINFO2, reason="mallopt and mallinfo2 are glibc's (2.33+)")
def test_a_second_frame_is_still_mmapped_with_the_fixed_threshold():
    assert _mmapped_mib_after_second_frame("default") == 0  # the behaviour being fixed
    assert _mmapped_mib_after_second_frame("fixed") >= 6


@pytest.mark.skipif(not GLIBC, reason="mallopt is glibc's")
def test_setting_is_applied_once():
    assert keep_large_buffers_on_mmap() is True
    assert keep_large_buffers_on_mmap() is True
    assert keep_large_buffers_on_mmap.cache_info().hits >= 1
