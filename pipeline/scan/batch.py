"""Score many clips into one CSV: resume, progress, and parallel clips on one machine.

The models come from :func:`pipeline.models.factory.load_models` only: in this process (a
:class:`~pipeline.models.factory.LoadedModels`, or a :class:`~pipeline.models.factory.ModelSpec`
loaded here), and in each worker process or Dask worker from the spec pinned to one resolved
file (:meth:`ModelSpec.with_weights`), with TensorFlow's threads split between the workers.
A spec is loaded (here or in a local worker process) only once a clip due opens: the rows of
clips that fail to open (``decode_error``) need no model, so a batch of only unreadable files
ends in about the time their probes take.
"""

from __future__ import annotations

import collections
import concurrent.futures as cf
import contextlib
import dataclasses
import functools
import logging
import multiprocessing
import os
import sys
import threading
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

from pipeline.models.factory import LoadedModels, ModelSpec, load_models, worker_spec
from pipeline.scan.analyze import ScanConfig, VideoResult, score_video_safe
from pipeline.scan.jsonl import (
    JsonlSink,
    is_jsonl,
    read_jsonl_column_values,
    read_jsonl_done_keys,
    read_jsonl_header,
)
from pipeline.scan.provenance import PROVENANCE_COLUMNS, RunSettings, run_settings
from pipeline.scan.records import (
    LABELS,
    FaceRow,
    TrackRow,
    VideoRow,
    counts_text,
    display_path,
    labels_in_use,
)
from pipeline.scan.sink import CsvSink, keep_rows_with_keys, read_done_keys

log = logging.getLogger(__name__)

ENGINES = ("local", "dask")


@dataclasses.dataclass(frozen=True)
class BatchSummary:
    """What a batch did: counts per status, clips skipped as already done, and the labels of the
    ``ok`` clips scored (``label_counts``: every label the run's rule can give, zeros too, when
    any clip was ok; :func:`pipeline.scan.records.labels_in_use`)."""

    status_counts: dict
    skipped: int
    label_counts: dict = dataclasses.field(default_factory=dict)

    @property
    def scored(self) -> int:
        return sum(self.status_counts.values())

    def counts_text(self) -> str:
        """The counts in one line, e.g. ``"ok 27 (FAKE 5, UNCERTAIN 6, REAL 16), no_face 2"``
        (:func:`pipeline.scan.records.counts_text`); empty when nothing was scored."""
        return counts_text(self.status_counts, self.label_counts)


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
            return score_for_batch(path, None, s["unloaded"], config, keep_crops=keep_crops, opened=_raising(exc))
        try:
            models = factory.load_models(s["spec"])
        except BaseException:
            clip.close()
            raise
        s["detector"], s["scorer"] = models.detector, models.scorer
        clock.set()
        opened["opened"] = clip
    return score_for_batch(path, s["detector"], s["scorer"], config, keep_crops=keep_crops, **opened)


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


def _raising(exc: BaseException):
    """An ``opened`` for :func:`score_video` that raises ``exc``: what opening the clip raised."""

    def opened():
        raise exc

    return opened


def score_for_batch(
    path: str, detector, scorer, config: ScanConfig, *, keep_crops: bool = False, **kwargs
) -> VideoResult:
    """:func:`score_video_safe`; with ``keep_crops``, the crops of only the few faces evidence
    shows are kept (:func:`pipeline.scan.evidence.prune_crops`), dropped from the rest where the
    clip was scored, before the result crosses a process boundary (a face's crop is 196 KB)."""
    if not keep_crops:
        return score_video_safe(path, detector, scorer, config, **kwargs)
    from pipeline.scan.evidence import prune_crops

    return prune_crops(score_video_safe(path, detector, scorer, config, keep_crops=True, **kwargs))


# A clip in flight when a worker process dies is retried this many times in a fresh pool;
# a clip that keeps killing workers ends as an error row instead of stopping the batch.
MAX_CLIP_ATTEMPTS = 2


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
    from pipeline.scan.analyze import error_row

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
                result = VideoResult(
                    error_row(display_path(path), "error", f"{type(exc).__name__}: {exc}", 0.0, config, "")
                )
            del in_flight[future]
            queue.attempts.pop(path, None)
            yield result
    return []


def _retry_or_give_up(lost: list[str], queue: _ClipQueue, config: ScanConfig):
    """Queue the clips a dead worker took with it for another attempt, or yield an error row
    for each that has had :data:`MAX_CLIP_ATTEMPTS` already."""
    from pipeline.scan.analyze import error_row

    for path in lost:
        if queue.attempts[path] >= MAX_CLIP_ATTEMPTS:
            log.error("%s: a worker process died on each of %d attempts", path, queue.attempts[path])
            queue.attempts.pop(path, None)
            yield VideoResult(
                error_row(
                    display_path(path),
                    "error",
                    f"worker process died while scoring ({MAX_CLIP_ATTEMPTS} attempts)",
                    0.0,
                    config,
                    "",
                )
            )
        else:
            log.warning("%s: worker process died; retrying the clip", path)
            queue.retry.append(path)


# --- the batch ----------------------------------------------------------------------------------


def run_batch(
    paths: Iterable[str],
    output_csv: str | Path,
    *,
    config: ScanConfig,
    models: ModelSpec | LoadedModels,
    faces_csv: str | Path | None = None,
    tracks_csv: str | Path | None = None,
    workers: int = 1,
    overwrite: bool = False,
    progress: bool | None = None,
    engine: str = "local",
    address: str | None = None,
    nest_faces: bool = False,
    evidence_dir: str | Path | None = None,
) -> BatchSummary:
    """Score ``paths`` into ``output_csv``, one row per clip, flushed as each clip finishes.

    The output's format follows its extension: CSV, or JSON Lines for ``.jsonl``/``.ndjson``
    (:mod:`pipeline.scan.jsonl`; ``nest_faces`` puts each clip's faces in its object).

    ``models``: a :class:`LoadedModels` (used as is in this process) or a :class:`ModelSpec`
    (loaded here with :func:`pipeline.models.factory.load_models` when scored in this process,
    once a clip opens: see :func:`_results_here`). Worker processes get the spec pinned to the
    resolved file (:func:`pipeline.models.factory.worker_spec`) and load it once each, when their
    first clip that opens is due. ``config.threshold``
    labels the rows. Unless ``overwrite``, clips already in ``output_csv`` are skipped (resume).
    Engine ``local``: with ``workers == 1`` this process scores; with more, ``workers``
    processes. Engine ``dask``: the clips go to the cluster at ``address`` (or a local one of
    ``workers`` processes). ``paths`` may be a lazy iterator (consumed as clips are submitted) or
    a list (progress shows a total). Raises ``ValueError`` for an unknown engine,
    :class:`pipeline.errors.OutputLockedError` when another run writes ``output_csv``, and
    ``FileNotFoundError``/``WeightsError`` for weights that cannot be found or loaded.

    ``evidence_dir``: when set, every ``ok`` clip's most suspicious face crops with saliency and
    its worst frame with the faces boxed are written there, indexed in ``evidence.csv``
    (:mod:`pipeline.scan.evidence`), by this process right after the clip's row. Clips are then
    scored with ``keep_crops`` (pruned to the few shown where they are scored), and this process
    holds a scorer for the saliency maps (the one it scores with, or one loaded here when worker
    processes or Dask score). A clip whose evidence cannot be written keeps its row (a warning).

    ``tracks_csv``: when set, one row per track (person) of every ok clip, with whether it
    counted toward the verdict and why (:class:`pipeline.scan.records.TrackRow`); resumed like
    ``faces_csv``.
    """
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")
    output_csv = Path(output_csv)
    faces_path = Path(faces_csv) if faces_csv else None
    tracks_path = Path(tracks_csv) if tracks_csv else None
    if progress is None:
        progress = sys.stderr.isatty()
    settings = run_settings(models, config)
    if not overwrite:
        check_resume_settings(output_csv, settings)
    if evidence_dir is not None:
        prepare_evidence_dir(Path(evidence_dir), settings, overwrite=overwrite)
    sink_type = functools.partial(JsonlSink, faces=nest_faces) if is_jsonl(output_csv) else CsvSink
    with sink_type(output_csv, VideoRow.columns(), resume=not overwrite) as sink:
        todo, total, skipped = _clips_to_do(paths, output_csv, [p for p in (faces_path, tracks_path) if p], overwrite)
        evidence = None
        if evidence_dir is not None:
            models, evidence = _evidence_sink(evidence_dir, models, config, engine, workers, resume=not overwrite)
            todo = evidence.remember_paths(todo)
        results = _results(
            todo,
            models,
            config,
            engine=engine,
            workers=workers,
            address=address,
            progress=progress,
            keep_crops=evidence is not None,
        )
        faces_sink = CsvSink(faces_path, FaceRow.columns(), resume=not overwrite) if faces_path is not None else None
        tracks_sink = (
            CsvSink(tracks_path, TrackRow.columns(), resume=not overwrite) if tracks_path is not None else None
        )
        with (
            faces_sink if faces_sink is not None else contextlib.nullcontext(),
            tracks_sink if tracks_sink is not None else contextlib.nullcontext(),
            evidence if evidence is not None else contextlib.nullcontext(),
        ):
            counts, labels = _write_results(
                results,
                sink,
                faces_sink,
                total=total,
                progress=progress,
                stamp=settings.columns(),
                evidence=evidence,
                tracks_sink=tracks_sink,
            )
    return BatchSummary(dict(counts), skipped, batch_label_counts(labels, config))


def batch_label_counts(labels: collections.Counter, config: ScanConfig) -> dict:
    """The labels of a batch's ok clips: every label ``config``'s rule can give (UNCERTAIN only
    with a band), zeros too, then any other label met; empty when no clip was labelled."""
    if not labels:
        return {}
    return {**{label: labels.get(label, 0) for label in labels_in_use(config.uncertain_below)}, **labels}


EVIDENCE_SETTINGS_NAME = "settings.json"


def prepare_evidence_dir(evidence_dir: Path, settings: RunSettings, *, overwrite: bool) -> None:
    """Make ``evidence_dir`` hold evidence of this run's settings only. It records them in
    ``settings.json``; evidence made another way stops the run like a resume of a CSV made
    another way (:class:`ResumeMismatchError`), unless ``overwrite``, which first deletes the
    evidence the folder's index lists (and the index), so no file of an earlier run stays."""
    import json

    from pipeline.scan.evidence import EVIDENCE_INDEX_NAME

    settings_path = evidence_dir / EVIDENCE_SETTINGS_NAME
    index_path = evidence_dir / EVIDENCE_INDEX_NAME
    if overwrite:
        from pipeline.scan.sink import read_column_values

        for (name,) in read_column_values(index_path, ("file",)):
            target = evidence_dir / Path(name).name  # only files inside the folder
            target.unlink(missing_ok=True)
        index_path.unlink(missing_ok=True)
    elif settings_path.is_file():
        recorded = {k: str(v) for k, v in json.loads(settings_path.read_text()).items()}
        if differences := settings.differences(recorded):
            raise ResumeMismatchError(
                f"{evidence_dir} holds evidence made with other settings ({'; '.join(differences)}): pass "
                "--overwrite to replace it, or use another --evidence-dir"
            )
    elif index_path.is_file():
        raise ResumeMismatchError(
            f"{evidence_dir} holds evidence that does not record how it was made: pass --overwrite to replace it, "
            "or use another --evidence-dir"
        )
    evidence_dir.mkdir(parents=True, exist_ok=True)
    settings_path.write_text(json.dumps(settings.columns(), indent=2) + "\n")


class ResumeMismatchError(ValueError):
    """An output being resumed holds rows made another way (model, threshold, aggregation,
    sampling or detector settings, tool version), or by an older version that did not record how."""


def check_resume_settings(output_csv: Path, settings: RunSettings) -> None:
    """Refuse to resume ``output_csv`` unless every complete row in it was made with
    ``settings``: one CSV must never mix numbers made two ways. Raises
    :class:`ResumeMismatchError` with one line naming the differences (``threshold 0.5 ->
    0.477; fps 1 -> 2``) and the way out (``--overwrite`` or another output). A CSV with rows
    from an older version, which lacks the provenance columns, cannot be checked and is refused
    the same way, and so is one whose columns differ from this version's (a column added since,
    such as ``label_rule``), naming them. A missing or empty output has nothing to resume."""
    from pipeline.scan import sink

    jsonl = is_jsonl(output_csv)
    header = read_jsonl_header(output_csv) if jsonl else sink.read_header(output_csv)
    if not header:
        return
    if not {"video_path", "status"} <= set(header):  # a text file, a clip: nothing the scanner wrote
        raise ResumeMismatchError(
            f"{output_csv} is not a scores file (it has no video_path and status columns): write to another "
            "output, or pass --overwrite to replace it"
        )
    missing = [c for c in PROVENANCE_COLUMNS if c not in header]
    if missing:
        raise ResumeMismatchError(
            f"{output_csv} was written by an older version of the scanner and does not record how its rows were "
            f"made ({', '.join(missing)} missing), so they cannot be checked against this run: pass --overwrite "
            "to rescore, or write to another output"
        )
    found: list[str] = []
    read_values = read_jsonl_column_values if jsonl else sink.read_column_values
    for values in sorted(read_values(output_csv, PROVENANCE_COLUMNS)):
        for difference in settings.differences(dict(zip(PROVENANCE_COLUMNS, values))):
            if difference not in found:
                found.append(difference)
    if found:
        raise ResumeMismatchError(
            f"{output_csv} holds rows made with other settings ({'; '.join(found)}): pass --overwrite "
            "to rescore, or write to another output"
        )
    expected = VideoRow.columns()
    lacking = [c for c in expected if c not in header]
    unknown = [c for c in header if c not in expected]
    if lacking or unknown:
        differs = "; ".join(
            text
            for text in (
                f"lacks {', '.join(lacking)}" if lacking else "",
                f"has {', '.join(unknown)}, which this version does not write" if unknown else "",
            )
            if text
        )
        raise ResumeMismatchError(
            f"{output_csv} was written by another version of the scanner (it {differs}), so this run's rows "
            "cannot be added to it: pass --overwrite to rescore, or write to another output"
        )


def _has_rows(path: Path) -> bool:
    """Whether the CSV at ``path`` exists and holds a row below its header."""
    try:
        with open(path, "rb") as handle:
            handle.readline()  # the header
            return bool(handle.readline().strip())
    except FileNotFoundError:
        return False


def _clips_to_do(
    paths: Iterable[str], output_csv: Path, sidecars: Sequence[Path], overwrite: bool
) -> tuple[Iterable[str], int | None, int]:
    """(clips not yet in ``output_csv``, their number if ``paths`` is a list, clips done).

    Resuming also drops the rows of the ``sidecars`` (faces, tracks) of clips whose row never
    made it to ``output_csv``."""
    if overwrite:
        done = set()
    elif is_jsonl(output_csv):
        done = read_jsonl_done_keys(output_csv, "video_path")
    else:
        done = read_done_keys(output_csv, "video_path", VideoRow.columns())
    for sidecar in sidecars if not overwrite else ():
        if done and not _has_rows(sidecar):
            log.warning(
                "%s has no rows for the %d clips already done in %s (it was not written when they were scored): "
                "only new clips get rows; run again with --overwrite to fill it for every clip",
                sidecar,
                len(done),
                output_csv,
            )
        dropped = keep_rows_with_keys(sidecar, done)
        if dropped:
            log.info("%s: dropped %d rows of unfinished clips", sidecar, dropped)
    if done:
        log.info("resuming %s: %d clips already done", output_csv, len(done))
    # the same file named another way (relative then absolute, ./a.mp4 then a.mp4) is the same clip
    done_abs = {os.path.abspath(key) for key in done}

    def is_done(path) -> bool:
        key = display_path(path)
        return key in done or os.path.abspath(key) in done_abs

    if isinstance(paths, (list, tuple)):
        todo = [p for p in paths if not is_done(p)]
        return todo, len(todo), len(done)
    return (p for p in paths if not is_done(p)), None, len(done)


def _evidence_sink(
    evidence_dir: str | Path,
    models: ModelSpec | LoadedModels,
    config: ScanConfig,
    engine: str,
    workers: int,
    *,
    resume: bool,
):
    """(the models to score with, the :class:`pipeline.scan.evidence.EvidenceSink`). The sink
    needs a scorer in this process: the one this process scores with (``models`` loaded here
    once when it is a spec and clips are scored here), else one loaded without a detector."""
    from pipeline.scan.evidence import EvidenceSink

    if not isinstance(models, LoadedModels) and engine == "local" and workers <= 1:
        models = load_models(models)
    scorer = models.scorer if isinstance(models, LoadedModels) else load_models(models, with_detector=False).scorer
    return models, EvidenceSink(evidence_dir, scorer, config, resume=resume)


def _results(
    todo: Iterable[str],
    models: ModelSpec | LoadedModels,
    config: ScanConfig,
    *,
    engine: str,
    workers: int,
    address: str | None,
    progress: bool,
    keep_crops: bool = False,
) -> Iterable[VideoResult]:
    """One result per clip of ``todo`` from the chosen engine (lazily, as clips finish);
    ``keep_crops``: with the crops evidence needs (:func:`score_for_batch`)."""
    if engine == "dask":
        from pipeline.scan.dask_engine import results_on_dask

        return results_on_dask(todo, models, config, address=address, workers=workers, keep_crops=keep_crops)
    if workers > 1:
        return _results_in_pool(todo, worker_spec(models, workers), config, workers, keep_crops)
    return _results_here(todo, models, config, progress, keep_crops)


def _results_here(
    todo: Iterable[str], models: ModelSpec | LoadedModels, config: ScanConfig, progress: bool, keep_crops: bool
) -> Iterable[VideoResult]:
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
            result = _score_here(
                path,
                None if no_model_needed else loaded.detector,
                unloaded if no_model_needed else loaded.scorer,
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


def _write_results(
    results: Iterable[VideoResult],
    sink: CsvSink,
    faces_sink: CsvSink | None,
    *,
    total: int | None,
    progress: bool,
    stamp: dict | None = None,
    evidence=None,
    tracks_sink: CsvSink | None = None,
) -> tuple[collections.Counter, collections.Counter]:
    """Write each result's row (and face rows) as it comes, with the ``stamp`` fields (the run's
    provenance columns) set on every clip row; return the count per status and the count per
    label (of the rows that have one, the ok rows). ``evidence``: a
    :class:`pipeline.scan.evidence.EvidenceSink` that writes each clip's evidence right after
    its row; a failure there is logged as a warning and the row stays."""
    counts: collections.Counter = collections.Counter()
    labels: collections.Counter = collections.Counter()
    with ClipProgress(total, enabled=progress) as bar:
        for result in results:
            if faces_sink is not None:
                faces_sink.write_many(result.face_rows())
            if tracks_sink is not None:
                tracks_sink.write_many(result.track_rows())
            row = dataclasses.replace(result.row, **stamp) if stamp else result.row
            if isinstance(sink, JsonlSink):
                sink.write(row, faces=result.face_rows())
            else:
                sink.write(row)
            if evidence is not None:
                _write_evidence(evidence, result)
            counts[result.row.status] += 1
            if result.row.label and result.row.status == "ok":  # counted under ok, as the summary line shows them
                labels[result.row.label] += 1
            shown = [*sorted(counts.items()), *((k, labels[k]) for k in LABELS if k in labels)]
            bar.advance(" ".join(f"{k}={v}" for k, v in shown))
    return counts, labels


class ClipProgress:
    """The batch's bar over clips (tqdm), whose rate and time left start after the first clip:
    that one also pays for loading the models and starting workers (seconds), which would
    otherwise inflate the first estimates many times over. Until then the bar shows ``?``."""

    def __init__(self, total: int | None, *, enabled: bool = True) -> None:
        self.total = total
        self.enabled = enabled
        self.done = 0
        self._bar = self._new_bar(initial=0, leave=False)  # replaced, not left, after the first clip

    def _new_bar(self, initial: int, leave: bool = True):
        from tqdm import tqdm

        return tqdm(
            total=self.total, initial=initial, unit="clip", disable=not self.enabled, dynamic_ncols=True, leave=leave
        )

    def advance(self, postfix: str = "") -> None:
        """One more clip written; ``postfix``: the counts shown beside the bar."""
        self.done += 1
        if not self.enabled:
            return
        if self.done == 1:  # a fresh bar from here: its rate (and time left) is measured on clips 2..N
            started = self._bar.start_t
            self._bar.close()
            self._bar = self._new_bar(initial=1)
            self._bar.start_t = started  # the elapsed time shown still counts from the start
        else:
            self._bar.update(1)
        if postfix:
            self._bar.set_postfix_str(postfix)

    @property
    def rate_per_s(self) -> float | None:
        """Clips per second as the bar estimates it (``None`` before it can, or with no bar)."""
        return self._bar.format_dict.get("rate") if self.enabled else None

    def close(self) -> None:
        self._bar.close()

    def __enter__(self) -> ClipProgress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _write_evidence(evidence, result: VideoResult) -> None:
    """One clip's evidence; a failure costs that clip's evidence only (its row is written)."""
    try:
        evidence.write(result)
    except Exception as exc:  # noqa: BLE001 - evidence is an extra: the batch and the row go on
        log.warning("%s: evidence not written: %s: %s", result.row.video_path, type(exc).__name__, exc)


# Clips with more sampled frames than this get a second progress bar over frames.
FRAME_BAR_MIN_FRAMES = 60


def _score_here(
    path: str, detector, scorer, config: ScanConfig, progress: bool, keep_crops: bool = False, **kwargs
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
