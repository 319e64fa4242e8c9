"""Stand-ins for the web tests that need no model: a scorer's name and spec, scored faces and
rows built by hand (our own logic is tested on them; the real scanner's results in test_web.py)."""

from __future__ import annotations

import dataclasses
import json

import numpy as np

from pipeline.models.weights import KNOWN_WEIGHTS, REPO_WEIGHTS_DIR, WeightsSpec
from pipeline.scan.aggregate import verdict_track
from pipeline.scan.analyze import ScanConfig, ScoredFace, VideoResult, track_summaries
from pipeline.scan.records import VideoRow, label_for

CROP_PX = 256


def spec_named(name: str) -> WeightsSpec:
    """A weights spec as the app knows it: a MesoNet file by its spec name, or the sidecar of
    one of the project's files in ``weights/`` (read as :func:`spec_for_weights` reads it)."""
    known = next((s for s in KNOWN_WEIGHTS.values() if s.name == name), None)
    if known is not None:
        return known
    fields = json.loads((REPO_WEIGHTS_DIR / f"{name}.h5.json").read_text())
    return WeightsSpec(**{k: v for k, v in fields.items() if k in WeightsSpec.__dataclass_fields__})


@dataclasses.dataclass
class FakeScorer:
    """What build_result reads of a scorer: its name and weights spec."""

    name: str = "meso4_mix_v2"
    spec: WeightsSpec = dataclasses.field(default_factory=lambda: spec_named("meso4_mix_v2"))


def face(
    sample: int, track: int, p_fake: float, *, size_px: float = 200.0, crop: bool = True, static: bool = False
) -> ScoredFace:
    """A scored face at ``sample`` seconds (1 fps), ``size_px`` square, at the frame's top left
    plus 300 px per track; its crop a flat grey when ``crop``; ``static``: its track is a still
    picture."""
    x = 10.0 + 300.0 * track
    return ScoredFace(
        sample_index=sample,
        frame_index=25 * sample,
        timestamp_s=float(sample),
        track_id=track,
        box_xyxy=(x, 10.0, x + size_px, 10.0 + size_px),
        det_confidence=0.99,
        p_fake=p_fake,
        crop_rgb=np.full((CROP_PX, CROP_PX, 3), 128, np.uint8) if crop else None,
        track_static=static,
    )


def ok_result(
    faces: list[ScoredFace],
    p_fake: float,
    threshold: float = 0.5,
    aggregation: str = "track_max",
    uncertain_below: float | None = None,
    **row_fields,
) -> VideoResult:
    """An ok clip whose verdict is ``p_fake`` (as the aggregation gave it) and whose sampling
    reached its end, unless ``row_fields`` say otherwise, labelled at ``threshold`` (with
    ``uncertain_below``, UNCERTAIN between, and the row records the band and its rule); its people
    (``tracks``, and the row's ``verdict_track_id`` and ``n_tracks_counted``) as the scanner
    summarizes them (:func:`pipeline.scan.analyze.track_summaries`)."""
    tracks = track_summaries(faces, ScanConfig(threshold=threshold, aggregation=aggregation))
    fields = {
        "n_frames": 10,
        "n_faces": len(faces),
        "n_tracks": len(tracks),
        "n_tracks_counted": sum(t.counted for t in tracks),
        "verdict_track_id": verdict_track(tracks).track_id if aggregation == "track_max" and tracks else None,
        "duration_s": 10.0,
        "covered_s": 10.0,
        "reached_end": True,
    }
    if uncertain_below is not None:
        config = ScanConfig(threshold=threshold, aggregation=aggregation, uncertain_below=uncertain_below)
        fields.update(threshold=threshold, uncertain_below=uncertain_below, label_rule=config.label_rule)
    fields.update(row_fields)
    fields.setdefault("frames_sampled", fields["n_frames"])  # the same, as the scanner writes them
    label = label_for(p_fake, threshold, uncertain_below)
    return VideoResult(VideoRow("clip.mp4", "ok", p_fake=p_fake, label=label, **fields), tuple(faces), tuple(tracks))


def result_task(
    faces: list[ScoredFace], p_fake: float, *, threshold: float = 0.5, uncertain_below: float | None = None
):
    """A job task (:meth:`pipeline.web.jobs.JobQueue.submit`) returning what the worker would
    for a clip of ``faces`` scored ``p_fake`` (:func:`ok_result`; with ``uncertain_below``, an
    UNCERTAIN band), with no evidence."""
    from pipeline.web.jobs import JobOutcome
    from pipeline.web.scoring import build_result

    def task(progress) -> JobOutcome:
        payload, images = build_result(
            ok_result(faces, p_fake, threshold=threshold, uncertain_below=uncertain_below),
            kind="video",
            config=ScanConfig(threshold=threshold, uncertain_below=uncertain_below),
            scorer=FakeScorer(),
            job_id=progress.job_id,
            max_thumbnails=48,
        )
        return JobOutcome(payload, images.faces_jpeg, images.saliency_jpeg, images.frame_jpeg)

    return task


def four_people() -> list[ScoredFace]:
    """Person 0 real throughout, person 1 small and fake (counted, weighed down: they set a
    verdict of about 0.75), person 2 a poster and person 3 a passer-by in one frame (both left
    out), eight samples."""
    return (
        [face(i, 0, 0.1) for i in range(8)]
        + [face(i, 1, 0.9, size_px=64) for i in range(8)]
        + [face(i, 2, 0.8, static=True) for i in range(8)]
        + [face(5, 3, 0.95)]
    )


def one_person(p_fake: float, n: int = 6, size_px: float = 200.0) -> list[ScoredFace]:
    """``n`` faces of person 0 scoring ``p_fake``, one per sampled second."""
    return [face(i, 0, p_fake, size_px=size_px) for i in range(n)]
