"""What every engine is and shares: the :class:`Engine` interface, one clip scored for a batch
(:func:`score_for_batch`), the row of a clip an engine lost (:func:`lost_clip_result`) and the
stand-in scorer of clips that failed to open before any model was loaded (:class:`UnloadedScorer`).

Imports point one way: :mod:`pipeline.scan.batch` -> the engines (:mod:`~pipeline.scan.engines.local`,
:mod:`~pipeline.scan.engines.pool`, :mod:`~pipeline.scan.engines.dask`) -> this module ->
:mod:`pipeline.scan.analyze`; nothing here imports an engine or the batch.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator
from typing import Protocol, cast

from pipeline.faces.detector import Detector
from pipeline.models.factory import LoadedModels, ModelSpec
from pipeline.models.scorer import Scorer
from pipeline.scan.analyze import ScanConfig, VideoResult, error_row, score_video_safe
from pipeline.scan.records import display_path


class Engine(Protocol):
    """Scores a batch's clips: one :class:`~pipeline.scan.analyze.VideoResult` per clip, yielded as
    each finishes (completion order), the clips pulled lazily as they are submitted.

    ``models``: a :class:`LoadedModels` or a :class:`ModelSpec`; each engine loads what it needs
    through :func:`pipeline.models.factory.load_models` only. ``keep_crops``: results carry the
    crops evidence needs (:func:`score_for_batch`). A clip that fails, or that a worker loses,
    ends as its own error row; errors of the models themselves (``FileNotFoundError``,
    ``WeightsError``) are raised. ``scores_here``: whether the clips are scored in this process
    (the batch's evidence then uses the scorer loaded here, not one of its own)."""

    scores_here: bool

    def results(
        self,
        clips: Iterable[str],
        models: ModelSpec | LoadedModels,
        config: ScanConfig,
        *,
        keep_crops: bool = False,
    ) -> Iterator[VideoResult]: ...


def score_for_batch(
    path: str,
    detector: Detector | None,
    scorer: Scorer | UnloadedScorer,
    config: ScanConfig,
    *,
    keep_crops: bool = False,
    **kwargs,
) -> VideoResult:
    """:func:`score_video_safe`; with ``keep_crops``, the crops of only the few faces evidence
    shows are kept (:func:`pipeline.scan.evidence.prune_crops`), dropped from the rest where the
    clip was scored, before the result crosses a process boundary (a face's crop is 196 KB).

    ``detector`` is ``None`` and ``scorer`` an :class:`UnloadedScorer` only for a clip that failed to open
    before any model was loaded: :func:`score_video_safe` opens the clip before it uses either, so such a
    clip ends as its error row, which reads the scorer's ``name`` alone."""
    detector, scorer = cast(Detector, detector), cast(Scorer, scorer)
    if not keep_crops:
        return score_video_safe(path, detector, scorer, config, **kwargs)
    from pipeline.scan.evidence import prune_crops

    return prune_crops(score_video_safe(path, detector, scorer, config, keep_crops=True, **kwargs))


def failure_text(exc: BaseException) -> str:
    """How an error row names an exception an engine caught: ``"KilledWorker: ..."``."""
    return f"{type(exc).__name__}: {exc}"


def lost_clip_result(path: str, message: str, config: ScanConfig) -> VideoResult:
    """The ``error`` row of a clip whose scoring failed outside :func:`score_video_safe` (a worker
    that raised, died or was killed): no time, no model named."""
    return VideoResult(error_row(display_path(path), "error", message, 0.0, config, ""))


@dataclasses.dataclass(frozen=True)
class UnloadedScorer:
    """Stands in for the scorer where a clip failed to open before any model was loaded: the
    error row of such a clip needs only the model's name (:func:`score_video_safe` opens the
    clip before it uses a detector or a scorer)."""

    name: str


def unloaded_scorer(models: ModelSpec | LoadedModels) -> UnloadedScorer:
    """The :class:`UnloadedScorer` of ``models`` (its weights' spec name, read without TensorFlow)."""
    from pipeline.models.factory import resolve_model

    if isinstance(models, LoadedModels):
        return UnloadedScorer(models.scorer.name)
    return UnloadedScorer(resolve_model(models)[1].name)


def raising(exc: BaseException):
    """An ``opened`` for :func:`pipeline.scan.analyze.score_video` that raises ``exc``: what opening
    the clip raised."""

    def opened():
        raise exc

    return opened
