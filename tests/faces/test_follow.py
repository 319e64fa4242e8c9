"""Following known faces between full-frame checks: the schedule and region geometry (our own
logic, with a recording stand-in for MTCNN), then the real detector on a moving face."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.faces.boxes import FaceBox, iou_xyxy
from pipeline.faces.detect import DetectorConfig, FaceDetector
from pipeline.faces.follow import FaceFollower, Region, drop_duplicates, full_frame_schedule, match_in_region


def face(x1, y1, x2, y2, confidence=0.99) -> FaceBox:
    return FaceBox((float(x1), float(y1), float(x2), float(y2)), confidence)


@pytest.mark.parametrize(
    "timestamps, last, every, expected",
    [
        ([0.0, 0.2, 0.4, 0.6, 0.8, 1.0, 1.2], None, 1.0, [True, False, False, False, False, True, False]),
        ([0.0, 1.0, 2.0, 3.0], None, 1.0, [True, True, True, True]),  # 1 fps: every sample whole
        ([1.6, 1.8, 2.0], 0.8, 1.0, [False, True, False]),  # carried over from a batch
        ([0.0, 0.2, 0.4], None, 0.0, [True, True, True]),  # 0: always whole
        ([0.0, 0.3, 0.6, 0.9], None, 0.5, [True, False, True, False]),
    ],
)
def test_full_frame_schedule(timestamps, last, every, expected):
    assert full_frame_schedule(timestamps, last, every) == expected


def test_region_is_a_square_around_the_face_and_maps_back():
    region = Region.around_face(face(100, 200, 140, 260), margin=2.0)  # 40x60 face, centre (120, 230)
    assert (region.left, region.top, region.side_px) == (60, 170, 120)
    found = face(24, 24, 72, 72)  # in a 96 px region image: scale 120/96 = 1.25
    assert region.to_frame(found, 96).box_xyxy == (90.0, 200.0, 150.0, 260.0)


def test_region_past_the_border_is_padded_black():
    frame = np.full((100, 100, 3), 200, np.uint8)
    region = Region.around_face(face(0, 0, 40, 40), margin=2.0)  # reaches 20 px past top and left
    cut = region.cut(frame, 80)
    assert cut.shape == (80, 80, 3)
    assert cut[:10, :10].max() == 0 and cut[-10:, -10:].min() == 200


def test_region_of_a_huge_face_near_the_border_is_cut_small():
    frame = np.full((2160, 3840, 3), 90, np.uint8)
    region = Region.around_face(face(3000, 1200, 3840, 2160), margin=2.5)  # side 2400, mostly outside
    cut = region.cut(frame, 96)
    assert cut.shape == (96, 96, 3)
    assert cut[48, 10].tolist() == [90, 90, 90] and cut[48, 90].tolist() == [0, 0, 0]
    assert Region.around_face(face(0, 0, 10, 10), 2.5).cut(np.zeros((1, 1, 3), np.uint8), 96).shape == (96, 96, 3)


def test_region_match_is_the_nearest_face_of_a_similar_size():
    region = Region.around_face(face(100, 100, 200, 200), margin=2.5)  # a 100 px face
    moved = face(150, 110, 250, 210)  # half a face to the right
    neighbour = face(190, 100, 290, 200)  # further away
    assert match_in_region(region, [neighbour, moved]) == moved
    assert match_in_region(region, [face(180, 100, 280, 200)]) is None  # 0.8 faces: too far
    assert match_in_region(region, [face(100, 100, 130, 130)]) is None  # a third of the size


def test_duplicates_keep_the_more_confident_face():
    a, b, c = face(0, 0, 10, 10, 0.95), face(1, 1, 11, 11, 0.99), face(50, 50, 60, 60, 0.91)
    assert drop_duplicates([a, b, c]) == [b, c]


class RecordingDetector(FaceDetector):
    """Our follower's logic against a stand-in that 'finds' one fixed face in every whole frame
    and, in region images, the face where the region put it (or nothing, where told to)."""

    def __init__(self, config: DetectorConfig, lose_in_frames: set[int] = frozenset()):
        super().__init__(mtcnn=None, config=config)
        self.full_calls: list[int] = []
        self.region_calls: list[int] = []
        self.lose = set(lose_in_frames)
        self.frame_ids: list[int] = []

    def detect(self, frames_rgb):
        ids = [int(f[0, 0, 0]) for f in frames_rgb]
        self.full_calls.extend(ids)
        return [[face(100, 100, 200, 200)] for _ in frames_rgb]

    def detect_in_images(self, images_rgb):
        self.region_calls.append(len(images_rgb))
        px, half = self.config.region_px, self.config.region_px / self.config.region_margin / 2
        out = []
        for image in images_rgb:
            centre_ok = image[px // 2, px // 2, 1] != 7  # frames to lose are painted 7 in green
            out.append([face(px / 2 - half, px / 2 - half, px / 2 + half, px / 2 + half)] if centre_ok else [])
        return out


def frames_numbered(n: int, lose: set[int] = frozenset()) -> list[np.ndarray]:
    frames = []
    for i in range(n):
        f = np.zeros((400, 400, 3), np.uint8)
        f[0, 0, 0] = i
        if i in lose:
            f[:, :, 1] = 7
            f[0, 0, 0] = i
        frames.append(f)
    return frames


def test_follower_searches_whole_frames_on_schedule_and_regions_in_between():
    detector = RecordingDetector(DetectorConfig(full_frame_every_s=1.0))
    follower = FaceFollower(detector)
    frames = frames_numbered(12)
    times = [i * 0.2 for i in range(12)]
    out = follower.detect(frames[:8], times[:8]) + follower.detect(frames[8:], times[8:])
    assert detector.full_calls == [0, 5, 10]
    assert detector.region_calls == [6, 3]  # one region per in-between frame, batched per call
    assert all(len(faces) == 1 and iou_xyxy(faces[0].box_xyxy, (100, 100, 200, 200)) > 0.99 for faces in out)
    assert follower.stats == {"full_frames": 3, "region_frames": 9, "fallback_frames": 0}


def test_a_region_that_loses_its_face_sends_the_frame_to_full_detection():
    detector = RecordingDetector(DetectorConfig(full_frame_every_s=1.0))
    follower = FaceFollower(detector)
    out = follower.detect(frames_numbered(5, lose={2, 3}), [i * 0.2 for i in range(5)])
    assert detector.full_calls == [0, 2, 3]
    assert all(len(faces) == 1 for faces in out)
    assert follower.stats == {"full_frames": 1, "region_frames": 2, "fallback_frames": 2}


def test_a_frame_that_keeps_one_of_two_faces_is_not_searched_again():
    class TwoFaces(RecordingDetector):
        def detect(self, frames_rgb):
            self.full_calls.extend(int(f[0, 0, 0]) for f in frames_rgb)
            return [[face(100, 100, 200, 200), face(250, 250, 300, 300)] for _ in frames_rgb]

        def detect_in_images(self, images_rgb):
            found = super().detect_in_images(images_rgb)
            # the second region of each frame (the smaller face) finds nothing
            return [faces if k % 2 == 0 else [] for k, faces in enumerate(found)]

    detector = TwoFaces(DetectorConfig(full_frame_every_s=1.0))
    out = FaceFollower(detector).detect(frames_numbered(3), [0.0, 0.2, 0.4])
    assert detector.full_calls == [0]
    assert [len(faces) for faces in out] == [2, 1, 1]


def test_no_known_face_means_nothing_to_follow_until_the_next_check():
    class Nobody(RecordingDetector):
        def detect(self, frames_rgb):
            self.full_calls.extend(int(f[0, 0, 0]) for f in frames_rgb)
            return [[] for _ in frames_rgb]

    detector = Nobody(DetectorConfig(full_frame_every_s=1.0))
    out = FaceFollower(detector).detect(frames_numbered(7), [i * 0.2 for i in range(7)])
    assert out == [[]] * 7
    assert detector.full_calls == [0, 5] and detector.region_calls == []


@pytest.mark.slow
def test_following_finds_the_same_faces_as_whole_frames_on_a_moving_face(detector, tmp_path):
    """The real MTCNN on a face sliding across a 720p clip at 10 samples a second: following
    finds the face in every frame, where whole-frame detection puts it."""
    from pipeline.video.decode import iter_frames
    from pipeline.video.probe import probe_video
    from tests.helpers import make_face_clip

    clip = make_face_clip(tmp_path / "pan.mp4", duration_s=3.0)
    info = probe_video(clip)
    frames = list(iter_frames(clip, info, sample_fps=10, max_frames=30))
    whole = detector.detect([f.rgb for f in frames])
    follower = FaceFollower(detector)
    followed = []
    for start in range(0, len(frames), 8):
        chunk = frames[start : start + 8]
        followed += follower.detect([f.rgb for f in chunk], [f.timestamp_s for f in chunk])
    assert follower.stats["region_frames"] >= 20  # most frames were followed, not searched whole
    assert [len(f) for f in followed] == [len(w) for w in whole] == [1] * len(frames)
    assert min(iou_xyxy(a[0].box_xyxy, b[0].box_xyxy) for a, b in zip(followed, whole)) > 0.75


def test_whole_frames_are_selected_and_the_selection_counted():
    class Mixed(RecordingDetector):
        def detect(self, frames_rgb):
            self.full_calls.extend(int(f[0, 0, 0]) for f in frames_rgb)
            return [[face(100, 100, 200, 200), face(250, 100, 350, 200, 0.8), face(0, 0, 20, 20)] for _ in frames_rgb]

    follower = FaceFollower(Mixed(DetectorConfig(full_frame_every_s=0.0)))
    out = follower.detect(frames_numbered(2), [0.0, 1.0])
    assert out == [[face(100, 100, 200, 200)]] * 2  # the unsure box and the 20 px face are dropped
    assert follower.selection == {"confident": 4, "small": 2}


@pytest.mark.parametrize(
    "region_face_px, confidence, min_face_px",
    [
        (100, 0.8, 40),  # the region found the face, but only as an unsure box
        (70, 0.99, 80),  # the region found a face of a similar size, but under the minimum
    ],
)
def test_a_region_with_no_selected_face_sends_the_frame_to_full_detection(region_face_px, confidence, min_face_px):
    """Selection applies inside regions as on whole frames: a frame whose regions found only
    boxes that selection drops is searched whole again, as if they had found nothing."""

    class Unsure(RecordingDetector):
        def detect_in_images(self, images_rgb):
            self.region_calls.append(len(images_rgb))
            px = self.config.region_px
            half = region_face_px * px / (100 * self.config.region_margin) / 2  # full-res px -> region px
            return [[face(px / 2 - half, px / 2 - half, px / 2 + half, px / 2 + half, confidence)] for _ in images_rgb]

    detector = Unsure(DetectorConfig(full_frame_every_s=1.0, min_face_px=min_face_px))
    follower = FaceFollower(detector)
    out = follower.detect(frames_numbered(3), [0.0, 0.2, 0.4])
    assert detector.full_calls == [0, 1, 2]  # frames 1 and 2 fell back to whole-frame search
    assert all(len(faces) == 1 and faces[0].confidence == 0.99 for faces in out)
    assert follower.stats == {"full_frames": 1, "region_frames": 0, "fallback_frames": 2}
