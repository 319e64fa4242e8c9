"""What a weights file means: its :class:`WeightsSpec` (input contract, crop framing, output
meaning, calibration, threshold), the file's sha256 and where its spec sidecar lies.

The lowest module of :mod:`pipeline.models`: the spec as data, with nothing of where files are
found (:mod:`pipeline.models.weights`) or how they are loaded (:mod:`pipeline.models.factory`),
so that every architecture module and the ensemble file format can use it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import numbers
from pathlib import Path

from pipeline.errors import ConfigError
from pipeline.settings import check_fields

OUTPUT_MEANINGS = ("p_real", "p_fake")
# Pixel scalings a spec may name: x/255 (MesoNet) or (x - 127) / 128 (EfficientNet-Lite).
INPUT_SCALES = ("x/255", "(x-127)/128")


@dataclasses.dataclass(frozen=True)
class WeightsSpec:
    """The input/output contract of one weights file: the single owner of how faces must be
    prepared for it and what its output means.

    ``input_size_px``: side of the square input; ``color_order``/``input_scale``: pixels as the
    model saw them in training (RGB, x/255); ``resize_interpolation``: one of
    :data:`pipeline.faces.crop.RESIZE_INTERPOLATIONS`; ``crop_margin``: crop side / the
    detector's box side, on a square centred on the box (the framing of the training crops;
    1.3 for MesoNet and the project's crops); ``output``: ``p_real`` or ``p_fake`` (the scorer
    always reports ``p_fake``); ``temperature``: the calibration fitted on a validation split
    (:mod:`pipeline.models.calibration`; the scorer reports ``sigmoid(logit(p_fake) / T)``, 1 =
    as the network says); ``threshold``: ``p_fake`` at or above which the label is FAKE, unless a
    command is given one explicitly (chosen on validation for the project's own weights);
    ``architecture``: a name of :mod:`pipeline.models.registry`. Backbone heads also name ``backbone``
    (the ONNX file, relative to the weights file) and its ``backbone_sha256``, and may carry
    ``clip_decision`` (:class:`pipeline.scan.decision.ClipDecision` as a JSON object: the clip-level model and
    its two thresholds, ``FAKE`` / ``UNCERTAIN`` / ``REAL``). ``validated_range``: the picture quality the
    model was validated on, as ``(measure, (low, high))`` items in :data:`pipeline.faces.quality.QUALITY_MEASURES`
    order (``dict(spec.validated_range)`` is the mapping; a sidecar writes it as ``{measure: [low, high]}``; empty
    when unknown), with ``validated_range_source`` saying on which faces it was measured.
    """

    name: str
    architecture: str
    sha256: str
    output: str
    input_size_px: int = 256
    color_order: str = "rgb"
    input_scale: str = "x/255"
    resize_interpolation: str = "area"
    crop_margin: float = 1.3
    temperature: float = 1.0
    threshold: float = 0.5
    provenance: str = ""
    license: str = ""
    url: str | None = None
    backbone: str | None = None
    backbone_sha256: str | None = None
    clip_decision: str | None = None
    validated_range: tuple[tuple[str, tuple[float, float]], ...] = ()
    validated_range_source: str = ""

    def __post_init__(self) -> None:
        from pipeline.models.registry import is_registered, list_models

        object.__setattr__(self, "validated_range", _checked_range(self.validated_range))

        if self.output not in OUTPUT_MEANINGS:
            raise ConfigError(f"output must be one of {OUTPUT_MEANINGS}, got {self.output!r}")
        if not is_registered(self.architecture):
            raise ConfigError(f"architecture must be one of {tuple(list_models())}, got {self.architecture!r}")
        if self.color_order != "rgb" or self.input_scale not in INPUT_SCALES:
            raise ConfigError(
                f"input must be rgb scaled one of {INPUT_SCALES}, got {self.color_order}, {self.input_scale}"
            )
        check_fields(self, "threshold", "crop_margin", "temperature")  # ranges: pipeline.settings

    def to_json(self) -> str:
        fields = dataclasses.asdict(self)
        fields["validated_range"] = {name: list(bounds) for name, bounds in self.validated_range}
        return json.dumps(fields, indent=2, sort_keys=True)


def _checked_range(validated_range) -> tuple[tuple[str, tuple[float, float]], ...]:
    """A spec's ``validated_range`` (a mapping or items of measure -> (low, high); None = unknown) as items in
    measure order. Raises ``ValueError`` for an unknown measure, a bound that is not a finite number, or low > high."""
    if not validated_range:
        return ()
    from pipeline.faces.quality import QUALITY_MEASURES

    items = dict(validated_range)
    unknown = sorted(set(items) - set(QUALITY_MEASURES))
    if unknown:
        raise ValueError(f"validated_range: unknown measures {unknown}; known: {list(QUALITY_MEASURES)}")
    out = []
    for name in (m for m in QUALITY_MEASURES if m in items):
        bounds = items[name]
        if not isinstance(bounds, (list, tuple)) or len(bounds) != 2:
            raise ValueError(f"validated_range {name}: expected [low, high], got {bounds!r}")
        if not all(isinstance(b, numbers.Real) and not isinstance(b, bool) and math.isfinite(b) for b in bounds):
            raise ValueError(f"validated_range {name}: bounds must be finite numbers, got {bounds!r}")
        low, high = float(bounds[0]), float(bounds[1])
        if low > high:
            raise ValueError(f"validated_range {name}: low {low:g} > high {high:g}")
        out.append((name, (low, high)))
    return tuple(out)


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def sidecar_path(weights_path: str | Path) -> Path:
    return Path(str(weights_path) + ".json")
