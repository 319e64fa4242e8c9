"""What a face looks like, as numbers: who it is (a face embedding) and whether it ever changes.

Two descriptors per face, for :mod:`pipeline.faces.tracks`:

- :class:`FaceDescriber`: dlib's face recognition ResNet (``dlib_face_recognition_resnet_model_v1``,
  128 numbers per face, King 2017; 99.38% on LFW), on a 150 px chip aligned by dlib's 5-point
  shape predictor inside the MTCNN box. The weights come with the ``face_recognition_models``
  package (pip installs them; nothing is downloaded at run time). Two faces of one person are
  at Euclidean distance about 0.2-0.45 here, two people about 0.5 and more; a face swapped
  onto another person's head sits between its two sources (0.51-0.66 from the head's owner
  on ``../shared/cases/two_people_swap_places_at_cut.mp4``), so this project's
  :data:`SAME_PERSON_MAX_DISTANCE` is stricter than dlib's usual 0.6.
  It costs about 100 ms a face on this CPU (dlib without BLAS), so the tracker asks for a few
  faces per track, not every face.
- :func:`thumbnail`: the face box as a 32 px grey square (1 KB), kept for every face: a face
  whose box and pixels never change is a still picture (:func:`pipeline.faces.tracks.is_static`).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path

import numpy as np

# Euclidean distance between two dlib embeddings at or under which two faces are one person.
# Measured (``bench/identity_links.py``): 2,911 pairs of faces within one track of the shared
# clips, median 0.30, 95th percentile 0.48, 99th 0.54 (turned heads, blur); across the two
# people of the case clips, at least 0.51 (a face swapped onto the other person's head) and 0.84
# (two strangers). A pair of single faces over the limit only splits a tracklet; pieces are
# joined again by their mean embeddings, and a piece of one or two odd faces between two pieces
# of one person goes back to them (:mod:`pipeline.faces.tracks`), so a turned head costs little.
SAME_PERSON_MAX_DISTANCE = 0.45
EMBEDDING_SIZE = 128
CHIP_PX = 150
CHIP_PADDING = 0.25
THUMBNAIL_PX = 32

MODELS_PACKAGE = "face_recognition_models"
SHAPE_MODEL = "shape_predictor_5_face_landmarks.dat"
EMBEDDING_MODEL = "dlib_face_recognition_resnet_model_v1.dat"


def models_dir() -> Path:
    """The folder of the ``face_recognition_models`` package's weights, found without importing
    the package (its ``__init__`` needs ``pkg_resources``, which recent setuptools dropped).
    Raises ``ModuleNotFoundError`` with the pip command when it is not installed."""
    spec = importlib.util.find_spec(MODELS_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(
            f"{MODELS_PACKAGE} is not installed (the face embedding's weights): pip install face_recognition_models"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "models"


def distance(a: np.ndarray, b: np.ndarray) -> float:
    """Euclidean distance between two embeddings (128,)."""
    return float(np.linalg.norm(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)))


def thumbnail(frame_rgb: np.ndarray, box_xyxy: Sequence[float]) -> np.ndarray:
    """The face box of ``frame_rgb`` (uint8 (H, W, 3)) as a uint8 (32, 32) grey square, area
    averaged; the box is clipped to the frame."""
    import cv2

    h, w = frame_rgb.shape[:2]
    x1, y1 = min(w - 1, max(0, int(box_xyxy[0]))), min(h - 1, max(0, int(box_xyxy[1])))
    x2, y2 = min(w, max(x1 + 1, int(round(box_xyxy[2])))), min(h, max(y1 + 1, int(round(box_xyxy[3]))))
    grey = cv2.cvtColor(np.ascontiguousarray(frame_rgb[y1:y2, x1:x2]), cv2.COLOR_RGB2GRAY)
    return cv2.resize(grey, (THUMBNAIL_PX, THUMBNAIL_PX), interpolation=cv2.INTER_AREA)


class FaceDescriber:
    """dlib's shape predictor and face recognition network, loaded once; build it with
    :func:`load_describer` (the one factory) and pass it in.

    :meth:`chip` aligns a face (cheap, 1 ms: done for every face while its frame is at hand);
    :meth:`embed` runs the network on chips (about 100 ms each: done only for the faces the
    tracker asks about).
    """

    def __init__(self, shape_predictor, recognizer):
        self._shape_predictor = shape_predictor
        self._recognizer = recognizer

    def chip(self, frame_rgb: np.ndarray, box_xyxy: Sequence[float]) -> np.ndarray:
        """The face in ``box_xyxy`` (full-resolution pixels of ``frame_rgb``, uint8 (H, W, 3)
        RGB) aligned by its eyes and nose: uint8 (150, 150, 3)."""
        import dlib

        x1, y1, x2, y2 = (int(round(v)) for v in box_xyxy)
        frame = np.ascontiguousarray(frame_rgb)
        shape = self._shape_predictor(frame, dlib.rectangle(x1, y1, x2, y2))
        return np.asarray(dlib.get_face_chip(frame, shape, size=CHIP_PX, padding=CHIP_PADDING))

    def embed(self, chips: Sequence[np.ndarray]) -> np.ndarray:
        """Embeddings of aligned chips (each uint8 (150, 150, 3)): float32 (n, 128)."""
        if not chips:
            return np.zeros((0, EMBEDDING_SIZE), dtype=np.float32)
        vectors = self._recognizer.compute_face_descriptor([np.ascontiguousarray(c) for c in chips])
        return np.asarray([np.asarray(v) for v in vectors], dtype=np.float32)


def load_describer(models: str | Path | None = None) -> FaceDescriber:
    """Build the :class:`FaceDescriber` from ``models`` (a folder holding dlib's
    ``shape_predictor_5_face_landmarks.dat`` and ``dlib_face_recognition_resnet_model_v1.dat``;
    default: :func:`models_dir`). Raises ``ModuleNotFoundError`` (dlib or the weights package
    missing, with the pip command) or ``FileNotFoundError``."""
    try:
        import dlib
    except ImportError as exc:  # pragma: no cover - an install without the base dependencies
        raise ModuleNotFoundError("dlib is not installed (the face embedding): pip install dlib-bin") from exc
    folder = Path(models) if models is not None else models_dir()
    for name in (SHAPE_MODEL, EMBEDDING_MODEL):
        if not (folder / name).is_file():
            raise FileNotFoundError(f"face embedding weights not found: {folder / name}")
    return FaceDescriber(
        dlib.shape_predictor(str(folder / SHAPE_MODEL)),
        dlib.face_recognition_model_v1(str(folder / EMBEDDING_MODEL)),
    )
