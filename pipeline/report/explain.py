"""A verdict in plain words, said once for every surface: why the label is what it is
(:func:`verdict_text`), the reasons to trust it less (:func:`uncertainty_notes`: the row's note
codes in their words, then what the people and the clip's facts say), each person's part in it
(:func:`reason_text`) and the model in one line (:func:`model_summary`).

The web page shows all of it; JSON Lines carries ``verdict_text`` and ``caveats`` per clip
(:func:`row_explanation`); the HTML report shows the caveats a row alone supports.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Sequence
from typing import Protocol

from pipeline.report.notes import row_note_sentences
from pipeline.scan.aggregate import (
    COUNTED,
    COUNTED_SMALL,
    COUNTED_STATIC_ONLY,
    LEFT_OUT_FEW_FACES,
    LEFT_OUT_STATIC,
    TrackSummary,
)
from pipeline.scan.notes import LITTLE_FACE_EVIDENCE, split_notes
from pipeline.scan.records import VideoRow, label_for

# Faces below this size (longer box side, source pixels) are enlarged to the model's crop (256 px for
# Meso-4, 224 px for EfficientNet-Lite0) and lose the texture it reads (README, measured with Meso-4: a
# real face at 60 px scored 0.4-0.7, at 120 px
# 0.01-0.13): 100 px sits between the two, on the careful side. The note looks at the median
# face of the largest person: when even theirs is small, every score in the clip is of small
# faces (each person's weight, pipeline.scan.aggregate.size_reliability, is in the people table).
SMALL_FACE_PX = 100
# Fewer faces than this and one odd frame decides the verdict: it is the number of faces a
# person needs before track_max lets them decide a clip on their own
# (pipeline.scan.aggregate.MIN_TRACK_FACES).
FEW_FACES = 3
# A p_fake this close to the threshold is a coin toss: the verdict rests on the score's second
# digit (README: the portrait sample scores 0.481 against the threshold 0.477). 0.05, a
# twentieth of the scale, is a judgement, not a measurement. With an UNCERTAIN band, a FAKE this
# close above the upper threshold, or a REAL this close under the lower one, was nearly UNCERTAIN;
# an UNCERTAIN verdict says it cannot tell already and gets no such note.
NEAR_THRESHOLD = 0.05
# People "disagree" when one is at or above the threshold and another at least this far below
# it: well outside the near-threshold band, so the second person reads clearly real.
TRACKS_DISAGREE_MARGIN = 0.2

P_FAKE_MEANING = "probability that the face is manipulated, from 0 = real to 1 = fake"
AGGREGATION_MEANINGS = {
    "mean": "mean over all faces",
    "median": "median over all faces",
    "track_max": "mean per person (face track), small faces weighed down, then the most suspicious person counted",
    "learned": "a score per person (face track) from how their faces scored over the clip (level, spread, "
    "steadiness, how long they are seen), calibrated on labelled clips, then the most suspicious person counted",
}
# Why a person (track) does or does not take part in the verdict, in words
# (pipeline.scan.aggregate.REASONS); "{weight}": the size weight, e.g. 0.70; "{mean}", "{score}":
# the person's mean p_fake and the score it counts as in the verdict.
REASON_TEXTS = {
    COUNTED: "counted",
    COUNTED_SMALL: "counted, small faces weighed down (×{weight:.2f}: {mean:.2f} counts as {score:.2f})",
    COUNTED_STATIC_ONLY: "counted: only still pictures in this clip",
    LEFT_OUT_FEW_FACES: "left out: seen in too few frames",
    LEFT_OUT_STATIC: "left out: a still picture (photo, poster, screen)",
}
# The same reasons inside a sentence about a person left out (the person_left_out note).
LEFT_OUT_BECAUSE = {
    LEFT_OUT_FEW_FACES: "they were seen in too few frames to decide the clip on their own",
    LEFT_OUT_STATIC: "they never moved nor changed (a still picture: a photo, a poster, a screen) "
    "while someone else in the clip did",
}


SOURCE_NAMES = {"dfdc": "DFDC", "ffpp": "FaceForensics++", "mesonet": "MesoNet faces"}
# The saliency methods (pipeline.models.saliency.SALIENCY_METHODS) as the page names them.
SALIENCY_NAMES = {"grad-cam": "Grad-CAM", "occlusion": "Occlusion"}
# What MesoNet's own files were trained on, as their provenance says it.
MESONET_SETS = {"Deepfake set": "MesoNet's Deepfake set", "Face2Face": "Face2Face"}
MIX_SOURCES_PATTERN = re.compile(r"\(([\w.-]+ \d+%(?:, [\w.-]+ \d+%)*)\)")
# A head's provenance (pipeline.training.train_head): "head fitted with pipeline/training/train_head.py on
# cached <backbone> features of the mix dfdc, ffpp, mesonet (<date>); backbone: ...".
HEAD_TRAINER = "train_head"
HEAD_MIX_PATTERN = re.compile(r"features of the mix ([\w.-]+(?:, [\w.-]+)*) \(")


class LabelCuts(Protocol):
    """What the explanations need of how a clip was labelled: a :class:`pipeline.scan.config.ScanConfig`,
    or a row's own (:class:`RowCuts`)."""

    @property
    def threshold(self) -> float: ...

    @property
    def uncertain_below(self) -> float | None: ...

    @property
    def aggregation(self) -> str: ...


def threshold_text(threshold: float) -> str:
    """The threshold with as many digits as it has, at least two: 0.50, 0.477."""
    return f"{threshold:.2f}" if round(threshold, 2) == threshold else f"{threshold:.3f}"


def and_list(items: Sequence[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def model_summary(spec, name: str, threshold: float, uncertain_below: float | None = None) -> str:
    """One line about the model for people, from its weights spec
    (:class:`pipeline.models.weights.WeightsSpec`: architecture, provenance, license): what it
    is (the architecture's display name in :mod:`pipeline.models.registry`), who trained it on what, its
    name, and where it says FAKE. E.g. "Meso-4 trained by this project on DFDC, FaceForensics++ and MesoNet
    faces (meso4_mix_v2); says FAKE at p_fake ≥ 0.477"; with an UNCERTAIN band (``uncertain_below``), "...;
    says FAKE at p_fake ≥ 0.712, REAL under 0.301, UNCERTAIN between". The provenance's developer text
    (commands, paths, dates) is never copied; no backticks."""
    from pipeline.models.registry import display_name
    from pipeline.models.weights import MESONET_LICENSE

    provenance = spec.provenance or ""
    what = display_name(spec.architecture)
    if spec.license == MESONET_LICENSE:
        sets = [shown for key, shown in MESONET_SETS.items() if key in provenance]
        origin = "published with MesoNet (Afchar et al. 2018)" + (f", trained on {and_list(sets)}" if sets else "")
    elif "pipeline train" in provenance:
        mix = MIX_SOURCES_PATTERN.search(provenance)
        names = [part.rsplit(" ", 1)[0] for part in mix.group(1).split(", ")] if mix else []
        sets = [SOURCE_NAMES.get(n, n) for n in names]
        origin = "trained by this project" + (f" on {and_list(sets)}" if sets else "")
    elif HEAD_TRAINER in provenance:
        mix = HEAD_MIX_PATTERN.search(provenance)
        sets = [SOURCE_NAMES.get(n, n) for n in mix.group(1).split(", ")] if mix else []
        origin = "trained by this project" + (f" on {and_list(sets)}" if sets else "")
    else:
        origin = ""
    line = f"{what} {origin}".strip() + f" ({name}); says FAKE at p_fake ≥ {threshold_text(threshold)}"
    if uncertain_below is not None:
        line += f", REAL under {threshold_text(uncertain_below)}, UNCERTAIN between"
    return line.replace("`", "")


def uncertain_below_of(row: VideoRow, config: LabelCuts) -> float | None:
    """The lower threshold of the UNCERTAIN band (``None``: one cut): the app's, else the row's."""
    return config.uncertain_below if config.uncertain_below is not None else row.uncertain_below


def band_text(threshold: float, uncertain_below: float) -> str:
    """The two thresholds in words: "REAL under 0.30, FAKE at 0.70 and above"."""
    return f"REAL under {threshold_text(uncertain_below)}, FAKE at {threshold_text(threshold)} and above"


def verdict_text(row: VideoRow, config: LabelCuts) -> str | None:
    """Why the label is what it is, one plain sentence (``None`` without a label). With an
    UNCERTAIN band: FAKE "at or above the FAKE threshold", REAL "under the REAL threshold", and
    UNCERTAIN "The model cannot tell with the confidence it was validated for: p_fake 0.550 is between
    the two thresholds (REAL under 0.30, FAKE at 0.70 and above), so the verdict is UNCERTAIN."."""
    if row.p_fake is None or not row.label:
        return None
    p, hi, lo = f"p_fake {row.p_fake:.3f}", threshold_text(config.threshold), uncertain_below_of(row, config)
    if LITTLE_FACE_EVIDENCE in split_notes(row.notes):
        alone = label_for(row.p_fake, config.threshold, lo)
        return (
            f"Faces were found in only {row.frames_with_faces} of the {row.frames_sampled} sampled frames: too little "
            f"to decide on ({p} alone would say {alone}), so the verdict is UNCERTAIN."
        )
    if lo is None and row.label == "UNCERTAIN":  # a band no one recorded: say what the label means
        return f"The model cannot tell with the confidence it was validated for: {p} is between its two thresholds."
    if lo is None:
        side = "at or above" if row.label == "FAKE" else "below"
        return f"{p} is {side} the threshold {hi}, so the verdict is {row.label}."
    if row.label == "FAKE":
        return f"{p} is at or above the FAKE threshold {hi}, so the verdict is FAKE."
    if row.label == "REAL":
        return f"{p} is under the REAL threshold {threshold_text(lo)}, so the verdict is REAL."
    return (
        f"The model cannot tell with the confidence it was validated for: {p} is between the two thresholds "
        f"({band_text(config.threshold, lo)}), so the verdict is UNCERTAIN."
    )


def _num(value: float | None, digits: int) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return round(float(value), digits)


def _partial_coverage_note(row: VideoRow) -> str:
    """Why only part of a clip was looked at: a ``partial`` clip (its frames stopped short: the row's
    ``error`` says how much was decoded and why), or one whose duration is unknown that hit the frame
    cap (:func:`pipeline.video.completeness.check_coverage`)."""
    if row.status == "partial":
        return f"Only part of this clip could be decoded ({row.error}): the verdict is about that part alone."
    return (
        f"Only the first {row.covered_s:.0f} s of this clip were looked at: the file states no length "
        f"and it could not be measured, so sampling stopped at the cap of {row.n_frames} frames."
    )


def reason_text(track: TrackSummary) -> str:
    """Whether ``track`` counts toward the verdict and why, in words (:data:`REASON_TEXTS`),
    e.g. "counted, small faces weighed down (×0.70: 0.63 counts as 0.59)" or "left out: seen in
    too few frames"."""
    return REASON_TEXTS.get(track.reason, track.reason).format(
        weight=track.size_weight, mean=track.mean_p_fake, score=track.verdict_score
    )


def uncertainty_notes(row: VideoRow, faces, tracks: list[TrackSummary], *, kind: str, config: LabelCuts) -> list[dict]:
    """The reasons to trust this verdict less, each ``{"kind": ..., "text": a plain sentence}``,
    the most direct first.

    - ``near_threshold``: ``p_fake`` within :data:`NEAR_THRESHOLD` of the threshold; with an
      UNCERTAIN band (``config.uncertain_below``), a FAKE that close above the upper threshold or a
      REAL that close under the lower one (it was nearly UNCERTAIN); never for an UNCERTAIN verdict,
      which says it cannot tell already (:func:`verdict_text`);
    - ``tracks_disagree``: among the people the aggregation counts (``counted`` of ``tracks``),
      one at or above the threshold and another at least :data:`TRACKS_DISAGREE_MARGIN` below it
      (by their mean ``p_fake``; with a band, also under its lower threshold);
    - ``person_left_out``: a person the aggregation does not count (seen in too few frames, or a
      still picture beside moving people: their ``reason``) whose mean ``p_fake`` alone would have
      labelled the clip higher than its verdict: at or above the threshold under a REAL verdict, and
      with a band also in it under a REAL one, or at or above the upper threshold under an
      UNCERTAIN one (clips only);
    - ``few_faces``: fewer than :data:`FEW_FACES` faces scored;
    - ``small_faces``: the largest person's median face under :data:`SMALL_FACE_PX`, or (clips)
      the person who sets the verdict has faces that small;
    - ``hdr_not_tone_mapped``: an HDR clip whose frames could not be turned into SDR;
    - ``rotation_guessed``: faces found only with the frames turned (``rotation_guess_deg``);
    - ``partial_coverage``: sampling stopped before the clip's end (``reached_end`` False).

    ``tracks``: the clip's people (:class:`pipeline.scan.aggregate.TrackSummary`, as
    :func:`pipeline.scan.analyze.track_summaries` gives them), the same the payload lists. The
    first four need an ok row.
    """
    notes: list[dict] = []
    threshold = config.threshold
    low_cut = uncertain_below_of(row, config)

    def note(kind_: str, text: str) -> None:
        notes.append({"kind": kind_, "text": text})

    codes = split_notes(row.notes)
    for code, sentence in row_note_sentences(row.notes, row.quality_outside):  # written at scan time, one wording
        note(code, sentence)
    if row.p_fake is not None and faces and tracks:  # ok, or partial with faces
        if low_cut is None and abs(row.p_fake - threshold) < NEAR_THRESHOLD:
            note(
                "near_threshold",
                f"p_fake {row.p_fake:.3f} is within {NEAR_THRESHOLD:.2f} of the threshold {threshold_text(threshold)}: "
                "this verdict could go either way.",
            )
        elif low_cut is not None and row.label == "FAKE" and row.p_fake - threshold < NEAR_THRESHOLD:
            note(
                "near_threshold",
                f"p_fake {row.p_fake:.3f} is within {NEAR_THRESHOLD:.2f} above the FAKE threshold "
                f"{threshold_text(threshold)}: a little lower and the verdict would be UNCERTAIN.",
            )
        elif low_cut is not None and row.label == "REAL" and low_cut - row.p_fake < NEAR_THRESHOLD:
            note(
                "near_threshold",
                f"p_fake {row.p_fake:.3f} is within {NEAR_THRESHOLD:.2f} under the REAL threshold "
                f"{threshold_text(low_cut)}: a little higher and the verdict would be UNCERTAIN.",
            )
        means = {t.track_id: t.mean_p_fake for t in tracks if t.counted}
        if means:
            high = max(means, key=means.__getitem__)
            low = min(means, key=means.__getitem__)
            clearly_real = means[low] <= threshold - TRACKS_DISAGREE_MARGIN and (
                low_cut is None or means[low] < low_cut
            )
            if means[high] >= threshold and clearly_real:
                if kind == "image":
                    text = f"The faces disagree: one scores {means[high]:.2f}, another {means[low]:.2f}."
                else:
                    where = "well below the threshold" if low_cut is None else "under the REAL threshold"
                    text = (
                        f"The people disagree: person {high} scores {means[high]:.2f} and person {low} "
                        f"{means[low]:.2f}, {where}."
                    )
                rule = (
                    "the most suspicious one"
                    if config.aggregation in ("track_max", "learned")
                    else "all of them together"
                )
                note("tracks_disagree", f"{text} The verdict follows {rule}; look at each face below.")
        rank = {"REAL": 0, "UNCERTAIN": 1, "FAKE": 2}
        verdict_rank = rank.get(row.label, 2)
        left_out = [
            t for t in tracks if not t.counted and rank[label_for(t.mean_p_fake, threshold, low_cut)] > verdict_rank
        ]
        if left_out and kind != "image":  # alone, they would have labelled the clip higher
            worst = max(left_out, key=lambda t: t.mean_p_fake)
            because = LEFT_OUT_BECAUSE.get(worst.reason, reason_text(worst))
            seen = f"{worst.n_faces} face" if worst.n_faces == 1 else f"{worst.n_faces} faces"
            if low_cut is None:
                level = "at or above the threshold"
            elif worst.mean_p_fake >= threshold:
                level = f"at or above the FAKE threshold {threshold_text(threshold)}"
            else:
                level = f"between the two thresholds ({band_text(threshold, low_cut)})"
            note(
                "person_left_out",
                f"Person {worst.track_id} scores {worst.mean_p_fake:.2f}, {level}, but is not "
                f"counted in the verdict: {because} ({seen}). Look at their faces below.",
            )
        if len(faces) < FEW_FACES and LITTLE_FACE_EVIDENCE not in codes:
            scored = f"{len(faces)} face was" if len(faces) == 1 else f"{len(faces)} faces were"
            where = "in this image" if kind == "image" else "in the whole clip"
            note(
                "few_faces",
                f"Only {scored} scored {where}: one unusual face can decide the verdict either way.",
            )
        largest_px = max(t.median_face_px for t in tracks)
        verdict = next((t for t in tracks if t.track_id == row.verdict_track_id), None)
        if largest_px < SMALL_FACE_PX:
            note(
                "small_faces",
                f"The faces are small (about {largest_px:.0f} px, under {SMALL_FACE_PX} px): the model sees little "
                "texture in them and its scores drift towards the middle. Trust this verdict less.",
            )
        elif verdict is not None and verdict.median_face_px < SMALL_FACE_PX and kind != "image":
            note(
                "small_faces",
                f"The verdict rests on person {verdict.track_id}, whose faces are small (about "
                f"{verdict.median_face_px:.0f} px, under {SMALL_FACE_PX} px): the model reads them less reliably, so "
                f"their score was weighed down (×{verdict.size_weight:.2f}) toward undecided. "
                "Look at their faces below.",
            )
    if row.tone_mapped is False:
        note(
            "hdr_not_tone_mapped",
            f"This clip is HDR ({row.color_transfer or 'unknown transfer'}) and could not be converted to "
            "ordinary colours, so the faces were scored in washed-out colours the model was not trained on.",
        )
    if row.rotation_guess_deg:
        note(
            "rotation_guessed",
            f"The faces were found only with the frames turned {row.rotation_guess_deg}°: the file seems to lie "
            "on its side with no rotation tag (or a wrong one). If that turn is wrong, so is this verdict.",
        )
    if row.reached_end is False and row.covered_s is not None:
        note("partial_coverage", _partial_coverage_note(row))
    return notes


@dataclasses.dataclass(frozen=True)
class RowCuts:
    """How a row says it was labelled (its ``threshold``, ``uncertain_below`` and ``aggregation``):
    what :func:`verdict_text` and :func:`uncertainty_notes` need of a scan's config, read back from
    the row itself where no config is at hand (JSON Lines, the HTML report)."""

    threshold: float
    uncertain_below: float | None
    aggregation: str

    @classmethod
    def of(cls, row: VideoRow) -> RowCuts:
        return cls(row.threshold if row.threshold is not None else 0.5, row.uncertain_below, row.aggregation)


def row_explanation(row: VideoRow, faces=(), tracks=(), *, kind: str = "video") -> dict:
    """The verdict of one row in words, as JSON Lines carries it: ``verdict_text``
    (:func:`verdict_text`, ``None`` without a label) and ``caveats`` (:func:`uncertainty_notes`,
    each ``{"kind", "text"}``), from the row's own cuts (:class:`RowCuts`), its faces and its people."""
    cuts = RowCuts.of(row)
    return {
        "verdict_text": verdict_text(row, cuts),
        "caveats": uncertainty_notes(row, list(faces), list(tracks), kind=kind, config=cuts),
    }


def result_explanation(row: VideoRow, result) -> dict:
    """:func:`row_explanation` of a batch's clip: ``row`` as written (stamped with the run's
    settings), ``result`` its :class:`pipeline.scan.analyze.VideoResult` (faces and people)."""
    return row_explanation(row, result.faces, result.tracks)
