"""glibc's mmap threshold fixed: freed frame buffers go back to the system instead of
fragmenting the heap (peak RSS flat in the number of frames)."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

from pipeline.memory import keep_large_buffers_on_mmap

GLIBC = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"

# Frames (6 MB) held a few at a time by a reader thread, with smaller long-lived buffers
# allocated in between: the pattern that made RSS creep with clip length.
CHURN = """
import sys, threading
import numpy as np
if sys.argv[1] == "fixed":
    from pipeline.memory import keep_large_buffers_on_mmap
    assert keep_large_buffers_on_mmap()
kept = []
def decode():
    held = []
    for _ in range(60):
        held.append(np.ones(6 * 2**20, np.uint8))
        kept.append(np.ones(300_000, np.uint8))
        if len(held) > 3:
            held.pop(0)
thread = threading.Thread(target=decode)
thread.start()
thread.join()
print(int(open("/proc/self/statm").read().split()[1]) * 4096 // 2**20)
"""


def _rss_mib_after_churn(mode: str) -> int:
    done = subprocess.run([sys.executable, "-c", CHURN, mode], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return int(done.stdout)


@pytest.mark.skipif(not GLIBC, reason="mallopt is glibc's")
def test_fixed_threshold_keeps_freed_frames_from_piling_up():
    default, fixed = _rss_mib_after_churn("default"), _rss_mib_after_churn("fixed")
    assert fixed < default - 10, (default, fixed)


@pytest.mark.skipif(not GLIBC, reason="mallopt is glibc's")
def test_setting_is_applied_once():
    assert keep_large_buffers_on_mmap() is True
    assert keep_large_buffers_on_mmap() is True
    assert keep_large_buffers_on_mmap.cache_info().hits >= 1
