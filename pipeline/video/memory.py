"""Keep the scanner's memory flat in the number of frames it has decoded.

Every decoded frame is a fresh buffer of several MB (6 MB at 1080p). Served by glibc's
malloc, such buffers come from ``mmap`` at first, but after the first few frees glibc raises
its threshold and serves them from the heap, whose fragments it keeps: peak RSS then crept
with the number of frames (measured: 797 MiB for 11 frames of a 10-second 1080p clip, 847 MiB
for 40 frames of a 5-minute one).

So each frame is read straight into its own anonymous memory map (:func:`read_frame`),
returned to the system when the last array viewing it is dropped. Only the frames: fixing
glibc's threshold for the whole process (``mallopt(M_MMAP_THRESHOLD)``, the way before 0.4.0)
also put TensorFlow's tensors of 1 MiB and more on ``mmap``, so every layer output was
mapped, zero-filled page by page and unmapped again: 15 of the 45 CPU seconds of a 30-clip
scan went to the kernel (``bench/decode_less.py``).
"""

from __future__ import annotations

import mmap


def read_frame(pipe, frame_bytes: int) -> mmap.mmap | None:
    """Read exactly ``frame_bytes`` from ``pipe`` (a binary file object with ``readinto``) into
    a fresh anonymous memory map; ``None`` when the stream ends first (a partial frame is
    dropped). ``np.frombuffer`` views it without a copy; its pages go back to the system when
    the map and every view of it are gone."""
    buffer = mmap.mmap(-1, frame_bytes)
    got = 0
    with memoryview(buffer) as view:
        while got < frame_bytes:
            n = pipe.readinto(view[got:])
            if not n:
                break
            got += n
    if got < frame_bytes:
        buffer.close()
        return None
    return buffer
