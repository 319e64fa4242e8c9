"""The web app in a real browser: Debian's chromium driven by Playwright, against the real
waitress server on 127.0.0.1, with the real models. Any request to another host is blocked and
fails the test."""

from __future__ import annotations

import threading
from urllib.parse import urlparse

import pytest
from PIL import Image

from pipeline.cli.serve import build_waitress_server
from pipeline.scan.analyze import ScanConfig
from pipeline.web.app import WebConfig, create_app
from tests.helpers import astronaut_rgb

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
VERDICT_TIMEOUT_MS = 180_000

sync_api = pytest.importorskip("playwright.sync_api")


@pytest.fixture(scope="module")
def live_server(detector, scorer, tmp_path_factory):
    """The app on waitress, on a free port of 127.0.0.1, in a thread of this process."""
    upload_dir = tmp_path_factory.mktemp("browser-uploads")
    app = create_app(detector, scorer, ScanConfig(), WebConfig(upload_dir=str(upload_dir)))
    server = build_waitress_server(app, "127.0.0.1", 0, threads=4, max_upload_bytes=app.config["MAX_CONTENT_LENGTH"])
    thread = threading.Thread(target=server.run, name="waitress", daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.effective_port}", upload_dir
    server.close()
    thread.join(10)
    app.extensions["deepfake_scanner"].close()


@pytest.fixture(scope="module")
def browser():
    import os

    if not os.access(CHROMIUM, os.X_OK):
        message = f"{CHROMIUM} is missing (apt-get install chromium)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    """A page that may talk to 127.0.0.1 only; collects blocked requests and console errors."""
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    page = context.new_page()
    page.blocked = []
    page.errors = []

    def guard(route):
        if urlparse(route.request.url).hostname == "127.0.0.1":
            route.continue_()
        else:
            page.blocked.append(route.request.url)
            route.abort()

    page.route("**/*", guard)
    page.on("console", lambda message: message.type == "error" and page.errors.append(message.text))
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    yield page
    context.close()


def upload(page, base_url: str, path) -> None:
    page.goto(base_url + "/")
    page.set_input_files("#file", str(path))
    page.click("#submit")


def test_clip_upload_shows_verdict_chart_and_faces(page, live_server, clip_dir, tmp_path):
    base_url, upload_dir = live_server
    upload(page, base_url, clip_dir / "face.mp4")
    page.wait_for_selector("#verdict", timeout=VERDICT_TIMEOUT_MS)
    assert page.url.startswith(base_url + "/jobs/")
    assert page.inner_text("#verdict-label") in ("FAKE", "REAL")
    p_fake = float(page.inner_text("#p-fake"))
    assert 0.0 <= p_fake <= 1.0
    verdict_text = page.inner_text("#verdict")
    assert "1 = fake" in verdict_text and "threshold 0.50" in verdict_text and "mesonet-meso4-df" in verdict_text
    # the chart: drawn by our script as SVG, one dot per sampled face, and the threshold line
    page.wait_for_selector("#chart svg.chart-svg")
    assert page.locator("#chart svg circle.series-dot").count() == 3
    assert page.locator("#chart svg line.threshold").count() == 1
    assert page.locator("#chart-legend li").count() >= 1
    # the faces, worst first, all loaded
    thumbs = page.locator("img.thumb")
    assert thumbs.count() == 3
    page.wait_for_function(
        "Array.from(document.querySelectorAll('img.thumb')).every(i => i.complete && i.naturalWidth > 0)"
    )
    scores = [float(s) for s in page.locator(".face .pill").all_inner_texts()]
    assert scores == sorted(scores, reverse=True)
    facts = page.inner_text(".facts")
    assert "1280 × 720" in facts and "3.0 s" in facts and "frames sampled\n3" in facts.lower()
    page.screenshot(path=str(tmp_path / "result.png"), full_page=True)
    assert (tmp_path / "result.png").stat().st_size > 10_000
    assert page.blocked == [] and page.errors == []
    assert list(upload_dir.iterdir()) == []


def test_image_upload_shows_verdict_and_face(page, live_server, tmp_path):
    base_url, upload_dir = live_server
    path = tmp_path / "astronaut.jpg"
    Image.fromarray(astronaut_rgb()).save(path, quality=95)
    upload(page, base_url, path)
    page.wait_for_selector("#verdict", timeout=VERDICT_TIMEOUT_MS)
    assert page.inner_text("#verdict-label") == "REAL"
    assert page.locator("img.thumb").count() >= 1 and page.locator("#chart").count() == 0
    page.screenshot(path=str(tmp_path / "image.png"), full_page=True)
    assert page.blocked == [] and page.errors == []
    assert list(upload_dir.iterdir()) == []


def test_wrong_file_gets_a_friendly_message(page, live_server, clip_dir):
    base_url, upload_dir = live_server
    upload(page, base_url, clip_dir / "notes.mp4")
    page.wait_for_selector("#upload-error:not([hidden])")
    message = page.inner_text("#upload-error")
    assert "Unsupported file type" in message and "not an image or a video" in message
    assert page.url == base_url + "/"
    assert page.blocked == [] and list(upload_dir.iterdir()) == []


def test_no_external_requests_on_the_upload_page(page, live_server):
    base_url, _ = live_server
    requests = []
    page.on("request", lambda request: requests.append(request.url))
    page.goto(base_url + "/")
    page.wait_for_load_state("networkidle")
    assert requests and all(urlparse(url).hostname == "127.0.0.1" for url in requests if not url.startswith("data:"))
    assert page.blocked == [] and page.errors == []
