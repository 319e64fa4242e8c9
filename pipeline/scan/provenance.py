"""What made a row: the model (name and sha256), threshold (and the lower one of an UNCERTAIN
band), aggregation, sampling and detector settings, and the tool version, stamped on every clip
row of a batch so that a CSV says how each number was made, and a resume with other settings is
refused instead of mixing them.

The sampling and detector settings travel as one canonical text column, ``scan_settings``
(``fps=1;max_frames=40;detect_long_side_px=480;...``): one column that compares exactly,
whatever settings are added later. ``DetectorConfig.batch_size`` is left out: it changes how
many frames go to MTCNN per call, not the result.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

# The clip-row columns this module fills (see :class:`pipeline.scan.records.VideoRow`).
PROVENANCE_COLUMNS = (
    "model",
    "model_sha256",
    "threshold",
    "aggregation",
    "scan_settings",
    "tool_version",
    "uncertain_below",
)
_NOT_RESULT_SETTINGS = frozenset({"batch_size"})


def _number(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


@dataclasses.dataclass(frozen=True)
class RunSettings:
    """The settings one batch scores with, as its rows record them.

    ``model``: the weights spec's name; ``model_sha256``: the weights file's sha256 (the
    ensemble file's for an ensemble); ``threshold``: ``p_fake`` at or above which a clip is
    FAKE; ``aggregation``: the clip rule; ``scan_settings``: sampling and detector settings
    (:func:`scan_settings_text`); ``tool_version``: ``pipeline.__version__``; ``uncertain_below``:
    the lower threshold of the UNCERTAIN band (``None``: one cut, FAKE or REAL).
    """

    model: str
    model_sha256: str
    threshold: float
    aggregation: str
    scan_settings: str
    tool_version: str
    uncertain_below: float | None = None

    def columns(self) -> dict:
        """The row fields, by column name (thresholds rounded to 6 decimals)."""
        values = dataclasses.asdict(self)
        values["threshold"] = round(self.threshold, 6)
        if self.uncertain_below is not None:
            values["uncertain_below"] = round(self.uncertain_below, 6)
        return values

    def differences(self, recorded: Mapping[str, str]) -> list[str]:
        """What differs between these settings and the CSV cells of an earlier row
        (``recorded``: column -> text as read back), e.g. ``"threshold 0.5 -> 0.477"``. Empty when
        the row was made the same way. ``scan_settings`` differences name each setting."""
        found = []
        for name, value in self.columns().items():
            old = recorded.get(name, "")
            if name == "scan_settings":
                found += _settings_differences(old, value)
            elif name == "threshold":
                if old == "" or abs(float(old) - value) > 1e-9:
                    found.append(f"threshold {old or '(none)'} -> {_number(value)}")
            elif name == "uncertain_below":
                old = "" if old in ("", "None") else old  # no band: an empty cell (JSON null read back)
                if (old == "") != (value is None) or (value is not None and abs(float(old) - value) > 1e-9):
                    found.append(
                        f"uncertain_below {old or '(none: one cut)'} -> "
                        f"{'(none: one cut)' if value is None else _number(value)}"
                    )
            elif name == "model_sha256" and recorded.get("model", "") != self.model:
                continue  # another model: its name says it, the two hashes add only length
            elif old != str(value):
                found.append(f"{name} {old or '(none)'} -> {value}")
        return found


def scan_settings_text(fps: float, max_frames: int, detector_config, sparse_decode: bool | None = None) -> str:
    """The sampling and detector settings as one canonical text: ``key=value`` pairs joined by
    ``;`` in a fixed order (sampling first, with ``sparse_decode`` 0 or 1: the scan's
    ``ScanConfig.sparse_decode``, ``None``: :func:`pipeline.video.decode.sparse_decode_enabled`;
    then every field of :class:`pipeline.faces.detect.DetectorConfig` but ``batch_size``),
    numbers in ``%g``."""
    from pipeline.video.decode import sparse_decode_enabled

    sparse = sparse_decode_enabled() if sparse_decode is None else sparse_decode
    pairs = [("fps", fps), ("max_frames", max_frames), ("sparse_decode", int(sparse))]
    pairs += [
        (f.name, getattr(detector_config, f.name))
        for f in dataclasses.fields(detector_config)
        if f.name not in _NOT_RESULT_SETTINGS
    ]
    return ";".join(f"{k}={_number(v)}" for k, v in pairs)


def _settings_differences(old: str, new: str) -> list[str]:
    parse = lambda text: dict(p.split("=", 1) for p in text.split(";") if "=" in p)  # noqa: E731
    before, after = parse(old), parse(new)
    if not before:
        return [f"scan_settings (none) -> {new}"]
    return [
        f"{key} {before.get(key, '(none)')} -> {after.get(key, '(none)')}{_HOW_TO_SET.get(key, '')}"
        for key in list(after) + [k for k in before if k not in after]
        if before.get(key) != after.get(key)
    ]


# Settings that no flag sets, and what does.
_HOW_TO_SET = {"sparse_decode": " (set by $DEEPFAKE_SCANNER_SPARSE_DECODE: 0 decodes every frame)"}


def run_settings(models, config) -> RunSettings:
    """The settings of a batch that scores with ``models`` (a
    :class:`pipeline.models.factory.ModelSpec` or :class:`~pipeline.models.factory.LoadedModels`)
    and ``config`` (a :class:`pipeline.scan.analyze.ScanConfig`). Resolves a spec's weights file
    without TensorFlow; raises as :func:`pipeline.models.factory.resolve_model` does."""
    import pipeline
    from pipeline.models.factory import LoadedModels, resolve_model

    if isinstance(models, LoadedModels):
        if models.detector is None:
            raise ValueError("run settings need models loaded with a detector (with_detector=True)")
        spec, detector_config = models.scorer.spec, models.detector.config
    else:
        spec, detector_config = resolve_model(models)[1], models.detector
    return RunSettings(
        model=spec.name,
        model_sha256=spec.sha256,
        threshold=config.threshold,
        aggregation=config.aggregation,
        scan_settings=scan_settings_text(config.fps, config.max_frames, detector_config, config.sparse_decode),
        tool_version=pipeline.__version__,
        uncertain_below=config.uncertain_below,
    )
