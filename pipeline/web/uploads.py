"""Uploads: spooled and saved into the app's private folder under a random name, checked by
content, and handed to the job queue, which deletes the file when the job ends.

The user's file name is only ever shown (see :func:`display_name`), never used as a path.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import tempfile
import unicodedata
from pathlib import Path

from flask import Request, request
from werkzeug.datastructures import FileStorage
from werkzeug.exceptions import BadRequest, ServiceUnavailable

from pipeline.errors import QueueFullError
from pipeline.web.jobs import JobOutcome, JobProgress
from pipeline.web.scoring import CheckedUpload, build_result, check_upload, gather_evidence, score_upload
from pipeline.web.state import ScannerState, scanner_state

log = logging.getLogger(__name__)

UPLOAD_FIELD = "file"
MAX_DISPLAY_NAME_CHARS = 120
# 16 random bytes, hex: the saved file's name says nothing about the user's, and cannot be guessed.
UPLOAD_NAME_BYTES = 16
COPY_CHUNK_BYTES = 1 << 20


class UploadRequest(Request):
    """Request bodies too large for memory are spooled into the app's private upload folder
    (as unnamed files that vanish when closed) instead of the system temp folder."""

    def _get_file_stream(self, total_content_length, content_type, filename=None, content_length=None):
        return tempfile.TemporaryFile(dir=scanner_state().upload_dir)


def display_name(filename: str | None) -> str:
    """The user's file name, for display only: last path component (``/`` or ``\\``), control
    characters removed, at most ``MAX_DISPLAY_NAME_CHARS``. Never used to build a path."""
    name = (filename or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C").strip()
    if name in ("", ".", ".."):
        return "upload"
    return name[:MAX_DISPLAY_NAME_CHARS]


def accept_upload(state: ScannerState, received_s: float) -> str:
    """Save, check and queue the current request's upload; returns the job id.

    ``received_s``: ``time.time()`` when the request began. Raises :class:`BadRequest` (400)
    without a file, :class:`pipeline.web.scoring.UploadRejected` (415/422) for content the
    scanner cannot use, :class:`ServiceUnavailable` (503) when the queue is full. The saved
    file is deleted here unless a job took it over (the job then deletes it when it ends).
    """
    storage = _uploaded_file()
    name = display_name(storage.filename)
    path = state.upload_dir / f"{secrets.token_hex(UPLOAD_NAME_BYTES)}.upload"
    handed_over = False
    try:
        save_upload(storage, path)
        checked = check_upload(
            path, state.config, max_duration_s=state.web.max_duration_s, probe_timeout_s=state.web.check_timeout_s
        )
        job_id = _queue_scoring_job(state, path, checked, name, received_s)
        handed_over = True
        log.info("job %s: %s %s (%d bytes)", job_id, checked.kind, checked.container, path.stat().st_size)
        return job_id
    finally:
        storage.close()
        if not handed_over:
            unlink_upload(path)


def save_upload(storage: FileStorage, path: Path) -> None:
    """Write the upload to ``path``, a new file (mode 0600; never an existing one, never
    through a link). Raises :class:`BadRequest` when the form was sent with no file chosen."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        shutil.copyfileobj(storage.stream, out, COPY_CHUNK_BYTES)
    if not storage.filename and path.stat().st_size == 0:
        raise BadRequest("No file was chosen.")


def unlink_upload(path: Path) -> None:
    """Delete a saved upload; one already gone is fine."""
    try:
        path.unlink()
    except FileNotFoundError:
        pass


def _uploaded_file() -> FileStorage:
    if UPLOAD_FIELD not in request.files:
        raise BadRequest(f"No file in the request: send it as multipart/form-data field {UPLOAD_FIELD!r}.")
    return request.files[UPLOAD_FIELD]


def _queue_scoring_job(state: ScannerState, path: Path, checked: CheckedUpload, name: str, received_s: float) -> str:
    """Queue the scoring of a checked upload; the job deletes ``path`` when it ends. Raises
    :class:`ServiceUnavailable` when the queue is full (``path`` then still belongs to the caller)."""

    def task(progress: JobProgress) -> JobOutcome:
        result = score_upload(path, checked, state.detector, state.scorer, state.config, progress, name=name)
        progress.set_stage("drawing the evidence")
        evidence = gather_evidence(
            path, checked, result, state.scorer, state.config, max_thumbnails=state.web.max_thumbnails
        )
        payload, images = build_result(
            result,
            kind=checked.kind,
            config=state.config,
            scorer=state.scorer,
            job_id=progress.job_id,
            max_thumbnails=state.web.max_thumbnails,
            container=checked.container,
            evidence=evidence,
        )
        return JobOutcome(payload, images.faces_jpeg, images.saliency_jpeg, images.frame_jpeg)

    try:
        return state.jobs.submit(checked.kind, name, task, cleanup=lambda: unlink_upload(path), received_s=received_s)
    except QueueFullError as exc:
        raise ServiceUnavailable(f"The server is busy ({exc}); try again in a minute.") from exc
