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
from tests.web.fakes import four_people, result_task

VERDICT_TIMEOUT_MS = 180_000
PHONE = {"width": 390, "height": 844}
# The smallest text a chart may draw, in CSS pixels: below this, labels are hard to read on a phone.
MIN_LABEL_PX = 10

sync_api = pytest.importorskip("playwright.sync_api")


pytestmark = pytest.mark.slow  # a real browser


@pytest.fixture(scope="module")
def live_app(detector, scorer, tmp_path_factory):
    """The app with the real models, and its upload folder."""
    upload_dir = tmp_path_factory.mktemp("browser-uploads")
    app = create_app(detector, scorer, ScanConfig(), WebConfig(upload_dir=str(upload_dir)))
    yield app, upload_dir
    app.extensions["deepfake_scanner"].close()


@pytest.fixture(scope="module")
def live_server(live_app):
    """The app on waitress, on a free port of 127.0.0.1, in a thread of this process."""
    app, upload_dir = live_app
    server = build_waitress_server(app, "127.0.0.1", 0, threads=4, max_upload_bytes=app.config["MAX_CONTENT_LENGTH"])
    thread = threading.Thread(target=server.run, name="waitress", daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.effective_port}", upload_dir
    server.close()
    thread.join(10)


def guarded_page(context):
    """A new page of ``context`` that may talk to 127.0.0.1 only; collects blocked requests
    (``page.blocked``) and console errors (``page.errors``)."""
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
    return page


@pytest.fixture
def page(browser):
    """A desktop page (1200x900) that may talk to 127.0.0.1 only."""
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    yield guarded_page(context)
    context.close()


@pytest.fixture
def phone_page(browser):
    """A phone (390x844 CSS pixels at 3x, touch, mobile viewport rules) that may talk to 127.0.0.1 only."""
    context = browser.new_context(viewport=PHONE, device_scale_factor=3, is_mobile=True, has_touch=True)
    yield guarded_page(context)
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
    # the evidence: the frame boxed, as big as decoded (1280x720)
    page.wait_for_function(
        "() => { const i = document.getElementById('frame'); return i.complete && i.naturalWidth === 1280; }"
    )
    # overlays appear beside the plain crops when asked for, and load only then
    assert not page.locator("img.overlay").first.is_visible()
    page.click("label[for=saliency-toggle]")
    page.wait_for_function(
        "() => Array.from(document.querySelectorAll('img.overlay')).every(i => i.complete && i.naturalWidth === 256)"
    )
    assert page.locator("img.overlay").count() == 3 and page.locator("img.thumb").first.is_visible()
    # a face's time marks its point on the chart, and a point marks its face
    page.click('.time-link[data-face="1"]')
    assert selected_faces(page) == {"dots": ["1"], "figures": ["1"]}
    assert page.eval_on_selector("#chart circle.selected", "c => getComputedStyle(c).r") == "8px"
    page.click('#chart circle.series-dot[data-face="2"]')
    assert selected_faces(page) == {"dots": ["2"], "figures": ["2"]}
    # the frame's time marks the faces of that frame
    page.click("#frame-card .time-link")
    assert len(selected_faces(page)["dots"]) == 1
    facts = page.inner_text(".facts")
    assert "1280 × 720" in facts and "3.0 s" in facts and "frames sampled\n3" in facts.lower()
    page.screenshot(path=str(tmp_path / "result.png"), full_page=True)
    assert (tmp_path / "result.png").stat().st_size > 10_000
    assert page.blocked == [] and page.errors == []
    assert list(upload_dir.iterdir()) == []


def selected_faces(page) -> dict:
    """Which chart points and thumbnails are marked selected, by face index."""
    return page.evaluate(
        """() => ({
            dots: Array.from(document.querySelectorAll('#chart circle.selected')).map(c => c.dataset.face),
            figures: Array.from(document.querySelectorAll('.face.selected')).map(f => f.dataset.face),
        })"""
    )


def sideways_overflow_px(page) -> int:
    """How far the page scrolls sideways (0: it fits the viewport's width)."""
    return page.evaluate("document.documentElement.scrollWidth - window.innerWidth")


# the on-screen size of every text of the SVGs matching a selector, in CSS pixels
SVG_TEXT_SIZES_JS = """sel => Array.from(document.querySelectorAll(sel)).flatMap(svg => {
    const k = svg.getScreenCTM().a;
    return Array.from(svg.querySelectorAll('text')).map(t => parseFloat(getComputedStyle(t).fontSize) * k);
})"""
# pairs of the chart's texts whose boxes on screen overlap, as "text / text"
OVERLAPPING_LABELS_JS = """() => {
    const boxes = Array.from(document.querySelectorAll('#chart svg text'))
        .map(t => [t.textContent, t.getBoundingClientRect()]);
    const overlaps = [];
    boxes.forEach(([a, p], i) => boxes.slice(i + 1).forEach(([b, q]) => {
        if (p.left < q.right && q.left < p.right && p.top < q.bottom && q.top < p.bottom) overlaps.push(a + ' / ' + b);
    }));
    return overlaps;
}"""


def test_job_page_fits_a_phone(phone_page, live_server, clip_dir, tmp_path):
    page = phone_page
    base_url, upload_dir = live_server
    page.goto(base_url + "/")
    assert sideways_overflow_px(page) == 0
    upload(page, base_url, clip_dir / "face.mp4")
    page.wait_for_selector("#verdict", timeout=VERDICT_TIMEOUT_MS)
    page.wait_for_selector("#chart svg.chart-svg")
    page.wait_for_function(
        "() => { const i = document.getElementById('frame'); return i.complete && i.naturalWidth > 0; }"
    )
    assert page.evaluate("window.innerWidth") == PHONE["width"]
    assert sideways_overflow_px(page) == 0
    # chart and gauge labels are readable: at least MIN_LABEL_PX on screen, none over another
    chart_px = page.evaluate(SVG_TEXT_SIZES_JS, "#chart svg")
    gauge_px = page.evaluate(SVG_TEXT_SIZES_JS, "svg.gauge")
    assert len(chart_px) > 8 and min(chart_px) >= MIN_LABEL_PX, chart_px
    assert len(gauge_px) == 3 and min(gauge_px) >= MIN_LABEL_PX, gauge_px
    assert page.locator("#chart text.tick-x").count() >= 2
    assert page.evaluate(OVERLAPPING_LABELS_JS) == []
    # the people table fits, or scrolls inside its own box
    box = page.eval_on_selector(
        "#tracks-box",
        "b => ({right: b.getBoundingClientRect().right, fits: b.scrollWidth <= b.clientWidth,"
        " overflow: getComputedStyle(b).overflowX})",
    )
    assert box["right"] <= PHONE["width"] and (box["fits"] or box["overflow"] in ("auto", "scroll")), box
    assert page.eval_on_selector("#frame", "i => i.getBoundingClientRect().width") <= PHONE["width"]
    # overlays beside the crops still fit; a tapped time marks its point
    page.tap("label[for=saliency-toggle]")
    page.tap('.time-link[data-face="0"]')
    assert selected_faces(page) == {"dots": ["0"], "figures": ["0"]}
    assert sideways_overflow_px(page) == 0
    shot = tmp_path / "phone.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.is_file() and shot.stat().st_size > 10_000
    assert Image.open(shot).width == PHONE["width"] * 3  # the whole page, no wider than the phone
    assert page.blocked == [] and page.errors == []
    assert list(upload_dir.iterdir()) == []


def people_job(live_app) -> str:
    """A finished job of :func:`tests.web.fakes.four_people` (two people counted, two left
    out), put in the live app's queue as its worker would; its id."""
    state = live_app[0].extensions["deepfake_scanner"]
    job_id = state.jobs.submit("video", "four.mp4", result_task(four_people(), 0.75))
    assert state.jobs.wait(job_id, 30)["state"] == "done"
    return job_id


# how the chart draws each person, by person number: counted or not, line dashes, opacity, legend text
CHART_PEOPLE_JS = """() => Array.from(document.querySelectorAll('#chart g.series')).map(g => {
    const line = g.querySelector('polyline');
    const item = document.querySelector('#chart-legend li[data-track="' + g.dataset.track + '"]');
    return {
        person: Number(g.dataset.track) + 1,
        counted: g.dataset.counted === 'true',
        dashed: line ? getComputedStyle(line).strokeDasharray !== 'none' : null,
        opacity: parseFloat(getComputedStyle(g).opacity),
        legend: item ? item.textContent : null,
    };
})"""


@pytest.mark.parametrize("device", ["desktop", "phone"])
def test_people_left_out_are_told_apart_in_the_chart_and_the_table(device, page, phone_page, live_app, live_server):
    page = phone_page if device == "phone" else page
    base_url, _ = live_server
    page.goto(f"{base_url}/jobs/{people_job(live_app)}")
    page.wait_for_selector("#chart svg.chart-svg")
    people = {p["person"]: p for p in page.evaluate(CHART_PEOPLE_JS)}
    assert {n: p["counted"] for n, p in people.items()} == {1: True, 2: True, 3: False, 4: False}
    # counted people: solid and opaque; left out: faded, dashed (person 4 has one dot: no line)
    assert [people[n]["dashed"] for n in (1, 2, 3)] == [False, False, True]
    assert people[1]["opacity"] == people[2]["opacity"] == 1 and people[3]["opacity"] < 1 > people[4]["opacity"]
    assert "sets the verdict" in people[2]["legend"]
    assert (
        "left out: a still picture" in people[3]["legend"] and "left out: seen in too few frames" in people[4]["legend"]
    )
    assert page.locator("#chart circle.series-dot").count() == 25
    # the table: who counted and why, the one who set the verdict
    rows = page.locator("#people tbody tr")
    assert rows.count() == 4 and page.locator("#people tr.left-out").count() == 2
    assert "sets the verdict" in rows.nth(1).inner_text() and "small faces weighed down" in rows.nth(1).inner_text()
    assert "left out: a still picture (photo, poster, screen)" in rows.nth(2).inner_text()
    assert "left out: seen in too few frames" in rows.nth(3).inner_text()
    # on a phone: the page does not scroll sideways, the table scrolls in its own box with the person in view
    assert sideways_overflow_px(page) == 0
    box = page.eval_on_selector(
        "#tracks-box",
        "b => ({right: b.getBoundingClientRect().right, fits: b.scrollWidth <= b.clientWidth,"
        " overflow: getComputedStyle(b).overflowX})",
    )
    width = page.evaluate("window.innerWidth")
    assert box["right"] <= width and (box["fits"] or box["overflow"] in ("auto", "scroll")), box
    page.eval_on_selector("#tracks-box", "b => { b.scrollLeft = b.scrollWidth; }")
    person_left = page.eval_on_selector("#person-3 td.person", "td => td.getBoundingClientRect().left")
    box_left = page.eval_on_selector("#tracks-box", "b => b.getBoundingClientRect().left")
    assert abs(person_left - box_left) <= 1  # sticky: still at the left edge
    assert page.blocked == [] and page.errors == []


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
