"""The ``dask`` engine: the scan on a Dask cluster, the same rows as the local engine, models
loaded once per worker.

Only imported for ``--engine dask``; Dask is an optional extra (``pip install -e .[dask]``).
Clips are read by path, so workers must see the same files (shared storage).
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
import tempfile
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path

from distributed import Client, LocalCluster, get_worker, wait
from distributed.diagnostics.plugin import WorkerPlugin

from pipeline.models.factory import LoadedModels, ModelSpec, load_models, worker_spec
from pipeline.scan.analyze import ScanConfig, VideoResult
from pipeline.scan.engines.base import failure_text, lost_clip_result, score_for_batch

# The engine's log lines keep the name they have always had.
log = logging.getLogger("pipeline.scan.dask_engine")

PLUGIN_NAME = "deepfake-scanner-models"
_WORKER_ATTR = "_deepfake_scanner_models"
# Futures in flight per worker thread: enough to keep workers busy, bounded for a million paths.
WINDOW_PER_THREAD = 4


@dataclasses.dataclass(frozen=True)
class DaskEngine:
    """:class:`pipeline.scan.engines.base.Engine` on the Dask cluster at ``address``, or on a local
    one of ``workers`` processes started and stopped for the batch (:func:`results_on_dask`)."""

    workers: int = 1
    address: str | None = None
    scores_here = False

    def results(
        self,
        clips: Iterable[str],
        models: ModelSpec | LoadedModels,
        config: ScanConfig,
        *,
        keep_crops: bool = False,
    ) -> Iterator[VideoResult]:
        return results_on_dask(clips, models, config, address=self.address, workers=self.workers, keep_crops=keep_crops)


class ModelsPlugin(WorkerPlugin):
    """Builds MTCNN and Meso-4 once on each worker (again after a restart), with
    :func:`pipeline.models.factory.load_models`.

    ``spec``: pinned to one file (:func:`pipeline.models.factory.worker_spec`). The weights
    travel inside the plugin (a Meso-4 file is 156 KB), so workers need no copy of them; the
    spec sidecar travels with them when there is one, and an ensemble travels with its members
    (:func:`pipeline.models.ensemble.weights_bundle`). Each worker loads ``spec`` re-pinned to
    its own copy. Raises ``ValueError`` for a spec not pinned to a file.
    """

    idempotent = False

    def __init__(self, spec: ModelSpec, config: ScanConfig):
        if spec.weights is None:
            raise ValueError("ModelsPlugin needs a spec pinned to a weights file (see worker_spec)")
        from pipeline.models.ensemble import weights_bundle

        self.spec = spec
        self.weights_name, self.files = weights_bundle(spec.weights)
        self.config = config
        self._dir: str | None = None

    def setup(self, worker) -> None:
        self._dir = tempfile.mkdtemp(prefix="deepfake-scanner-weights-")
        for name, content in self.files.items():
            (Path(self._dir) / name).write_bytes(content)
        path = Path(self._dir) / self.weights_name
        loaded = load_models(self.spec.with_weights(path))
        setattr(worker, _WORKER_ATTR, (loaded.detector, loaded.scorer, self.config))
        log.info("worker %s: models loaded", getattr(worker, "address", "?"))

    def teardown(self, worker) -> None:
        if self._dir:
            shutil.rmtree(self._dir, ignore_errors=True)


def score_on_worker(path: str, keep_crops: bool = False) -> VideoResult:
    """The task: score one clip with the worker's models (errors become a row, as locally);
    ``keep_crops``: with the few crops evidence shows (:func:`pipeline.scan.engines.base.score_for_batch`)."""
    detector, scorer, config = getattr(get_worker(), _WORKER_ATTR)
    return score_for_batch(path, detector, scorer, config, keep_crops=keep_crops)


def results_on_dask(
    paths: Iterable[str],
    models: ModelSpec | LoadedModels,
    config: ScanConfig,
    *,
    address: str | None = None,
    workers: int = 1,
    window: int | None = None,
    keep_crops: bool = False,
) -> Iterator[VideoResult]:
    """Yield one result per path, as they complete, from a Dask cluster.

    ``models``: what each worker loads, as :func:`pipeline.models.factory.worker_spec` pins it
    (raises ``FileNotFoundError``/``WeightsError`` here, before any cluster starts, when the
    weights cannot be found). ``address``: a running scheduler (``tcp://host:8786``); without it
    a local cluster of ``workers`` processes on 127.0.0.1 is started and stopped here, each
    worker with its share of the cores as TensorFlow threads. At most ``window`` clips are in
    flight (default: 4 per worker thread), so the input is consumed lazily. A clip whose task
    kills workers repeatedly (Dask's ``allowed-failures``) ends as an ``error`` row.
    ``keep_crops``: results carry the crops evidence needs, pruned on the worker.
    """
    cluster = None
    if address is None:
        plugin = ModelsPlugin(worker_spec(models, workers), config)
        cluster = LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
        )
        client = Client(cluster)
    else:
        plugin = ModelsPlugin(worker_spec(models), config)
        client = Client(address)
    try:
        client.register_plugin(plugin, name=PLUGIN_NAME)
        total_threads = sum(w["nthreads"] for w in client.scheduler_info()["workers"].values()) or workers
        window = window or WINDOW_PER_THREAD * total_threads
        log.info(
            "dask: %d worker threads at %s, %d clips in flight at most", total_threads, client.scheduler.address, window
        )
        yield from _stream(client, iter(paths), config, window, keep_crops)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def _stream(
    client: Client, paths: Iterator[str], config: ScanConfig, window: int, keep_crops: bool = False
) -> Iterator[VideoResult]:
    pending: dict = {}

    def fill() -> None:
        while len(pending) < window:
            path = next(paths, None)
            if path is None:
                return
            # a fresh key per submission: a resumed run never reuses a stale result
            future = client.submit(score_on_worker, path, keep_crops, key=f"score-clip-{uuid.uuid4().hex}", pure=False)
            pending[future] = path

    fill()
    while pending:
        done, _ = wait(list(pending), return_when="FIRST_COMPLETED")
        for future in done:
            path = pending.pop(future)
            try:
                result = future.result()
            except Exception as exc:  # noqa: BLE001 - KilledWorker and friends: this clip only
                log.error("%s: %s: %s", path, type(exc).__name__, exc)
                result = lost_clip_result(path, failure_text(exc), config)
            yield result
        fill()
