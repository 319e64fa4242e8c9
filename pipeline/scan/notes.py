"""Notes: the caveats a clip's verdict carries, as codes written into the row at scan time.

A row's ``notes`` column holds the codes of :data:`NOTES`, ``;``-separated, in that order. Each
code has one text (what it means) and one action (what the user should do), the same on every
surface (CSV and JSON Lines carry the code; the HTML report and the web page show the text).

The rule of ``little_face_evidence`` is stated once here (:func:`little_face_evidence`): a clip's
verdict rests on too little when fewer than :data:`MIN_EVIDENCE_FACES` faces were scored, or when
its main person (the one seen in the most sampled frames) was seen in under
:data:`MIN_EVIDENCE_FRAME_SHARE` of the sampled frames. Such a verdict is labelled ``UNCERTAIN``
whatever its ``p_fake``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

MIN_EVIDENCE_FACES = 3
MIN_EVIDENCE_FRAME_SHARE = 1 / 3

LITTLE_FACE_EVIDENCE = "little_face_evidence"
# The rule in the words of a ``label_rule`` column, appended to every rule a scan states.
EVIDENCE_RULE_TEXT = (
    f"a clip on little face evidence (under {MIN_EVIDENCE_FACES} faces, or the main person in under a third "
    "of the sampled frames) is UNCERTAIN"
)
OUTSIDE_VALIDATED_RANGE = "outside_validated_range"


@dataclasses.dataclass(frozen=True)
class Note:
    """One caveat: its ``code`` (the row's vocabulary), what it ``means`` and what the user should ``do``."""

    code: str
    means: str
    do: str
    makes_uncertain: bool = False


NOTES: dict[str, Note] = {
    note.code: note
    for note in (
        Note(
            LITTLE_FACE_EVIDENCE,
            f"the verdict rests on few faces: under {MIN_EVIDENCE_FACES} faces scored, or the main person seen in "
            f"under a third of the sampled frames (a face hidden by a caption, turned away, or too small)",
            "look at the clip; rescan with a higher --fps to sample more frames",
            makes_uncertain=True,
        ),
        Note(
            OUTSIDE_VALIDATED_RANGE,
            "the faces' picture quality (size, brightness, noise, sharpness or compression) is outside the range "
            "the model was validated on, so its score is less reliable",
            "treat the score with caution; the model card states the validated range",
        ),
    )
}


def little_face_evidence(frames_sampled: int, frames_per_person: Iterable[int], n_faces: int) -> bool:
    """Whether a clip's verdict rests on too little (the module's rule). ``frames_sampled``: frames
    looked at; ``frames_per_person``: sampled frames in which each person was seen; ``n_faces``:
    faces scored. False when nothing was sampled (there is no verdict to qualify)."""
    if frames_sampled <= 0:
        return False
    main = max(frames_per_person, default=0)
    return n_faces < MIN_EVIDENCE_FACES or main < MIN_EVIDENCE_FRAME_SHARE * frames_sampled


def join_notes(codes: Iterable[str]) -> str:
    """The ``notes`` column: the codes in :data:`NOTES` order, ``;``-separated, each once. Raises
    ``ValueError`` for an unknown code."""
    given = set(codes)
    unknown = given - set(NOTES)
    if unknown:
        raise ValueError(f"unknown note codes {sorted(unknown)}; known: {list(NOTES)}")
    return ";".join(code for code in NOTES if code in given)


def split_notes(text: str) -> list[str]:
    """The codes of a ``notes`` column (empty for ``""``)."""
    return [code for code in (part.strip() for part in (text or "").split(";")) if code]
