"""pipeline/web/errors.py and security.py: JSON errors for scripts, pages for people, and the
headers every response carries (no model needed)."""

from __future__ import annotations

import logging

import pytest
from werkzeug.exceptions import ServiceUnavailable

from pipeline.web.security import CONTENT_SECURITY_POLICY


@pytest.fixture
def client(modelless_app):
    def busy():
        raise ServiceUnavailable("The server is busy.")

    def broken():
        raise RuntimeError("secret internals")

    for url, view in [("/api/v1/busy", busy), ("/busy", busy), ("/healthz/broken", broken), ("/broken", broken)]:
        modelless_app.add_url_rule(url, url.strip("/").replace("/", "_"), view)
    return modelless_app.test_client()


@pytest.mark.parametrize(
    "url, as_json",
    [
        ("/api/v1/nope", True),  # the API answers scripts in JSON
        ("/healthz/nope", False),  # only /healthz itself is the health check
        ("/nope", False),  # people get a page
        ("/apix", False),  # a prefix that only looks like the API
    ],
)
def test_json_for_scripts_a_page_for_people(client, url, as_json):
    response = client.get(url)
    assert response.status_code == 404
    if as_json:
        assert response.get_json() == {
            "error": {"status": 404, "title": "Not Found", "message": response.get_json()["error"]["message"]}
        }
    else:
        assert response.mimetype == "text/html" and "Error 404" in response.get_data(as_text=True)


@pytest.mark.parametrize("url", ["/api/v1/busy", "/busy"])
def test_503_asks_to_retry(client, url):
    response = client.get(url)
    assert response.status_code == 503 and response.headers["Retry-After"] == "30"


def test_413_states_the_limit_in_mb(client):
    response = client.post("/api/v1/score", data=b"\0" * (2 * 1024 * 1024), content_type="application/octet-stream")
    assert response.status_code == 413
    assert response.get_json()["error"]["message"] == "The upload is larger than this server takes (1 MB)."


def test_unexpected_error_is_logged_not_shown(client, caplog):
    with caplog.at_level(logging.ERROR, logger="pipeline.web.errors"):
        response = client.get("/broken")
    assert response.status_code == 500 and "secret internals" not in response.get_data(as_text=True)
    assert "unhandled error on GET /broken" in caplog.text and "secret internals" in caplog.text


@pytest.mark.parametrize(
    "url, cache_control",
    [
        ("/", "no-store"),  # pages are never cached
        ("/healthz", "no-store"),
        ("/api/v1/nope", "no-store"),  # errors carry the headers too
        ("/broken", "no-store"),
        ("/static/style.css", None),  # static assets keep Flask's own caching
    ],
)
def test_every_response_carries_the_security_headers(client, url, cache_control):
    headers = client.get(url).headers
    assert headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "no-referrer"
    assert headers["X-Frame-Options"] == "DENY"
    if cache_control is None:
        assert "no-store" not in headers.get("Cache-Control", "")
    else:
        assert headers["Cache-Control"] == cache_control


def test_a_routes_own_cache_control_is_kept(modelless_app):
    state = modelless_app.extensions["deepfake_scanner"]
    from pipeline.web.jobs import JobOutcome

    job_id = state.jobs.submit("image", "a.png", lambda progress: JobOutcome({}, (b"\xff\xd8jpeg",)))
    state.jobs.wait(job_id, 10)
    response = modelless_app.test_client().get(f"/api/v1/jobs/{job_id}/faces/0.jpg")
    assert response.status_code == 200 and response.data == b"\xff\xd8jpeg"
    assert response.headers["Cache-Control"] == "private, max-age=3600"
    assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
