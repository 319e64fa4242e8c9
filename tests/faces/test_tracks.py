"""pipeline/faces/tracks.py: linking faces across sampled frames into one track per person."""

from __future__ import annotations

import pytest

from pipeline.faces.tracks import MAX_GAP_SAMPLES, link_tracks


def face(cx: float, cy: float, size: float = 100.0) -> tuple[float, float, float, float]:
    """An ``xyxy`` face box of ``size`` px centred on (cx, cy)."""
    return (cx - size / 2, cy - size / 2, cx + size / 2, cy + size / 2)


@pytest.mark.parametrize(
    "boxes_per_sample, expected",
    [
        ([], []),  # no samples at all
        ([[], [], []], [[], [], []]),  # frames without faces keep their place
        ([[face(200, 200)]], [[0]]),  # one face in one frame
        # one person drifting slowly: always the same track
        ([[face(200, 200)], [face(210, 205)], [face(220, 210)], [face(230, 215)]], [[0], [0], [0], [0]]),
        # faceless frames between sightings do not break the track
        ([[face(200, 200)], [], [], [face(205, 200)]], [[0], [], [], [0]]),
        # fast move while turning away: IoU below MIN_LINK_IOU, but centres within MAX_CENTER_SHIFT
        # of the face size and sizes alike still link
        ([[face(200, 200, 100)], [face(250, 200, 60)]], [[0], [0]]),
        # same centre but much smaller face (size ratio < 0.5, IoU < MIN_LINK_IOU): someone else
        ([[face(200, 200, 100)], [face(200, 200, 40)]], [[0], [1]]),
    ],
)
def test_link_tracks_table(boxes_per_sample, expected):
    assert link_tracks(boxes_per_sample) == expected


def test_two_people_keep_separate_ids_across_frames():
    left = [face(150 + 5 * i, 200) for i in range(6)]
    right = [face(450 - 5 * i, 210) for i in range(6)]
    # the detector lists faces by confidence, so their order within a frame changes
    samples = [[l_, r] if i % 2 == 0 else [r, l_] for i, (l_, r) in enumerate(zip(left, right))]
    ids = link_tracks(samples)
    assert ids == [[0, 1] if i % 2 == 0 else [1, 0] for i in range(6)]


@pytest.mark.parametrize("missed", [1, 2, MAX_GAP_SAMPLES - 1])  # blink, turn, longest allowed gap
def test_person_missed_for_a_few_samples_keeps_the_id(missed):
    samples = [[face(200, 200), face(500, 200)]] + [[face(500, 200)]] * missed + [[face(205, 200), face(500, 200)]]
    ids = link_tracks(samples)
    assert ids[0] == [0, 1]
    assert ids[-1] == [0, 1]


def test_person_missed_longer_than_max_gap_gets_a_new_id():
    samples = [[face(200, 200)]] + [[]] * MAX_GAP_SAMPLES + [[face(200, 200)]]
    assert link_tracks(samples)[-1] == [1]


@pytest.mark.parametrize(
    "second",
    [
        face(560, 200),  # jumps to the other side of the frame
        face(200, 620),  # jumps from top to bottom, more than MAX_FAR_SHIFT face sizes
    ],
)
def test_face_that_jumps_across_the_frame_gets_a_new_id(second):
    assert link_tracks([[face(200, 200)], [second]]) == [[0], [1]]


def test_ids_count_from_zero_in_order_of_first_appearance():
    a, b, c = face(100, 100), face(300, 100), face(500, 100)
    samples = [
        [],  # nobody yet
        [b],  # b appears first -> 0
        [c, b],  # c appears second -> 1, listed before b
        [a, c, b],  # a appears third -> 2
    ]
    assert link_tracks(samples) == [[], [0], [1, 0], [2, 1, 0]]


def test_two_overlapping_faces_keep_their_own_ids():
    # heavily overlapping faces: each box could link to either track, the best overlap wins
    overlapping = [face(200, 200), face(220, 200)]
    assert link_tracks([overlapping, overlapping, overlapping[::-1]]) == [[0, 1], [0, 1], [1, 0]]


def test_a_pan_at_one_sample_per_second_stays_one_track():
    # the face moves 1.5 face widths between samples, nobody else around
    samples = [[face(100 + 150 * i, 300)] for i in range(5)]
    assert link_tracks(samples) == [[0]] * 5


def test_a_near_face_wins_over_a_far_one():
    # two people: the far-link rule must not swap them when both move a little
    a0, b0 = face(200, 300), face(500, 300)
    a1, b1 = face(230, 300), face(470, 300)
    assert link_tracks([[a0, b0], [b1, a1]]) == [[0, 1], [1, 0]]
