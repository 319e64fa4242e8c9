"""The Flask app factory: upload a clip or an image, follow its job, read the verdict.

Routes (people / scripts), in :mod:`pipeline.web.routes`:

- ``GET /``: the upload page; ``POST /score``: the same upload as a plain HTML form (303 to the
  job page); ``GET /jobs/<id>``: progress, then the verdict, chart and faces.
- ``POST /api/v1/score`` (multipart field ``file``, optional ``?wait=S``): 202 with the job, or
  200 when it finished within ``S`` seconds; ``GET /api/v1/jobs/<id>``: the job;
  ``GET /api/v1/jobs/<id>/faces/<n>.jpg``: a face crop, from memory; ``.../saliency/<n>.jpg``:
  the same crop with its saliency map; ``.../frame.jpg``: the worst face's frame, every face
  boxed and scored; ``GET /healthz``.

The models are built once by the caller and passed to :func:`create_app`; one worker thread
runs every scoring job (:mod:`pipeline.web.jobs`). Uploads (:mod:`pipeline.web.uploads`) are
written under a random name in a private folder (mode 0700), checked by content, and deleted
when their job ends, whatever happens. The user's file name is only ever shown (escaped), never
used as a path, and nothing uploaded is served back by path: face crops, overlays and the
frame are JPEGs held by the job in memory and dropped with it. Errors (:mod:`pipeline.web.errors`)
are JSON for scripts and a page for people; every response carries the headers of
:mod:`pipeline.web.security`.
"""

from __future__ import annotations

from typing import cast

from flask import Flask
from flask.json.provider import DefaultJSONProvider

from pipeline.faces.detector import Detector
from pipeline.models.scorer import Scorer
from pipeline.scan.analyze import ScanConfig
from pipeline.web.errors import register_error_handlers
from pipeline.web.presentation import page_facts
from pipeline.web.routes import bp as routes_blueprint
from pipeline.web.scoring import threshold_text
from pipeline.web.security import add_security_headers
from pipeline.web.state import EXTENSION_KEY, ScannerState, WebConfig
from pipeline.web.uploads import (
    MAX_DISPLAY_NAME_CHARS,
    UPLOAD_FIELD,
    UploadRequest,
    display_name,
)

__all__ = [
    "EXTENSION_KEY",
    "MAX_DISPLAY_NAME_CHARS",
    "UPLOAD_FIELD",
    "ScannerState",
    "UploadRequest",
    "WebConfig",
    "create_app",
    "display_name",
]


def create_app(
    detector: Detector, scorer: Scorer, config: ScanConfig | None = None, web: WebConfig | None = None
) -> Flask:
    """The web app around models built once by the caller.

    ``detector``: a :class:`pipeline.faces.detect.FaceDetector`; ``scorer``: what
    :func:`pipeline.models.factory.load_scorer` gives (any registered family); ``config``: scan settings
    (threshold, sampling, aggregation); ``web``: limits. The app starts one worker thread;
    ``app.extensions["deepfake_scanner"].close()`` stops it.
    """
    config = config or ScanConfig()
    web = web or WebConfig()
    app = Flask(__name__)
    app.request_class = UploadRequest
    app.config.update(MAX_CONTENT_LENGTH=web.max_upload_bytes)
    # keep the order the facts are written in (app.json is Flask's default provider)
    cast(DefaultJSONProvider, app.json).sort_keys = False
    app.debug = False  # never: the debugger runs arbitrary code for whoever reaches it
    app.extensions[EXTENSION_KEY] = ScannerState(detector, scorer, config, web)
    app.context_processor(page_facts)
    app.add_template_filter(threshold_text, "threshold_text")  # a result's thresholds, as the page states them
    app.after_request(add_security_headers)
    register_error_handlers(app)
    app.register_blueprint(routes_blueprint)
    return app
