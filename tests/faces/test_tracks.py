"""pipeline/faces/tracks.py: linking faces across sampled frames into one track per person."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.faces.identity import EMBEDDING_SIZE, SAME_PERSON_MAX_DISTANCE
from pipeline.faces.tracks import MAX_GAP_SAMPLES, STATIC_MIN_FACES, is_static, link_tracks, motion_stats, shot_numbers


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


# --------------------------------------------------------------------------------------------
# Cuts, identity checks (fake embeddings) and static faces
# --------------------------------------------------------------------------------------------


def person(k: int) -> np.ndarray:
    """A fake embedding of person ``k``: unit vectors, sqrt(2) apart (far over the limit)."""
    v = np.zeros(EMBEDDING_SIZE, np.float32)
    v[k] = 1.0
    return v


class FakeEmbed:
    """``embed`` callback: the vector of the person behind each face index (flat, in sample
    order); records every call's face indices."""

    def __init__(self, who_per_sample):
        self.who = [w for sample in who_per_sample for w in sample]
        self.calls: list[list[int]] = []

    def __call__(self, faces):
        self.calls.append(list(faces))
        return [person(self.who[f]) for f in faces]

    @property
    def asked(self) -> list[int]:
        return [f for call in self.calls for f in call]


def never_called(faces):
    raise AssertionError(f"embed called for {list(faces)}")


@pytest.mark.parametrize(
    "timestamps, cuts, expected",
    [
        ([0.0, 0.5, 1.0], [], [0, 0, 0]),  # no cut: one shot
        ([0.0, 0.5, 1.0, 1.5], [0.7], [0, 0, 1, 1]),  # a cut between samples
        ([0.0, 0.5, 1.0], [0.5], [0, 1, 1]),  # a cut at a sample time: that sample is in the new shot
        ([0.0, 0.5, 1.0, 1.5], [1.2, 0.2], [0, 1, 1, 2]),  # cuts in any order
        ([0.0, 0.5, 1.0], [0.6, 0.8], [0, 0, 2]),  # two cuts between the same samples
    ],
)
def test_shot_numbers(timestamps, cuts, expected):
    assert shot_numbers(timestamps, cuts) == expected


def test_a_cut_stops_position_linking():
    samples = [[face(200, 200)]] * 8  # the same box before and after the cut
    times = [0.5 * i for i in range(8)]
    assert link_tracks(samples, timestamps_s=times) == [[0]] * 8  # no cut: one track
    assert link_tracks(samples, timestamps_s=times, cut_times_s=[1.9]) == [[0]] * 4 + [[1]] * 4


def test_the_same_person_either_side_of_a_cut_is_joined_by_embedding():
    samples = [[face(200, 200)]] * 8
    times = [0.5 * i for i in range(8)]
    embed = FakeEmbed([[0]] * 8)
    assert link_tracks(samples, timestamps_s=times, cut_times_s=[1.9], embed=embed) == [[0]] * 8
    assert len(embed.asked) == len(set(embed.asked))  # no face embedded twice


def test_another_person_after_a_cut_stays_another_track():
    samples = [[face(200, 200)]] * 8
    times = [0.5 * i for i in range(8)]
    embed = FakeEmbed([[0]] * 4 + [[1]] * 4)
    assert link_tracks(samples, timestamps_s=times, cut_times_s=[1.9], embed=embed) == [[0]] * 4 + [[1]] * 4


def test_cuts_need_timestamps():
    with pytest.raises(ValueError, match="cut_times_s needs timestamps_s"):
        link_tracks([[face(200, 200)]], cut_times_s=[1.0])
    with pytest.raises(ValueError, match="got 2 samples but 1 timestamps"):
        link_tracks([[face(200, 200)], [face(200, 200)]], timestamps_s=[0.0])


@pytest.mark.parametrize(
    "samples",
    [
        [[face(200, 200)]] * 40,  # one person all along
        [[face(200 + 5 * i, 200)] for i in range(40)],  # one person moving
        [[face(200, 200)], [], [], [face(204, 200)]],  # one person, missed in between
    ],
)
def test_a_single_tracklet_clip_never_calls_embed(samples):
    assert {t for ids in link_tracks(samples, embed=never_called) for t in ids} == {0}


def test_no_face_never_calls_embed():
    assert link_tracks([[], []], embed=never_called) == [[], []]


def test_two_people_swapping_places_without_a_cut_keep_their_tracks():
    # A on the left and B on the right; at sample 23 they trade places (an edit no cut
    # detector sees): position alone follows the places, the embeddings follow the people
    n, swap = 40, 23
    left, right = face(150, 200), face(450, 200)
    samples = [[left, right]] * n
    who = [[0, 1]] * swap + [[1, 0]] * (n - swap)
    assert link_tracks(samples) == [[0, 1]] * n  # by position: places, not people
    embed = FakeEmbed(who)
    ids = link_tracks(samples, embed=embed)
    assert ids == [[0, 1]] * swap + [[1, 0]] * (n - swap)  # A is 0 and B is 1 on both sides
    # a few faces per tracklet and a bisection, not every face
    assert len(embed.asked) == len(set(embed.asked))
    # per tracklet: 3 checks and a bisection of 17 faces; then the middle face of each of the 4
    # pieces, so that one odd face does not decide which pieces are one person
    assert len(embed.asked) <= 2 * (3 + 5) + 4
    assert {swap * 2 - 2, swap * 2, swap * 2 - 1, swap * 2 + 1} <= set(embed.asked)  # both sides of the swap


@pytest.mark.parametrize("change", [1, 2, 9, 10, 11, 19, 20, 21, 30, 38])
def test_bisection_finds_the_exact_change_point(change):
    # one place: person 0 up to sample change - 1, person 2 from there on (n = 39); person 1
    # sits still on the right all along, so the clip has two tracklets and embeddings are used
    n = 39
    samples = [[face(150, 200), face(450, 200)]] * n
    who = [[0, 1]] * change + [[2, 1]] * (n - change)
    embed = FakeEmbed(who)
    ids = link_tracks(samples, embed=embed)
    assert ids == [[0, 1]] * change + [[2, 1]] * (n - change)
    assert len(embed.asked) <= 2 * 3 + 6  # 3 checks per tracklet, a bisection of 19 faces


def test_a_turned_head_inside_a_tracklet_stays_with_its_person():
    # person 0 on the left all along, but two faces around the middle check (face 20 of 40)
    # embed as nobody known (a turned head): they are split off, then go back to person 0
    n = 40
    samples = [[face(150, 200), face(450, 200)]] * n
    who = [[0, 1]] * 19 + [[3, 1]] * 2 + [[0, 1]] * 19
    embed = FakeEmbed(who)
    assert link_tracks(samples, embed=embed) == [[0, 1]] * n
    assert 2 * 20 in embed.asked  # an odd face was embedded (the middle check): kept by the reattachment


def test_someone_who_takes_a_place_for_a_while_is_not_stitched_back():
    # person 0 on the left, then person 2 in that seat for 22 samples, then person 0 again: the
    # middle piece lies between two pieces of person 0, but it is too long to be a turned head
    n = 40
    samples = [[face(150, 200), face(450, 200)]] * n
    who = [[0, 1]] * 8 + [[2, 1]] * 22 + [[0, 1]] * 10
    assert link_tracks(samples, embed=FakeEmbed(who)) == who


def test_people_who_swap_places_twice_keep_their_tracks():
    # A left and B right, then swapped from sample 12, then back from sample 28: the middle
    # piece of each place lies between two pieces of the other person, who is elsewhere then
    n = 40
    samples = [[face(150, 200), face(450, 200)]] * n
    who = [[0, 1]] * 12 + [[1, 0]] * 16 + [[0, 1]] * 12
    assert link_tracks(samples, embed=FakeEmbed(who)) == who


def test_pieces_that_share_a_sample_never_merge():
    # two faces side by side in every sample, all with the same embedding: still two people
    samples = [[face(150, 200), face(450, 200)]] * 6
    assert link_tracks(samples, embed=FakeEmbed([[0, 0]] * 6)) == [[0, 1]] * 6
    # tracklets that overlap in one sample only (sample 3) are not joined either
    samples = [[face(150, 200)]] * 3 + [[face(150, 200), face(450, 200)]] + [[face(450, 200)]] * 3
    who = [[0]] * 3 + [[0, 0]] + [[0]] * 3
    assert link_tracks(samples, embed=FakeEmbed(who)) == [[0]] * 3 + [[0, 1]] + [[1]] * 3


def test_pieces_that_never_meet_join_within_the_limit():
    # three shots of one place: person 0, someone near them (within the limit), person 0 again;
    # all three are within the limit of each other, so they end up one track
    samples = [[face(200, 200)]] * 9
    times = [float(i) for i in range(9)]
    near = person(0) + person(5) * (SAME_PERSON_MAX_DISTANCE * 0.9)

    vectors = [person(0)] * 3 + [near] * 3 + [person(0)] * 3

    def embed(faces):
        return [vectors[f] for f in faces]

    ids = link_tracks(samples, timestamps_s=times, cut_times_s=[2.5, 5.5], embed=embed)
    assert ids == [[0]] * 9
    # just over the limit: the middle shot is someone else
    far = person(0) + person(5) * (SAME_PERSON_MAX_DISTANCE * 1.1)
    vectors = [person(0)] * 3 + [far] * 3 + [person(0)] * 3
    ids = link_tracks(samples, timestamps_s=times, cut_times_s=[2.5, 5.5], embed=embed)
    assert ids == [[0]] * 3 + [[1]] * 3 + [[0]] * 3


def texture(seed: int) -> np.ndarray:
    """A 32 px grey thumbnail with structure at the scale of a face's features."""
    import cv2

    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (8, 8)).astype(np.uint8)
    return cv2.resize(small, (32, 32), interpolation=cv2.INTER_CUBIC)


STILL = texture(0)
DRIFTING = [np.clip(STILL * (1 + 0.05 * i) + 3 * i, 0, 255).astype(np.uint8) for i in range(5)]  # exposure


@pytest.mark.parametrize(
    "boxes, thumbnails, expected",
    [
        ([face(200, 200)] * 5, [STILL] * 5, True),  # the same box and pixels: a picture
        ([face(200, 200)] * STATIC_MIN_FACES, [STILL] * STATIC_MIN_FACES, True),  # just enough faces
        ([face(200, 200)] * (STATIC_MIN_FACES - 1), [STILL] * (STATIC_MIN_FACES - 1), False),  # too few to tell
        ([face(200 + (i % 2), 200) for i in range(5)], [STILL] * 5, True),  # a pixel of box jitter
        ([face(200 + 10 * i, 200) for i in range(5)], [STILL] * 5, False),  # the box moves
        ([face(200, 200, 100 + 3 * i) for i in range(5)], [STILL] * 5, False),  # the box grows
        ([face(200, 200)] * 5, [texture(i) for i in range(5)], False),  # the pixels change
        ([face(200, 200)] * 5, [], False),  # no thumbnails: cannot tell, not static
        # exposure drifting over a still picture is not the picture changing
        (
            [face(200, 200)] * 5,
            [np.clip(STILL * (1 + 0.05 * i) + 3 * i, 0, 255).astype(np.uint8) for i in range(5)],
            True,
        ),
    ],
)
def test_is_static(boxes, thumbnails, expected):
    assert is_static(boxes, thumbnails) is expected


def test_motion_stats_measures_shift_size_and_change():
    boxes = [face(100, 100), face(100, 100), face(130, 100, 110)]
    shift, size_change, change = motion_stats(boxes, [STILL] * 3)
    assert shift == pytest.approx(0.3)  # 30 px from the median centre, in median face sizes (100)
    assert size_change == pytest.approx(0.1)
    assert change == pytest.approx(0.0)
    assert motion_stats(boxes, [])[2] == float("inf")
    assert motion_stats(boxes, [STILL, texture(1), texture(2)])[2] > 0.08


def test_only_the_part_of_a_tracklet_beside_another_face_is_checked():
    # person 0 alone for 10 samples, then person 1 beside them for 10: position cannot have mixed
    # them up before sample 10, so the checks start one face before it (face 9)
    samples = [[face(150, 200)]] * 10 + [[face(150, 200), face(450, 200)]] * 10
    who = [[0]] * 10 + [[0, 1]] * 10
    embed = FakeEmbed(who)
    assert link_tracks(samples, embed=embed) == who
    assert embed.asked and min(embed.asked) == 9


def test_someone_who_takes_the_seat_while_another_person_is_there_is_found():
    # the same seat, person 0 then person 2 from sample 12, with person 1 beside them throughout
    samples = [[face(150, 200), face(450, 200)]] * 20
    who = [[0, 1]] * 12 + [[2, 1]] * 8
    assert link_tracks(samples, embed=FakeEmbed(who)) == who
