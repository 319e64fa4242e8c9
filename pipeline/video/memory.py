"""Keep the scanner's memory flat in the number of frames it has decoded.

Every decoded frame is a fresh buffer of several MB (6 MB at 1080p). glibc's malloc serves
such buffers with ``mmap`` at first, but after the first few frees it raises its threshold and
serves them from the heap, whose fragments it keeps: peak RSS then creeps with the number of
frames (measured: 797 MiB for 11 frames of a 10-second 1080p clip, 847 MiB for 40 frames of
a 5-minute one). A fixed threshold keeps every large buffer on ``mmap``, returned to the
system on free (796 MiB for the 5-minute clip). It applies to the whole process.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging
import sys

log = logging.getLogger(__name__)

M_MMAP_THRESHOLD = -3  # mallopt parameter number, from glibc's malloc.h
MMAP_THRESHOLD_BYTES = 1 << 20  # buffers of 1 MiB and more: frames, crops batches, model tensors


@functools.cache
def keep_large_buffers_on_mmap(threshold_bytes: int = MMAP_THRESHOLD_BYTES) -> bool:
    """Fix glibc's mmap threshold for this process (once; later calls are free). Returns False
    where the C library is not glibc (macOS, musl), where nothing changes."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    ok = mallopt(M_MMAP_THRESHOLD, int(threshold_bytes)) == 1
    if not ok:
        log.debug("mallopt(M_MMAP_THRESHOLD) refused; memory may creep with clip length")
    return ok
