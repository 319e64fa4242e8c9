"""MTCNN adapter and the real detector on real photos."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.faces.boxes import iou_xyxy
from pipeline.faces.detect import DetectorConfig, FaceDetector, faces_from_mtcnn_rows


def test_adapter_groups_rows_by_image_and_sorts_by_confidence():
    rows = np.zeros((3, 16))
    rows[0, :6] = [1, 10, 10, 50, 60, 0.95]
    rows[1, :6] = [1, 100, 10, 150, 70, 0.99]
    rows[2, :6] = [0, 5, 5, 40, 40, 0.91]
    faces = faces_from_mtcnn_rows(rows, 3)
    assert [len(f) for f in faces] == [1, 2, 0]  # empty is a value: []
    assert [f.confidence for f in faces[1]] == [0.99, 0.95]
    assert faces[1][0].box_xyxy == (100, 10, 150, 70)
    assert len(faces[1][0].landmarks_xy) == 5


def test_adapter_reads_landmarks_as_five_x_then_five_y():
    rows = np.zeros((1, 16))
    rows[0, :6] = [0, 0, 0, 100, 100, 0.99]
    rows[0, 6:11] = [30, 70, 50, 35, 65]  # x: left eye, right eye, nose, mouth left, mouth right
    rows[0, 11:] = [40, 40, 60, 80, 80]   # y
    (face,) = faces_from_mtcnn_rows(rows, 1)[0]
    assert face.landmarks_xy == ((30, 40), (70, 40), (50, 60), (35, 80), (65, 80))


def test_adapter_drops_degenerate_boxes():
    rows = np.zeros((1, 16))
    rows[0, :6] = [0, 10, 10, 10, 60, 0.95]  # zero width
    assert faces_from_mtcnn_rows(rows, 1) == [[]]


@pytest.mark.parametrize("kwargs", [
    {"detect_long_side_px": 10},  # below MTCNN's pyramid minimum
    {"min_confidence": 1.5},
    {"batch_size": 0},
])
def test_config_rejects_bad_values(kwargs):
    with pytest.raises(ValueError):
        DetectorConfig(**kwargs)


def _astronaut():
    from skimage import data

    return data.astronaut()


def test_finds_the_astronaut_face(detector):
    (faces,) = detector.detect([_astronaut()])
    assert len(faces) == 1
    x1, y1, x2, y2 = faces[0].box_xyxy
    # the face sits around x 170-250, y 50-150 in the 512x512 photo
    assert 150 < (x1 + x2) / 2 < 260 and 60 < (y1 + y2) / 2 < 150
    assert faces[0].confidence > 0.95
    left_eye, right_eye, nose, mouth_left, mouth_right = faces[0].landmarks_xy
    assert left_eye[1] < nose[1] < mouth_left[1]  # upright


def test_boxes_map_back_to_full_resolution(detector):
    import cv2

    big = cv2.resize(_astronaut(), (2048, 2048), interpolation=cv2.INTER_LINEAR)
    (faces_big,) = detector.detect([big])  # detected on a 640 px copy
    (faces_small,) = detector.detect([_astronaut()])
    scaled = tuple(v * 4 for v in faces_small[0].box_xyxy)
    assert iou_xyxy(faces_big[0].box_xyxy, scaled) > 0.8


@pytest.mark.parametrize("frame", [
    np.full((360, 640, 3), 128, np.uint8),  # flat grey
    np.zeros((16, 16, 3), np.uint8),         # too small for MTCNN
    np.zeros((1, 1, 3), np.uint8),
])
def test_no_face_is_an_empty_list(detector, frame):
    assert detector.detect([frame]) == [[]]


def test_dogs_photo_has_no_human_face(detector, shared_data):
    from PIL import Image

    rgb = np.asarray(Image.open(shared_data / "images" / "unlabeled" / "dlib_dogs_no_human_face.jpg").convert("RGB"))
    assert detector.detect([rgb]) == [[]]


def test_several_people(detector, shared_data):
    from PIL import Image

    rgb = np.asarray(Image.open(shared_data / "images" / "real" / "dlib_bald_guys.jpg").convert("RGB"))
    (faces,) = detector.detect([rgb])
    assert len(faces) >= 3


def test_batch_gives_one_list_per_frame(detector):
    frames = [_astronaut(), np.full((512, 512, 3), 128, np.uint8), _astronaut()]
    small = FaceDetector(detector._mtcnn, DetectorConfig(batch_size=2))
    results = small.detect(frames)
    assert [len(r) for r in results] == [1, 0, 1]


def test_compiled_networks_give_the_eager_networks_boxes(detector, shared_data):
    """The tf.function-compiled MTCNN is a speed-up only: same boxes, scores and landmarks."""
    from PIL import Image

    from pipeline.faces.detect import build_mtcnn

    rgb = np.asarray(Image.open(shared_data / "images" / "real" / "dlib_bald_guys.jpg").convert("RGB"))
    frames = [rgb, _astronaut()[:400, :300]]  # different sizes: PNet must not be tied to one shape
    eager = build_mtcnn(compiled=False)
    kwargs = dict(box_format="xyxy", output_type="numpy", scale_factor=0.6)
    for frame in frames:
        expected = eager.detect_faces([frame], **kwargs)
        got = detector._mtcnn.detect_faces([frame], **kwargs)
        assert len(expected) >= 1
        np.testing.assert_allclose(got, expected, atol=1e-3)
    traced = {type(stage).__name__: stage._model.experimental_get_tracing_count() for stage in detector._mtcnn.stages}
    assert all(count == 1 for count in traced.values()), traced  # no retracing for new sizes


def test_detector_falls_back_to_eager_for_an_unknown_mtcnn_layout(caplog):
    from pipeline.faces.detect import compile_stage_networks

    class Unknown:
        stages = [object()]

    assert compile_stage_networks(Unknown()) is False
    assert "eagerly" in caplog.text
