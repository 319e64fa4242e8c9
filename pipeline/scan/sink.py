"""Append-only CSV output that survives being killed, with resume and a lock against two writers.

Rows are written one at a time and flushed to disk, so a killed run loses at most the clips in
flight. A killed run can leave a torn last line; opening the file for resume cuts it off.
"""

from __future__ import annotations

import csv
import fcntl
import io
import logging
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TextIO

from pipeline.atomic import atomic_path
from pipeline.errors import OutputLockedError, ResumeMismatchError, output_error

log = logging.getLogger(__name__)


# A cell starting with one of these is a formula to a spreadsheet (=HYPERLINK(...) in a file
# name). Such cells get a leading apostrophe, as OWASP advises; so do cells that start with an
# apostrophe, which keeps the escape reversible (:func:`unescape_cell`).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "'")


def escape_cell(text: str) -> str:
    """Make a text cell inert in a spreadsheet: prefix ``'`` to formula-like text."""
    return "'" + text if text.startswith(_FORMULA_START) else text


def unescape_cell(text: str) -> str:
    """Inverse of :func:`escape_cell`."""
    return text[1:] if text.startswith("'") and text[1:].startswith(_FORMULA_START) else text


def _format(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(round(value, 6))
    if isinstance(value, str):
        return escape_cell(value)
    return str(value)


def complete_records_end(data: bytes) -> int:
    """Byte offset just past the last complete CSV record in ``data``.

    A record ends at a newline outside quotes; quote parity is tracked per line, so a newline
    inside a quoted path is not mistaken for the end of a row.
    """
    end = 0
    in_quotes = False
    start = 0
    while True:
        nl = data.find(b"\n", start)
        if nl == -1:
            return end
        if data.count(b'"', start, nl) % 2:
            in_quotes = not in_quotes
        if not in_quotes:
            end = nl + 1
        start = nl + 1


def _trim_torn_tail(path: Path) -> None:
    """Cut a last record that was interrupted by a kill (no newline, or inside a quoted field)."""
    data = path.read_bytes()
    end = complete_records_end(data)
    if end != len(data):
        with open(path, "rb+") as f:
            f.truncate(end)
        log.warning("%s: dropped a torn last row left by an interrupted run", path)


def read_header(path: str | Path) -> list[str]:
    """The column names of an existing CSV; empty when the file is missing or empty."""
    path = Path(path)
    if not path.exists() or path.stat().st_size == 0:
        return []
    with open(path, newline="", encoding="utf-8", errors="surrogateescape") as f:
        return next(csv.reader(f), [])


def read_done_keys(path: str | Path, key: str, columns: list[str]) -> set[str]:
    """Values of ``key`` in the complete rows of an existing CSV written by :class:`CsvSink`."""
    path = Path(path)
    if not path.exists() or path.stat().st_size == 0:
        return set()
    with open(path, newline="", encoding="utf-8", errors="surrogateescape") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames is None or key not in reader.fieldnames:
            raise ResumeMismatchError(f"{path} is not an output of this tool (no {key!r} column); use --overwrite")
        width = len(reader.fieldnames)
        return {unescape_cell(row[key]) for row in reader if len(row) == width and None not in row.values()}


def read_column_values(path: str | Path, columns: Sequence[str]) -> set[tuple[str, ...]]:
    """The distinct values of ``columns`` (as tuples) over the complete rows of an existing CSV
    written by :class:`CsvSink`; empty when the file is missing, empty or lacks a column."""
    path = Path(path)
    if not path.exists() or path.stat().st_size == 0:
        return set()
    with open(path, newline="", encoding="utf-8", errors="surrogateescape") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames is None or not set(columns) <= set(reader.fieldnames):
            return set()
        width = len(reader.fieldnames)
        return {
            tuple(unescape_cell(row[c]) for c in columns)
            for row in reader
            if len(row) == width and None not in row.values()
        }


def keep_rows_with_keys(path: str | Path, keys: set[str], key_column: int = 0) -> int:
    """Rewrite a CSV (atomically) keeping only complete rows whose ``key_column`` is in ``keys``.

    On resume this drops the detail rows (faces, crops) of items whose own row never landed:
    those items are redone, so their details would otherwise appear twice. Returns rows dropped.
    """
    path = Path(path)
    if not path.exists() or path.stat().st_size == 0:
        return 0
    dropped = 0
    with atomic_path(path) as tmp:
        with (
            open(path, newline="", encoding="utf-8", errors="surrogateescape") as src,
            open(tmp, "w", newline="", encoding="utf-8", errors="surrogateescape") as dst,
        ):
            reader = csv.reader(src)
            writer = csv.writer(dst, lineterminator="\n")
            header = next(reader, None)
            if header:
                writer.writerow(header)
            for row in reader:
                if len(row) == len(header or []) and unescape_cell(row[key_column]) in keys:
                    writer.writerow(row)
                else:
                    dropped += 1
    return dropped


class CsvSink:
    """Context-managed CSV writer for one dataclass type.

    ``resume=True`` keeps existing rows (after trimming a torn tail) and appends; otherwise the
    file is replaced. An exclusive ``flock`` on ``<path>.lock`` stops a second run writing the
    same file (:class:`OutputLockedError`); the lock file exists only while the sink is open
    (removed on leaving the ``with`` block, by an exception or Ctrl-C too; a ``kill -9`` leaves
    an unlocked one behind, which the next run takes and removes).
    """

    def __init__(self, path: str | Path, columns: list[str], *, resume: bool, lock: bool = True):
        self.path = Path(path)
        self.columns = columns
        self._resume = resume
        self._lock_wanted = lock
        self._lock_fd: int | None = None
        self._file: TextIO | None = None

    def __enter__(self) -> CsvSink:
        try:
            if self._lock_wanted:
                self._lock_fd = acquire_lock(self.lock_path, self.path)
            try:
                self._open()
            except BaseException:
                self.__exit__(None, None, None)
                raise
        except OSError as exc:
            raise output_error(self.path, exc) from exc
        return self

    @property
    def _out(self) -> TextIO:
        """The open file (only while the sink is open)."""
        if self._file is None:
            raise RuntimeError(f"{self.path}: the sink is not open (use it in a with block)")
        return self._file

    @property
    def lock_path(self) -> Path:
        """``<path>.lock``: held (``flock``) while the sink is open, removed when it closes."""
        return Path(str(self.path) + ".lock")

    def _open(self) -> None:
        exists = self.path.exists() and self.path.stat().st_size > 0
        if self._resume and exists:
            _trim_torn_tail(self.path)
            with open(self.path, newline="", encoding="utf-8", errors="surrogateescape") as f:
                header = next(csv.reader(f), None)
            if header != self.columns:
                raise ResumeMismatchError(f"{self.path} has columns {header}, expected {self.columns}; use --overwrite")
            self._file = open(self.path, "a", newline="", encoding="utf-8", errors="surrogateescape")
        else:
            self._file = open(self.path, "w", newline="", encoding="utf-8", errors="surrogateescape")
            self._write_line(self.columns)
            self._sync()

    def _write_line(self, values: Iterable) -> None:
        # One complete line per write call: a kill can tear only the line being written.
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerow([_format(v) for v in values])
        self._out.write(buf.getvalue())

    def _sync(self) -> None:
        self._out.flush()
        os.fsync(self._out.fileno())

    def write(self, row) -> None:
        """Append one row and flush it to disk."""
        self.write_many([row])

    def write_many(self, rows: Iterable) -> None:
        """Append rows and flush them to disk once. If the disk refuses (full, gone read-only),
        the file is cut back to its last complete row and the error raised."""
        start = self._out.tell()
        try:
            for row in rows:
                self._write_line(getattr(row, name) for name in self.columns)
            self._sync()
        except OSError as exc:
            self._cut_back(start)
            raise output_error(self.path, exc) from exc

    def _cut_back(self, offset: int) -> None:
        try:
            self._out.close()
        except OSError:
            pass  # the buffered bytes that did not fit are dropped with the file object
        self._file = None
        try:
            os.truncate(self.path, offset)
        except OSError as exc:
            log.error("%s: could not cut back a partial row: %s", self.path, exc)

    def __exit__(self, *exc) -> None:
        try:
            if self._file is not None:
                self._file.close()
        finally:
            self._file = None
            if self._lock_fd is not None:
                release_lock(self.lock_path, self._lock_fd)
                self._lock_fd = None


# A lock file is only ever unlinked by the process holding its flock, so after locking, the path
# either still names the inode locked (ours, for as long as we hold it) or a holder removed it
# between our open and our flock; then we try again with whatever the path names now.
_LOCK_ATTEMPTS = 100


def acquire_lock(lock_path: Path, what: Path) -> int:
    """Take the exclusive ``flock`` of ``lock_path`` (created if missing) without waiting and
    return its file descriptor. Raises :class:`OutputLockedError` naming ``what`` when another
    open sink (in any process) holds it.

    After the lock is taken the path is checked to still name the inode locked: a run that
    finishes unlinks its lock file while holding it (:func:`release_lock`), so a process that
    opened the old file just before could otherwise lock an orphan inode while a third process
    locks a new file at the same path. On a mismatch the attempt is repeated."""
    for _ in range(_LOCK_ATTEMPTS):
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            os.close(fd)
            raise OutputLockedError(f"{what} is being written by another run") from exc
        except BaseException:
            os.close(fd)
            raise
        if _names_inode(lock_path, fd):
            return fd
        os.close(fd)  # the holder removed this file while we waited: lock the current one
    raise OutputLockedError(f"{what}: could not take its lock {lock_path} (it keeps being replaced)")


def release_lock(lock_path: Path, fd: int) -> None:
    """Remove ``lock_path`` while still holding its lock (so no run can hold the old inode while
    another creates the new one unnoticed; see :func:`acquire_lock`), then unlock and close
    ``fd``. A lock file already removed or replaced by someone else is left alone."""
    try:
        if _names_inode(lock_path, fd):
            lock_path.unlink()
    except OSError as exc:
        log.warning("could not remove the lock file %s: %s", lock_path, exc.strerror or exc)
    finally:
        try:
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)


def _names_inode(path: Path, fd: int) -> bool:
    """Whether ``path`` currently names the file open as ``fd``."""
    try:
        on_disk = os.stat(path)
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (on_disk.st_dev, on_disk.st_ino) == (held.st_dev, held.st_ino)
