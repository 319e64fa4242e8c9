"""What the scanner, the web app, the evidence sink, saliency and evaluation use of a scorer: the
:class:`Scorer` protocol.

Three classes implement it: :class:`pipeline.models.meso4.MesoScorer` (Meso-4, MesoInception-4),
:class:`pipeline.models.backbone_scorer.BackboneScorer` (a frozen backbone and its head) and
:class:`pipeline.models.ensemble.EnsembleScorer`; :func:`pipeline.models.factory.load_scorer` builds them.
Anything else with these members (a test's stand-in) is a scorer too: the protocol is structural. What
only some scorers have (``logit``, an ensemble's ``members`` and ``temperatures``, a Keras model) is
looked up where it is used (:mod:`pipeline.models.saliency`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from pipeline.models.spec import WeightsSpec


@runtime_checkable
class Scorer(Protocol):
    """Face crops in, ``p_fake`` out (1 = fake), under the contract of one weights spec.

    ``spec``: the :class:`~pipeline.models.spec.WeightsSpec` of the weights (input size, crop framing,
    interpolation, temperature, threshold); ``name``: the spec's name; ``weights_path``: the file loaded,
    ``None`` when built from memory. Read-only for callers."""

    @property
    def name(self) -> str: ...

    @property
    def spec(self) -> WeightsSpec: ...

    @property
    def weights_path(self) -> Path | None: ...

    def score_p_fake(self, crops_rgb: np.ndarray, calibrated: bool = True) -> np.ndarray:
        """``p_fake`` float64 (N,) in [0, 1] of uint8 (N, S, S, 3) RGB crops, S = ``spec.input_size_px``;
        calibrated with the spec's temperature unless ``calibrated`` is False."""
        ...
