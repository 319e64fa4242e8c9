"""The real scorers and the MTCNN detector have every member of the protocols the package types them with
(:class:`pipeline.models.scorer.Scorer`, :class:`pipeline.faces.detector.Detector`); mypy checks their
signatures too (tests/protocol_conformance.py, run by tests/test_types.py)."""

from __future__ import annotations

import dataclasses

import numpy as np

from pipeline.faces.detect import DetectorConfig
from pipeline.faces.detector import Detector
from pipeline.models.scorer import Scorer


def test_meso_scorer_is_a_scorer(scorer):
    assert isinstance(scorer, Scorer)
    assert scorer.name == scorer.spec.name


def test_backbone_scorer_is_a_scorer(backbone_scorer):
    assert isinstance(backbone_scorer, Scorer)
    assert backbone_scorer.weights_path is not None


def test_an_ensemble_is_a_scorer(backbone_scorer):
    from pipeline.models.ensemble import EnsembleScorer

    spec = dataclasses.replace(backbone_scorer.spec, name="one_member", architecture="ensemble")
    ensemble = EnsembleScorer([backbone_scorer], [None], spec)
    assert isinstance(ensemble, Scorer)
    crops = np.zeros((1, 224, 224, 3), np.uint8)
    np.testing.assert_allclose(ensemble.score_p_fake(crops), backbone_scorer.score_p_fake(crops))


def test_face_detector_is_a_detector(detector):
    assert isinstance(detector, Detector)
    assert isinstance(detector.with_config(DetectorConfig(min_face_px=80)), Detector)


def test_something_else_is_neither():
    assert not isinstance(object(), Scorer) and not isinstance(object(), Detector)
