"""Face detection with MTCNN (the ``mtcnn`` package) on downscaled copies of frames.

The detector is the cost of the pipeline: MTCNN at 1080p takes 0.5-0.6 s a frame on a
2-core CPU, at 640 px on the long side about 0.06 s in batches. So frames are shrunk for
detection and the boxes mapped back to full resolution, where the crop is taken.

Detection, selection and cropping are apart (as in facenet-pytorch): :class:`FaceDetector`
returns *every* face MTCNN reports, :func:`pipeline.faces.select.select_faces` decides which
are kept (by ``DetectorConfig.min_confidence`` and ``min_face_px``), and
:func:`pipeline.faces.crop.crop_face_rgb` cuts them out.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from pipeline.faces.boxes import LANDMARK_NAMES, FaceBox  # noqa: F401 (named in docs)
from pipeline.settings import check_fields, setting
from pipeline.tf_import import import_tensorflow

if TYPE_CHECKING:
    from pipeline.faces.identity import FaceDescriber

log = logging.getLogger(__name__)

# MTCNN cannot build an image pyramid below its 12 px input; tiny frames have no face to find.
_DETECT_SIDE_RANGE = setting("detect_long_side_px").range
assert _DETECT_SIDE_RANGE is not None and _DETECT_SIDE_RANGE.low is not None  # declared in pipeline.settings
MIN_DETECT_SIDE_PX = int(_DETECT_SIDE_RANGE.low)  # 24


@dataclasses.dataclass(frozen=True)
class DetectorConfig:
    """Every setting of face detection and selection, in one object.

    ``detect_long_side_px``: frames larger than this are shrunk to it for detection.
    Selection (applied by :func:`pipeline.faces.select.select_faces` where the faces of a frame
    are decided, :mod:`pipeline.faces.follow`; the detector itself filters nothing):
    ``min_confidence``: MTCNN's ONet score below which a box is dropped (single-face frames
    show low-confidence false boxes around 0.7-0.85). ``min_face_px``: faces smaller than this
    in full-resolution pixels are dropped (a crop enlarged 10x shows no mesoscopic texture).
    ``batch_size``: frames per MTCNN call. ``pyramid_scale``: ratio between MTCNN's image
    pyramid levels (MTCNN's own default is 0.709; fewer levels are faster, and faces are
    found at every level anyway once they are larger than MTCNN's 20 px minimum).
    ``full_frame_every_s``: on dense sampling, whole frames are searched at most this often (in
    seconds of video) and in between only regions around the faces found last
    (:mod:`pipeline.faces.follow`); 0 searches every frame whole. ``region_margin``: region side /
    face side; ``region_px``: the size MTCNN sees a region at."""

    detect_long_side_px: int = 480
    min_confidence: float = 0.9
    min_face_px: int = 40
    batch_size: int = 8
    pyramid_scale: float = 0.6
    full_frame_every_s: float = 1.0
    region_margin: float = 2.5
    region_px: int = 96

    def __post_init__(self) -> None:
        check_fields(self, *(f.name for f in dataclasses.fields(self)))  # ranges: pipeline.settings


def faces_from_mtcnn_rows(rows: np.ndarray, n_images: int) -> list[list[FaceBox]]:
    """Adapter: MTCNN's numpy output (N, 16) ``[image_id, x1, y1, x2, y2, confidence,
    5 landmark x, 5 landmark y]`` (points in :data:`LANDMARK_NAMES` order) -> one list of
    :class:`FaceBox` per image, best first."""
    faces: list[list[FaceBox]] = [[] for _ in range(n_images)]
    for row in np.asarray(rows, dtype=np.float64).reshape(-1, 16):
        image_id = int(row[0])
        x1, y1, x2, y2 = (float(v) for v in row[1:5])
        if not (x2 > x1 and y2 > y1) or not 0 <= image_id < n_images:
            continue
        landmarks = tuple((float(row[6 + k]), float(row[11 + k])) for k in range(5))
        confidence = float(np.clip(row[5], 0.0, 1.0))
        faces[image_id].append(FaceBox((x1, y1, x2, y2), confidence, landmarks))
    for per_image in faces:
        per_image.sort(key=lambda f: f.confidence, reverse=True)
    return faces


# Input shapes of MTCNN's three networks: PNet runs on whole (pyramid) images, RNet and ONet
# on 24 px and 48 px patches.
STAGE_INPUT_SHAPES = ((None, None, None, 3), (None, 24, 24, 3), (None, 48, 48, 3))


def compile_stage_networks(mtcnn) -> bool:
    """Run MTCNN's networks as compiled TensorFlow graphs instead of layer-by-layer eager calls.

    The ``mtcnn`` package calls its Keras models eagerly, and on a CPU the per-layer Python
    overhead costs more than the convolutions: a 480 px frame takes about 90 ms alone and
    32 ms a frame in batches of 8, against 39 ms and 17-23 ms compiled. Outputs are the same.
    Each network gets one ``tf.function`` with a fixed signature, traced once (no retracing
    for new image sizes or batch sizes). Returns False, leaving the detector eager, if this
    ``mtcnn`` version does not keep its networks where expected.
    """
    tf = import_tensorflow()
    stages = list(getattr(mtcnn, "stages", ()))
    if len(stages) != len(STAGE_INPUT_SHAPES) or not all(hasattr(s, "_model") for s in stages):
        log.warning("this mtcnn version keeps its networks elsewhere; running them eagerly (slower)")
        return False
    for stage, shape in zip(stages, STAGE_INPUT_SHAPES):
        network = stage._model
        stage._model = tf.function(
            lambda images, network=network: network(images, training=False),
            input_signature=[tf.TensorSpec(shape, tf.float32)],
        )
    return True


def mtcnn_rows(mtcnn, images_rgb: list[np.ndarray], scale_factor: float) -> np.ndarray:
    """MTCNN's (N, 16) ``xyxy`` rows for same-sized uint8 RGB images: the steps of the
    package's ``MTCNN.detect_faces`` (its stages, padding and boundary fixes), with the images
    normalised once into one float32 tensor.

    ``detect_faces`` normalises the batch as a float64 numpy array and every step then
    converts it to a tensor again: once per pyramid level and once per refinement stage, about
    a third of a 480 px frame's detection time. Normalising ``(x - 127.5) / 128`` is exact in
    float32 for uint8 pixels, so the boxes are the same to the bit (tested against
    ``detect_faces``).
    """
    tf = import_tensorflow()
    from mtcnn.utils.bboxes import fix_bboxes_offsets, limit_bboxes
    from mtcnn.utils.images import standarize_batch

    with tf.device(mtcnn._device):
        stacked, shapes, pad_param = standarize_batch(images_rgb, normalize=False)
        normalized = tf.constant((np.asarray(stacked, dtype=np.float32) - 127.5) / 128.0)
        try:
            rows: Any = None  # the mtcnn package's rows (untyped)
            for stage in mtcnn.stages:
                rows = stage(
                    bboxes_batch=rows, images_normalized=normalized, images_oshapes=shapes, scale_factor=scale_factor
                )
        except tf.errors.InvalidArgumentError:  # how detect_faces learns that no stage found a face
            return np.empty((0, 16))
        if len(rows) == 0:
            return np.empty((0, 16))
        rows = fix_bboxes_offsets(rows, pad_param)
        return limit_bboxes(rows, images_shapes=shapes, limit_landmarks=False)


def has_mtcnn_internals(mtcnn) -> bool:
    """True when this ``mtcnn`` version has the pieces :func:`mtcnn_rows` drives (else the
    detector calls ``detect_faces`` itself)."""
    try:
        from mtcnn.utils.bboxes import fix_bboxes_offsets, limit_bboxes  # noqa: F401
        from mtcnn.utils.images import standarize_batch  # noqa: F401
    except ImportError:
        return False
    return hasattr(mtcnn, "_device") and len(list(getattr(mtcnn, "stages", ()))) == len(STAGE_INPUT_SHAPES)


def build_mtcnn(compiled: bool = True):
    """The MTCNN detector (weights ship inside the ``mtcnn`` wheel; nothing is downloaded),
    with its networks compiled (:func:`compile_stage_networks`) unless ``compiled`` is False."""
    import_tensorflow()
    from mtcnn import MTCNN

    mtcnn = MTCNN(stages="face_and_landmarks_detection", device="CPU:0")
    if compiled:
        compile_stage_networks(mtcnn)
    return mtcnn


class FaceDetector:
    """Finds every face in batches of same-sized RGB frames (no selection: see
    :func:`pipeline.faces.select.select_faces`).

    Build once per process (:func:`pipeline.models.factory.load_detector`) and pass it around;
    it holds the MTCNN networks. ``config`` carries the detection settings used here and the
    selection settings the callers apply. ``describer``: the face embedding that tracks people
    by what they look like (:class:`pipeline.faces.identity.FaceDescriber`), or ``None``
    (tracks by position alone).
    """

    def __init__(self, mtcnn, config: DetectorConfig = DetectorConfig(), describer: FaceDescriber | None = None):
        self._mtcnn = mtcnn
        self.config = config
        self.describer = describer
        self._lean = has_mtcnn_internals(mtcnn)
        if not self._lean:
            log.info("this mtcnn version keeps its stages elsewhere; calling detect_faces (slower)")

    def with_config(self, config: DetectorConfig) -> FaceDetector:
        """The same networks under other settings (no rebuild; ``self`` if unchanged): how
        a command with its own selection rule, such as the dataset builder's larger minimum
        face, reuses a detector built elsewhere."""
        return self if config == self.config else FaceDetector(self._mtcnn, config, self.describer)

    def detect(self, frames_rgb: Sequence[np.ndarray]) -> list[list[FaceBox]]:
        """Every face MTCNN reports per frame, in full-resolution pixels, best first (highest
        confidence); ``[]`` where none. Nothing is filtered by confidence or size here (MTCNN's
        own ONet threshold, 0.8 in ``mtcnn`` 1.0, is the only one applied): the caller selects
        (:func:`pipeline.faces.select.select_faces`).

        ``frames_rgb``: uint8 (H, W, 3) RGB arrays, all of one size; frames with a side under
        :data:`MIN_DETECT_SIDE_PX` have no face.
        """
        import cv2

        results: list[list[FaceBox]] = []
        cfg = self.config
        for start in range(0, len(frames_rgb), cfg.batch_size):
            batch = list(frames_rgb[start : start + cfg.batch_size])
            h, w = batch[0].shape[:2]
            if min(h, w) < MIN_DETECT_SIDE_PX:
                results.extend([] for _ in batch)
                continue
            scale = min(1.0, cfg.detect_long_side_px / max(h, w))
            if scale < 1.0:
                size_wh = (max(1, round(w * scale)), max(1, round(h * scale)))
                small = [cv2.resize(f, size_wh, interpolation=cv2.INTER_AREA) for f in batch]
            else:
                small = batch
            for faces in self._mtcnn_faces(small):
                results.append([face.scaled(1.0 / scale) for face in faces] if scale < 1.0 else faces)
        return results

    def detect_in_images(self, images_rgb: Sequence[np.ndarray]) -> list[list[FaceBox]]:
        """Every face per image as given (no shrinking, no selection), in the image's own
        pixels, best first: for small same-sized cut-outs such as :mod:`pipeline.faces.follow`'s
        regions. ``images_rgb``: uint8 (S, S, 3) RGB arrays of one size. Batched like
        :meth:`detect`."""
        results: list[list[FaceBox]] = []
        for start in range(0, len(images_rgb), self.config.batch_size):
            results.extend(self._mtcnn_faces(list(images_rgb[start : start + self.config.batch_size])))
        return results

    def _mtcnn_faces(self, images_rgb: list[np.ndarray]) -> list[list[FaceBox]]:
        """One MTCNN call on same-sized images: all its faces, per image, best first."""
        if self._lean:
            rows = mtcnn_rows(self._mtcnn, images_rgb, self.config.pyramid_scale)
        else:
            rows = self._mtcnn.detect_faces(
                images_rgb, box_format="xyxy", output_type="numpy", scale_factor=self.config.pyramid_scale
            )
        return faces_from_mtcnn_rows(rows, len(images_rgb))
