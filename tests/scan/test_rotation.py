"""pipeline/scan/rotation.py and its use in score_video: clips whose faces lie sideways or
upside down with no rotation tag. The choice rule and the plumbing are checked with stand-ins
for MTCNN and Meso-4; the end-to-end cases run the real models on clips turned by ffmpeg from a
real FF++ clip."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest

from pipeline.faces.boxes import FaceBox
from pipeline.faces.detect import DetectorConfig, FaceDetector
from pipeline.scan.analyze import ScanConfig, ScoredFace, score_video, score_video_safe
from pipeline.scan.rotation import (
    ProbeFrame,
    ProbeFrameKeeper,
    RotationProbe,
    choose_rotation,
    face_up_deg,
    hits_needed,
    looks_upright,
    needs_probe,
    probe_rotations,
    probe_sample_indices,
    rotate_cw,
    turn_frames,
    upright_probe,
)
from pipeline.video.decode import Frame
from pipeline.video.ffmpeg_bin import ffmpeg_exe
from pipeline.video.probe import probe_video
from tests.helpers import StubScorer, ffmpeg, make_lavfi_clip

# An upright face's five landmarks (left eye, right eye, nose, mouth left, mouth right), pixels.
UPRIGHT_LANDMARKS = ((40.0, 40.0), (60.0, 40.0), (50.0, 50.0), (42.0, 62.0), (58.0, 62.0))


def turn_points_cw(points, rotation_deg: int, height_px: int, width_px: int):
    """Where points of a (height, width) frame land when the frame is turned clockwise."""
    out = []
    for x, y in points:
        for _ in range(rotation_deg // 90):
            x, y = height_px - 1 - y, x
            height_px, width_px = width_px, height_px
        out.append((x, y))
    return tuple(out)


# --- turning frames -----------------------------------------------------------------------


def test_rotate_cw_turns_clockwise():
    rgb = np.zeros((2, 3, 3), np.uint8)
    rgb[0, 0] = 255  # top-left pixel
    assert rotate_cw(rgb, 0) is rgb
    turned = rotate_cw(rgb, 90)
    assert turned.shape == (3, 2, 3) and turned.flags["C_CONTIGUOUS"]
    assert turned[0, 1, 0] == 255  # clockwise: top-left goes to top-right
    assert rotate_cw(rgb, 180)[1, 2, 0] == 255  # bottom-right
    assert rotate_cw(rgb, 270)[2, 0, 0] == 255  # bottom-left
    assert np.array_equal(rotate_cw(rotate_cw(rgb, 90), 270), rgb)


@pytest.mark.parametrize("bad", [45, -90, 360, 1])
def test_rotate_cw_rejects_other_angles(bad):
    with pytest.raises(ValueError, match="rotation_deg must be one of"):
        rotate_cw(np.zeros((2, 2, 3), np.uint8), bad)


def test_turn_frames_keeps_indices_and_closes_its_source():
    closed = []

    def source():
        try:
            for i in range(3):
                yield Frame(i, 10 * i, float(i), np.zeros((4, 6, 3), np.uint8))
        finally:
            closed.append(True)

    turned = turn_frames(source(), 90)
    first = next(turned)
    assert (first.sample_index, first.frame_index, first.timestamp_s, first.rgb.shape) == (0, 0, 0.0, (6, 4, 3))
    turned.close()
    assert closed == [True]  # the decoder behind it is stopped at once


# --- landmarks ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "rotation_deg, expected_up_deg",
    [
        (0, 0.0),  # upright: eyes above the mouth
        (90, 90.0),  # turned clockwise: the top of the head points right
        (180, 180.0),  # upside down
        (270, -90.0),  # turned counter-clockwise: the top points left
    ],
)
def test_face_up_deg_follows_the_turn(rotation_deg, expected_up_deg):
    landmarks = turn_points_cw(UPRIGHT_LANDMARKS, rotation_deg, 100, 100)
    assert face_up_deg(landmarks) == pytest.approx(expected_up_deg, abs=1e-6)
    assert looks_upright(landmarks) == (rotation_deg == 0)


def test_face_up_deg_does_not_care_which_eye_is_called_left():
    left, right, nose, mouth_left, mouth_right = UPRIGHT_LANDMARKS
    assert face_up_deg((right, left, nose, mouth_right, mouth_left)) == pytest.approx(0.0)


def test_a_face_without_landmarks_counts_as_upright():
    assert looks_upright(())


# --- which frames are kept ----------------------------------------------------------------


@pytest.mark.parametrize(
    "n_expected, expected",
    [
        (1, (0,)),  # a one-frame clip: that frame
        (2, (0, 1)),  # fewer samples than probe frames: each once
        (3, (0, 1, 2)),
        (4, (0, 2, 3)),  # 4 s at 1 fps
        (40, (6, 20, 33)),  # the default cap: the middle of each third
    ],
)
def test_probe_sample_indices(n_expected, expected):
    assert probe_sample_indices(n_expected) == expected


def test_probe_sample_indices_rejects_empty_counts():
    with pytest.raises(ValueError, match="must be >= 1"):
        probe_sample_indices(0)


def frames(n: int, size_hw=(720, 1280)) -> list[Frame]:
    out = []
    for i in range(n):
        rgb = np.full((*size_hw, 3), 10 * i, np.uint8)
        out.append(Frame(i, 25 * i, float(i), rgb))
    return out


def test_keeper_passes_frames_through_and_keeps_shrunk_copies():
    keeper = ProbeFrameKeeper((0, 2, 3), long_side_px=480)
    source = frames(5)
    passed = list(keeper.keep_from(iter(source)))
    assert all(a is b for a, b in zip(passed, source))  # the scan sees the very same frames
    kept = keeper.frames
    assert [f.sample_index for f in kept] == [0, 2, 3]
    assert all(f.rgb.shape == (270, 480, 3) and f.scale == pytest.approx(0.375) for f in kept)
    assert int(kept[1].rgb[0, 0, 0]) == 20


def test_keeper_falls_back_to_the_last_frame_when_the_clip_ends_early():
    keeper = ProbeFrameKeeper((6, 20, 33), long_side_px=480)  # planned for 40 frames
    list(keeper.keep_from(iter(frames(10))))
    assert [f.sample_index for f in keeper.frames] == [6, 9]


def test_keeper_keeps_small_frames_unscaled_and_closes_its_source():
    closed = []

    def source():
        try:
            yield from frames(3, size_hw=(120, 160))
        finally:
            closed.append(True)

    keeper = ProbeFrameKeeper((1,), long_side_px=480)
    stream = keeper.keep_from(source())
    next(stream), next(stream)
    stream.close()
    assert closed == [True]
    (kept,) = keeper.frames
    assert kept.scale == 1.0 and kept.rgb.shape == (120, 160, 3)


def test_probe_frame_validates_itself():
    with pytest.raises(ValueError, match="uint8"):
        ProbeFrame(0, np.zeros((4, 4), np.uint8), 1.0)
    with pytest.raises(ValueError, match="scale"):
        ProbeFrame(0, np.zeros((4, 4, 3), np.uint8), 1.5)


# --- the choice rule ----------------------------------------------------------------------


def probes(upright_hits: int | None, **hits_by_turn) -> list[RotationProbe]:
    """Probes of 3 frames: ``cw90=(hits, mean_confidence)`` etc.; the upright one if given."""
    out = [] if upright_hits is None else [RotationProbe(0, 3, upright_hits, 0.99 if upright_hits else 0.0)]
    for name, (hits, confidence) in hits_by_turn.items():
        out.append(RotationProbe(int(name[2:]), 3, hits, confidence))
    return out


@pytest.mark.parametrize(
    "given, expected",
    [
        (probes(0, cw90=(0, 0.0), cw180=(0, 0.0), cw270=(0, 0.0)), None),  # no face at any turn
        (probes(0, cw90=(3, 0.98), cw180=(0, 0.0), cw270=(1, 0.93)), 90),  # faces only turned 90
        (probes(0, cw90=(0, 0.0), cw180=(1, 0.95), cw270=(0, 0.0)), None),  # one frame of texture: too little
        (probes(0, cw90=(0, 0.0), cw180=(2, 0.95), cw270=(0, 0.0)), 180),  # two of three frames: enough
        (probes(2, cw90=(0, 0.0), cw180=(2, 0.99), cw270=(0, 0.0)), None),  # no better than upright
        (probes(1, cw90=(0, 0.0), cw180=(3, 0.97), cw270=(2, 0.98)), 180),  # upside down: most hits wins
        (probes(0, cw90=(3, 0.95), cw180=(0, 0.0), cw270=(3, 0.99)), 270),  # a tie: higher confidence wins
        (probes(0, cw90=(3, 0.97), cw270=(3, 0.97)), 90),  # a full tie: the smaller turn
        (probes(None, cw90=(2, 0.97)), 90),  # no upright probe given: zero to beat
    ],
)
def test_choose_rotation(given, expected):
    assert choose_rotation(given) == expected


def test_choose_rotation_on_one_probe_frame_needs_that_frame():
    assert choose_rotation([RotationProbe(0, 1, 0), RotationProbe(270, 1, 1, 0.99)]) == 270
    assert choose_rotation([RotationProbe(0, 1, 0), RotationProbe(270, 1, 0)]) is None


def test_choose_rotation_rejects_a_zero_minimum():
    with pytest.raises(ValueError, match="min_hits"):
        choose_rotation([], min_hits=0)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(rotation_deg=45, n_frames=3, n_hits=0), "rotation_deg"),
        (dict(rotation_deg=90, n_frames=3, n_hits=4), "n_hits"),
        (dict(rotation_deg=90, n_frames=3, n_hits=1, mean_confidence=1.5), "mean_confidence"),
    ],
)
def test_rotation_probe_validates_itself(kwargs, message):
    with pytest.raises(ValueError, match=message):
        RotationProbe(**kwargs)


def test_rotation_probe_counts_frames_with_an_upright_face():
    sideways = turn_points_cw(UPRIGHT_LANDMARKS, 90, 100, 100)
    probe = RotationProbe.from_faces(
        90,
        [
            [(0.95, UPRIGHT_LANDMARKS), (0.99, sideways)],  # the sideways face does not count
            [(0.99, sideways)],  # no upright face: no hit
            [],
        ],
    )
    assert (probe.n_frames, probe.n_hits, probe.mean_confidence) == (3, 1, pytest.approx(0.95))


def scored(sample_index: int, landmarks=UPRIGHT_LANDMARKS, confidence=0.99) -> ScoredFace:
    return ScoredFace(sample_index, 0, 0.0, 0, (0.0, 0.0, 100.0, 100.0), confidence, 0.5, None, landmarks)


def test_upright_probe_reads_the_upright_pass_and_says_whether_to_probe():
    sideways = turn_points_cw(UPRIGHT_LANDMARKS, 90, 100, 100)
    every_frame = upright_probe([scored(0), scored(1), scored(2), scored(2)], [0, 1, 2])
    assert (every_frame.n_hits, every_frame.n_frames) == (3, 3) and not needs_probe(every_frame)
    lying = upright_probe([scored(0), scored(1, sideways), scored(2)], [0, 1, 2])
    assert lying.n_hits == 2 and needs_probe(lying)
    assert needs_probe(upright_probe([], [0, 1, 2]))  # no face at all
    assert upright_probe([scored(5)], [0, 1, 2]).n_hits == 0  # faces off the probe frames do not count


# --- probing turned frames with a stand-in detector ----------------------------------------


def marked_rgb(size_hw=(240, 320), turned_cw_deg: int = 0) -> np.ndarray:
    """A dark frame with a bright band along its top edge, then turned clockwise: the band
    marks where "up" is, for :class:`BandDetector`."""
    rgb = np.full((*size_hw, 3), 20, np.uint8)
    rgb[: size_hw[0] // 8] = 230
    return rotate_cw(rgb, turned_cw_deg)


class BandDetector(FaceDetector):
    """Finds one upright face (its side 0.4 of the frame's short side, in the frame's own
    pixels) wherever the bright band runs along the top edge, and a sideways one wherever it
    runs along the left edge; records the frame shapes of each call."""

    def __init__(self, config: DetectorConfig = DetectorConfig()):
        super().__init__(mtcnn=None, config=config)
        self.calls: list[list[tuple[int, ...]]] = []

    def detect(self, frames_rgb):
        self.calls.append([f.shape for f in frames_rgb])
        out = []
        for rgb in frames_rgb:
            h, w = rgb.shape[:2]
            side = 0.4 * min(h, w)
            box = (w / 2 - side / 2, h / 2 - side / 2, w / 2 + side / 2, h / 2 + side / 2)
            scale = side / 100
            if rgb[: h // 16].mean() > 200:
                points = tuple((box[0] + x * scale, box[1] + y * scale) for x, y in UPRIGHT_LANDMARKS)
                out.append([FaceBox(box, 0.99, points)])
            elif rgb[:, : w // 16].mean() > 200:
                lying = turn_points_cw(UPRIGHT_LANDMARKS, 270, 100, 100)
                out.append([FaceBox(box, 0.98, tuple((box[0] + x * scale, box[1] + y * scale) for x, y in lying))])
            else:
                out.append([])
        return out


def test_probe_rotations_finds_the_turn_that_makes_faces_upright():
    # stored turned 90 degrees clockwise: the band runs down the right edge; 270 more puts it on top
    kept = [ProbeFrame(i, marked_rgb((270, 480), turned_cw_deg=90), 0.375) for i in (0, 2, 3)]
    detector = BandDetector()
    found = probe_rotations(kept, detector)
    assert [(p.rotation_deg, p.n_frames, p.n_hits) for p in found] == [(90, 3, 0), (180, 3, 0), (270, 3, 3)]
    assert choose_rotation([RotationProbe(0, 3, 0), *found]) == 270
    # the first two frames (the quarter turns share a shape: one call), then the third
    assert [len(call) for call in detector.calls] == [4, 2, 2, 1]


@pytest.mark.parametrize(
    "upright_hits, expected_calls",
    [
        (0, [4, 2]),  # no face on the first two frames: the third cannot make two hits
        (2, [2, 1]),  # two upright hits to beat: a turn needs all three, so one empty frame ends it
    ],
)
def test_probe_rotations_stops_when_no_turn_can_be_chosen(upright_hits, expected_calls):
    kept = [ProbeFrame(i, np.full((270, 480, 3), 20, np.uint8), 0.375) for i in (0, 2, 3)]
    detector = BandDetector()
    found = probe_rotations(kept, detector, upright_hits=upright_hits)
    assert [len(call) for call in detector.calls] == expected_calls
    assert all(p.n_hits == 0 for p in found)
    assert choose_rotation([RotationProbe(0, 3, upright_hits), *found]) is None


def test_probe_rotations_rejects_other_angles():
    with pytest.raises(ValueError, match="rotations_deg must be among"):
        probe_rotations([], BandDetector(), [0, 90])


@pytest.mark.parametrize(
    "n_frames, upright_hits, expected",
    [
        (3, 0, 2),  # the usual case: two of three
        (3, 1, 2),
        (3, 2, 3),  # must beat the frames as decoded
        (1, 0, 1),  # a one-frame clip: that frame
        (2, 0, 2),
    ],
)
def test_hits_needed(n_frames, upright_hits, expected):
    assert hits_needed(n_frames, upright_hits) == expected


def test_probe_rotations_selects_faces_in_decoded_pixels():
    """min_face_px applies to the decoded frame: a face 108 px in the copy kept at 0.375 of
    the decoded size is 288 px there."""
    kept = [ProbeFrame(i, marked_rgb((270, 480), turned_cw_deg=180), 0.375) for i in range(3)]
    assert probe_rotations(kept, BandDetector(DetectorConfig(min_face_px=280)), [180])[0].n_hits == 3
    assert probe_rotations(kept, BandDetector(DetectorConfig(min_face_px=300)), [180])[0].n_hits == 0


@pytest.fixture(scope="module")
def band_clips(tmp_path_factory):
    """3-s 1 fps-sampled 320x240 clips of the band frame: upright, and stored turned 90
    degrees clockwise with no rotation tag (what ffmpeg's transpose=1 makes)."""
    root = tmp_path_factory.mktemp("band")
    upright = root / "band_upright.mp4"
    ffmpeg(
        "-f", "lavfi", "-i", "color=c=0x141414:size=320x240:rate=5", "-t", "3",
        "-vf", "drawbox=x=0:y=0:w=iw:h=ih/8:color=0xE6E6E6:t=fill",
        "-c:v", "libx264", "-pix_fmt", "yuv420p", str(upright),
    )  # fmt: skip
    sideways = root / "band_cw90.mp4"
    ffmpeg("-i", str(upright), "-vf", "transpose=1", "-c:v", "libx264", "-pix_fmt", "yuv420p", str(sideways))
    return {"upright": upright, "cw90": sideways}


def test_score_video_scores_a_sideways_clip_turned(band_clips):
    detector = BandDetector()
    timings: dict = {}
    seen: list[int] = []
    result = score_video(
        band_clips["cw90"], detector, StubScorer(), ScanConfig(fps=1), on_frames=seen.append, timings=timings
    )
    row = result.row
    assert row.status == "ok" and row.rotation_guess_deg == 270
    assert (row.width, row.height) == (240, 320) and row.rotation_deg == 0  # the decoded frame, no tag
    assert row.n_frames == 3 and row.n_faces == 3
    assert sum(seen) == 3  # progress counts each frame once, not again on the second pass
    assert {"rotation_probe_s", "rotation_rescan_s"} <= set(timings)
    # boxes are in the turned frame's pixels: 320 wide, 240 high
    assert all(f.box_xyxy[2] <= 320 and f.box_xyxy[3] <= 240 for f in result.faces)
    # upright pass (3 frames, no face), probe (two frames, then the third), second pass (upright)
    assert [len(call) for call in detector.calls] == [3, 4, 2, 2, 1, 3]
    assert detector.calls[-1][0] == (240, 320, 3)


def test_score_video_leaves_an_upright_clip_alone(band_clips):
    detector = BandDetector()
    timings: dict = {}
    row = score_video(band_clips["upright"], detector, StubScorer(), ScanConfig(fps=1), timings=timings).row
    assert row.status == "ok" and row.rotation_guess_deg is None
    assert detector.calls == [[(240, 320, 3)] * 3]  # the upright pass only: nothing probed
    assert "rotation_probe_s" not in timings


def test_score_video_keeps_a_clip_without_faces_as_no_face(tmp_path):
    detector = BandDetector()
    timings: dict = {}
    clip = make_lavfi_clip(tmp_path / "black.mp4", duration_s=2.0, rate=5, source="color")
    row = score_video(clip, detector, StubScorer(), ScanConfig(fps=1), timings=timings).row
    assert row.status == "no_face" and row.rotation_guess_deg is None and row.p_fake is None
    assert "rotation_probe_s" in timings and "rotation_rescan_s" not in timings
    # upright pass (2 frames), then the first probe frame: the second alone cannot make two hits
    assert [len(call) for call in detector.calls] == [2, 2, 1]


# --- the real models on a real clip turned by ffmpeg ---------------------------------------

# (name, ffmpeg filter that turns the upright clip, rotation_guess_deg expected)
TURNS = [
    ("cw90", "transpose=1", 270),  # stored turned clockwise: turned back counter-clockwise
    ("ccw90", "transpose=2", 90),  # stored turned counter-clockwise
    ("upside_down", "hflip,vflip", 180),
]


@pytest.fixture(scope="module")
def turned_clips(shared_data, tmp_path_factory) -> dict:
    """3 s of ffpp_original_634 (a real person, 1280x720) at 5 fps, encoded losslessly (so the
    turned clips hold the reference's pixels), upright and turned by each of :data:`TURNS`,
    with no rotation tag."""
    source = shared_data / "videos" / "real" / "ffpp_original_634.mp4"
    root = tmp_path_factory.mktemp("turned")
    clips = {}
    for name, vf in [("upright", "fps=5"), *((n, f"fps=5,{f}") for n, f, _ in TURNS)]:
        clips[name] = root / f"{name}.mp4"
        ffmpeg(
            "-i", str(source), "-t", "3", "-vf", vf, "-an",
            "-c:v", "libx264", "-preset", "ultrafast", "-qp", "0", "-pix_fmt", "yuv420p", str(clips[name]),
        )  # fmt: skip
    return clips


@pytest.fixture(scope="module")
def upright_reference(turned_clips, detector, scorer):
    timings: dict = {}
    row = score_video(turned_clips["upright"], detector, scorer, ScanConfig(fps=1), timings=timings).row
    return row, timings


@pytest.mark.shared_data
def test_turned_clips_carry_no_rotation_tag(turned_clips):
    for name, _, _ in TURNS:
        stderr = subprocess.run(
            [ffmpeg_exe(), "-hide_banner", "-i", str(turned_clips[name])], capture_output=True, text=True
        ).stderr
        assert "displaymatrix" not in stderr and "rotate" not in stderr
        assert probe_video(turned_clips[name]).rotation_deg == 0


@pytest.mark.shared_data
def test_upright_reference_is_scored_as_before(upright_reference):
    row, timings = upright_reference
    assert row.status == "ok" and row.n_faces == row.n_frames == 3
    assert row.rotation_guess_deg is None
    assert "rotation_probe_s" not in timings  # a face on every probe frame: nothing else is searched


@pytest.mark.shared_data
@pytest.mark.parametrize("name, vf, expected_deg", TURNS)
def test_sideways_clip_is_scored_at_the_turn_that_makes_faces_upright(
    turned_clips, upright_reference, detector, scorer, name, vf, expected_deg
):
    result = score_video_safe(turned_clips[name], detector, scorer, ScanConfig(fps=1), keep_crops=True)
    row = result.row
    reference = upright_reference[0]
    assert row.status == "ok", row.error
    assert row.rotation_guess_deg == expected_deg
    assert row.n_faces == row.n_frames == 3 and row.n_tracks == 1
    assert row.p_fake == pytest.approx(reference.p_fake, abs=0.05)
    # the row keeps the decoded frame's size; the faces are where they are in the upright clip
    assert (row.width, row.height) == ((720, 1280) if expected_deg != 180 else (1280, 720))
    assert all(f.crop_rgb.shape == (256, 256, 3) for f in result.faces)
    assert all(f.box_xyxy[2] <= 1280 and f.box_xyxy[3] <= 720 for f in result.faces)


@pytest.mark.parametrize("source", ["testsrc2", "smptebars"])
def test_clip_without_faces_stays_no_face(tmp_path, detector, scorer, source):
    clip = make_lavfi_clip(tmp_path / f"{source}.mp4", size="640x360", rate=5, duration_s=3.0, source=source)
    timings: dict = {}
    row = score_video_safe(clip, detector, scorer, ScanConfig(fps=1), timings=timings).row
    assert row.status == "no_face" and row.n_faces == 0 and row.p_fake is None
    assert row.rotation_guess_deg is None
    assert "rotation_probe_s" in timings and "rotation_rescan_s" not in timings


def test_tagged_portrait_clip_needs_no_guess(clip_dir, detector, scorer):
    """A phone clip whose display matrix says 90 degrees is turned by the decoder: no guess."""
    row = score_video(clip_dir / "portrait_rot90.mp4", detector, scorer, ScanConfig(fps=1)).row
    assert row.rotation_deg == 90 and row.rotation_guess_deg is None and row.status == "ok"
