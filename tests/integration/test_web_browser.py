"""The web app in a real browser: Debian's chromium driven by Playwright, against the real
waitress server on 127.0.0.1, with the real models. Any request to another host is blocked and
fails the test."""

from __future__ import annotations

import logging
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
DESKTOP = {"width": 1280, "height": 800}
# The tallest a boxed frame may be drawn, as a share of the window's height (the page caps it at 70%).
FRAME_MAX_VH = 0.75
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
    """The app on waitress as ``serve`` builds it (its default threads), on a free port of
    127.0.0.1, in a thread of this process."""
    app, upload_dir = live_app
    server = build_waitress_server(app, "127.0.0.1", 0, max_upload_bytes=app.config["MAX_CONTENT_LENGTH"])
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
def desktop_page(browser):
    """A 1280x800 desktop window at 1x that may talk to 127.0.0.1 only."""
    context = browser.new_context(viewport=DESKTOP, device_scale_factor=1)
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
    frame = frame_box(page)
    assert frame["width"] == pytest.approx(frame["cardWidth"], abs=1) and shape_kept(frame), frame
    assert frame["height"] <= FRAME_MAX_VH * 900, frame
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


def frame_box(page) -> dict:
    """The boxed frame as drawn: its size and top (page coordinates) in CSS pixels, its decoded
    size, and the width of its card's content."""
    return page.eval_on_selector(
        "#frame",
        """i => { const r = i.getBoundingClientRect(), fig = i.closest('figure').getBoundingClientRect();
            return {width: r.width, height: r.height, top: r.top + window.scrollY, cardWidth: fig.width,
                    natural: [i.naturalWidth, i.naturalHeight]}; }""",
    )


def shape_kept(frame: dict) -> bool:
    """Whether the frame is drawn at its own shape: no stretching and no letterbox bars, so the
    boxes drawn in it sit on the faces whatever its size on screen."""
    natural_w, natural_h = frame["natural"]
    return abs(frame["width"] / frame["height"] - natural_w / natural_h) < 0.01


def full_page_screenshot(page, path, scale: int) -> Image.Image:
    """A screenshot of the whole page, checked: a real image exactly as wide as the window (at
    ``scale`` device pixels a CSS pixel), so nothing reaches past its right edge."""
    page.screenshot(path=str(path), full_page=True)
    assert path.is_file() and path.stat().st_size > 10_000
    shot = Image.open(path)
    assert shot.width == page.evaluate("window.innerWidth") * scale
    return shot


# every cell of the people table that is not fully in view: outside the window's width, cut by a
# box that scrolls or clips (the table's own one included), or its text running out of it
PEOPLE_CELLS_HIDDEN_JS = """() => {
    const problems = new Set();
    document.querySelectorAll('#people tbody td').forEach(td => {
        const name = td.closest('tr').id + ' ' + (td.dataset.label || td.className);
        const r = td.getBoundingClientRect();
        const shown = r.width > 0 && r.height > 0 && getComputedStyle(td).visibility === 'visible';
        if (!shown) problems.add(name + ': not shown');
        if (r.left < 0 || r.right > window.innerWidth) problems.add(name + ': outside the window at ' + r.right);
        if (td.scrollWidth > td.clientWidth + 1) problems.add(name + ': its text runs out of it');
        for (let box = td.parentElement; box !== document.body; box = box.parentElement) {
            const style = getComputedStyle(box);
            if (style.overflowX === 'visible' && style.overflowY === 'visible') continue;
            const b = box.getBoundingClientRect(), what = box.id || box.tagName.toLowerCase();
            if (box.scrollWidth > box.clientWidth) problems.add(what + ' scrolls sideways');
            if (r.left < b.left - 0.5 || r.right > b.right + 0.5) problems.add(name + ': cut by ' + what);
        }
    });
    return Array.from(problems);
}"""
# the column names each person's cells show before their values (on a phone; 'none' on a desktop)
PEOPLE_CELL_LABELS_JS = """() => Array.from(document.querySelectorAll('#people tbody tr')).map(tr =>
    Array.from(tr.querySelectorAll('td')).map(td => getComputedStyle(td, '::before').content))"""


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
# what a threshold's label touches on screen, as "label / thing": a person's line (the box around
# the whole polyline) or dot, any line or shaded zone of the plot, another text, another key's
# stroke; or the chart's edge. Its own key stroke, just before it, is left out. Empty: the labels
# are clear of everything, whatever the people's scores.
THRESHOLD_LABEL_CLASHES_JS = """() => {
    const svg = document.querySelector('#chart svg'), edge = svg.getBoundingClientRect();
    const hit = (p, q) => p.left < q.right && q.left < p.right && p.top < q.bottom && q.top < p.bottom;
    const clashes = [];
    svg.querySelectorAll('text.threshold-label').forEach(label => {
        const p = label.getBoundingClientRect();
        const inside = p.left >= edge.left && p.right <= edge.right && p.top >= edge.top;
        if (!inside) clashes.push(label.textContent + ' / the edge');
        svg.querySelectorAll('polyline, circle, line, rect, text').forEach(other => {
            if (other === label || other === label.previousElementSibling) return;
            if (hit(p, other.getBoundingClientRect())) {
                clashes.push(label.textContent + ' / ' + (other.getAttribute('class') || other.tagName) + ' ' +
                             (other.textContent || ''));
            }
        });
    });
    return clashes;
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
    assert page.evaluate(THRESHOLD_LABEL_CLASHES_JS) == []
    # the people table: every cell in view, none scrolled away in a box of its own, each named
    assert page.evaluate(PEOPLE_CELLS_HIDDEN_JS) == []
    assert page.evaluate(PEOPLE_CELL_LABELS_JS) == [
        ["none", '"Mean p_fake"', '"In the verdict"', '"Faces"', '"Seen"', '"Face size"', '"Max p_fake"']
    ]
    frame = frame_box(page)
    assert frame["width"] <= PHONE["width"] and shape_kept(frame), frame
    # overlays beside the crops still fit; a tapped time marks its point
    page.tap("label[for=saliency-toggle]")
    page.tap('.time-link[data-face="0"]')
    assert selected_faces(page) == {"dots": ["0"], "figures": ["0"]}
    assert sideways_overflow_px(page) == 0
    assert page.evaluate(PEOPLE_CELLS_HIDDEN_JS) == []
    full_page_screenshot(page, tmp_path / "phone.png", scale=3)  # the whole page, no wider than the phone
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
    # the threshold's label clear of the four people's lines and dots
    assert page.evaluate(THRESHOLD_LABEL_CLASHES_JS) == [] and page.evaluate(OVERLAPPING_LABELS_JS) == []
    # the page does not scroll sideways and every cell of every person is in view: a table on a
    # desktop, a card per person on a phone, each value under its column's name
    assert sideways_overflow_px(page) == 0
    assert page.evaluate(PEOPLE_CELLS_HIDDEN_JS) == []
    labels = page.evaluate(PEOPLE_CELL_LABELS_JS)
    assert len(labels) == 4 and all(cells == labels[0] for cells in labels)
    if device == "phone":
        assert labels[0][1:] == [
            '"Mean p_fake"',
            '"In the verdict"',
            '"Faces"',
            '"Seen"',
            '"Face size"',
            '"Max p_fake"',
        ]
    else:
        assert set(labels[0]) == {"none"} and page.locator("#people thead").is_visible()
    assert page.blocked == [] and page.errors == []


@pytest.mark.parametrize("device", ["desktop", "phone"])
def test_threshold_labels_of_a_band_are_clear_of_the_lines(device, page, phone_page, live_app, live_server):
    """With an UNCERTAIN band the chart has two threshold lines and two labels: both in the key
    above the plot, apart, clear of every line and dot, inside the chart."""
    page = phone_page if device == "phone" else page
    base_url, _ = live_server
    state = live_app[0].extensions["deepfake_scanner"]
    job_id = state.jobs.submit(
        "video", "band.mp4", result_task(four_people(), 0.55, threshold=0.477, uncertain_below=0.3)
    )
    assert state.jobs.wait(job_id, 30)["state"] == "done"
    page.goto(f"{base_url}/jobs/{job_id}")
    page.wait_for_selector("#chart svg.chart-svg")
    labels = page.locator("#chart text.threshold-label").all_text_contents()
    assert labels == ["FAKE at 0.477", "REAL under 0.30"]
    assert page.locator("#chart line.threshold").count() == 2
    assert page.evaluate(THRESHOLD_LABEL_CLASHES_JS) == [] and page.evaluate(OVERLAPPING_LABELS_JS) == []
    assert page.blocked == [] and page.errors == []


def test_portrait_frame_is_capped_on_a_desktop(desktop_page, live_server, clip_dir, tmp_path):
    """A phone's portrait clip (720x1280 upright) on a 1280x800 desktop: its boxed frame is drawn
    at most FRAME_MAX_VH of the window tall, at its own shape, and the people table comes first."""
    page = desktop_page
    base_url, upload_dir = live_server
    upload(page, base_url, clip_dir / "portrait_rot90.mp4")
    page.wait_for_selector("#verdict", timeout=VERDICT_TIMEOUT_MS)
    page.wait_for_function(
        "() => { const i = document.getElementById('frame'); return i && i.complete && i.naturalWidth > 0; }"
    )
    frame = frame_box(page)
    assert frame["natural"] == [720, 1280]
    assert 0.5 * DESKTOP["height"] <= frame["height"] <= FRAME_MAX_VH * DESKTOP["height"], frame
    assert shape_kept(frame), frame  # the boxes drawn in it still sit on the faces
    # the people table above the frame, within the first two windows of the page
    people_top = page.eval_on_selector(".people-card", "c => c.getBoundingClientRect().top + window.scrollY")
    assert people_top < frame["top"] and people_top < 1.75 * DESKTOP["height"], (people_top, frame)
    assert page.evaluate(PEOPLE_CELLS_HIDDEN_JS) == [] and page.evaluate(THRESHOLD_LABEL_CLASHES_JS) == []
    assert sideways_overflow_px(page) == 0
    shot = full_page_screenshot(page, tmp_path / "desktop-portrait.png", scale=1)
    # the page ends soon after the frame: a capped frame, not a 1,800 px one
    assert shot.height < frame["top"] + frame["height"] + 1.5 * DESKTOP["height"]
    assert page.blocked == [] and page.errors == []
    assert list(upload_dir.iterdir()) == []


def test_viewing_a_job_page_leaves_the_server_log_quiet(page, live_app, live_server, caplog):
    """A finished job page asks for its 25 face thumbnails at once over the browser's 6
    connections: the server has the threads for them, so waitress never queues a request and
    logs no "Task queue depth" warning, even with its queue logger at WARNING again (``serve``
    turns it down to errors for bursts from several viewers at once)."""
    base_url, _ = live_server
    job_id = people_job(live_app)
    images = []
    page.on("response", lambda response: "/faces/" in response.url and images.append(response.status))
    caplog.set_level(logging.WARNING, logger="waitress.queue")
    caplog.set_level(logging.WARNING, logger="waitress")
    page.goto(f"{base_url}/jobs/{job_id}")
    page.wait_for_function(
        "Array.from(document.querySelectorAll('img.thumb')).every(i => i.complete && i.naturalWidth > 0)"
    )
    assert len(images) >= 25 and set(images) <= {200, 304}
    waitress_records = [r for r in caplog.records if r.name.startswith("waitress")]
    assert waitress_records == [], [r.getMessage() for r in waitress_records]
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
