"""pipeline/faces/select.py: which detected faces are kept, by confidence and size."""

from __future__ import annotations

import pytest

from pipeline.faces.boxes import FaceBox
from pipeline.faces.select import select_faces


def face(size_px: float, confidence: float, x: float = 0.0) -> FaceBox:
    return FaceBox((x, 0.0, x + size_px, size_px * 0.8), confidence)


BIG_SURE = face(100, 0.99)
BIG_UNSURE = face(100, 0.75, x=200)
SMALL_SURE = face(30, 0.98, x=400)
EDGE = face(40, 0.9, x=500)  # exactly at both default thresholds


@pytest.mark.parametrize(
    "faces, min_confidence, min_face_px, expected",
    [
        ([], 0.9, 40, []),  # no face is []
        ([BIG_SURE], 0.9, 40, [BIG_SURE]),  # a clear face is kept
        ([BIG_UNSURE], 0.9, 40, []),  # low confidence: a false box
        ([SMALL_SURE], 0.9, 40, []),  # too small for Meso-4's texture
        ([EDGE], 0.9, 40, [EDGE]),  # both bounds are inclusive
        ([BIG_SURE, BIG_UNSURE, SMALL_SURE, EDGE], 0.9, 40, [BIG_SURE, EDGE]),  # mixed, order kept
        ([BIG_SURE, BIG_UNSURE, SMALL_SURE], 0.0, 0, [BIG_SURE, BIG_UNSURE, SMALL_SURE]),  # 0, 0: all
        ([BIG_SURE, SMALL_SURE], 0.9, 0, [BIG_SURE, SMALL_SURE]),  # size rule off
        ([BIG_SURE, BIG_UNSURE], 0.0, 64, [BIG_SURE, BIG_UNSURE]),  # confidence rule off
        ([BIG_SURE, SMALL_SURE], 0.9, 101, []),  # the dataset builder's larger minimum
    ],
)
def test_select_faces(faces, min_confidence, min_face_px, expected):
    assert select_faces(faces, min_confidence=min_confidence, min_face_px=min_face_px) == expected


def test_select_returns_a_new_list():
    faces = [BIG_SURE]
    kept = select_faces(faces, min_confidence=0.0, min_face_px=0)
    kept.append(SMALL_SURE)
    assert faces == [BIG_SURE]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"min_confidence": 1.5, "min_face_px": 40}, "min_confidence must be in [0, 1], got 1.5"),
        ({"min_confidence": -0.1, "min_face_px": 40}, "min_confidence"),
        ({"min_confidence": 0.9, "min_face_px": -1}, "min_face_px must be >= 0, got -1"),
    ],
)
def test_select_rejects_bad_thresholds(kwargs, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        select_faces([BIG_SURE], **kwargs)
