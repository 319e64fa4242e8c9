"""In-memory scoring jobs: a bounded queue, one worker thread, results kept for a bounded time.

One worker thread runs every job, so TensorFlow and MTCNN are only ever called from one thread
at a time: neither documents thread safety, and on a small CPU two scorers at once would only
share the same cores. Request threads enqueue jobs and read snapshots; they never touch a model.

Finished jobs (their results and face thumbnails) stay readable for ``keep_s`` seconds and at
most ``keep_jobs`` of them; older ones are dropped and their id answers 404.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import secrets
import threading
import time
from collections.abc import Callable

from pipeline.errors import QueueFullError

log = logging.getLogger(__name__)

# secrets.token_urlsafe(16): 22 characters of [A-Za-z0-9_-], 128 random bits, so a job (and the
# faces of someone's upload) cannot be found by guessing ids.
JOB_ID_BYTES = 16


@dataclasses.dataclass(frozen=True)
class JobOutcome:
    """What a task returns: a JSON-ready ``result`` and the JPEGs it refers to: face thumbnails
    and their saliency overlays by index, and the boxed frame of the worst face."""

    result: dict
    thumbnails_jpeg: tuple[bytes, ...] = ()
    saliency_jpeg: tuple[bytes, ...] = ()
    frame_jpeg: bytes | None = None


class JobProgress:
    """Handed to a running task to report progress; thread-safe."""

    def __init__(self, job: Job, lock: threading.Lock):
        self._job = job
        self._lock = lock

    @property
    def job_id(self) -> str:
        return self._job.id

    def set_total(self, frames_total: int) -> None:
        with self._lock:
            self._job.frames_total = int(frames_total)

    def add_frames(self, n: int) -> None:
        with self._lock:
            self._job.frames_done += int(n)

    def set_stage(self, stage: str) -> None:
        with self._lock:
            self._job.stage = stage


@dataclasses.dataclass
class Job:
    """One upload being scored. Mutated only under the owning :class:`JobQueue`'s lock.

    ``state`` is ``queued``, ``running``, ``done`` or ``failed`` (``stage`` says more while it
    runs). ``filename`` is for display only (never a path). Times are ``time.time()`` seconds;
    ``received_s`` is when the upload request began, so ``finished_s - received_s`` is the
    time from upload to verdict as the user sees it.
    """

    id: str
    kind: str
    filename: str
    received_s: float
    created_s: float
    state: str = "queued"
    stage: str = "queued"
    frames_done: int = 0
    frames_total: int | None = None
    started_s: float | None = None
    finished_s: float | None = None
    result: dict | None = None
    thumbnails_jpeg: tuple[bytes, ...] = ()
    saliency_jpeg: tuple[bytes, ...] = ()
    frame_jpeg: bytes | None = None
    error: str = ""
    task: Callable[[JobProgress], JobOutcome] | None = dataclasses.field(default=None, repr=False)
    cleanup: Callable[[], None] | None = dataclasses.field(default=None, repr=False)

    @property
    def finished(self) -> bool:
        return self.state in ("done", "failed")


class JobQueue:
    """A FIFO of at most ``max_queued`` waiting jobs, run one at a time by one worker thread.

    ``submit`` raises :class:`QueueFullError` when full (the caller still owns its upload then);
    once accepted, the job's ``cleanup`` runs exactly once when it ends, whatever happens,
    including when the queue is closed before it ran.
    """

    def __init__(
        self, *, max_queued: int = 8, keep_jobs: int = 100, keep_s: float = 3600.0, name: str = "scoring-worker"
    ):
        if max_queued < 1:
            raise ValueError(f"max_queued must be >= 1, got {max_queued}")
        if keep_jobs < 1:
            raise ValueError(f"keep_jobs must be >= 1, got {keep_jobs}")
        if not keep_s > 0:
            raise ValueError(f"keep_s must be > 0, got {keep_s}")
        self.max_queued = max_queued
        self.keep_jobs = keep_jobs
        self.keep_s = keep_s
        self._lock = threading.Lock()
        self._wakeup = threading.Condition(self._lock)
        self._changed = threading.Condition(self._lock)
        self._pending: collections.deque[Job] = collections.deque()
        self._jobs: dict[str, Job] = {}
        self._running: Job | None = None
        self._closed = False
        self._worker = threading.Thread(target=self._run_forever, name=name, daemon=True)
        self._worker.start()

    # --- request side -------------------------------------------------------------------

    def submit(
        self,
        kind: str,
        filename: str,
        task: Callable[[JobProgress], JobOutcome],
        *,
        cleanup: Callable[[], None] | None = None,
        received_s: float | None = None,
    ) -> str:
        """Queue ``task``; returns the new job's id."""
        now = time.time()
        with self._lock:
            if self._closed:
                raise QueueFullError("the server is shutting down")
            self._prune(now)
            if len(self._pending) >= self.max_queued:
                raise QueueFullError(f"{len(self._pending)} jobs are already waiting (at most {self.max_queued})")
            job = Job(
                id=secrets.token_urlsafe(JOB_ID_BYTES),
                kind=kind,
                filename=filename,
                received_s=received_s if received_s is not None else now,
                created_s=now,
                task=task,
                cleanup=cleanup,
            )
            self._jobs[job.id] = job
            self._pending.append(job)
            self._wakeup.notify()
        return job.id

    def snapshot(self, job_id: str) -> dict | None:
        """A consistent copy of a job's public fields, or ``None`` when unknown or expired."""
        with self._lock:
            self._prune(time.time())
            job = self._jobs.get(job_id)
            if job is None:
                return None
            return self._snapshot(job)

    def thumbnail(self, job_id: str, index: int) -> bytes | None:
        """Face thumbnail ``index`` of a finished job (JPEG), or ``None``."""
        return self._image(job_id, "thumbnails_jpeg", index)

    def saliency(self, job_id: str, index: int) -> bytes | None:
        """The saliency overlay of face thumbnail ``index`` (JPEG), or ``None``."""
        return self._image(job_id, "saliency_jpeg", index)

    def frame(self, job_id: str) -> bytes | None:
        """The boxed frame of the job's worst face (JPEG), or ``None``."""
        return self._image(job_id, "frame_jpeg")

    def _image(self, job_id: str, field: str, index: int | None = None) -> bytes | None:
        """A JPEG the job holds in ``field`` (by ``index`` for a tuple); ``None`` when the job is
        unknown, expired or has no such image. Expired jobs are pruned first, so their images
        go with their results."""
        with self._lock:
            self._prune(time.time())
            job = self._jobs.get(job_id)
            if job is None:
                return None
            held = getattr(job, field)
            if index is None:
                return held
            return held[index] if 0 <= index < len(held) else None

    def wait(self, job_id: str, timeout_s: float) -> dict | None:
        """Block until the job has finished or ``timeout_s`` passed; its snapshot then."""
        deadline = time.monotonic() + timeout_s
        with self._lock:
            while True:
                job = self._jobs.get(job_id)
                if job is None:
                    return None
                remaining = deadline - time.monotonic()
                if job.finished or remaining <= 0:
                    return self._snapshot(job)
                self._changed.wait(remaining)

    def stats(self) -> dict:
        with self._lock:
            self._prune(time.time())
            return {
                "queued": len(self._pending),
                "max_queued": self.max_queued,
                "running": self._running is not None,
                "jobs_kept": sum(1 for j in self._jobs.values() if j.finished),
                "worker_alive": self._worker.is_alive(),
            }

    def close(self, timeout_s: float = 30.0) -> None:
        """Stop taking jobs, fail those still waiting (their uploads are deleted), and wait for
        the running one to end."""
        with self._lock:
            self._closed = True
            dropped = list(self._pending)
            self._pending.clear()
            for job in dropped:
                job.state, job.stage, job.error = "failed", "failed", "the server shut down before this job ran"
                job.finished_s = time.time()
            self._wakeup.notify_all()
            self._changed.notify_all()
        for job in dropped:
            self._clean(job)
        self._worker.join(timeout_s)

    # --- worker side --------------------------------------------------------------------

    def _run_forever(self) -> None:
        while True:
            with self._lock:
                while not self._pending and not self._closed:
                    self._wakeup.wait()
                if self._closed and not self._pending:
                    return
                job = self._pending.popleft()
                job.state, job.stage, job.started_s = "running", "starting", time.time()
                self._running = job
            self._run_one(job)

    def _run_one(self, job: Job) -> None:
        outcome: JobOutcome | None = None
        error = ""
        try:
            assert job.task is not None, "a queued job holds its task until it ran"
            outcome = job.task(JobProgress(job, self._lock))
        except Exception as exc:  # one bad upload never stops the worker
            log.exception("job %s (%s) failed", job.id, job.kind)
            error = f"{type(exc).__name__}: {exc}"
        finally:
            self._clean(job)
        with self._lock:
            job.finished_s = time.time()
            if outcome is not None:
                job.state, job.stage = "done", "done"
                job.result, job.thumbnails_jpeg = outcome.result, outcome.thumbnails_jpeg
                job.saliency_jpeg, job.frame_jpeg = outcome.saliency_jpeg, outcome.frame_jpeg
            else:
                job.state, job.stage, job.error = "failed", "failed", " ".join(error.split())[:500]
            job.task = None
            self._running = None
            self._prune(job.finished_s)
            self._changed.notify_all()

    @staticmethod
    def _clean(job: Job) -> None:
        cleanup, job.cleanup = job.cleanup, None
        if cleanup is None:
            return
        try:
            cleanup()
        except Exception:  # logged; the job's own outcome still stands
            log.exception("job %s: cleanup failed", job.id)

    def _prune(self, now: float) -> None:
        """Drop finished jobs past ``keep_s``, then the oldest beyond ``keep_jobs``. Lock held."""
        # (a finished job has its finished_s: set with its final state)
        finished = sorted(
            ((j.finished_s, j) for j in self._jobs.values() if j.finished and j.finished_s is not None),
            key=lambda pair: pair[0],
        )
        excess = len(finished) - self.keep_jobs
        for i, (finished_s, job) in enumerate(finished):
            if i < excess or now - finished_s > self.keep_s:
                del self._jobs[job.id]

    def _snapshot(self, job: Job) -> dict:
        now = time.time()
        position = None
        if job.state == "queued":
            position = next((i for i, j in enumerate(self._pending) if j is job), None)
        end = job.finished_s if job.finished_s is not None else now
        return {
            "id": job.id,
            "kind": job.kind,
            "filename": job.filename,
            "state": job.state,
            "progress": {
                "stage": job.stage,
                "frames_done": job.frames_done,
                "frames_total": job.frames_total,
                "jobs_ahead": position,
            },
            "queued_s": round((job.started_s or end) - job.created_s, 3),
            "total_s": round(end - job.received_s, 3),
            "result": job.result,
            "error": job.error or None,
        }
