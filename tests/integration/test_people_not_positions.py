"""Tracks follow people, not screen positions (issue "People, not positions"), with the real
MTCNN, the real dlib describer and the default model.

The field cases of ``../shared/cases`` (see its README): two people who trade places at an
edit no cut detector sees (the same studio behind both), and a swapped person whose face is
0.45 the size of the real one's. Generated clips (made once per module from the shared real
clips): a photo composited onto a real clip, three shots of three people, a person who comes
back after another's shot, and three people side by side whose panels are permuted at a cut.
Each clip is scored once (module fixtures); the tests read its row, faces and tracks.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.scan.aggregate import COUNTED, COUNTED_SMALL, LEFT_OUT_FEW_FACES, LEFT_OUT_STATIC, REASONS
from pipeline.scan.analyze import ScanConfig, VideoResult, score_video
from tests.helpers import ffmpeg

P_FAKE_TOLERANCE = 0.05
X264 = ("-an", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-crf", "20")


def _score(path: Path, detector, scorer) -> VideoResult:
    result = score_video(path, detector, scorer, ScanConfig())
    assert result.row.status == "ok", result.row.error
    return result


def _center_x(face) -> float:
    return (face.box_xyxy[0] + face.box_xyxy[2]) / 2.0


def _faces_of(result: VideoResult, track_id: int) -> list:
    return [f for f in result.faces if f.track_id == track_id]


def _people(result: VideoResult) -> list:
    """The tracks that count (a stray detection seen once is left out as too_few_faces)."""
    return [t for t in result.tracks if t.counted]


def _real(shared_data: Path, number: str) -> Path:
    return shared_data / "videos" / "real" / f"ffpp_original_{number}.mp4"


@pytest.fixture(scope="module")
def clips_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("people")


# ---------------------------------------------------------------------------------------------
# the field cases


@pytest.fixture(scope="module")
def swap(shared_cases, detector, default_scorer) -> VideoResult:
    return _score(shared_cases / "two_people_swap_places_at_cut.mp4", detector, default_scorer)


@pytest.fixture(scope="module")
def side_by_side(shared_cases, detector, default_scorer) -> VideoResult:
    return _score(shared_cases / "two_people_side_by_side.mp4", detector, default_scorer)


@pytest.fixture(scope="module")
def smaller(shared_cases, detector, default_scorer) -> VideoResult:
    return _score(shared_cases / "smaller_person_is_fake.mp4", detector, default_scorer)


CUT_S = 3.0  # the swap case's edit


def test_swap_case_each_person_is_one_track_across_the_edit(swap):
    # before: linked by position, each track half real, half fake
    row = swap.row
    half = row.width / 2
    assert row.n_tracks == len(swap.tracks) == 2
    # the fake is on the right before the edit and on the left after it
    fake_before = {f.track_id for f in swap.faces if f.timestamp_s < CUT_S and _center_x(f) > half}
    fake_after = {f.track_id for f in swap.faces if f.timestamp_s >= CUT_S and _center_x(f) < half}
    real_before = {f.track_id for f in swap.faces if f.timestamp_s < CUT_S and _center_x(f) < half}
    real_after = {f.track_id for f in swap.faces if f.timestamp_s >= CUT_S and _center_x(f) > half}
    assert len(fake_before) == 1 and fake_before == fake_after
    assert len(real_before) == 1 and real_before == real_after
    assert fake_before != real_before
    for track in swap.tracks:
        assert track.first_timestamp_s < CUT_S <= track.last_timestamp_s
        assert track.counted


def test_swap_case_scores_like_side_by_side(swap, side_by_side):
    (fake_id,) = {f.track_id for f in swap.faces if f.timestamp_s < CUT_S and _center_x(f) > swap.row.width / 2}
    assert swap.row.verdict_track_id == fake_id  # the whole fake person decides
    assert swap.row.p_fake == pytest.approx(side_by_side.row.p_fake, abs=P_FAKE_TOLERANCE)
    assert swap.row.label == side_by_side.row.label == "FAKE"
    assert swap.row.n_tracks_counted == side_by_side.row.n_tracks_counted == 2
    fake = next(t for t in swap.tracks if t.track_id == fake_id)
    side_fake = next(t for t in side_by_side.tracks if t.track_id == side_by_side.row.verdict_track_id)
    assert fake.n_faces == side_fake.n_faces
    assert fake.mean_p_fake == pytest.approx(side_fake.mean_p_fake, abs=P_FAKE_TOLERANCE)


def test_smaller_fake_person_sets_the_verdict(smaller):
    # before: track_max dropped people under half the largest face: p_fake 0.02, REAL
    row = smaller.row
    assert row.n_tracks == len(smaller.tracks) == 2
    small, large = sorted(smaller.tracks, key=lambda t: t.median_face_px)
    assert small.median_face_px < 0.6 * large.median_face_px
    assert small.counted and small.reason == COUNTED_SMALL and 0 < small.size_weight < 1
    assert large.counted and large.reason == COUNTED
    assert row.n_tracks_counted == 2  # no track left out for its size
    assert row.verdict_track_id == small.track_id
    assert row.p_fake == pytest.approx(small.verdict_score)
    assert row.label == "FAKE"


@pytest.mark.slow
def test_no_track_is_left_out_for_its_size(smaller, swap, three_panels):
    for result in (smaller, swap, three_panels):
        for track in result.tracks:
            assert track.reason in REASONS
            if not track.counted:
                assert track.reason in (LEFT_OUT_FEW_FACES, LEFT_OUT_STATIC)


# ---------------------------------------------------------------------------------------------
# a photo composited onto a real clip


@pytest.fixture(scope="module")
def photo_on_real(clips_dir, shared_data, detector, default_scorer) -> VideoResult:
    """5 s of a real clip at 1280x720 with a DFDC face photo, 160 px wide, pasted top right."""
    path = clips_dir / "photo_on_real.mp4"
    photo = shared_data / "dfdc_faces" / "real" / "aabqcugcpc.jpg"
    ffmpeg(
        "-i",
        str(_real(shared_data, "634")),
        "-i",
        str(photo),
        "-t",
        "8",
        "-filter_complex",
        "[0:v]scale=1280:720,setsar=1[bg];[1:v]scale=160:-2[ph];[bg][ph]overlay=1060:60",
        *X264,
        str(path),
    )
    return _score(path, detector, default_scorer)


def test_photo_is_a_static_track_left_out(photo_on_real):
    row = photo_on_real.row
    assert row.n_tracks == len(photo_on_real.tracks) == 2
    (photo,) = [t for t in photo_on_real.tracks if t.static]
    (person,) = [t for t in photo_on_real.tracks if not t.static]
    photo_faces = _faces_of(photo_on_real, photo.track_id)
    assert all(_center_x(f) > 1060 and f.track_static for f in photo_faces)  # where it was pasted
    assert (photo.counted, photo.reason) == (False, LEFT_OUT_STATIC)
    assert person.counted and person.reason == COUNTED
    assert row.n_tracks_counted == 1
    assert row.verdict_track_id == person.track_id
    assert row.p_fake == pytest.approx(person.verdict_score)


# ---------------------------------------------------------------------------------------------
# shots of different people


SHOT_S = 3.4  # 85 frames at 25 fps: the cuts fall between the samples (whole seconds)


def _shots(path: Path, sources: list[tuple[Path, float]]) -> Path:
    """Shots of SHOT_S seconds, each from (clip, start second), at 960x540, 25 fps."""
    inputs: list[str] = []
    chain = ""
    for i, (source, start) in enumerate(sources):
        inputs += ["-ss", str(start), "-t", str(SHOT_S), "-i", str(source)]
        chain += f"[{i}:v]scale=960:540,setsar=1,fps=25,setpts=PTS-STARTPTS[v{i}];"
    chain += "".join(f"[v{i}]" for i in range(len(sources))) + f"concat=n={len(sources)}:v=1:a=0[out]"
    ffmpeg(*inputs, "-filter_complex", chain, "-map", "[out]", *X264, str(path))
    return path


def _shot_of(timestamp_s: float) -> int:
    return int(timestamp_s // SHOT_S)


@pytest.fixture(scope="module")
def three_shots(clips_dir, shared_data, detector, default_scorer) -> VideoResult:
    sources = [(_real(shared_data, n), 0.0) for n in ("004", "519", "634")]
    return _score(_shots(clips_dir / "three_shots.mp4", sources), detector, default_scorer)


@pytest.fixture(scope="module")
def comes_back(clips_dir, shared_data, detector, default_scorer) -> VideoResult:
    """Person A, person B, then A again (later in A's clip)."""
    a, b = _real(shared_data, "004"), _real(shared_data, "519")
    return _score(_shots(clips_dir / "comes_back.mp4", [(a, 0.0), (b, 0.0), (a, 5.0)]), detector, default_scorer)


def test_three_shots_of_three_people_are_three_tracks(three_shots):
    row = three_shots.row
    assert row.n_cuts == 2
    shots = {
        t.track_id: {_shot_of(f.timestamp_s) for f in _faces_of(three_shots, t.track_id)} for t in three_shots.tracks
    }
    assert all(len(s) == 1 for s in shots.values()), shots  # no track spans a cut
    people = _people(three_shots)
    assert sorted(next(iter(shots[t.track_id])) for t in people) == [0, 1, 2]  # one person per shot
    assert row.n_tracks_counted == len(people) == 3


def test_a_person_who_comes_back_after_a_cut_is_one_track(comes_back):
    row = comes_back.row
    assert row.n_cuts == 2
    people = _people(comes_back)
    assert row.n_tracks_counted == len(people) == 2
    by_shot: dict[int, set[int]] = {}
    for face in comes_back.faces:
        if face.track_id in {t.track_id for t in people}:
            by_shot.setdefault(_shot_of(face.timestamp_s), set()).add(face.track_id)
    assert all(len(ids) == 1 for ids in by_shot.values()), by_shot
    assert by_shot[0] == by_shot[2] != by_shot[1]  # A before and after B's shot: one track


# ---------------------------------------------------------------------------------------------
# three people side by side, their panels permuted at a cut


PANEL_W, PANEL_H = 640, 360  # faces of about 80-120 px: MTCNN finds all three in every frame
PANEL_CUT_S = 2.5
PANEL_ORDER_AFTER = (2, 0, 1)  # the person of panel i before the cut is in panel ORDER.index(i) after


@pytest.fixture(scope="module")
def three_panels(clips_dir, shared_data, detector, default_scorer) -> VideoResult:
    """6 s at 1920x360: three real clips scaled to 640x360 side by side; at 2.5 s the panels
    are permuted (each person moves to another place, a cut scdet sees)."""
    path = clips_dir / "three_panels.mp4"
    inputs: list[str] = []
    chain = ""
    for i, n in enumerate(("004", "519", "634")):
        inputs += ["-t", "6", "-i", str(_real(shared_data, n))]
        chain += (
            f"[{i}:v]scale={PANEL_W}:{PANEL_H},setsar=1,fps=25,split[a{i}][b{i}];"
            f"[a{i}]trim=0:{PANEL_CUT_S},setpts=PTS-STARTPTS[x{i}];"
            f"[b{i}]trim={PANEL_CUT_S}:6,setpts=PTS-STARTPTS[y{i}];"
        )
    chain += "[x0][x1][x2]hstack=inputs=3[before];"
    chain += "".join(f"[y{i}]" for i in PANEL_ORDER_AFTER) + "hstack=inputs=3[after];"
    chain += "[before][after]concat=n=2:v=1:a=0[out]"
    ffmpeg(*inputs, "-filter_complex", chain, "-map", "[out]", *X264, str(path))
    return _score(path, detector, default_scorer)


def test_three_people_permuted_at_a_cut_stay_three_tracks(three_panels):
    row = three_panels.row
    assert (row.width, row.height) == (3 * PANEL_W, PANEL_H)
    assert row.n_cuts == 1
    assert row.n_faces == 3 * row.n_frames  # every face found at this size
    assert row.n_tracks == len(three_panels.tracks) == 3
    for track in three_panels.tracks:
        faces = _faces_of(three_panels, track.track_id)
        before = {int(_center_x(f) // PANEL_W) for f in faces if f.timestamp_s < PANEL_CUT_S}
        after = {int(_center_x(f) // PANEL_W) for f in faces if f.timestamp_s > PANEL_CUT_S}
        assert len(before) == 1 and len(after) == 1, (track.track_id, before, after)  # faces on both sides
        (panel,) = before
        assert after == {PANEL_ORDER_AFTER.index(panel)}  # the same person, in their new place
        assert track.counted
    assert row.n_tracks_counted == 3
