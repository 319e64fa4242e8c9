"""What the web app holds between requests: its limits (:class:`WebConfig`) and its state
(:class:`ScannerState`: models, scan settings, the job queue, the private upload folder).

The state lives in ``app.extensions["deepfake_scanner"]``; :func:`scanner_state` finds it from
inside a request.
"""

from __future__ import annotations

import atexit
import dataclasses
import os
import shutil
import tempfile
from pathlib import Path

from flask import current_app

from pipeline.errors import ConfigError
from pipeline.faces.detector import Detector
from pipeline.models.scorer import Scorer
from pipeline.scan.analyze import ScanConfig
from pipeline.web.jobs import JobQueue

EXTENSION_KEY = "deepfake_scanner"


@dataclasses.dataclass(frozen=True)
class WebConfig:
    """Limits and housekeeping of the web app; ``python -m pipeline serve`` maps its flags onto it.

    ``max_upload_bytes``: larger requests get 413. ``max_duration_s``: longer clips get 422
    (``None``: no cap; the scan's ``max_frames`` caps the work anyway). ``max_queued``: jobs
    waiting beyond the running one, else 503. ``keep_jobs``/``keep_s``: finished jobs kept in
    memory, at most this many, for at most this long. ``max_thumbnails``: face crops kept per
    job (the worst ones). ``max_wait_s``: cap on ``?wait=``. ``upload_dir``: private folder for
    uploads (``None``: a fresh one under the system temp folder, removed at exit).
    ``check_timeout_s``: time allowed to probe an upload and decode its first frame.

    Raises :class:`ValueError` naming the field and its value when a limit is out of range.
    """

    max_upload_bytes: int = 200 * 1024 * 1024
    max_duration_s: float | None = 600.0
    max_queued: int = 8
    keep_jobs: int = 100
    keep_s: float = 3600.0
    max_thumbnails: int = 48
    max_wait_s: float = 300.0
    upload_dir: str | None = None
    check_timeout_s: float = 30.0

    def __post_init__(self) -> None:
        if self.max_upload_bytes < 1:
            raise ConfigError(f"max_upload_bytes must be >= 1, got {self.max_upload_bytes}")
        if self.max_duration_s is not None and not self.max_duration_s > 0:
            raise ConfigError(f"max_duration_s must be > 0 or None, got {self.max_duration_s}")
        for name in ("max_queued", "keep_jobs"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.max_thumbnails < 0:
            raise ConfigError(f"max_thumbnails must be >= 0, got {self.max_thumbnails}")
        for name in ("keep_s", "max_wait_s", "check_timeout_s"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name} must be > 0, got {getattr(self, name)}")


class ScannerState:
    """Everything the routes share: models, settings, the job queue and the upload folder.

    Building it starts the job queue's worker thread and creates the upload folder (mode 0700);
    :meth:`close` stops the one and, when this state created it, removes the other.
    """

    def __init__(self, detector: Detector, scorer: Scorer, config: ScanConfig, web: WebConfig):
        self.detector = detector
        self.scorer = scorer
        self.config = config
        self.web = web
        if web.upload_dir is None:
            self.upload_dir = Path(tempfile.mkdtemp(prefix="deepfake-scanner-uploads-"))  # mode 0700
            self._owns_upload_dir = True
            atexit.register(shutil.rmtree, self.upload_dir, ignore_errors=True)
        else:
            self.upload_dir = Path(web.upload_dir)
            self.upload_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            os.chmod(self.upload_dir, 0o700)
            self._owns_upload_dir = False
        self.jobs = JobQueue(max_queued=web.max_queued, keep_jobs=web.keep_jobs, keep_s=web.keep_s)

    def close(self) -> None:
        """Stop the worker (waiting jobs are dropped, their uploads deleted)."""
        self.jobs.close()
        if self._owns_upload_dir:
            shutil.rmtree(self.upload_dir, ignore_errors=True)


def scanner_state() -> ScannerState:
    """The current app's :class:`ScannerState` (inside a request or app context)."""
    return current_app.extensions[EXTENSION_KEY]
