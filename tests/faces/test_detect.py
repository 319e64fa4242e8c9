"""MTCNN adapter and the real detector on real photos."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.faces.boxes import iou_xyxy
from pipeline.faces.detect import DetectorConfig, FaceDetector, faces_from_mtcnn_rows
from pipeline.faces.select import select_faces


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
    rows[0, 11:] = [40, 40, 60, 80, 80]  # y
    (face,) = faces_from_mtcnn_rows(rows, 1)[0]
    assert face.landmarks_xy == ((30, 40), (70, 40), (50, 60), (35, 80), (65, 80))


def test_adapter_drops_degenerate_boxes():
    rows = np.zeros((1, 16))
    rows[0, :6] = [0, 10, 10, 10, 60, 0.95]  # zero width
    assert faces_from_mtcnn_rows(rows, 1) == [[]]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"detect_long_side_px": 10},  # below MTCNN's pyramid minimum
        {"min_confidence": 1.5},
        {"batch_size": 0},
        {"min_face_px": -1},
    ],
)
def test_config_rejects_bad_values(kwargs):
    with pytest.raises(ValueError):
        DetectorConfig(**kwargs)


class StubMTCNN:
    """Stands in for MTCNN: reports fixed rows (in the coordinates of the image it is given)
    and records the image sizes it saw."""

    def __init__(self, rows: np.ndarray):
        self.rows = rows
        self.sizes: list[tuple[int, int]] = []

    def detect_faces(self, images, **kwargs):
        self.sizes.extend(image.shape[:2] for image in images)
        return np.concatenate([np.c_[np.full(len(self.rows), i), self.rows[:, 1:]] for i in range(len(images))])


def test_detector_reports_every_face_and_selection_decides():
    """detect() filters nothing: an unsure box and a tiny one come back (in full-resolution
    pixels); select_faces() with the config's thresholds is what drops them."""
    rows = np.zeros((3, 16))
    rows[0, :6] = [0, 100, 100, 200, 200, 0.99]  # a clear face, 100 px at detection size
    rows[1, :6] = [0, 300, 100, 400, 200, 0.75]  # a false box MTCNN still reports
    rows[2, :6] = [0, 10, 10, 20, 20, 0.98]  # 10 px at detection size: 20 px in the frame
    stub = StubMTCNN(rows)
    detector = FaceDetector(stub, DetectorConfig(detect_long_side_px=480))
    (faces,) = detector.detect([np.zeros((960, 960, 3), np.uint8)])
    assert stub.sizes == [(480, 480)]  # detected on a half-size copy
    assert [f.confidence for f in faces] == [0.99, 0.98, 0.75]  # every face, best first
    assert [f.box_xyxy for f in faces] == [(200, 200, 400, 400), (20, 20, 40, 40), (600, 200, 800, 400)]
    cfg = detector.config
    kept = select_faces(faces, min_confidence=cfg.min_confidence, min_face_px=cfg.min_face_px)
    assert [f.box_xyxy for f in kept] == [(200, 200, 400, 400)]


def test_detect_in_images_reports_every_face():
    rows = np.zeros((1, 16))
    rows[0, :6] = [0, 10, 10, 30, 30, 0.72]
    (faces,) = FaceDetector(StubMTCNN(rows)).detect_in_images([np.zeros((96, 96, 3), np.uint8)])
    assert [(f.box_xyxy, f.confidence) for f in faces] == [((10, 10, 30, 30), 0.72)]


def test_with_config_shares_the_networks():
    stub = StubMTCNN(np.zeros((0, 16)))
    detector = FaceDetector(stub, DetectorConfig())
    assert detector.with_config(DetectorConfig()) is detector  # unchanged: the same object
    other = detector.with_config(DetectorConfig(min_face_px=64))
    assert other.config.min_face_px == 64 and other._mtcnn is stub and detector.config.min_face_px == 40


def test_small_faces_of_a_crowd_are_reported_then_dropped_by_selection(detector, shared_data):
    """The real MTCNN on a crowd: faces under the 40 px minimum come back from detect(), and
    selection keeps exactly the others."""
    from PIL import Image

    rgb = np.asarray(Image.open(shared_data / "images" / "real" / "dlib_2007_007763.jpg").convert("RGB"))
    (faces,) = detector.detect([rgb])
    small = [f for f in faces if f.size_px < 40]
    assert len(small) >= 2 and len(faces) > len(small)
    kept = select_faces(faces, min_confidence=0.9, min_face_px=40)
    assert kept == [f for f in faces if f.size_px >= 40 and f.confidence >= 0.9]


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


@pytest.mark.parametrize(
    "frame",
    [
        np.full((360, 640, 3), 128, np.uint8),  # flat grey
        np.zeros((16, 16, 3), np.uint8),  # too small for MTCNN
        np.zeros((1, 1, 3), np.uint8),
    ],
)
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


def test_lean_driver_gives_detect_faces_rows_to_the_bit(detector, shared_data):
    """mtcnn_rows normalises once into float32 instead of float64 on every step: a speed-up
    only, the same rows as the package's own detect_faces (boxes, scores, landmarks), batched,
    with several faces, one face and none."""
    from PIL import Image

    from pipeline.faces.detect import has_mtcnn_internals, mtcnn_rows

    assert has_mtcnn_internals(detector._mtcnn)
    people = np.asarray(Image.open(shared_data / "images" / "real" / "dlib_bald_guys.jpg").convert("RGB"))
    people = np.ascontiguousarray(people[:400, :400])
    astronaut = _astronaut()[:400, :400]
    batches = [[people, astronaut, people[::-1]], [astronaut], [np.full((400, 400, 3), 128, np.uint8)] * 2]
    for batch in batches:
        expected = detector._mtcnn.detect_faces(batch, box_format="xyxy", output_type="numpy", scale_factor=0.6)
        got = mtcnn_rows(detector._mtcnn, batch, 0.6)
        assert got.shape == expected.reshape(-1, 16).shape
        np.testing.assert_array_equal(got, expected.reshape(-1, 16))
    assert len(mtcnn_rows(detector._mtcnn, batches[0], 0.6)) >= 3


def test_detector_without_mtcnn_internals_calls_detect_faces():
    class OnlyDetectFaces:
        def __init__(self):
            self.calls = 0

        def detect_faces(self, images, **kwargs):
            self.calls += 1
            return np.array([[0, 10, 10, 50, 50, 0.99, *([20.0] * 10)]])

    stub = OnlyDetectFaces()
    (faces,) = FaceDetector(stub).detect_in_images([np.zeros((96, 96, 3), np.uint8)])
    assert stub.calls == 1 and len(faces) == 1
