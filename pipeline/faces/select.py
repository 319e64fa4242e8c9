"""Selection: which of the faces MTCNN reported are kept (facenet-pytorch's *select* step).

Detection (:mod:`pipeline.faces.detect`) returns every face MTCNN reports; this module decides
which count. It is a pure function, so the scanner's face loop (:mod:`pipeline.faces.follow`),
the dataset builder and a test can apply the same rule to the same boxes and get the same
answer. The thresholds belong to :class:`pipeline.faces.detect.DetectorConfig` (its
``min_confidence`` and ``min_face_px``), the one object of detector settings.
"""

from __future__ import annotations

from collections.abc import Sequence

from pipeline.faces.boxes import FaceBox
from pipeline.settings import check


def select_faces(faces: Sequence[FaceBox], *, min_confidence: float, min_face_px: float) -> list[FaceBox]:
    """The faces worth cropping, in the order given (detection order is best first).

    ``faces``: boxes in full-resolution pixels. ``min_confidence`` in [0, 1]: MTCNN's ONet
    score below which a box is taken for a false detection (MTCNN reports boxes down to its
    own ONet threshold, 0.8, and single-face frames show spurious ones there).
    ``min_face_px`` >= 0, in full-resolution pixels: a face whose longer box side
    (:attr:`FaceBox.size_px`) is below it is dropped, since a crop enlarged from a few dozen
    pixels to the model's input shows none of the mesoscopic texture Meso-4 reads; 0 keeps
    every size. Both bounds are inclusive (a face exactly at the threshold is kept).

    Returns a new list (``[]`` when none is kept). Raises ``ValueError`` naming the bad value
    and its valid range.
    """
    check("min_confidence", min_confidence)
    check("min_face_px", min_face_px)
    return [face for face in faces if face.confidence >= min_confidence and face.size_px >= min_face_px]
