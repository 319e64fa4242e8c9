"""Every setting a user can change, declared once: its name, its valid range, its unit and what
it does (as PySceneDetect's ``CONFIG_MAP`` of ``RangeValue``).

The config classes check their fields here (:func:`check`) and the command lines build their
value types from here (:meth:`Setting.parse`), so a range is written
in one place and every surface refuses the same values with the same words. A setting with
an ``env`` may be overridden by that environment variable (documented in docs/usage.md); the
override is read once, when a config is made, and the config then travels to worker
processes and Dask workers with the value it was made with.

A leaf module: it imports nothing of the package but :mod:`pipeline.errors`.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import numbers
import os

from pipeline.errors import ConfigError


def _number(value: float) -> str:
    return f"{value:g}"


@dataclasses.dataclass(frozen=True)
class Range:
    """An interval of valid values; ``None`` for an open end (no bound). ``low_open`` /
    ``high_open``: the bound itself is excluded. NaN and the infinities are in no range."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    def __contains__(self, value: object) -> bool:
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
            return False
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        # numbers.Real declares only < and <= (value is finite here, so "not <" is ">=")
        if self.high is not None and (not value < self.high if self.high_open else not value <= self.high):
            return False
        return True

    def __str__(self) -> str:
        """``in (0, 1)``, ``in [0.5, 3]``, ``> 0``, ``>= 1``, ``<= 4``."""
        if self.low is not None and self.high is not None:
            left, right = "(" if self.low_open else "[", ")" if self.high_open else "]"
            return f"in {left}{_number(self.low)}, {_number(self.high)}{right}"
        if self.low is not None:
            return f"{'>' if self.low_open else '>='} {_number(self.low)}"
        if self.high is not None:
            return f"{'<' if self.high_open else '<='} {_number(self.high)}"
        return "any number"


POSITIVE = Range(0.0, None, low_open=True)
NON_NEGATIVE = Range(0.0)
AT_LEAST_ONE = Range(1)
OPEN_UNIT = Range(0.0, 1.0, low_open=True, high_open=True)
UNIT = Range(0.0, 1.0)


@dataclasses.dataclass(frozen=True)
class Setting:
    """One setting: ``name`` (the config field), ``kind`` (``float``, ``int`` or ``bool``),
    ``range`` (``None``: any value of the kind), ``unit`` (in words, for help texts), ``help``
    (what it does), ``env`` (an environment variable that overrides its default)."""

    name: str
    kind: type
    range: Range | None
    unit: str = ""
    help: str = ""
    env: str | None = None

    def check(self, value, what: str | None = None):
        """``value`` if it is valid; else :class:`ConfigError` ``"<what> must be <range>, got <value>"``
        (``what``: how the message names the value, e.g. another field of the same kind; default ``name``)."""
        what = what or self.name
        if self.kind is int and (isinstance(value, bool) or not isinstance(value, numbers.Integral)):
            raise ConfigError(f"{what} must be a whole number, got {value!r}")
        if not self.accepts(value):
            raise ConfigError(f"{what} must be {self.range}, got {value!r}")
        return value

    def accepts(self, value: object) -> bool:
        """Whether ``value`` is within the range (any value, for a setting without one)."""
        return self.range is None or value in self.range

    def parse(self, text: str):
        """The value of a command-line ``text`` (an argparse ``type``): argparse's own error,
        ``must be <range>, got <text>``, for a value out of range or of the wrong kind."""
        try:
            value = self.kind(text)
        except ValueError:
            what = "a whole number" if self.kind is int else "a number"
            raise argparse.ArgumentTypeError(f"must be {what}, got {text}") from None
        if not self.accepts(value):
            raise argparse.ArgumentTypeError(f"must be {self.range}, got {text}")
        return value

    def from_env(self, default):
        """The override of ``$env`` when set (booleans: ``0``, ``false``, ``no``, ``off`` are false,
        anything else true; numbers are parsed and checked), else ``default``."""
        text = os.environ.get(self.env, "").strip() if self.env else ""
        if not text:
            return default
        if self.kind is bool:
            return text.lower() not in ("0", "false", "no", "off")
        try:
            return self.check(self.kind(text))
        except ValueError as exc:
            raise ConfigError(f"${self.env}: {exc}") from None

    @property
    def range_text(self) -> str:
        return str(self.range) if self.range is not None else ""


SPARSE_DECODE_ENV = "DEEPFAKE_SCANNER_SPARSE_DECODE"

SETTINGS: dict[str, Setting] = {
    s.name: s
    for s in (
        # sampling and labelling of a scan (pipeline.scan.config.ScanConfig)
        Setting("fps", float, POSITIVE, "frames per second of video", "frames sampled per second of video"),
        Setting("max_frames", int, AT_LEAST_ONE, "frames", "sampled frames per clip at most"),
        Setting("threshold", float, OPEN_UNIT, "p_fake", "label FAKE when p_fake >= threshold"),
        Setting("uncertain_below", float, OPEN_UNIT, "p_fake", "UNCERTAIN from here up to the threshold"),
        Setting("timeout_s", float, POSITIVE, "seconds", "time budget per clip"),
        Setting(
            "sparse_decode",
            bool,
            None,
            help="skip non-reference frames where samples are far apart (faster; a sample may move by a frame)",
            env=SPARSE_DECODE_ENV,
        ),
        # the model's input contract (pipeline.models.weights.WeightsSpec), and what training writes into it
        Setting("crop_margin", float, Range(0.5, 3.0), "face box sides", "crop side / face box side"),
        Setting("temperature", float, Range(0.01, 100.0), "", "calibration temperature of the logits"),
        # face detection and selection (pipeline.faces.detect.DetectorConfig)
        Setting("detect_long_side_px", int, Range(24), "pixels", "long side of the copy of each frame MTCNN sees"),
        Setting("min_confidence", float, UNIT, "", "MTCNN confidence below which a face is ignored"),
        Setting("min_face_px", int, NON_NEGATIVE, "pixels", "faces smaller than this are ignored"),
        Setting(
            "batch_size", int, AT_LEAST_ONE, "items", "items per model call (frames for MTCNN, faces for a scorer)"
        ),
        Setting("pyramid_scale", float, Range(0.3, 0.9), "", "ratio between MTCNN's pyramid levels"),
        Setting("full_frame_every_s", float, NON_NEGATIVE, "seconds", "search whole frames at most this often"),
        Setting("region_margin", float, Range(1.2, 4.0), "face sides", "search region side / face side"),
        Setting("region_px", int, Range(48), "pixels", "the size MTCNN sees a search region at"),
    )
}


def setting(name: str) -> Setting:
    """The :class:`Setting` called ``name``; ``KeyError`` naming the known ones."""
    try:
        return SETTINGS[name]
    except KeyError:
        raise KeyError(f"no setting {name!r}; known: {sorted(SETTINGS)}") from None


def check(name: str, value):
    """``value`` if valid for setting ``name``, else :class:`ConfigError` (a ``ValueError``)."""
    return setting(name).check(value)


def check_fields(config, *names: str, optional: tuple[str, ...] = ()) -> None:
    """Check the fields ``names`` of a config object against their settings; those in
    ``optional`` may also be ``None``."""
    for name in names:
        value = getattr(config, name)
        if value is None and name in optional:
            continue
        check(name, value)


def settings_table() -> str:
    """The settings as a Markdown table (docs/usage.md carries it; a test keeps the two equal)."""
    lines = ["| setting | valid | unit | what it does | environment override |", "|---|---|---|---|---|"]
    for s in SETTINGS.values():
        valid = s.range_text or ("true / false" if s.kind is bool else "any")
        env = f"`${s.env}` (`0`/`false`/`no`/`off`: off)" if s.env else ""
        lines.append(f"| `{s.name}` | {valid} | {s.unit} | {s.help} | {env} |")
    return "\n".join(lines)
