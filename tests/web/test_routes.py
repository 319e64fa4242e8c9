"""pipeline/web/routes.py: the URL map (a contract), ``?wait=`` parsing, and routes that need no model."""

from __future__ import annotations

import pytest
from werkzeug.exceptions import BadRequest

from pipeline.web.routes import wait_seconds

# every route, with the methods it answers (HEAD and OPTIONS are Flask's own)
ROUTES = {
    "/": {"GET"},
    "/score": {"POST"},
    "/jobs/<job_id>": {"GET"},
    "/api/v1/score": {"POST"},
    "/api/v1/jobs/<job_id>": {"GET"},
    "/api/v1/jobs/<job_id>/faces/<int:index>.jpg": {"GET"},
    "/healthz": {"GET"},
    "/static/<path:filename>": {"GET"},
}


def test_url_map_is_the_documented_routes(modelless_app):
    routes = {rule.rule: set(rule.methods) - {"HEAD", "OPTIONS"} for rule in modelless_app.url_map.iter_rules()}
    assert routes == ROUTES
    assert "scanner" in modelless_app.blueprints


@pytest.mark.parametrize(
    "text, expected",
    [
        (None, 0.0),  # no ?wait=: answer at once
        ("", 0.0),  # ?wait= with nothing
        ("0", 0.0),
        ("2.5", 2.5),  # fractions of a second
        ("300", 300.0),  # exactly the cap
    ],
)
def test_wait_seconds(text, expected):
    assert wait_seconds(text, 300.0) == expected


@pytest.mark.parametrize(
    "text, match",
    [
        ("soon", "wait must be a number of seconds, got 'soon'"),  # not a number
        ("-1", "wait must be between 0 and 300 seconds, got '-1'"),  # negative
        ("301", "between 0 and 300 seconds"),  # above the cap
        ("nan", "between 0 and 300 seconds"),  # NaN compares false with every bound
        ("inf", "between 0 and 300 seconds"),
    ],
)
def test_wait_seconds_rejects(text, match):
    with pytest.raises(BadRequest, match=match):
        wait_seconds(text, 300.0)


def test_healthz_names_the_models_settings(modelless_app):
    body = modelless_app.test_client().get("/healthz").get_json()
    assert body["status"] == "ok" and body["model"] == "stand-in-scorer"
    assert body["threshold"] == 0.7 and body["aggregation"] == "track_max"
    assert list(body) == ["status", "model", "threshold", "aggregation", "queue"]  # written order kept


def test_job_links_point_at_the_api_and_the_page(modelless_app):
    from pipeline.web.jobs import JobOutcome

    state = modelless_app.extensions["deepfake_scanner"]
    job_id = state.jobs.submit("image", "a.png", lambda progress: JobOutcome({"verdict": "real"}))
    state.jobs.wait(job_id, 10)
    body = modelless_app.test_client().get(f"/api/v1/jobs/{job_id}").get_json()
    assert body["links"] == {"self": f"/api/v1/jobs/{job_id}", "page": f"/jobs/{job_id}"}
    assert body["state"] == "done" and body["result"] == {"verdict": "real"}


def test_job_page_of_a_failed_job(modelless_app):
    state = modelless_app.extensions["deepfake_scanner"]

    def boom(progress):
        raise RuntimeError("decoder gave up")

    job_id = state.jobs.submit("video", "<b>clip</b>.mp4", boom)
    state.jobs.wait(job_id, 10)
    page = modelless_app.test_client().get(f"/jobs/{job_id}")
    assert page.status_code == 200 and page.mimetype == "text/html"
    text = page.get_data(as_text=True)
    assert "Could not scan" in text and "decoder gave up" in text
    assert "&lt;b&gt;clip&lt;/b&gt;.mp4" in text and "<b>clip</b>" not in text  # the name is escaped
