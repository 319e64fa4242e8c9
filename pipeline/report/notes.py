"""What each note code of a row means and what the user should do, said once.

The codes and the rules that write them are the scan's (:mod:`pipeline.scan.notes`); the words
are here, for JSON Lines, the HTML report and the web page alike.
"""

from __future__ import annotations

import dataclasses

from pipeline.scan.notes import (
    LITTLE_FACE_EVIDENCE,
    MIN_EVIDENCE_FACES,
    OUTSIDE_VALIDATED_RANGE,
    split_notes,
)


@dataclasses.dataclass(frozen=True)
class Note:
    """One caveat: its ``code`` (the row's vocabulary), what it ``means`` and what the user should ``do``."""

    code: str
    means: str
    do: str

    def sentence(self, detail: str = "") -> str:
        """The note as one sentence: "The verdict rests on few faces ... (detail): look at the clip ..."."""
        means = f"{self.means} ({detail})" if detail else self.means
        return f"{means[0].upper()}{means[1:]}: {self.do}."


NOTES: dict[str, Note] = {
    note.code: note
    for note in (
        Note(
            LITTLE_FACE_EVIDENCE,
            f"the verdict rests on few faces: under {MIN_EVIDENCE_FACES} faces scored, or the main person seen in "
            f"under a third of the sampled frames (a face hidden by a caption, turned away, or too small)",
            "look at the clip; rescan with a higher --fps to sample more frames",
        ),
        Note(
            OUTSIDE_VALIDATED_RANGE,
            "the faces' picture quality (size, brightness, noise, sharpness or compression) is outside the range "
            "the model was validated on, so its score is less reliable",
            "treat the score with caution; the model card states the validated range",
        ),
    )
}


def row_note_sentences(notes: str, quality_outside: str = "") -> list[tuple[str, str]]:
    """``(code, sentence)`` of each note of a row's ``notes`` column, in the row's order; the
    validated-range note names the measures of ``quality_outside`` ("here: noise_sigma, sharpness")."""
    outside = split_notes(quality_outside)
    detail = {OUTSIDE_VALIDATED_RANGE: f"here: {', '.join(outside)}"} if outside else {}
    return [(code, NOTES[code].sentence(detail.get(code, ""))) for code in split_notes(notes)]
