"""Exceptions with one meaning each; the batch runner maps them onto row statuses."""


class ScannerError(Exception):
    """Base class of every error this package raises on purpose."""


class ConfigError(ScannerError, ValueError):
    """A setting outside its valid range, or settings that do not go together
    (:mod:`pipeline.settings`); a ``ValueError`` too."""


class DecodeError(ScannerError):
    """The file is not a readable video (empty, truncated, not a video, audio only)."""


class NoVideoStreamError(DecodeError):
    """The file is a media container without a video stream (audio only, subtitles...)."""


class WeightsError(ScannerError):
    """A weights file is unreadable, of the wrong architecture, or fails its checksum."""


class OutputLockedError(ScannerError):
    """Another run is writing the same output file."""
