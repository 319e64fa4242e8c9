"""pipeline/faces/identity.py: dlib face embeddings (who a face is) and grey thumbnails."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from pipeline.faces import identity
from pipeline.faces.identity import (
    CHIP_PX,
    EMBEDDING_SIZE,
    SAME_PERSON_MAX_DISTANCE,
    THUMBNAIL_PX,
    distance,
    load_describer,
    models_dir,
    thumbnail,
)
from pipeline.faces.tracks import link_tracks
from pipeline.video.decode import iter_frames
from pipeline.video.probe import probe_video

# --------------------------------------------------------------------------------------------
# Without the network
# --------------------------------------------------------------------------------------------


def test_models_dir_says_how_to_install_the_weights(monkeypatch):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "face_recognition_models" else real_find_spec(name, *a),
    )
    with pytest.raises(ModuleNotFoundError, match="pip install face_recognition_models"):
        models_dir()
    with pytest.raises(ModuleNotFoundError, match="face_recognition_models is not installed"):
        load_describer()


def test_models_dir_holds_both_weights_files():
    folder = models_dir()
    assert (folder / identity.SHAPE_MODEL).is_file() and (folder / identity.EMBEDDING_MODEL).is_file()


def test_load_describer_names_a_missing_weights_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=f"face embedding weights not found: .*{identity.SHAPE_MODEL}"):
        load_describer(tmp_path)


@pytest.mark.parametrize(
    "a, b, expected",
    [
        ([0.0, 0.0], [3.0, 4.0], 5.0),  # Euclidean
        ([1.0, 2.0], [1.0, 2.0], 0.0),  # the same vector
        (np.float32([0.1, 0.2]), np.float32([0.1, 0.2]), 0.0),  # float32 in, float out
    ],
)
def test_distance(a, b, expected):
    d = distance(np.asarray(a), np.asarray(b))
    assert type(d) is float and d == pytest.approx(expected)


@pytest.mark.parametrize(
    "box",
    [
        (100.0, 50.0, 200.0, 150.0),  # inside the frame
        (-40.0, -30.0, 60.0, 70.0),  # partly outside: clipped
        (600.0, 400.0, 700.0, 520.0),  # past the bottom-right corner
        (10.2, 10.7, 11.1, 11.4),  # under a pixel
    ],
)
def test_thumbnail_is_a_32px_grey_square(box):
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)
    thumb = thumbnail(frame, box)
    assert thumb.shape == (THUMBNAIL_PX, THUMBNAIL_PX) and thumb.dtype == np.uint8


def test_thumbnail_is_the_area_average_of_the_box():
    frame = np.zeros((200, 200, 3), np.uint8)
    frame[0:64, 0:32] = 255  # the box's left half white, in grey
    thumb = thumbnail(frame, (0, 0, 64, 64))
    assert (thumb[:, :16] == 255).all() and (thumb[:, 16:] == 0).all()


# --------------------------------------------------------------------------------------------
# The real network on real faces
# --------------------------------------------------------------------------------------------


def best_faces(detector, path, *, sample_fps: float = 0.5, max_frames: int = 3):
    """``(frame, faces best first)`` per sampled frame of ``path``."""
    frames = list(iter_frames(path, probe_video(path), sample_fps=sample_fps, max_frames=max_frames))
    return list(zip(frames, detector.detect([f.rgb for f in frames])))


@pytest.fixture(scope="module")
def describer(detector):
    assert detector.describer is not None  # the factory builds it with MTCNN
    return detector.describer


@pytest.fixture(scope="module")
def person_634(shared_data, detector):
    return best_faces(detector, shared_data / "videos" / "real" / "ffpp_original_634.mp4")


def embed_one(describer, frame, box):
    chip = describer.chip(frame.rgb, box)
    assert chip.shape == (CHIP_PX, CHIP_PX, 3) and chip.dtype == np.uint8
    (vector,) = describer.embed([chip])
    return vector


def test_chips_and_embeddings_have_their_shapes(describer, person_634):
    frame, faces = person_634[0]
    chips = [describer.chip(frame.rgb, f.box_xyxy) for f in faces]
    vectors = describer.embed(chips)
    assert vectors.shape == (len(faces), EMBEDDING_SIZE) and vectors.dtype == np.float32
    assert np.isfinite(vectors).all()
    assert describer.embed([]).shape == (0, EMBEDDING_SIZE)
    # the same chip, the same embedding (batched or alone)
    assert distance(describer.embed(chips[:1])[0], vectors[0]) < 1e-4


def test_two_frames_of_one_person_are_the_same_person(describer, person_634):
    (f0, faces0), _, (f2, faces2) = person_634  # 0 s and 4 s apart
    a = embed_one(describer, f0, faces0[0].box_xyxy)
    b = embed_one(describer, f2, faces2[0].box_xyxy)
    assert distance(a, b) <= SAME_PERSON_MAX_DISTANCE


def test_two_people_are_not_the_same_person(describer, detector, shared_data, person_634):
    frame, faces = person_634[0]
    a = embed_one(describer, frame, faces[0].box_xyxy)
    other = best_faces(detector, shared_data / "videos" / "real" / "ffpp_original_519.mp4", max_frames=1)
    ((frame_b, faces_b),) = other
    b = embed_one(describer, frame_b, faces_b[0].box_xyxy)
    assert distance(a, b) > SAME_PERSON_MAX_DISTANCE


def test_the_two_people_side_by_side_are_two_people(describer, detector, shared_cases):
    ((frame, faces),) = best_faces(detector, shared_cases / "two_people_side_by_side.mp4", max_frames=1)
    assert len(faces) >= 2
    left, right = sorted(faces[:2], key=lambda f: f.box_xyxy[0])
    a, b = (embed_one(describer, frame, f.box_xyxy) for f in (left, right))
    assert distance(a, b) > SAME_PERSON_MAX_DISTANCE


def test_people_who_swap_places_at_an_unseen_cut_keep_their_tracks(describer, detector, shared_cases):
    # left: a real person, right: a swapped face; at 3 s they trade places in front of the
    # same studio, an edit scdet does not see: the embeddings must split and join the tracks
    path = shared_cases / "two_people_swap_places_at_cut.mp4"
    cuts: list[float] = []
    frames = list(iter_frames(path, probe_video(path), sample_fps=2.0, max_frames=12, cut_times_s=cuts))
    assert cuts == []
    boxes = [[face.box_xyxy for face in faces[:2]] for faces in detector.detect([f.rgb for f in frames])]
    assert all(len(b) == 2 for b in boxes)
    chips = [describer.chip(f.rgb, box) for f, sample in zip(frames, boxes) for box in sample]
    asked: list[int] = []

    def embed(faces):
        asked.extend(faces)
        return describer.embed([chips[k] for k in faces])

    by_place = link_tracks(boxes, timestamps_s=[f.timestamp_s for f in frames])
    ids = link_tracks(boxes, timestamps_s=[f.timestamp_s for f in frames], embed=embed)

    def track_at(ids, sample: int, side: str) -> int:
        xs = [b[0] for b in boxes[sample]]
        return ids[sample][xs.index(min(xs) if side == "left" else max(xs))]

    before = [s for s, f in enumerate(frames) if f.timestamp_s < 3.0]
    after = [s for s, f in enumerate(frames) if f.timestamp_s >= 3.0]
    assert before and after
    # by position: the left track holds the real person, then the fake one
    assert len({track_at(by_place, s, "left") for s in range(len(frames))}) == 1
    # by identity: each person one track across the swap
    assert {t for sample in ids for t in sample} == {0, 1}
    real = {track_at(ids, s, "left") for s in before} | {track_at(ids, s, "right") for s in after}
    fake = {track_at(ids, s, "right") for s in before} | {track_at(ids, s, "left") for s in after}
    assert len(real) == 1 and len(fake) == 1 and real != fake
    assert len(set(asked)) < len(chips)  # not every face embedded
