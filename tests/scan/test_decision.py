"""The learned clip decision: person features, the logistic model, the two thresholds and the labels."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pipeline.scan.analyze import ScanConfig, ScoredFace, learned_verdict, track_summaries, verdict_row
from pipeline.scan.decision import FEATURES, ClipDecision, choose_thresholds, person_features
from pipeline.scan.notes import EVIDENCE_RULE_TEXT
from pipeline.scan.records import label_for


def decision(**changes) -> ClipDecision:
    """A decision whose p_fake is sigmoid(z_mean): the coefficient on z_mean is 1, the rest 0."""
    coef = [0.0] * len(FEATURES)
    coef[FEATURES.index("z_mean")] = 1.0
    fields = dict(
        mean=(0.0,) * len(FEATURES),
        scale=(1.0,) * len(FEATURES),
        coef=tuple(coef),
        intercept=0.0,
        fake_at=0.8,
        real_below=0.3,
        fpr_target=0.05,
        miss_target=0.05,
        chosen_on="test clips",
    )
    fields.update(changes)
    return ClipDecision(**fields)


def test_person_features_follow_their_definitions():
    z = [-1.0, 1.0, 3.0]
    f = dict(zip(FEATURES, person_features(z, [100, 200, 300], [0.0, 1.0, 2.0], span_s=4.0)))
    assert f["z_mean"] == pytest.approx(1.0)
    assert f["z_max"] == 3.0
    assert f["z_q50"] == 1.0
    assert f["share_over_0"] == pytest.approx(2 / 3)
    assert f["z_mean_abs_step"] == pytest.approx(2.0)
    assert f["log_n_faces"] == pytest.approx(np.log(3))
    assert f["log_face_px"] == pytest.approx(np.log(200))
    assert f["coverage"] == pytest.approx(0.5)


def test_person_features_of_one_face_and_no_span():
    f = dict(zip(FEATURES, person_features([0.5], [80], [3.0], span_s=0.0)))
    assert f["z_std"] == 0.0 and f["z_mean_abs_step"] == 0.0 and f["coverage"] == 1.0
    with pytest.raises(ValueError, match="at least one face"):
        person_features([], [], [], span_s=1.0)


def test_labels_at_the_two_thresholds():
    d = decision()
    assert d.label(0.8) == "FAKE"
    assert d.label(0.79) == "UNCERTAIN"
    assert d.label(0.3) == "UNCERTAIN"
    assert d.label(0.29) == "REAL"
    assert "0.800" in d.rule_text and "0.300" in d.rule_text and "test clips" in d.rule_text


def test_decision_refuses_crossed_thresholds_and_other_features():
    with pytest.raises(ValueError, match="real_below <= fake_at"):
        decision(fake_at=0.2, real_below=0.5)
    with pytest.raises(ValueError, match="features"):
        decision(features=("z_mean",))


def test_decision_round_trips_through_json_text():
    d = decision(face_temperature=1.7)
    again = ClipDecision.from_json(json.dumps(d.to_json()))
    assert again == d
    assert hash(again) == hash(d)  # a ScanConfig holding it stays hashable


def test_choose_thresholds_keeps_the_stated_rates():
    rng = np.random.default_rng(0)
    real = rng.uniform(0.0, 0.6, 100)
    fake = rng.uniform(0.4, 1.0, 100)
    p = np.concatenate([real, fake])
    y = np.r_[np.zeros(100), np.ones(100)]
    real_below, fake_at = choose_thresholds(p, y, fpr_target=0.05, miss_target=0.05)
    assert np.mean(real >= fake_at) <= 0.05
    assert np.mean(fake < real_below) <= 0.05
    assert real_below <= fake_at
    # one more real clip over the cut would break the rate: the cut is the tightest one
    assert np.mean(real >= fake_at - 2e-6) > 0.05 or fake_at <= 1e-4


def test_choose_thresholds_needs_both_classes():
    with pytest.raises(ValueError, match="real and fake"):
        choose_thresholds(np.array([0.1, 0.2]), np.array([0, 0]))


def test_label_for_with_and_without_a_band():
    assert label_for(0.5, 0.6) == "REAL"
    assert label_for(0.5, 0.6, 0.4) == "UNCERTAIN"
    assert label_for(0.39, 0.6, 0.4) == "REAL"
    assert label_for(0.6, 0.6, 0.4) == "FAKE"


def _face(track_id: int, p: float, t: float, size: float = 200.0) -> ScoredFace:
    return ScoredFace(round(t), round(t), t, track_id, (0.0, 0.0, size, size), 0.99, p)


def test_a_real_bystander_neither_makes_the_clip_fake_nor_hides_the_fake_person():
    d = decision()
    fake_person = [_face(0, 0.95, float(t)) for t in range(6)]
    real_person = [_face(1, 0.05, float(t)) for t in range(6)]
    config = ScanConfig(aggregation="learned", decision=d, threshold=d.fake_at, uncertain_below=d.real_below)
    faces = fake_person + real_person
    tracks = track_summaries(faces, config)
    track_id, p = learned_verdict(faces, tracks, d)
    assert track_id == 0 and p > 0.9
    alone = track_summaries(real_person, config)
    assert learned_verdict(real_person, alone, d)[1] < 0.1
    row = verdict_row("clip.mp4", faces, config, model="m", n_frames=6, started_s=0.0)
    assert row.label == "FAKE" and row.verdict_track_id == 0
    assert row.label_rule == f"{d.rule_text}; {EVIDENCE_RULE_TEXT}"


def test_verdict_row_says_uncertain_between_the_thresholds():
    d = decision()
    config = ScanConfig(aggregation="learned", decision=d, threshold=d.fake_at, uncertain_below=d.real_below)
    faces = [_face(0, 0.6, float(t)) for t in range(5)]  # z_mean = logit(0.6) = 0.405 -> p = 0.6
    row = verdict_row("clip.mp4", faces, config, model="m", n_frames=5, started_s=0.0)
    assert row.p_fake == pytest.approx(0.6, abs=1e-6)
    assert row.label == "UNCERTAIN"


def test_for_model_settles_aggregation_and_thresholds():
    class Spec:
        name = "m"
        threshold = 0.5
        clip_decision = json.dumps(decision(is_default=True).to_json())

    config = ScanConfig.for_model(Spec())
    assert config.aggregation == "learned"
    assert (config.threshold, config.uncertain_below) == (0.8, 0.3)
    forced = ScanConfig.for_model(Spec(), threshold=0.6)
    assert (forced.threshold, forced.uncertain_below) == (0.6, None)
    assert forced.label_rule == f"FAKE at p_fake >= 0.6, else REAL; {EVIDENCE_RULE_TEXT}"
    tmax = ScanConfig.for_model(Spec(), aggregation="track_max")
    assert (tmax.aggregation, tmax.threshold, tmax.uncertain_below) == ("track_max", 0.5, None)

    class Plain:
        name = "plain"
        threshold = 0.477
        clip_decision = None

    assert ScanConfig.for_model(Plain()).aggregation == "track_max"

    class NotDefault:
        name = "measured but not the default"
        threshold = 0.497
        clip_decision = json.dumps(decision().to_json())

    assert ScanConfig.for_model(NotDefault()).aggregation == "track_max"
    asked = ScanConfig.for_model(NotDefault(), aggregation="learned")
    assert (asked.aggregation, asked.threshold, asked.uncertain_below) == ("learned", 0.8, 0.3)
    with pytest.raises(ValueError, match="clip decision"):
        ScanConfig.for_model(Plain(), aggregation="learned")
