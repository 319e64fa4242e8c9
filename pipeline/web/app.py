"""The Flask app: upload a clip or an image, follow its job, read the verdict.

Routes (people / scripts):

- ``GET /``: the upload page; ``POST /score``: the same upload as a plain HTML form (303 to the
  job page); ``GET /jobs/<id>``: progress, then the verdict, chart and faces.
- ``POST /api/v1/score`` (multipart field ``file``, optional ``?wait=S``): 202 with the job, or
  200 when it finished within ``S`` seconds; ``GET /api/v1/jobs/<id>``: the job;
  ``GET /api/v1/jobs/<id>/faces/<n>.jpg``: a face crop, from memory; ``GET /healthz``.

The models are built once by the caller and passed to :func:`create_app`; one worker thread
runs every scoring job (:mod:`pipeline.web.jobs`). Uploads are written under a random name in a
private folder (mode 0700), checked by content, and deleted when their job ends, whatever
happens. The user's file name is only ever shown (escaped), never used as a path, and nothing
uploaded is served back by path: face crops are JPEGs held by the job in memory.
"""

from __future__ import annotations

import atexit
import dataclasses
import logging
import os
import secrets
import shutil
import tempfile
import time
import unicodedata
from pathlib import Path

from flask import (
    Flask,
    Request,
    current_app,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from werkzeug.exceptions import BadRequest, HTTPException, NotFound, ServiceUnavailable

from pipeline.scan.analyze import ScanConfig
from pipeline.web.jobs import JobOutcome, JobQueue, QueueFullError
from pipeline.web.scoring import (
    AGGREGATION_MEANINGS,
    IMAGE_FORMATS,
    P_FAKE_MEANING,
    UploadRejected,
    build_result,
    check_upload,
    score_upload,
)

log = logging.getLogger(__name__)

EXTENSION_KEY = "deepfake_scanner"
UPLOAD_FIELD = "file"
MAX_DISPLAY_NAME_CHARS = 120


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
            raise ValueError(f"max_upload_bytes must be >= 1, got {self.max_upload_bytes}")
        if self.max_duration_s is not None and not self.max_duration_s > 0:
            raise ValueError(f"max_duration_s must be > 0 or None, got {self.max_duration_s}")
        for name in ("max_queued", "keep_jobs"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.max_thumbnails < 0:
            raise ValueError(f"max_thumbnails must be >= 0, got {self.max_thumbnails}")
        for name in ("keep_s", "max_wait_s", "check_timeout_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")


class ScannerState:
    """Everything the routes share: models, settings, the job queue and the upload folder."""

    def __init__(self, detector, scorer, config: ScanConfig, web: WebConfig):
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


class UploadRequest(Request):
    """Request bodies too large for memory are spooled into the app's private upload folder
    (as unnamed files that vanish when closed) instead of the system temp folder."""

    def _get_file_stream(self, total_content_length, content_type, filename=None, content_length=None):
        return tempfile.TemporaryFile(dir=current_app.extensions[EXTENSION_KEY].upload_dir)


def display_name(filename: str | None) -> str:
    """The user's file name, for display only: last path component (``/`` or ``\\``), control
    characters removed, at most ``MAX_DISPLAY_NAME_CHARS``. Never used to build a path."""
    name = (filename or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C").strip()
    if name in ("", ".", ".."):
        return "upload"
    return name[:MAX_DISPLAY_NAME_CHARS]


def create_app(detector, scorer, config: ScanConfig | None = None, web: WebConfig | None = None) -> Flask:
    """The web app around models built once by the caller.

    ``detector``: a :class:`pipeline.faces.detect.FaceDetector`; ``scorer``: a
    :class:`pipeline.models.meso4.MesoScorer`; ``config``: scan settings (threshold, sampling,
    aggregation); ``web``: limits. The app starts one worker thread;
    ``app.extensions["deepfake_scanner"].close()`` stops it.
    """
    config = config or ScanConfig()
    web = web or WebConfig()
    app = Flask(__name__)
    app.request_class = UploadRequest
    app.config.update(MAX_CONTENT_LENGTH=web.max_upload_bytes)
    app.json.sort_keys = False  # keep the order the facts are written in
    app.debug = False  # never: the debugger runs arbitrary code for whoever reaches it
    state = ScannerState(detector, scorer, config, web)
    app.extensions[EXTENSION_KEY] = state

    @app.context_processor
    def page_facts() -> dict:
        return {
            "model_name": scorer.name,
            "threshold": config.threshold,
            "p_fake_meaning": P_FAKE_MEANING,
            "aggregation": config.aggregation,
            "aggregation_meaning": AGGREGATION_MEANINGS.get(config.aggregation, config.aggregation),
            "limits": {
                "max_upload_mb": web.max_upload_bytes / (1024 * 1024),
                "max_upload_bytes": web.max_upload_bytes,
                "max_duration_s": web.max_duration_s,
                "max_frames": config.max_frames,
                "fps": config.fps,
                "image_formats": IMAGE_FORMATS,
                "keep_minutes": web.keep_s / 60,
            },
        }

    @app.after_request
    def security_headers(response):
        response.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        response.headers.setdefault("X-Frame-Options", "DENY")
        if request.endpoint != "static":
            response.headers.setdefault("Cache-Control", "no-store")
        return response

    # --- errors: JSON for the API, a page for people ---------------------------------------

    def wants_json() -> bool:
        return request.path.startswith("/api/") or request.path == "/healthz"

    def error_response(status: int, title: str, message: str, headers: dict | None = None):
        if wants_json():
            response = jsonify({"error": {"status": status, "title": title, "message": message}})
        else:
            response = app.make_response(render_template("error.html", status=status, title=title,
                                                         message=message))
        response.status_code = status
        for key, value in (headers or {}).items():
            response.headers[key] = value
        return response

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        message = exc.description or ""
        if exc.code == 413:
            message = (f"The upload is larger than this server takes "
                       f"({web.max_upload_bytes / (1024 * 1024):.0f} MB).")
        headers = {"Retry-After": "30"} if exc.code == 503 else None
        return error_response(exc.code or 500, exc.name, message, headers)

    @app.errorhandler(UploadRejected)
    def upload_rejected(exc: UploadRejected):
        title = "Unsupported file type" if exc.status == 415 else "Cannot use this file"
        return error_response(exc.status, title, exc.message)

    @app.errorhandler(Exception)
    def unexpected_error(exc: Exception):
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500, "Internal Server Error",
                              "Something went wrong on the server; the details are in its log.")

    # --- uploads ------------------------------------------------------------------------

    def accept_upload(received_s: float) -> str:
        """Save, check and queue the request's upload; returns the job id. The saved file is
        deleted here unless a job took it over."""
        if UPLOAD_FIELD not in request.files:
            raise BadRequest(f"No file in the request: send it as multipart/form-data field {UPLOAD_FIELD!r}.")
        storage = request.files[UPLOAD_FIELD]
        name = display_name(storage.filename)
        path = state.upload_dir / f"{secrets.token_hex(16)}.upload"
        handed_over = False
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as out:
                shutil.copyfileobj(storage.stream, out, 1 << 20)
            if not storage.filename and path.stat().st_size == 0:
                raise BadRequest("No file was chosen.")
            checked = check_upload(path, config, max_duration_s=web.max_duration_s,
                                   probe_timeout_s=web.check_timeout_s)

            def task(progress) -> JobOutcome:
                result = score_upload(path, checked, detector, scorer, config, progress, name=name)
                payload, thumbnails = build_result(result, kind=checked.kind, config=config, scorer=scorer,
                                                   job_id=progress.job_id, max_thumbnails=web.max_thumbnails)
                return JobOutcome(payload, thumbnails)

            try:
                job_id = state.jobs.submit(checked.kind, name, task, cleanup=lambda: _unlink(path),
                                           received_s=received_s)
            except QueueFullError as exc:
                raise ServiceUnavailable(f"The server is busy ({exc}); try again in a minute.") from exc
            handed_over = True
            log.info("job %s: %s %s (%d bytes)", job_id, checked.kind, checked.container, path.stat().st_size)
            return job_id
        finally:
            storage.close()
            if not handed_over:
                _unlink(path)

    def job_json(snapshot: dict) -> dict:
        return {**snapshot, "links": {"self": url_for("api_job", job_id=snapshot["id"]),
                                      "page": url_for("job_page", job_id=snapshot["id"])}}

    # --- pages --------------------------------------------------------------------------

    @app.get("/")
    def index():
        return render_template("index.html")

    @app.post("/score")
    def score_form():
        job_id = accept_upload(time.time())
        return redirect(url_for("job_page", job_id=job_id), code=303)

    @app.get("/jobs/<job_id>")
    def job_page(job_id: str):
        snapshot = state.jobs.snapshot(job_id)
        if snapshot is None:
            raise NotFound(f"No such job, or its results have expired (they are kept for "
                           f"{web.keep_s / 60:.0f} minutes).")
        return render_template("job.html", job=job_json(snapshot))

    # --- API ----------------------------------------------------------------------------

    @app.post("/api/v1/score")
    def api_score():
        received_s = time.time()
        wait_s = _wait_seconds(request.args.get("wait"), web.max_wait_s)
        job_id = accept_upload(received_s)
        snapshot = state.jobs.wait(job_id, wait_s) if wait_s > 0 else state.jobs.snapshot(job_id)
        if snapshot is None:  # finished and already pushed out by newer results (a tiny keep_jobs)
            raise NotFound("The job finished but its result was already dropped; raise --keep-jobs.")
        response = jsonify(job_json(snapshot))
        finished = snapshot["state"] in ("done", "failed")
        response.status_code = 200 if finished else 202
        if not finished:
            response.headers["Location"] = url_for("api_job", job_id=job_id)
        return response

    @app.get("/api/v1/jobs/<job_id>")
    def api_job(job_id: str):
        snapshot = state.jobs.snapshot(job_id)
        if snapshot is None:
            raise NotFound("No such job, or its results have expired.")
        return jsonify(job_json(snapshot))

    @app.get("/api/v1/jobs/<job_id>/faces/<int:index>.jpg")
    def api_face(job_id: str, index: int):
        jpeg = state.jobs.thumbnail(job_id, index)
        if jpeg is None:
            raise NotFound("No such face thumbnail.")
        response = app.response_class(jpeg, mimetype="image/jpeg")
        response.headers["Cache-Control"] = "private, max-age=3600"
        return response

    @app.get("/healthz")
    def healthz():
        stats = state.jobs.stats()
        body = {"status": "ok" if stats["worker_alive"] else "worker stopped", "model": scorer.name,
                "threshold": config.threshold, "aggregation": config.aggregation, "queue": stats}
        return jsonify(body), (200 if stats["worker_alive"] else 503)

    return app


def _wait_seconds(text: str | None, max_wait_s: float) -> float:
    if text is None or text == "":
        return 0.0
    try:
        value = float(text)
    except ValueError:
        raise BadRequest(f"wait must be a number of seconds, got {text!r}") from None
    if not 0 <= value <= max_wait_s:
        raise BadRequest(f"wait must be between 0 and {max_wait_s:g} seconds, got {text!r}")
    return value


def _unlink(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass
