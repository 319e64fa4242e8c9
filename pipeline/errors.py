"""Every error this package raises on purpose, by kind, under :class:`ScannerError`.

Each class has one meaning and a ``kind`` (a short code, for logs and the web API). The batch
maps the clip-level ones onto row statuses (:class:`DecodeError` -> ``decode_error``,
:class:`DecodeTimeoutError` -> ``timeout``); the command lines catch :class:`ScannerError` alone
and print its message in one line (exit 2): anything else is a bug, with its traceback (exit 1).

Some also derive from the built-in error they refine (``ValueError``, ``TimeoutError``,
``FileNotFoundError``), so code that catches those keeps working.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator


class ScannerError(Exception):
    """Base class of every error this package raises on purpose. ``kind``: what went wrong, as a code."""

    kind = "error"


# --- what the user asked for ---------------------------------------------------------------------


class ConfigError(ScannerError, ValueError):
    """A setting outside its valid range, or settings that do not go together
    (:mod:`pipeline.settings`)."""

    kind = "config"


class ResumeMismatchError(ScannerError, ValueError):
    """An output being resumed holds rows made another way (model, threshold, aggregation,
    sampling or detector settings, tool version), or by an older version that did not record how."""

    kind = "resume_mismatch"


class OutputError(ScannerError, OSError):
    """An output file or folder cannot be written (missing folder, read-only, disk full)."""

    kind = "output"


class OutputLockedError(OutputError):
    """Another run is writing the same output file."""

    kind = "output_locked"


# --- what a clip or a file turned out to be -----------------------------------------------------


class FfmpegNotFoundError(ScannerError, FileNotFoundError):
    """No ffmpeg to decode with: ``$DEEPFAKE_SCANNER_FFMPEG`` names no executable, none is on
    PATH and the imageio-ffmpeg package is not installed."""

    kind = "ffmpeg_not_found"


class DecodeError(ScannerError):
    """The file is not a readable video (empty, truncated, not a video, audio only)."""

    kind = "decode"


class NoVideoStreamError(DecodeError):
    """The file is a media container without a video stream (audio only, subtitles...)."""

    kind = "no_video_stream"


class DecodeTimeoutError(ScannerError, TimeoutError):
    """Decoding a clip exceeded its time budget."""

    kind = "timeout"


# --- models, data and reports -----------------------------------------------------------------------


class WeightsError(ScannerError):
    """A weights file is unreadable, of the wrong architecture, or fails its checksum."""

    kind = "weights"


class WeightsNotFoundError(WeightsError, FileNotFoundError):
    """No weights file where asked, nor under any name or place searched (the message lists them)."""

    kind = "weights_not_found"


class DatasetError(ScannerError, ValueError):
    """Labelled data cannot be read as such: a folder, manifest or mix of faces, or the clips and
    labels a dataset is built from (missing, of the wrong kind, a label not taken)."""

    kind = "dataset"


class ReportError(ScannerError, ValueError):
    """Input the report cannot be made from (missing file, not a scores file, a bad cell); the
    message is one line naming the file and what is wrong."""

    kind = "report"


# --- the web app ---------------------------------------------------------------------------------


class QueueFullError(ScannerError):
    """The web app's queue already holds ``max_queued`` jobs waiting to run."""

    kind = "queue_full"


class UploadRejected(ScannerError):
    """An upload the app will not score. ``status``: 415 (not an image or video we take) or
    422 (looks like one but cannot be used: empty, truncated, undecodable, too long, too big)."""

    kind = "upload_rejected"

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def output_error(what: object, exc: OSError) -> OSError:
    """``exc``, raised writing ``what`` (an output file or folder), as :class:`OutputError` naming
    it ("cannot write report/: No space left on device"); an error already ours as it is."""
    if isinstance(exc, ScannerError):
        return exc
    return OutputError(f"cannot write {what}: {exc.strerror or exc}")


@contextlib.contextmanager
def writing(what: object) -> Iterator[None]:
    """A block whose ``OSError`` can only come from writing ``what``: it leaves as
    :func:`output_error` makes it."""
    try:
        yield
    except OSError as exc:
        raise output_error(what, exc) from exc


def all_errors() -> list[type[ScannerError]]:
    """Every error class of the package (for tests and docs): :class:`ScannerError` and all below it."""
    found, todo = [], [ScannerError]
    while todo:
        cls = todo.pop(0)
        found.append(cls)
        todo.extend(cls.__subclasses__())
    return found
