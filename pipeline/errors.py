"""Every error this package raises on purpose, by kind, under :class:`ScannerError`.

Each class has one meaning and a ``kind`` (a short code, for logs and the web API). The batch
maps the clip-level ones onto row statuses (:class:`DecodeError` -> ``decode_error``,
:class:`DecodeTimeoutError` -> ``timeout``); the command lines catch :class:`ScannerError` alone
and print its message in one line (exit 2): anything else is a bug, with its traceback (exit 1).

Some also derive from the built-in error they refine (``ValueError``, ``TimeoutError``,
``FileNotFoundError``), so code that catches those keeps working.
"""

from __future__ import annotations


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
    """The data folder or manifest cannot be read as labelled faces."""

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


def all_errors() -> list[type[ScannerError]]:
    """Every error class of the package (for tests and docs): :class:`ScannerError` and all below it."""
    found, todo = [], [ScannerError]
    while todo:
        cls = todo.pop(0)
        found.append(cls)
        todo.extend(cls.__subclasses__())
    return found
