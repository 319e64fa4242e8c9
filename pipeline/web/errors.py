"""Error responses: JSON for scripts (``/api/...`` and ``/healthz``), an HTML page for people.

Every error, expected or not, goes through :func:`error_response`; an unexpected exception is
logged with its traceback and answered with a bare 500 (never a traceback, never the debugger).
"""

from __future__ import annotations

import logging

from flask import Flask, Response, current_app, jsonify, render_template, request
from werkzeug.exceptions import HTTPException

from pipeline.errors import UploadRejected
from pipeline.web.state import scanner_state

log = logging.getLogger(__name__)

# Seconds a client is asked to wait after a 503 (full queue, stopped worker).
RETRY_AFTER_S = 30


def wants_json() -> bool:
    """Whether the current request came from a script (the API or the health check)."""
    return request.path.startswith("/api/") or request.path == "/healthz"


def error_response(status: int, title: str, message: str, headers: dict | None = None) -> Response:
    """``{"error": {"status", "title", "message"}}`` for scripts, ``error.html`` for people;
    ``headers`` are added to either."""
    if wants_json():
        response = jsonify({"error": {"status": status, "title": title, "message": message}})
    else:
        response = current_app.make_response(render_template("error.html", status=status, title=title, message=message))
    response.status_code = status
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def handle_http_error(exc: HTTPException) -> Response:
    """Werkzeug's HTTP errors (400, 404, 405, 413, 503...), with 413 saying the limit and 503
    asking to retry."""
    message = exc.description or ""
    if exc.code == 413:
        max_upload_bytes = scanner_state().web.max_upload_bytes
        message = f"The upload is larger than this server takes ({max_upload_bytes / (1024 * 1024):.0f} MB)."
    headers = {"Retry-After": str(RETRY_AFTER_S)} if exc.code == 503 else None
    return error_response(exc.code or 500, exc.name, message, headers)


def handle_upload_rejected(exc: UploadRejected) -> Response:
    """An upload the scanner cannot use: 415 (not a supported type) or 422 (unusable content)."""
    title = "Unsupported file type" if exc.status == 415 else "Cannot use this file"
    return error_response(exc.status, title, exc.message)


def handle_unexpected_error(exc: Exception) -> Response:
    """Anything else: logged with its traceback, answered with a 500 that reveals nothing."""
    log.exception("unhandled error on %s %s", request.method, request.path)
    return error_response(
        500, "Internal Server Error", "Something went wrong on the server; the details are in its log."
    )


def register_error_handlers(app: Flask) -> None:
    """Install the handlers on the app (not a blueprint: 404s of unknown paths and 413s raised
    while the body is read must reach them too)."""
    app.register_error_handler(HTTPException, handle_http_error)
    app.register_error_handler(UploadRejected, handle_upload_rejected)
    app.register_error_handler(Exception, handle_unexpected_error)
