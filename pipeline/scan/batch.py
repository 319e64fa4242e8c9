"""Score many clips into one output: resume, progress, the sinks, evidence; the clips scored by
one of the engines (:mod:`pipeline.scan.engines`: this process, worker processes, or Dask).

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
import contextlib
import dataclasses
import functools
import logging
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from pipeline.errors import ResumeMismatchError
from pipeline.models.factory import LoadedModels, ModelSpec, load_models
from pipeline.scan.analyze import ScanConfig, VideoResult
from pipeline.scan.engines import check_engine_choice, engine_for
from pipeline.scan.engines.base import Engine
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
    explain: Callable[[VideoRow, VideoResult], dict] | None = None,
) -> BatchSummary:
    """Score ``paths`` into ``output_csv``, one row per clip, flushed as each clip finishes.

    The output's format follows its extension: CSV, or JSON Lines for ``.jsonl``/``.ndjson``
    (:mod:`pipeline.scan.jsonl`; ``nest_faces`` puts each clip's faces in its object).

    ``models``: a :class:`LoadedModels` (used as is in this process) or a :class:`ModelSpec`
    (loaded here with :func:`pipeline.models.factory.load_models` when scored in this process,
    once a clip opens: see :mod:`pipeline.scan.engines.local`). Worker processes get the spec pinned to the
    resolved file (:func:`pipeline.models.factory.worker_spec`) and load it once each, when their
    first clip that opens is due. ``config.threshold``
    labels the rows. Unless ``overwrite``, clips already in ``output_csv`` are skipped (resume).
    Engine ``local``: with ``workers == 1`` this process scores; with more, ``workers``
    processes. Engine ``dask``: the clips go to the cluster at ``address`` (or a local one of
    ``workers`` processes). The engine is chosen by :func:`pipeline.scan.engines.engine_for`.
    ``paths`` may be a lazy iterator (consumed as clips are submitted) or a list (progress shows
    a total). Raises ``ValueError`` for an unknown engine,
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

    ``explain``: with a JSON Lines output, each clip's verdict in words put in its object
    (``verdict_text``, ``caveats``) from its stamped row and its result: the command line passes
    :func:`pipeline.report.explain.result_explanation` (the words belong to the report stage, above
    this one).
    """
    check_engine_choice(engine)
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
        chosen = engine_for(engine, workers=workers, address=address, progress=progress)
        evidence = None
        if evidence_dir is not None:
            models, evidence = _evidence_sink(evidence_dir, models, config, chosen, resume=not overwrite)
            todo = evidence.remember_paths(todo)
        results = chosen.results(todo, models, config, keep_crops=evidence is not None)
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
                explain=explain,
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
    engine: Engine,
    *,
    resume: bool,
):
    """(the models to score with, the :class:`pipeline.scan.evidence.EvidenceSink`). The sink
    needs a scorer in this process: the one this process scores with (``models`` loaded here
    once when it is a spec and ``engine`` scores here), else one loaded without a detector."""
    from pipeline.scan.evidence import EvidenceSink

    if not isinstance(models, LoadedModels) and engine.scores_here:
        models = load_models(models)
    scorer = models.scorer if isinstance(models, LoadedModels) else load_models(models, with_detector=False).scorer
    return models, EvidenceSink(evidence_dir, scorer, config, resume=resume)


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
    explain: Callable[[VideoRow, VideoResult], dict] | None = None,
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
                sink.write(row, faces=result.face_rows(), explanation=explain(row, result) if explain else None)
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
