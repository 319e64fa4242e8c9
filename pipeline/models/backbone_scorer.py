"""The scorer of the backbone family: a frozen ONNX backbone (:mod:`pipeline.models.backbone`) and a head
(:mod:`pipeline.models.head`) fitted on its cached features. Quacks like
:class:`pipeline.models.meso4.MesoScorer` (``spec``, ``name``, ``weights_path``, ``score_p_fake``) and adds
``logit`` (the uncalibrated fake logit, for the clip-level decision and for occlusion maps).

The head file is the weights file (``NAME.npz``); its spec sidecar names the backbone file (relative to the
head) and its sha256, which must match.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeline.errors import WeightsError
from pipeline.models.calibration import sigmoid
from pipeline.models.weights import WeightsSpec, spec_for_weights


def backbone_path(weights_path: str | Path, spec: WeightsSpec) -> Path:
    """The backbone file a head's spec names, resolved against the head's folder. Raises :class:`WeightsError`."""
    if not spec.backbone:
        raise WeightsError(f"{weights_path}: the spec of a {spec.architecture} head must name its backbone file")
    path = Path(spec.backbone)
    path = path if path.is_absolute() else Path(weights_path).resolve().parent / path
    if not path.is_file():
        raise WeightsError(f"{weights_path}: backbone file not found: {path}")
    return path


class BackboneScorer:
    """Backbone features, then the head's fake logit, then the spec's temperature. Build once with :meth:`load`."""

    def __init__(self, backbone, head, spec: WeightsSpec, weights_path: Path | None = None):
        if head.n_features != backbone.info.n_features:
            raise WeightsError(
                f"head takes {head.n_features} features, backbone {backbone.info.name} gives {backbone.info.n_features}"
            )
        self.backbone = backbone
        self.head = head
        self.spec = spec
        self.weights_path = weights_path

    @property
    def name(self) -> str:
        return self.spec.name

    @classmethod
    def load(cls, weights_path: str | Path, *, threads: int | None = None) -> BackboneScorer:
        """Read the head, its spec and its backbone. Raises :class:`WeightsError`."""
        from pipeline.models.backbone import OnnxBackbone
        from pipeline.models.head import Head

        path = Path(weights_path)
        spec = spec_for_weights(path)
        backbone = OnnxBackbone.load(backbone_path(path, spec), threads=threads)
        if spec.backbone_sha256 and spec.backbone_sha256 != backbone.info.sha256:
            raise WeightsError(
                f"{path}: its spec wants backbone sha256 {spec.backbone_sha256[:12]}..., "
                f"{backbone.path} is {backbone.info.sha256[:12]}..."
            )
        if (spec.input_size_px, spec.input_scale) != (backbone.info.input_size_px, backbone.info.input_scale):
            raise WeightsError(
                f"{path}: spec input {spec.input_size_px} px {spec.input_scale} differs from the "
                f"backbone's {backbone.info.input_size_px} px {backbone.info.input_scale}"
            )
        return cls(backbone, Head.load(path), spec, path)

    def logit(self, crops_rgb: np.ndarray) -> np.ndarray:
        """Uncalibrated fake logits, float64 (N,), of uint8 (N, S, S, 3) RGB crops."""
        return self.head.logit(self.backbone.features(crops_rgb))

    def score_p_fake(self, crops_rgb: np.ndarray, calibrated: bool = True) -> np.ndarray:
        """``p_fake`` float64 (N,) in [0, 1] of uint8 (N, S, S, 3) RGB crops, S = ``spec.input_size_px``;
        ``sigmoid(logit / temperature)`` unless ``calibrated`` is False."""
        z = self.logit(crops_rgb)  # the backbone checks the crops (its side is the spec's, checked at load)
        return sigmoid(z / self.spec.temperature if calibrated else z)
