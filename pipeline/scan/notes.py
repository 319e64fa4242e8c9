"""Notes: the caveats a clip's verdict carries, as codes written into the row at scan time.

A row's ``notes`` column holds the codes of :data:`NOTE_CODES`, ``;``-separated, in that order.
What each code means and what the user should do is said once, by :mod:`pipeline.report.notes`,
the same on every surface (CSV carries the code; JSON Lines, the HTML report and the web page
the text too).

The rule of ``little_face_evidence`` is stated once here (:func:`little_face_evidence`): a clip's
verdict rests on too little when fewer than :data:`MIN_EVIDENCE_FACES` faces were scored, or when
its main person (the one seen in the most sampled frames) was seen in under
:data:`MIN_EVIDENCE_FRAME_SHARE` of the sampled frames. Such a verdict is labelled ``UNCERTAIN``
whatever its ``p_fake``.
"""

from __future__ import annotations

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


# The codes in the order a row lists them; what each means and what to do: pipeline.report.notes.
NOTE_CODES: tuple[str, ...] = (LITTLE_FACE_EVIDENCE, OUTSIDE_VALIDATED_RANGE)


def little_face_evidence(frames_sampled: int, frames_per_person: Iterable[int], n_faces: int) -> bool:
    """Whether a clip's verdict rests on too little (the module's rule). ``frames_sampled``: frames
    looked at; ``frames_per_person``: sampled frames in which each person was seen; ``n_faces``:
    faces scored. False when nothing was sampled (there is no verdict to qualify)."""
    if frames_sampled <= 0:
        return False
    main = max(frames_per_person, default=0)
    return n_faces < MIN_EVIDENCE_FACES or main < MIN_EVIDENCE_FRAME_SHARE * frames_sampled


def join_notes(codes: Iterable[str]) -> str:
    """The ``notes`` column: the codes in :data:`NOTE_CODES` order, ``;``-separated, each once. Raises
    ``ValueError`` for an unknown code."""
    given = set(codes)
    unknown = given - set(NOTE_CODES)
    if unknown:
        raise ValueError(f"unknown note codes {sorted(unknown)}; known: {list(NOTE_CODES)}")
    return ";".join(code for code in NOTE_CODES if code in given)


def split_notes(text: str) -> list[str]:
    """The codes of a ``notes`` column (empty for ``""``)."""
    return [code for code in (part.strip() for part in (text or "").split(";")) if code]
