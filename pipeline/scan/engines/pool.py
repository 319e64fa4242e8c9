"""The ``local`` engine with ``--workers N`` (N > 1): clips scored by N worker processes on this
machine, a bounded window in flight, a clip lost with a dead worker retried in a fresh pool.

Each worker gets the spec pinned to one resolved file (:func:`pipeline.models.factory.worker_spec`,
TensorFlow's threads split between the workers) and loads it once, when its first clip that
opens is due: a worker given only unreadable files never loads TensorFlow.
"""

from __future__ import annotations

import collections
import concurrent.futures as cf
import dataclasses
import logging
import multiprocessing
import threading
from collections.abc import Iterable, Iterator

from pipeline.models.factory import LoadedModels, ModelSpec, worker_spec
from pipeline.scan.analyze import ScanConfig, VideoResult
from pipeline.scan.engines.base import failure_text, lost_clip_result, raising, score_for_batch, unloaded_scorer

# The batch's log lines keep the name they have always had, whichever engine scores.
log = logging.getLogger("pipeline.scan.batch")

# A clip in flight when a worker process dies is retried this many times in a fresh pool;
# a clip that keeps killing workers ends as an error row instead of stopping the batch.
MAX_CLIP_ATTEMPTS = 2


@dataclasses.dataclass(frozen=True)
class PoolEngine:
    """:class:`pipeline.scan.engines.base.Engine` on ``workers`` processes of this machine."""

    workers: int
    scores_here = False

    def results(
        self,
        clips: Iterable[str],
        models: ModelSpec | LoadedModels,
        config: ScanConfig,
        *,
        keep_crops: bool = False,
    ) -> Iterator[VideoResult]:
        """Raises ``FileNotFoundError``/``WeightsError`` here, before any worker starts, when the
        weights cannot be found (:func:`pipeline.models.factory.worker_spec`)."""
        return _results_in_pool(clips, worker_spec(models, self.workers), config, self.workers, keep_crops)


# --- worker processes: each builds its models once, when its first clip opens ------------------
_WORKER_STATE: dict = {}


def _init_worker(spec: ModelSpec, config: ScanConfig, keep_crops: bool = False) -> None:
    """Pool initializer: what the worker scores with. The models of ``spec`` (pinned to a file,
    threads set) are loaded once per process, when its first clip that opens is due
    (:func:`_score_in_worker`): a worker given only unreadable files never loads TensorFlow.
    ``keep_crops``: results carry the crops evidence needs (:func:`score_for_batch`)."""
    _WORKER_STATE.clear()
    _WORKER_STATE["spec"] = spec
    _WORKER_STATE["config"] = config
    _WORKER_STATE["keep_crops"] = keep_crops


def _score_in_worker(path: str) -> VideoResult:
    """One clip in a worker process. Until the worker's models are loaded the clip is opened
    (probed) first: one that fails to open gets its row with no model loaded; one that opens
    has the models loaded before its clock starts, so loading them does not count against its
    ``--timeout``."""
    from pipeline.models import factory  # looked up when called: one factory, patchable in tests
    from pipeline.scan import analyze

    s = _WORKER_STATE
    config, keep_crops = s["config"], s.get("keep_crops", False)
    opened: dict = {}
    if "scorer" not in s:
        clock = threading.Event()
        try:
            clip = analyze.open_clip(path, config, clock_starts=clock)
        except Exception as exc:  # noqa: BLE001 - the clip's row says what it was, as score_video_safe words it
            if "unloaded" not in s:
                s["unloaded"] = unloaded_scorer(s["spec"])
            return score_for_batch(path, None, s["unloaded"], config, keep_crops=keep_crops, opened=raising(exc))
        try:
            models = factory.load_models(s["spec"])
        except BaseException:
            clip.close()
            raise
        s["detector"], s["scorer"] = models.detector, models.scorer
        clock.set()
        opened["opened"] = clip
    return score_for_batch(path, s["detector"], s["scorer"], config, keep_crops=keep_crops, **opened)


# --- the pool in this process: clips in flight, retried when a worker dies ---------------------


class _ClipQueue:
    """The clips still to score: those to retry first, then the input, pulled lazily; with the
    number of attempts of each clip in flight."""

    def __init__(self, paths: Iterable[str]):
        self._paths = iter(paths)
        self._exhausted = False
        self.retry: collections.deque[str] = collections.deque()
        self.attempts: collections.Counter = collections.Counter()

    def has_more(self) -> bool:
        return bool(self.retry) or not self._exhausted

    def next_path(self) -> str | None:
        """The next clip (counted as one more attempt), or ``None`` when none is left."""
        path: str | None
        if self.retry:
            path = self.retry.popleft()
        else:
            path = next(self._paths, None)
            self._exhausted = path is None
        if path is not None:
            self.attempts[path] += 1
        return path


def _results_in_pool(paths: Iterable[str], spec: ModelSpec, config: ScanConfig, workers: int, keep_crops: bool = False):
    """Yield results from ``workers`` processes, keeping a bounded window of clips in flight.

    ``spec``: pinned to a file with threads set (:func:`pipeline.models.factory.worker_spec`);
    each worker loads it once. If a worker dies (killed, out of memory, crashed in native code)
    the pool is rebuilt and the clips that were in flight are retried, up to
    :data:`MAX_CLIP_ATTEMPTS` times each; none is lost or yielded twice.
    """
    ctx = multiprocessing.get_context("spawn")  # TensorFlow does not survive fork
    queue = _ClipQueue(paths)
    while queue.has_more():
        initargs = (spec, config, keep_crops)
        with cf.ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker, initargs=initargs) as pool:
            lost = yield from _drain_pool(pool, queue, config, workers)
            if lost:
                yield from _retry_or_give_up(lost, queue, config)
                pool.shutdown(wait=True, cancel_futures=True)


def _drain_pool(pool: cf.ProcessPoolExecutor, queue: _ClipQueue, config: ScanConfig, workers: int):
    """Yield results from ``pool`` (at most ``2 * workers`` clips in flight) until ``queue`` is
    empty; return the clips in flight when the pool broke (a worker died), else ``[]``."""
    in_flight: dict[cf.Future, str] = {}
    while in_flight or queue.has_more():
        while queue.has_more() and len(in_flight) < 2 * workers:
            path = queue.next_path()
            if path is None:
                break
            in_flight[pool.submit(_score_in_worker, path)] = path
        if not in_flight:
            break
        done, _ = cf.wait(in_flight, return_when=cf.FIRST_COMPLETED)
        for future in done:
            path = in_flight[future]
            try:
                result = future.result()
            except cf.process.BrokenProcessPool:
                return list(in_flight.values())  # this clip and every other one not yielded yet
            except Exception as exc:  # noqa: BLE001 - a worker-side failure of one clip
                result = lost_clip_result(path, failure_text(exc), config)
            del in_flight[future]
            queue.attempts.pop(path, None)
            yield result
    return []


def _retry_or_give_up(lost: list[str], queue: _ClipQueue, config: ScanConfig):
    """Queue the clips a dead worker took with it for another attempt, or yield an error row
    for each that has had :data:`MAX_CLIP_ATTEMPTS` already."""
    for path in lost:
        if queue.attempts[path] >= MAX_CLIP_ATTEMPTS:
            log.error("%s: a worker process died on each of %d attempts", path, queue.attempts[path])
            queue.attempts.pop(path, None)
            yield lost_clip_result(path, f"worker process died while scoring ({MAX_CLIP_ATTEMPTS} attempts)", config)
        else:
            log.warning("%s: worker process died; retrying the clip", path)
            queue.retry.append(path)
