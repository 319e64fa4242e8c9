"""pipeline/scan/aggregate.py: per-face p_fake -> one p_fake per clip, by named rules."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.scan.aggregate import (
    AGGREGATIONS,
    COUNTED,
    COUNTED_SMALL,
    COUNTED_STATIC_ONLY,
    DEFAULT_AGGREGATION,
    LEFT_OUT_FEW_FACES,
    LEFT_OUT_STATIC,
    SIZE_RELIABILITY_PX,
    SIZE_RELIABILITY_WEIGHT,
    aggregate,
    size_reliability,
    summarize_tracks,
    verdict_track,
)


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


# --------------------------------------------------------------------------------------------
# Tracks: which count, why, and how much (summarize_tracks, size_reliability)
# --------------------------------------------------------------------------------------------


def _faces(*tracks):
    """Flatten ``(track_id, n_faces, p_fake, size_px, static)`` tuples into per-face lists."""
    p, ids, sizes, still = [], [], [], []
    for track_id, n, p_fake, size_px, static in tracks:
        p += [p_fake] * n
        ids += [track_id] * n
        sizes += [size_px] * n
        still += [static] * n
    return p, ids, sizes, still


@pytest.mark.parametrize(
    "tracks, expected",
    [
        # one person, full-size faces: counted
        ([(0, 10, 0.3, 200, False)], [(COUNTED, True)]),
        # one person, 64 px faces: counted, weighed down
        ([(0, 10, 0.3, 64, False)], [(COUNTED_SMALL, True)]),
        # a two-face passer-by beside a ten-face person: too few faces
        ([(0, 10, 0.3, 200, False), (1, 2, 0.9, 200, False)], [(COUNTED, True), (LEFT_OUT_FEW_FACES, False)]),
        # a short clip: two faces are enough when no track has more
        ([(0, 2, 0.3, 200, False), (1, 2, 0.9, 200, False)], [(COUNTED, True), (COUNTED, True)]),
        # under MIN_TRACK_SHARE (0.2) of a 40-face track: 7 faces are too few, 8 count
        ([(0, 40, 0.3, 200, False), (1, 7, 0.9, 200, False)], [(COUNTED, True), (LEFT_OUT_FEW_FACES, False)]),
        ([(0, 40, 0.3, 200, False), (1, 8, 0.9, 200, False)], [(COUNTED, True), (COUNTED, True)]),
        # a photo on the wall beside a moving person: left out
        ([(0, 10, 0.3, 200, False), (1, 10, 0.9, 200, True)], [(COUNTED, True), (LEFT_OUT_STATIC, False)]),
        # only a still picture in the clip: it counts, flagged
        ([(0, 10, 0.9, 200, True)], [(COUNTED_STATIC_ONLY, True)]),
        # a still picture beside a moving passer-by with too few faces: the picture counts
        (
            [(0, 10, 0.9, 200, True), (1, 2, 0.1, 200, False)],
            [(COUNTED_STATIC_ONLY, True), (LEFT_OUT_FEW_FACES, False)],
        ),
        # a small fake person beside a large real one: counted (weighed), not dropped
        ([(0, 20, 0.1, 400, False), (1, 20, 0.95, 48, False)], [(COUNTED, True), (COUNTED_SMALL, True)]),
    ],
)
def test_summarize_tracks_reasons(tracks, expected):
    p, ids, sizes, still = _faces(*tracks)
    summaries = summarize_tracks(p, ids, sizes, static=still)
    assert [(t.reason, t.counted) for t in summaries] == expected
    assert [t.track_id for t in summaries] == [t[0] for t in tracks]
    assert [t.n_faces for t in summaries] == [t[1] for t in tracks]
    assert [t.static for t in summaries] == [t[4] for t in tracks]


@pytest.mark.parametrize(
    "size_px, mean, threshold, weight",
    [
        (200, 0.9, 0.5, 1.0),  # full size: the mean itself
        (160, 0.2, 0.5, 1.0),
        (64, 0.9, 0.5, 0.63),  # pulled toward the threshold
        (64, 0.1, 0.5, 0.63),  # from below too
        (48, 0.95, 0.3, 0.48),  # toward whatever threshold is in use
        (10, 0.9, 0.5, 0.35),  # under the smallest measured size: its weight
    ],
)
def test_track_score_is_the_mean_pulled_toward_the_threshold(size_px, mean, threshold, weight):
    (track,) = summarize_tracks([mean] * 5, [0] * 5, [size_px] * 5, neutral_p_fake=threshold)
    assert track.size_weight == pytest.approx(weight)
    assert track.verdict_score == pytest.approx(threshold + weight * (mean - threshold))
    assert track.mean_p_fake == pytest.approx(mean) and track.median_face_px == size_px


def test_summary_fields_times_sizes_and_max():
    summaries = summarize_tracks(
        [0.2, 0.4, 0.9, 0.6],
        [5, 5, 2, 2],
        [100, 120, 200, 300],
        timestamps_s=[0.5, 1.0, 1.5, 3.00004],
    )
    first, second = summaries
    assert (first.track_id, first.first_timestamp_s, first.last_timestamp_s) == (5, 0.5, 1.0)
    assert (second.track_id, second.first_timestamp_s, second.last_timestamp_s) == (2, 1.5, 3.0)
    assert (first.median_face_px, second.median_face_px) == (110.0, 250.0)
    assert (first.max_p_fake, second.max_p_fake) == (0.4, 0.9)
    assert (first.mean_p_fake, second.mean_p_fake) == (pytest.approx(0.3), pytest.approx(0.75))


def test_without_sizes_every_face_is_full_size():
    (track,) = summarize_tracks([0.8, 0.8, 0.8], [0, 0, 0])
    assert (track.size_weight, track.verdict_score, track.median_face_px, track.reason) == (
        1.0,
        pytest.approx(0.8),
        0.0,
        COUNTED,
    )


def test_size_reliability_is_monotone_and_full_from_160_px():
    sizes = np.linspace(0, 400, 801)
    weights = [size_reliability(s) for s in sizes]
    assert all(b >= a for a, b in zip(weights, weights[1:]))
    assert all(w == 1.0 for s, w in zip(sizes, weights) if s >= 160)
    assert all(w < 1.0 for s, w in zip(sizes, weights) if s < 160)
    assert min(weights) == SIZE_RELIABILITY_WEIGHT[0] > 0
    for px, w in zip(SIZE_RELIABILITY_PX, SIZE_RELIABILITY_WEIGHT):
        assert size_reliability(px) == pytest.approx(w)  # the measured points themselves


def test_a_small_fake_person_now_decides_the_clip_weighed():
    # formerly dropped as a small track; now it counts with its size's reliability
    p, ids, sizes, _ = _faces((0, 20, 0.1, 400, False), (1, 20, 0.95, 48, False))
    expected = 0.5 + 0.48 * (0.95 - 0.5)
    assert aggregate("track_max", p, ids, sizes) == pytest.approx(expected)
    assert verdict_track(summarize_tracks(p, ids, sizes)).track_id == 1
    # without sizes, the same faces decide at full weight
    assert aggregate("track_max", p, ids) == pytest.approx(0.95)


def test_a_small_real_person_is_not_pushed_over_the_threshold():
    # small faces drift toward FAKE; the pull toward the threshold keeps them under it
    p, ids, sizes, _ = _faces((0, 10, 0.45, 40, False))
    assert 0.45 < aggregate("track_max", p, ids, sizes) < 0.5


@pytest.mark.parametrize("threshold", [0.3, 0.5, 0.8])
def test_aggregate_pulls_small_faces_toward_the_threshold_given(threshold):
    expected = threshold + 0.63 * (0.9 - threshold)
    assert aggregate("track_max", [0.9] * 5, [0] * 5, [64.0] * 5, neutral_p_fake=threshold) == pytest.approx(expected)


def test_static_tracks_are_left_out_of_the_verdict():
    p, ids, sizes, still = _faces((0, 10, 0.2, 200, False), (1, 10, 0.9, 200, True))
    assert aggregate("track_max", p, ids, sizes, static=still) == pytest.approx(0.2)
    assert aggregate("track_max", p, ids, sizes) == pytest.approx(0.9)  # not known static: it counts
    assert aggregate("mean", p, ids, sizes, static=still) == pytest.approx(0.55)  # mean ignores it


def test_verdict_track_is_the_highest_counted_score_first_of_equals():
    p, ids, sizes, still = _faces(
        (0, 10, 0.7, 200, False), (1, 10, 0.7, 200, False), (2, 10, 0.99, 200, True), (3, 2, 1.0, 200, False)
    )
    summaries = summarize_tracks(p, ids, sizes, static=still)
    assert verdict_track(summaries).track_id == 0  # 2 is static, 3 too short; 0 and 1 tie


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(face_sizes_px=[100.0]), r"got 2 scores but 1 face sizes"),
        (dict(static=[False]), r"got 2 scores but 1 static flags"),
    ],
)
def test_aggregate_checks_the_lengths_of_sizes_and_static(kwargs, message):
    with pytest.raises(ValueError, match=message):
        aggregate("track_max", [0.5, 0.5], [0, 0], **kwargs)
