"""The notes a verdict carries: their one vocabulary, the little-face-evidence rule and the
validated-range check, as :func:`pipeline.scan.analyze.verdict_row` writes them."""

from __future__ import annotations

import pytest

from pipeline.faces.quality import FaceQuality
from pipeline.report.notes import NOTES
from pipeline.scan.analyze import ScanConfig, ScoredFace, verdict_row
from pipeline.scan.notes import (
    LITTLE_FACE_EVIDENCE,
    NOTE_CODES,
    OUTSIDE_VALIDATED_RANGE,
    join_notes,
    little_face_evidence,
    split_notes,
)
from pipeline.scan.records import FaceRow

GOOD = FaceQuality(face_px=200.0, brightness=100.0, noise_sigma=0.4, sharpness=50.0, blockiness=1.1)
RANGE = (("face_px", (80.0, 540.0)), ("brightness", (22.0, 167.0)), ("noise_sigma", (0.2, 0.75)))


def _face(sample: int, p: float = 0.2, track: int = 0, quality: FaceQuality | None = GOOD) -> ScoredFace:
    return ScoredFace(sample, sample, float(sample), track, (0.0, 0.0, 200.0, 200.0), 0.99, p, quality=quality)


def test_notes_are_one_vocabulary_in_one_order():
    assert join_notes([OUTSIDE_VALIDATED_RANGE, LITTLE_FACE_EVIDENCE, LITTLE_FACE_EVIDENCE]) == (
        "little_face_evidence;outside_validated_range"
    )
    assert split_notes("little_face_evidence;outside_validated_range") == [
        LITTLE_FACE_EVIDENCE,
        OUTSIDE_VALIDATED_RANGE,
    ]
    assert split_notes("") == [] and join_notes([]) == ""
    with pytest.raises(ValueError, match="unknown note codes"):
        join_notes(["partial_coverage"])
    assert all(note.means and note.do for note in NOTES.values())
    assert list(NOTES) == list(NOTE_CODES)  # every code the scan may write has its words, in its order


@pytest.mark.parametrize(
    "frames_sampled, per_person, n_faces, little",
    [
        (9, [2], 2, True),  # the caption case: 2 of 9 frames
        (9, [3], 3, False),  # a third of the frames, 3 faces: enough
        (30, [9], 9, True),  # under a third
        (30, [10, 2], 12, False),  # the main person decides, not a passer-by
        (2, [2], 2, True),  # under 3 faces, however short the clip
        (0, [], 0, False),  # nothing sampled: no verdict to qualify
    ],
)
def test_the_little_face_evidence_rule(frames_sampled, per_person, n_faces, little):
    assert little_face_evidence(frames_sampled, per_person, n_faces) is little


def test_a_verdict_on_too_little_is_uncertain_whatever_its_p_fake():
    config = ScanConfig(threshold=0.5)
    faces = [_face(k, 0.95) for k in (0, 4)]
    row = verdict_row("clip.mp4", faces, config, model="m", n_frames=9, started_s=0.0)
    assert (row.label, row.notes, row.frames_with_faces, row.frames_sampled) == (
        "UNCERTAIN",
        LITTLE_FACE_EVIDENCE,
        2,
        9,
    )
    assert row.p_fake == pytest.approx(0.95)  # the score stays; the label says it rests on too little
    image = verdict_row("photo.jpg", faces[:1], config, model="m", n_frames=1, started_s=0.0, still_image=True)
    assert (image.label, image.notes) == ("FAKE", "")


def test_quality_outside_the_validated_range_is_noted():
    config = ScanConfig(threshold=0.5)
    inside = verdict_row("a.mp4", [_face(k) for k in range(4)], config, model="m", n_frames=4, started_s=0.0,
                         validated_range=RANGE)  # fmt: skip
    assert (inside.notes, inside.quality_outside, inside.quality_face_px) == ("", "", 200.0)
    dark = FaceQuality(face_px=50.0, brightness=10.0, noise_sigma=0.4, sharpness=50.0, blockiness=1.1)
    faces = [_face(k, quality=dark) for k in range(4)]
    row = verdict_row("b.mp4", faces, config, model="m", n_frames=4, started_s=0.0, validated_range=RANGE)
    assert row.notes == OUTSIDE_VALIDATED_RANGE and row.quality_outside == "face_px;brightness"
    assert row.label == "REAL"  # a caveat, not a verdict
    unknown = verdict_row("b.mp4", faces, config, model="m", n_frames=4, started_s=0.0)  # a model with no range
    assert unknown.notes == "" and unknown.quality_brightness == 10.0
    face_row = FaceRow.from_face("b.mp4", faces[0])
    assert (face_row.face_px, face_row.brightness, face_row.blockiness) == (50.0, 10.0, 1.1)
