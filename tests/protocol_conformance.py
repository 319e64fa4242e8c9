"""Checked by mypy, never run: each real scorer is a :class:`pipeline.models.scorer.Scorer` and the MTCNN
detector a :class:`pipeline.faces.detector.Detector` (setup.cfg's ``[mypy] files`` names this file;
tests/test_types.py runs mypy, tests/models/test_protocols.py checks the same at run time)."""

from __future__ import annotations

from pipeline.faces.detect import FaceDetector
from pipeline.faces.detector import Detector
from pipeline.models.backbone_scorer import BackboneScorer
from pipeline.models.ensemble import EnsembleScorer
from pipeline.models.meso4 import MesoScorer
from pipeline.models.scorer import Scorer


def scorers_are_scorers(meso: MesoScorer, backbone: BackboneScorer, ensemble: EnsembleScorer) -> list[Scorer]:
    return [meso, backbone, ensemble]


def face_detector_is_a_detector(detector: FaceDetector) -> Detector:
    return detector
