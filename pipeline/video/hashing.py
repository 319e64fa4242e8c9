"""The sha256 of a file, computed on a thread while the file is being decoded (an analyst's
chain of custody: the row names exactly which bytes were scored).

``hashlib`` releases the GIL while it digests large blocks, so hashing overlaps decoding and
detection; the file is read a second time, mostly from the page cache ffmpeg has just filled.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from pathlib import Path

log = logging.getLogger(__name__)

HASH_BLOCK_BYTES = 1 << 20


class BackgroundSha256:
    """Start hashing ``path`` on a daemon thread at construction; :meth:`hexdigest` waits for it.

    A file that cannot be read (missing, a FIFO, permission denied, a read error) gives ``""``;
    the reason is logged at debug level, since the scan reports the same problem itself. Only
    regular files are read: a FIFO would block forever.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._digest = ""
        self._thread = threading.Thread(target=self._run, name="sha256", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            if not self.path.is_file():
                return
            digest = hashlib.sha256()
            with open(self.path, "rb") as f:
                while block := f.read(HASH_BLOCK_BYTES):
                    digest.update(block)
            self._digest = digest.hexdigest()
        except OSError as exc:
            log.debug("%s: not hashed: %s", self.path, exc)

    def hexdigest(self, timeout_s: float | None = None) -> str:
        """The file's sha256 as 64 hex digits, or ``""`` when it could not be read (or was not
        done within ``timeout_s``)."""
        self._thread.join(timeout_s)
        return "" if self._thread.is_alive() else self._digest
