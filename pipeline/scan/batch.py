"""Score many clips into one CSV: resume, progress, and parallel clips on one machine."""

from __future__ import annotations

import collections
import concurrent.futures as cf
import contextlib
import dataclasses
import logging
import multiprocessing
import os
import sys
from pathlib import Path
from typing import Iterable

from pipeline.scan.records import FaceRow, VideoRow, display_path
from pipeline.scan.analyze import ScanConfig, VideoResult, score_video_safe
from pipeline.scan.sink import CsvSink, keep_rows_with_keys, read_done_keys

log = logging.getLogger(__name__)

ENGINES = ("local", "dask")


@dataclasses.dataclass(frozen=True)
class BatchSummary:
    """What a batch did: counts per status, clips skipped as already done."""

    status_counts: dict
    skipped: int

    @property
    def scored(self) -> int:
        return sum(self.status_counts.values())


# --- worker processes: each builds its models once ------------------------------------------
_WORKER_STATE: dict = {}


def _init_worker(weights_path: str, config: ScanConfig, threads: int) -> None:
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    from pipeline.faces.detect import FaceDetector
    from pipeline.models.meso4 import MesoScorer

    _WORKER_STATE["detector"] = FaceDetector.create(config.detector)
    _WORKER_STATE["scorer"] = MesoScorer.load(weights_path)
    _WORKER_STATE["config"] = config


def _score_in_worker(path: str) -> VideoResult:
    s = _WORKER_STATE
    return score_video_safe(path, s["detector"], s["scorer"], s["config"])


# A clip in flight when a worker process dies is retried this many times in a fresh pool;
# a clip that keeps killing workers ends as an error row instead of stopping the batch.
MAX_CLIP_ATTEMPTS = 2


def _results_in_pool(paths: Iterable[str], weights_path: str, config: ScanConfig, workers: int):
    """Yield results from ``workers`` processes, keeping a bounded window of clips in flight.

    If a worker dies (killed, out of memory, crashed in native code) the pool is rebuilt and
    the clips that were in flight are retried; none is lost or yielded twice.
    """
    from pipeline.scan.analyze import error_row

    threads = max(1, (os.cpu_count() or 1) // workers)
    ctx = multiprocessing.get_context("spawn")  # TensorFlow does not survive fork
    attempts: collections.Counter = collections.Counter()
    retry: collections.deque[str] = collections.deque()
    paths = iter(paths)
    exhausted = False

    def next_path() -> str | None:
        nonlocal exhausted
        if retry:
            return retry.popleft()
        path = next(paths, None)
        exhausted = path is None
        return path

    while retry or not exhausted:
        broken = False
        with cf.ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker,
                                    initargs=(weights_path, config, threads)) as pool:
            in_flight: dict[cf.Future, str] = {}
            while in_flight or retry or not exhausted:
                while (retry or not exhausted) and len(in_flight) < 2 * workers:
                    path = next_path()
                    if path is None:
                        break
                    attempts[path] += 1
                    in_flight[pool.submit(_score_in_worker, path)] = path
                if not in_flight:
                    break
                done, _ = cf.wait(in_flight, return_when=cf.FIRST_COMPLETED)
                for future in done:
                    path = in_flight.pop(future)
                    try:
                        result = future.result()
                    except cf.process.BrokenProcessPool:
                        broken = True
                        in_flight[future] = path  # handled with the rest below
                        break
                    except Exception as exc:  # noqa: BLE001 - a worker-side failure of one clip
                        result = VideoResult(error_row(display_path(path), "error", f"{type(exc).__name__}: {exc}", 0.0,
                                                       config, ""))
                    attempts.pop(path, None)
                    yield result
                if broken:
                    break
            if broken:
                for path in in_flight.values():
                    if attempts[path] >= MAX_CLIP_ATTEMPTS:
                        log.error("%s: a worker process died on each of %d attempts", path, attempts[path])
                        attempts.pop(path, None)
                        yield VideoResult(error_row(display_path(path), "error", f"worker process died while scoring "
                                                    f"({MAX_CLIP_ATTEMPTS} attempts)", 0.0, config, ""))
                    else:
                        log.warning("%s: worker process died; retrying the clip", path)
                        retry.append(path)
                pool.shutdown(wait=True, cancel_futures=True)


def run_batch(
    paths: Iterable[str],
    output_csv: str | Path,
    *,
    config: ScanConfig,
    weights_path: str | Path,
    detector=None,
    scorer=None,
    faces_csv: str | Path | None = None,
    workers: int = 1,
    overwrite: bool = False,
    progress: bool | None = None,
    engine: str = "local",
    address: str | None = None,
) -> BatchSummary:
    """Score ``paths`` into ``output_csv``, one row per clip, flushed as each clip finishes.

    Unless ``overwrite``, clips already in ``output_csv`` are skipped (resume). Engine
    ``local``: with ``workers == 1`` the given ``detector``/``scorer`` are used in this process;
    with more, each worker process loads its own once. Engine ``dask``: the clips go to the
    cluster at ``address`` (or a local one of ``workers`` processes). ``paths`` may be a lazy
    iterator (consumed as clips are submitted) or a list (progress shows a total).
    """
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")
    from tqdm import tqdm

    output_csv = Path(output_csv)
    faces_path = Path(faces_csv) if faces_csv else None
    if progress is None:
        progress = sys.stderr.isatty()
    counts: collections.Counter = collections.Counter()
    with CsvSink(output_csv, VideoRow.columns(), resume=not overwrite) as sink:
        done = set() if overwrite else read_done_keys(output_csv, "video_path", VideoRow.columns())
        if faces_path is not None and not overwrite:
            dropped = keep_rows_with_keys(faces_path, done)
            if dropped:
                log.info("%s: dropped %d face rows of unfinished clips", faces_path, dropped)
        if isinstance(paths, (list, tuple)):
            todo = [p for p in paths if display_path(p) not in done]
            total = len(todo)
        else:
            todo = (p for p in paths if display_path(p) not in done)
            total = None
        skipped_count = len(done)
        if done:
            log.info("resuming %s: %d clips already done", output_csv, skipped_count)
        faces_sink = (CsvSink(faces_path, FaceRow.columns(), resume=not overwrite)
                      if faces_path is not None else None)
        with tqdm(total=total, unit="clip", disable=not progress, dynamic_ncols=True) as bar, \
                (faces_sink if faces_sink is not None else contextlib.nullcontext()):
            if engine == "dask":
                from pipeline.scan.dask_engine import results_on_dask

                results = results_on_dask(todo, weights_path, config, address=address, workers=workers)
            elif workers <= 1:
                results = (_score_here(p, detector, scorer, config, progress) for p in todo)
            else:
                results = _results_in_pool(todo, str(weights_path), config, workers)
            for result in results:
                if faces_sink is not None:
                    faces_sink.write_many(result.face_rows())
                sink.write(result.row)
                counts[result.row.status] += 1
                bar.update(1)
                bar.set_postfix_str(" ".join(f"{k}={v}" for k, v in sorted(counts.items())))
    return BatchSummary(dict(counts), skipped_count)


# Clips with more sampled frames than this get a second progress bar over frames.
FRAME_BAR_MIN_FRAMES = 60


def _score_here(path: str, detector, scorer, config: ScanConfig, progress: bool) -> VideoResult:
    from tqdm import tqdm

    bar = None

    def on_info(info, sample_fps) -> None:
        nonlocal bar
        from pipeline.video.decode import expected_sample_count

        total = expected_sample_count(info, sample_fps, config.max_frames)
        if progress and total >= FRAME_BAR_MIN_FRAMES:
            bar = tqdm(total=total, unit="frame", leave=False, position=1, desc=os.path.basename(path))

    try:
        return score_video_safe(path, detector, scorer, config, on_info=on_info,
                                on_frames=lambda n: bar.update(n) if bar is not None else None)
    finally:
        if bar is not None:
            bar.close()

