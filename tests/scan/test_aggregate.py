"""pipeline/scan/aggregate.py: per-face p_fake -> one p_fake per clip, by named rules."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.scan.aggregate import AGGREGATIONS, DEFAULT_AGGREGATION, aggregate


@pytest.mark.parametrize(
    "name, p_fake, track_ids, expected",
    [
        ("mean", [0.2], [0], 0.2),  # a single face
        ("mean", [0.1, 0.2, 0.9], [0, 0, 0], 0.4),  # plain mean over faces
        ("mean", [0.1, 0.3, 0.9, 0.9], [0, 0, 1, 1], 0.55),  # tracks are ignored
        ("median", [0.1, 0.2, 0.9], [0, 0, 0], 0.2),  # one outlier frame does not move it
        ("median", [0.1, 0.3, 0.5, 0.9], [0, 0, 0, 0], 0.4),  # even count: middle two averaged
        ("track_max", [0.2, 0.4, 0.6], [0, 0, 0], 0.4),  # one track: its mean
        ("track_max", [0.1, 0.1, 0.1, 0.8, 0.9, 1.0], [0, 0, 0, 1, 1, 1], 0.9),  # worst track's mean
        # a one-sample clip with two people: tracks of one face each still count
        ("track_max", [0.2, 0.7], [0, 1], 0.7),
        # a short clip: two faces per track is enough when no track has more
        ("track_max", [0.2, 0.2, 0.7, 0.7], [3, 3, 8, 8], 0.7),
    ],
)
def test_aggregate_values(name, p_fake, track_ids, expected):
    assert aggregate(name, p_fake, track_ids) == pytest.approx(expected)


def test_track_max_finds_one_swapped_person_among_real_ones():
    # three real people (p_fake 0.1) and one swapped person (p_fake 0.9), 10 samples each
    p_fake = [0.1] * 30 + [0.9] * 10
    track_ids = [0] * 10 + [1] * 10 + [2] * 10 + [3] * 10
    assert aggregate("track_max", p_fake, track_ids) == pytest.approx(0.9)
    assert aggregate("mean", p_fake, track_ids) == pytest.approx(0.3)
    assert aggregate("median", p_fake, track_ids) == pytest.approx(0.1)


@pytest.mark.parametrize(
    "spurious_faces",
    [
        1,  # a one-frame false detection
        2,  # a two-frame one: still under MIN_TRACK_FACES
    ],
)
def test_short_spurious_track_does_not_decide_the_clip(spurious_faces):
    p_fake = [0.1] * 12 + [0.99] * spurious_faces
    track_ids = [0] * 12 + [1] * spurious_faces
    assert aggregate("track_max", p_fake, track_ids) == pytest.approx(0.1)


@pytest.mark.parametrize(
    "name, p_fake, track_ids, message",
    [
        ("max", [0.5], [0], r"aggregation must be one of \['mean', 'median', 'track_max'\], got 'max'"),  # unknown
        ("Mean", [0.5], [0], r"got 'Mean'"),  # names are case-sensitive
        ("mean", [], [], r"cannot aggregate zero faces"),  # a clip without faces is a status, not a score
        ("track_max", [0.5, 0.5], [0], r"got 2 scores but 1 track ids"),  # length mismatch
    ],
)
def test_aggregate_errors(name, p_fake, track_ids, message):
    with pytest.raises(ValueError, match=message):
        aggregate(name, p_fake, track_ids)


@pytest.mark.parametrize("name", sorted(AGGREGATIONS))
def test_results_are_floats_in_unit_interval(name):
    rng = np.random.default_rng(7)
    for _ in range(20):
        n = int(rng.integers(1, 30))
        p_fake = rng.random(n)
        track_ids = rng.integers(0, 4, n)
        result = aggregate(name, p_fake, track_ids)
        assert type(result) is float
        assert 0.0 <= result <= 1.0
        assert p_fake.min() - 1e-12 <= result <= p_fake.max() + 1e-12  # never outside the inputs


@pytest.mark.parametrize("name", sorted(AGGREGATIONS))
def test_rounding_noise_outside_unit_interval_is_clipped(name):
    # a model's float32 sigmoid can land a hair outside [0, 1]
    assert aggregate(name, [1.0000001, 1.0000002, 1.0000001], [0, 0, 0]) == 1.0
    assert aggregate(name, [-1e-7, -2e-7, -1e-7], [0, 0, 0]) == 0.0


def test_default_aggregation_is_a_known_rule():
    assert DEFAULT_AGGREGATION in AGGREGATIONS
