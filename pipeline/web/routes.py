"""The routes, as one Blueprint (``scanner``) registered by :func:`pipeline.web.app.create_app`.

People: ``GET /`` (upload page), ``POST /score`` (the form: 303 to the job page),
``GET /jobs/<id>`` (progress, then the verdict). Scripts: ``POST /api/v1/score`` (202 with the
job, or 200 when it finished within ``?wait=S`` seconds), ``GET /api/v1/jobs/<id>``,
``GET /api/v1/jobs/<id>/faces/<n>.jpg`` (a face crop, from memory), ``.../saliency/<n>.jpg``
(the same crop with its saliency map), ``.../frame.jpg`` (the worst face's frame, boxed),
``GET /healthz``.
Routes never touch a model: they queue jobs and read snapshots.
"""

from __future__ import annotations

import time

from flask import (
    Blueprint,
    Response,
    current_app,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from werkzeug.exceptions import BadRequest, NotFound

from pipeline.web.presentation import job_json
from pipeline.web.state import scanner_state
from pipeline.web.uploads import accept_upload

bp = Blueprint("scanner", __name__)


@bp.get("/")
def index():
    return render_template("index.html")


@bp.post("/score")
def score_form():
    job_id = accept_upload(scanner_state(), time.time())
    return redirect(url_for("scanner.job_page", job_id=job_id), code=303)


@bp.get("/jobs/<job_id>")
def job_page(job_id: str):
    state = scanner_state()
    snapshot = state.jobs.snapshot(job_id)
    if snapshot is None:
        raise NotFound(
            f"No such job, or its results have expired (they are kept for {state.web.keep_s / 60:.0f} minutes)."
        )
    return render_template("job.html", job=job_json(snapshot))


@bp.post("/api/v1/score")
def api_score():
    """202 with the job and a ``Location`` while it runs; 200 once it is done or failed."""
    received_s = time.time()
    state = scanner_state()
    wait_s = wait_seconds(request.args.get("wait"), state.web.max_wait_s)
    job_id = accept_upload(state, received_s)
    snapshot = state.jobs.wait(job_id, wait_s) if wait_s > 0 else state.jobs.snapshot(job_id)
    if snapshot is None:  # finished and already pushed out by newer results (a tiny keep_jobs)
        raise NotFound("The job finished but its result was already dropped; raise --keep-jobs.")
    response = jsonify(job_json(snapshot))
    finished = snapshot["state"] in ("done", "failed")
    response.status_code = 200 if finished else 202
    if not finished:
        response.headers["Location"] = url_for("scanner.api_job", job_id=job_id)
    return response


@bp.get("/api/v1/jobs/<job_id>")
def api_job(job_id: str):
    snapshot = scanner_state().jobs.snapshot(job_id)
    if snapshot is None:
        raise NotFound("No such job, or its results have expired.")
    return jsonify(job_json(snapshot))


@bp.get("/api/v1/jobs/<job_id>/faces/<int:index>.jpg")
def api_face(job_id: str, index: int) -> Response:
    return jpeg_response(scanner_state().jobs.thumbnail(job_id, index), "No such face thumbnail.")


@bp.get("/api/v1/jobs/<job_id>/saliency/<int:index>.jpg")
def api_saliency(job_id: str, index: int) -> Response:
    """Face ``index`` with its saliency map over it (where the model saw "fake")."""
    return jpeg_response(scanner_state().jobs.saliency(job_id, index), "No such saliency overlay.")


@bp.get("/api/v1/jobs/<job_id>/frame.jpg")
def api_frame(job_id: str) -> Response:
    """The frame of the most suspicious face, every face in it boxed and scored."""
    return jpeg_response(scanner_state().jobs.frame(job_id), "No frame for this job.")


def jpeg_response(jpeg: bytes | None, missing: str) -> Response:
    """A JPEG a job holds in memory, cacheable by this browser only (an hour: the default
    ``--keep-minutes``); 404 with ``missing`` when there is none (unknown or expired job, bad
    index, or an image the job could not make)."""
    if jpeg is None:
        raise NotFound(missing)
    response = current_app.response_class(jpeg, mimetype="image/jpeg")
    response.headers["Cache-Control"] = "private, max-age=3600"
    return response


@bp.get("/healthz")
def healthz():
    """200 while the worker runs, else 503; says which model, threshold (and ``uncertain_below``, the
    lower threshold of an UNCERTAIN band, ``null`` for one cut), label rule and aggregation."""
    state = scanner_state()
    stats = state.jobs.stats()
    body = {
        "status": "ok" if stats["worker_alive"] else "worker stopped",
        "model": state.scorer.name,
        "threshold": state.config.threshold,
        "uncertain_below": state.config.uncertain_below,
        "label_rule": state.config.label_rule,
        "aggregation": state.config.aggregation,
        "queue": stats,
    }
    return jsonify(body), (200 if stats["worker_alive"] else 503)


def wait_seconds(text: str | None, max_wait_s: float) -> float:
    """The ``?wait=`` query value in seconds: 0 when absent or empty. Raises :class:`BadRequest`
    unless it is a number in ``[0, max_wait_s]``."""
    if text is None or text == "":
        return 0.0
    try:
        value = float(text)
    except ValueError:
        raise BadRequest(f"wait must be a number of seconds, got {text!r}") from None
    if not 0 <= value <= max_wait_s:
        raise BadRequest(f"wait must be between 0 and {max_wait_s:g} seconds, got {text!r}")
    return value
