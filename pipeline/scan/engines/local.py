"""The ``local`` engine with one worker: clips scored in this process, in input order, the next
clip decoding ahead while the current one is scored.

The models come from :func:`pipeline.models.factory.load_models` only, loaded (from a spec) once
the first clip that opens is due: the rows of clips that fail to open (``decode_error``) need no
model, so a batch of only unreadable files ends in about the time their probes take.
"""

from __future__ import annotations

import collections
import concurrent.futures as cf
import dataclasses
import logging
import os
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from pipeline.faces.detector import Detector
from pipeline.models.factory import LoadedModels, ModelSpec
from pipeline.models.scorer import Scorer
from pipeline.scan.analyze import ScanConfig, VideoResult
from pipeline.scan.engines.base import UnloadedScorer, score_for_batch, unloaded_scorer

# The batch's log lines keep the name they have always had, whichever engine scores.
log = logging.getLogger("pipeline.scan.batch")


@dataclasses.dataclass(frozen=True)
class LocalEngine:
    """:class:`pipeline.scan.engines.base.Engine` in this process; ``progress``: a bar over the
    frames of each long clip (:data:`FRAME_BAR_MIN_FRAMES`)."""

    progress: bool = False
    scores_here = True

    def results(
        self,
        clips: Iterable[str],
        models: ModelSpec | LoadedModels,
        config: ScanConfig,
        *,
        keep_crops: bool = False,
    ) -> Iterator[VideoResult]:
        return _results_here(clips, models, config, self.progress, keep_crops)


def _results_here(
    todo: Iterable[str], models: ModelSpec | LoadedModels, config: ScanConfig, progress: bool, keep_crops: bool
) -> Iterator[VideoResult]:
    """Clips scored in this process, the models loaded (from a spec) once the first clip that
    opens is due: a resume with nothing left to score never loads TensorFlow, and neither does
    a run whose clips all fail to open (their rows need no model: :class:`UnloadedScorer`).

    Decoding runs ahead (:class:`ClipPrefetcher`): the first :data:`START_UP_CLIPS_AHEAD` clips are
    probed and start decoding while TensorFlow loads (its import keeps one core busy for
    seconds), and from then on each next clip as soon as the current one's frames have all been
    delivered, while its last frames are detected and scored and its row written. Until the
    models are loaded, the batch first waits (at most :data:`OPEN_WAIT_BEFORE_LOAD_S`) for the
    clip due to be opened: the models are loaded only once one opened, or is still opening."""
    from pipeline.models import factory  # looked up when called: one factory, patchable in tests

    loaded = models if isinstance(models, LoadedModels) else None
    unloaded: UnloadedScorer | None = None
    paths = iter(todo)
    upcoming: collections.deque[str] = collections.deque()

    def look_ahead(n: int) -> None:
        while len(upcoming) < n and (path := next(paths, None)) is not None:
            upcoming.append(path)

    with ClipPrefetcher(config) as prefetcher:
        look_ahead(1 if loaded is not None else START_UP_CLIPS_AHEAD)
        for path in upcoming:
            prefetcher.open(path)
        while upcoming:
            path = upcoming.popleft()
            no_model_needed = loaded is None and prefetcher.failed_to_open(path, OPEN_WAIT_BEFORE_LOAD_S)
            if loaded is None and not no_model_needed:
                loaded = _load_announced(factory, models)
            if no_model_needed and unloaded is None:
                unloaded = unloaded_scorer(models)
            look_ahead(1)
            following = upcoming[0] if upcoming else None

            def open_following(following=following) -> None:
                if following is not None:
                    prefetcher.open(following)

            opened = prefetcher.take(path)
            detector: Detector | None
            scorer: Scorer | UnloadedScorer
            if no_model_needed:
                assert unloaded is not None  # made above
                detector, scorer = None, unloaded
            else:
                assert loaded is not None  # loaded above
                detector, scorer = loaded.detector, loaded.scorer
            result = _score_here(
                path,
                detector,
                scorer,
                config,
                progress,
                keep_crops,
                opened=opened,
                on_decoded=open_following,
            )
            if following is not None and not prefetcher.has(following):  # the clip failed before its end
                open_following()
            yield result


def _load_announced(factory, models) -> LoadedModels:
    """:func:`pipeline.models.factory.load_models`, said before (it takes 5-15 s, the progress bar
    standing still meanwhile) and timed after."""
    started = time.perf_counter()
    weights = getattr(models, "weights", None)
    name = Path(str(weights)).name if weights else "the default model"
    log.info("loading the models (MTCNN and %s; 5-15 s on 2 cores) ...", name)
    loaded = factory.load_models(models)
    log.info("models loaded in %.1f s", time.perf_counter() - started)
    return loaded


# Seconds the batch waits, before its models are loaded, for the clip due to finish opening (its
# probe, its first frame): a clip that fails to open needs no model. The clip's clock has not
# started; one still opening after this is taken to open, and the models are loaded meanwhile.
OPEN_WAIT_BEFORE_LOAD_S = 2.0

# Clips opened (probed, decoding) while the models load: TensorFlow's import keeps one core busy
# for 3-6 s, and one clip's decoder stops once its read-ahead is full (about 1 s of work).
START_UP_CLIPS_AHEAD = 3


class ClipPrefetcher:
    """Opens clips (:func:`pipeline.scan.analyze.open_clip`, primed: probed and decoding) on one
    background thread, ahead of their turn. Each holds at most its decoder's read-ahead (about
    64 MB, :class:`pipeline.video.decode.iter_frames`): one clip beyond the one being scored,
    :data:`START_UP_CLIPS_AHEAD` while the models load. Leaving the ``with`` block stops a clip
    opened and never taken (its ffmpeg is killed and reaped)."""

    def __init__(self, config: ScanConfig):
        self._config = config
        self._pool = cf.ThreadPoolExecutor(max_workers=1, thread_name_prefix="clip-prefetch")
        self._pending: dict[str, tuple[cf.Future, threading.Event]] = {}

    def open(self, path: str) -> None:
        """Start opening ``path`` (once; nothing if it is already waiting). Its time budget
        (``--timeout``) starts counting when it is taken."""
        from pipeline.scan.analyze import open_clip

        if path not in self._pending:
            clock = threading.Event()
            future = self._pool.submit(open_clip, path, self._config, prime=True, clock_starts=clock)
            self._pending[path] = (future, clock)

    def has(self, path: str) -> bool:
        return path in self._pending

    def failed_to_open(self, path: str, wait_s: float) -> bool:
        """Whether opening ``path`` ahead raised (a probe that failed: its row needs no model),
        waiting up to ``wait_s`` seconds for the opening to end; ``False`` when it opened, is
        still opening, or was never opened ahead. Its clock does not start."""
        pending = self._pending.get(path)
        if pending is None:
            return False
        try:
            return pending[0].exception(timeout=wait_s) is not None
        except cf.TimeoutError:
            return False

    def take(self, path: str):
        """What :func:`pipeline.scan.analyze.score_video` takes as ``opened`` for ``path``: a
        callable that starts the clip's clock and returns the opened clip (raising what opening
        raised), or ``None`` if it was never opened ahead."""
        pending = self._pending.pop(path, None)
        if pending is None:
            return None
        future, clock = pending

        def opened():
            clock.set()
            return future.result()

        return opened

    def __enter__(self) -> ClipPrefetcher:
        return self

    def __exit__(self, *exc) -> None:
        for future, clock in self._pending.values():
            clock.set()  # a decoder stuck before its first frame is then stopped by its budget
            future.add_done_callback(_close_opened)
        self._pending.clear()
        self._pool.shutdown(wait=False, cancel_futures=True)


def _close_opened(future: cf.Future) -> None:
    """Stop the decoder of a clip opened ahead and never scored."""
    if future.cancelled() or future.exception() is not None:
        return
    future.result().close()


# Clips with more sampled frames than this get a second progress bar over frames.
FRAME_BAR_MIN_FRAMES = 60


def _score_here(
    path: str,
    detector: Detector | None,
    scorer: Scorer | UnloadedScorer,
    config: ScanConfig,
    progress: bool,
    keep_crops: bool = False,
    **kwargs,
) -> VideoResult:
    """One clip in this process, with a progress bar over its frames when it is long;
    ``kwargs`` go to :func:`pipeline.scan.analyze.score_video` (``opened``, ``on_decoded``)."""
    from tqdm import tqdm

    bar = None

    def on_info(info, sample_fps) -> None:
        nonlocal bar
        from pipeline.video.decode import expected_sample_count

        total = expected_sample_count(info, sample_fps, config.max_frames)
        if progress and total >= FRAME_BAR_MIN_FRAMES:
            bar = tqdm(total=total, unit="frame", leave=False, position=1, desc=os.path.basename(path))

    try:
        return score_for_batch(
            path,
            detector,
            scorer,
            config,
            keep_crops=keep_crops,
            on_info=on_info,
            on_frames=lambda n: bar.update(n) if bar is not None else None,
            **kwargs,
        )
    finally:
        if bar is not None:
            bar.close()
