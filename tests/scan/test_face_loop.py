"""pipeline/scan/face_loop.py, and the scanner's scoring step on top of it (analyze_faces,
verdict_row), with stand-ins for MTCNN and Meso-4 so the batching is checked exactly."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from pipeline.faces.boxes import FaceBox
from pipeline.faces.detect import DetectorConfig, FaceDetector
from pipeline.models.meso4 import SCORE_BATCH_SIZE
from pipeline.scan.analyze import ScanConfig, ScoredFace, analyze_faces, verdict_row
from pipeline.scan.face_loop import FaceLoop, FrameFaces, batched
from pipeline.video.decode import Frame
from tests.helpers import StubScorer


def face(x1, y1, x2, y2, confidence=0.99) -> FaceBox:
    return FaceBox((float(x1), float(y1), float(x2), float(y2)), confidence)


class PeopleDetector(FaceDetector):
    """Finds, on every whole frame, ``people`` faces 100 px wide side by side (moving 2 px a
    frame, so each is one track), plus an unsure box and a 20 px face that selection drops."""

    def __init__(self, people: int, config: DetectorConfig = DetectorConfig(full_frame_every_s=0.0, batch_size=4)):
        super().__init__(mtcnn=None, config=config)
        self.people = people
        self.calls: list[int] = []

    def detect(self, frames_rgb):
        self.calls.append(len(frames_rgb))
        out = []
        for rgb in frames_rgb:
            shift = 2 * int(rgb[0, 0, 0])
            people = [face(10 + 120 * k + shift, 50, 110 + 120 * k + shift, 150) for k in range(self.people)]
            out.append(people + [face(0, 300, 100, 400, 0.5), face(600, 0, 620, 20)])
        return out


def frames(n: int) -> list[Frame]:
    out = []
    for i in range(n):
        rgb = np.full((480, 640, 3), 60, np.uint8)
        rgb[0, 0, 0] = i
        out.append(Frame(i, 5 * i, i / 5, rgb))
    return out


def test_batched_cuts_the_last_batch_short():
    assert [len(b) for b in batched(iter(frames(10)), 4)] == [4, 4, 2]
    assert list(batched(iter([]), 4)) == []


def test_loop_yields_selected_faces_per_detection_batch():
    detector = PeopleDetector(people=2)
    timings: dict = {}
    loop = FaceLoop(iter(frames(10)), detector, timings=timings)
    batches = list(loop)
    assert [len(b) for b in batches] == [4, 4, 2] == detector.calls  # one yield per MTCNN batch
    items = [item for batch in batches for item in batch]
    assert all(isinstance(item, FrameFaces) for item in items)
    assert [item.frame.sample_index for item in items] == list(range(10))
    assert all(len(item.faces) == 2 for item in items)  # the unsure box and the 20 px face are not selected
    assert loop.n_frames == 10
    assert loop.track_ids() == [0, 1] * 10  # one track per person, per face in the order yielded
    assert loop.follower.selection == {"confident": 30, "small": 10}
    assert set(timings) == {"decode_wait_s", "detect_s"} and all(v >= 0 for v in timings.values())


def test_loop_over_no_frames_is_empty():
    loop = FaceLoop(iter([]), PeopleDetector(people=1))
    assert list(loop) == [] and loop.n_frames == 0 and loop.track_ids() == []


def test_loop_with_no_face_yields_frames_with_empty_faces():
    loop = FaceLoop(iter(frames(3)), PeopleDetector(people=0))
    (batch,) = list(loop)
    assert [item.faces for item in batch] == [(), (), ()]  # empty is a value
    assert loop.track_ids() == []


@pytest.mark.parametrize(
    "people, n_frames, expected_batches",
    [
        (1, 10, [10]),  # fewer crops than a scoring batch: one call at the end
        (3, 12, [24, 12]),  # 12 crops per detection batch: under 16 once, 24 at the second, 12 left
        (5, 8, [20, 20]),  # a detection batch of 20 crops is scored whole
        (0, 6, []),  # no face: Meso-4 never runs
    ],
)
def test_scoring_batches_are_cut_at_detection_batch_boundaries(people, n_frames, expected_batches):
    """Scoring runs once at least SCORE_BATCH_SIZE crops wait, checked after each detection
    batch, and once at the end: the batches the scanner always used (so scores stay bit-identical)."""
    assert SCORE_BATCH_SIZE == 16  # the table below is written for it
    scorer = StubScorer()
    n_seen, faces = analyze_faces(iter(frames(n_frames)), PeopleDetector(people), scorer)
    assert scorer.batches == expected_batches
    assert n_seen == n_frames and len(faces) == people * n_frames
    assert [f.track_id for f in faces] == list(range(people)) * n_frames


def test_analyze_faces_returns_scored_faces_with_crops_and_timings():
    scorer = StubScorer()
    timings: dict = {}
    seen: list[int] = []
    _, faces = analyze_faces(
        iter(frames(5)), PeopleDetector(people=1), scorer, keep_crops=True, on_frames=seen.append, timings=timings
    )
    assert seen == [4, 1]
    first = faces[0]
    assert isinstance(first, ScoredFace)
    assert (first.sample_index, first.frame_index, first.timestamp_s) == (0, 0, 0.0)
    assert first.box_xyxy == (10.0, 50.0, 110.0, 150.0) and first.det_confidence == 0.99
    assert first.crop_rgb.shape == (32, 32, 3) and 0.0 <= first.p_fake <= 1.0
    assert {"decode_wait_s", "detect_s", "crop_s", "score_s"} <= set(timings)
    assert (timings["full_frames"], timings["region_frames"], timings["fallback_frames"]) == (5, 0, 0)
    _, without = analyze_faces(iter(frames(5)), PeopleDetector(people=1), scorer)
    assert all(f.crop_rgb is None for f in without)
    assert [f.p_fake for f in without] == [f.p_fake for f in faces]


def _scored(track_id: int, p_fake: float, size_px: float = 200.0, static: bool = False) -> ScoredFace:
    return ScoredFace(0, 0, 0.0, track_id, (0.0, 0.0, size_px, size_px), 0.99, p_fake, track_static=static)


@pytest.mark.parametrize(
    "faces, aggregation, expected_status, expected_p_fake, expected_label",
    [
        ([], "mean", "no_face", None, ""),  # no face: no probability
        ([_scored(0, 0.2), _scored(0, 0.4)], "mean", "ok", pytest.approx(0.3), "REAL"),
        ([_scored(0, 0.2), _scored(1, 0.9)], "track_max", "ok", pytest.approx(0.9), "FAKE"),  # worst person
        ([_scored(0, 0.5)], "mean", "ok", 0.5, "FAKE"),  # threshold is inclusive
        # a 64 px fake person: pulled toward the threshold by its weight (0.63), still FAKE
        ([_scored(0, 0.2), _scored(1, 0.9, 64.0)], "track_max", "ok", pytest.approx(0.5 + 0.63 * 0.4), "FAKE"),
        # under mean, sizes do not matter
        ([_scored(0, 0.2), _scored(1, 0.9, 64.0)], "mean", "ok", pytest.approx(0.55), "FAKE"),
    ],
)
def test_verdict_row(faces, aggregation, expected_status, expected_p_fake, expected_label):
    import time

    config = ScanConfig(aggregation=aggregation, threshold=0.5)
    faces = [dataclasses.replace(f, sample_index=k) for k in range(3) for f in faces]  # each seen in all 3 frames
    row = verdict_row(
        "clip.mp4",
        faces,
        config,
        model="stub",
        n_frames=3,
        started_s=time.perf_counter(),
        width=640,
        height=480,
        rotation_deg=0,
    )
    assert (row.status, row.p_fake, row.label) == (expected_status, expected_p_fake, expected_label)
    assert (row.n_frames, row.n_faces, row.n_tracks) == (3, len(faces), len({f.track_id for f in faces}))
    assert row.notes == "" and row.frames_with_faces == (3 if faces else 0)
    assert (row.width, row.height, row.model, row.aggregation) == (640, 480, "stub", aggregation)
    assert 0.0 <= row.elapsed_s < 5.0


@pytest.mark.parametrize(
    "faces, aggregation, counted, verdict_track_id",
    [
        ([], "track_max", None, None),  # no face: nothing counted, no verdict track
        ([_scored(0, 0.2)] * 5 + [_scored(1, 0.9)] * 5, "track_max", 2, 1),  # the worse person decides
        ([_scored(0, 0.2)] * 10 + [_scored(1, 0.9)], "track_max", 1, 0),  # a one-face passer-by does not
        ([_scored(0, 0.2)] * 5 + [_scored(1, 0.9, static=True)] * 5, "track_max", 1, 0),  # a photo does not
        ([_scored(0, 0.2)] * 10 + [_scored(1, 0.9)], "mean", 2, None),  # under mean every track counts
    ],
)
def test_verdict_row_names_the_counted_tracks(faces, aggregation, counted, verdict_track_id):
    import time

    row = verdict_row(
        "clip.mp4", faces, ScanConfig(aggregation=aggregation), model="stub", n_frames=3, started_s=time.perf_counter()
    )
    assert (row.n_tracks_counted, row.verdict_track_id) == (counted, verdict_track_id)


# --------------------------------------------------------------------------------------------
# Tracks by identity and shot (a stand-in describer), and static faces
# --------------------------------------------------------------------------------------------


class StillDetector(FaceDetector):
    """Finds one 100 px face at the same place on every frame."""

    def __init__(self):
        super().__init__(mtcnn=None, config=DetectorConfig(full_frame_every_s=0.0, batch_size=4))

    def detect(self, frames_rgb):
        return [[face(200, 100, 300, 200)] for _ in frames_rgb]


class FakeDescriber:
    """Stand-in for :class:`pipeline.faces.identity.FaceDescriber`: the chip is the frame's
    ``rgb[1, 0, 0]`` (who is there), the embedding a unit vector per person; records the
    number of chips embedded per call."""

    def __init__(self):
        self.embedded: list[int] = []

    def chip(self, frame_rgb, box_xyxy):
        return np.full((150, 150, 3), frame_rgb[1, 0, 0], np.uint8)

    def embed(self, chips):
        self.embedded.append(len(chips))
        out = np.zeros((len(chips), 128), np.float32)
        for i, c in enumerate(chips):
            out[i, int(c[0, 0, 0])] = 1.0
        return out


def people_frames(who: list[int], *, moving_pixels: bool = False) -> list[Frame]:
    """Frames 0.5 s apart with ``who[i]`` in frame ``i``; ``moving_pixels``: the face's pixels
    change every frame."""
    rng = np.random.default_rng(0)
    out = []
    for i, k in enumerate(who):
        rgb = np.full((480, 640, 3), 60, np.uint8)
        rgb[100:200, 200:300] = 120 + 20 * (np.arange(100)[None, :, None] // 25)  # a still face picture
        if moving_pixels:
            rgb[100:200, 200:300] = rng.integers(0, 256, (100, 100, 3))
        rgb[1, 0, 0] = k
        out.append(Frame(i, 12 * i, i / 2, rgb))
    return out


def test_a_cut_splits_the_track_without_a_describer():
    cuts: list[float] = []
    loop = FaceLoop(iter(people_frames([0] * 8)), StillDetector(), cut_times_s=cuts)
    list(loop)
    cuts.append(2.0)  # filled by the decoder while the clip streams: read when linking
    assert loop.track_ids() == [0] * 4 + [1] * 4
    assert loop.static_tracks() == set() and loop.motion() == {} and loop.n_embedded == 0


@pytest.mark.parametrize(
    "who, expected",
    [
        ([0] * 4 + [0] * 4, [0] * 8),  # the same person either side of the cut: one track
        ([0] * 4 + [1] * 4, [0] * 4 + [1] * 4),  # someone else after the cut: two
    ],
)
def test_a_describer_joins_or_keeps_apart_across_a_cut(who, expected):
    describer = FakeDescriber()
    timings: dict = {}
    loop = FaceLoop(iter(people_frames(who)), StillDetector(), describer=describer, cut_times_s=[2.0], timings=timings)
    list(loop)
    assert loop.track_ids() == expected
    assert loop.n_embedded == sum(describer.embedded) <= 8
    assert loop.n_embedded > 0 and timings["identity_s"] >= 0


def test_a_single_shot_single_face_clip_embeds_nothing():
    describer = FakeDescriber()
    loop = FaceLoop(iter(people_frames([0] * 8)), StillDetector(), describer=describer)
    list(loop)
    assert loop.track_ids() == [0] * 8
    assert loop.n_embedded == 0 and describer.embedded == []


@pytest.mark.parametrize("moving_pixels, static", [(False, {0}), (True, set())])
def test_static_tracks_need_still_boxes_and_pixels(moving_pixels, static):
    clip = people_frames([0] * 6, moving_pixels=moving_pixels)
    loop = FaceLoop(iter(clip), StillDetector(), describer=FakeDescriber())
    list(loop)
    assert loop.static_tracks() == static
    ((shift, size_change, change),) = loop.motion().values()
    assert (shift, size_change) == (0.0, 0.0)
    assert (change == 0.0) is (not moving_pixels)


def test_moving_people_are_not_static():
    loop = FaceLoop(iter(frames(6)), PeopleDetector(people=2), describer=FakeDescriber())
    list(loop)
    assert loop.track_ids() == [0, 1] * 6
    assert loop.static_tracks() == set()
    assert all(shift > 0.02 for shift, _, _ in loop.motion().values())
