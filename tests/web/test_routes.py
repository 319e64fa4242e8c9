"""pipeline/web/routes.py: the URL map (a contract), ``?wait=`` parsing, and routes that need no
model: the job page and the evidence images of results built from stand-in faces."""

from __future__ import annotations

import io
import re
import time

import numpy as np
import pytest
from PIL import Image
from werkzeug.exceptions import BadRequest

from pipeline.scan.analyze import ScanConfig
from pipeline.scan.notes import EVIDENCE_RULE_TEXT
from pipeline.web.jobs import JobOutcome
from pipeline.web.routes import wait_seconds
from pipeline.web.scoring import Evidence, boxed_frame, build_result
from pipeline.web.security import CONTENT_SECURITY_POLICY
from tests.web.fakes import CROP_PX, FakeScorer, face, four_people, ok_result, result_task

# every route, with the methods it answers (HEAD and OPTIONS are Flask's own)
ROUTES = {
    "/": {"GET"},
    "/score": {"POST"},
    "/jobs/<job_id>": {"GET"},
    "/api/v1/score": {"POST"},
    "/api/v1/jobs/<job_id>": {"GET"},
    "/api/v1/jobs/<job_id>/faces/<int:index>.jpg": {"GET"},
    "/api/v1/jobs/<job_id>/saliency/<int:index>.jpg": {"GET"},
    "/api/v1/jobs/<job_id>/frame.jpg": {"GET"},
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
    assert (
        body["uncertain_below"] is None
        and body["label_rule"] == f"FAKE at p_fake >= 0.7, else REAL; {EVIDENCE_RULE_TEXT}"
    )
    # written order kept
    assert list(body) == ["status", "model", "threshold", "uncertain_below", "label_rule", "aggregation", "queue"]


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


# --- the evidence of a finished job: its images and its page -------------------------------


def two_result_task(*, with_evidence: bool = True, threshold: float = 0.7):
    """A job task returning what the worker would for a clip of two people (person 0 at 0.9 in
    four samples, person 1 at 0.1 in four): with ``with_evidence``, saliency maps and the boxed
    frame of a 1920x1080 sample, else none."""

    def task(progress) -> JobOutcome:
        faces = [face(i, 0, 0.9) for i in range(4)] + [face(i, 1, 0.1) for i in range(4)]
        result = ok_result(faces, 0.9, threshold=threshold)
        evidence = Evidence()
        if with_evidence:
            frame_rgb = np.full((1080, 1920, 3), 60, np.uint8)
            maps = np.linspace(0, 1, CROP_PX * CROP_PX, dtype=np.float32).reshape(CROP_PX, CROP_PX)
            evidence = Evidence(np.stack([maps] * 8), boxed_frame(frame_rgb, faces, faces[0], threshold), 0.1)
        payload, images = build_result(
            result,
            kind="video",
            config=ScanConfig(threshold=threshold),
            scorer=FakeScorer(),
            job_id=progress.job_id,
            max_thumbnails=48,
            evidence=evidence,
        )
        return JobOutcome(payload, images.faces_jpeg, images.saliency_jpeg, images.frame_jpeg)

    return task


def finished(app, task) -> str:
    state = app.extensions["deepfake_scanner"]
    job_id = state.jobs.submit("video", "two.mp4", task)
    assert state.jobs.wait(job_id, 10)["state"] == "done"
    return job_id


def jpeg_size(response) -> tuple[int, int]:
    assert response.status_code == 200 and response.mimetype == "image/jpeg"
    assert response.headers["Cache-Control"] == "private, max-age=3600"
    assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    return Image.open(io.BytesIO(response.data)).size


def test_evidence_images_are_served_per_job_from_memory(modelless_app):
    client = modelless_app.test_client()
    job_id = finished(modelless_app, two_result_task())
    bare_id = finished(modelless_app, two_result_task(with_evidence=False))
    result = client.get(f"/api/v1/jobs/{job_id}").get_json()["result"]
    assert result["frame"]["url"] == f"/api/v1/jobs/{job_id}/frame.jpg"
    assert jpeg_size(client.get(result["frame"]["url"])) == (1280, 720)  # shrunk from 1920x1080 for phones
    assert all(jpeg_size(client.get(f["saliency_url"])) == (CROP_PX, CROP_PX) for f in result["faces"])
    assert jpeg_size(client.get(f"/api/v1/jobs/{job_id}/faces/7.jpg")) == (CROP_PX, CROP_PX)
    # another job's images are its own: this one has no frame or overlays, and no index reaches beyond
    bare = client.get(f"/api/v1/jobs/{bare_id}").get_json()["result"]
    assert bare["frame"] is None and {f["saliency_url"] for f in bare["faces"]} == {None}
    for url in (
        f"/api/v1/jobs/{bare_id}/frame.jpg",
        f"/api/v1/jobs/{bare_id}/saliency/0.jpg",
        f"/api/v1/jobs/{job_id}/saliency/8.jpg",
        f"/api/v1/jobs/{job_id[:-1]}x/frame.jpg",
        "/api/v1/jobs/nosuchjob/saliency/0.jpg",
    ):
        response = client.get(url)
        assert response.status_code == 404 and response.mimetype == "application/json", url


def test_evidence_images_expire_with_their_job(make_modelless_app):
    app = make_modelless_app(keep_s=0.3)
    client = app.test_client()
    job_id = finished(app, two_result_task())
    assert client.get(f"/api/v1/jobs/{job_id}/frame.jpg").status_code == 200
    time.sleep(0.5)
    for url in (f"/api/v1/jobs/{job_id}/frame.jpg", f"/api/v1/jobs/{job_id}/saliency/0.jpg"):
        assert client.get(url).status_code == 404


def test_job_page_shows_the_evidence_and_the_caveats(modelless_app):
    client = modelless_app.test_client()
    job_id = finished(modelless_app, two_result_task())
    response = client.get(f"/jobs/{job_id}")
    page = response.get_data(as_text=True)
    verdict = page[page.index('id="verdict"') : page.index("</section>", page.index('id="verdict"'))]
    # the caveats are in words next to the verdict
    assert 'data-kind="tracks_disagree"' in verdict and "person 0 scores 0.90 and person 1 0.10" in verdict
    # the model line is for people: no backticks, no command, no path
    model_line = re.search(r'<dd id="model-line">(.*?)</dd>', verdict, re.DOTALL).group(1)
    assert model_line.startswith("Meso-4 trained by this project on DFDC, FaceForensics++ and MesoNet faces")
    assert "`" not in model_line and "python -m" not in model_line and "/work" not in model_line
    # the boxed frame, and its time pointing at the chart
    assert f'<img id="frame" src="/api/v1/jobs/{job_id}/frame.jpg" width="1280" height="720"' in page
    assert 'class="time-link" data-sample="0"' in page
    # every thumbnail: its overlay (hidden until the box is ticked) and its time pointing at the chart
    assert page.count('class="thumb"') == page.count('class="overlay"') == 8
    assert 'id="saliency-toggle"' in page and 'loading="lazy"' in page
    assert "Grad-CAM saliency: red where" in page  # the method the result says made the overlays (Meso-4's)
    assert all(f'class="time-link" data-face="{i}"' in page for i in range(8))
    assert '<div class="table-scroll" id="tracks-box">' in page
    # the people table right after the chart, above the frame (a tall portrait frame pushes down only the faces)
    assert (
        page.index('id="chart"')
        < page.index('id="tracks-box"')
        < page.index('id="frame-card"')
        < page.index('id="faces"')
    )
    # still nothing the content security policy would block: no inline script or style
    assert re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", page) == ['<script type="application/json" id="job-data">']
    assert " style=" not in page
    assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY


def test_job_page_without_evidence_still_shows_the_verdict(modelless_app):
    job_id = finished(modelless_app, two_result_task(with_evidence=False))
    page = modelless_app.test_client().get(f"/jobs/{job_id}").get_data(as_text=True)
    assert 'id="verdict-label">FAKE<' in page and 'id="frame"' not in page and 'class="overlay"' not in page
    assert 'id="saliency-toggle"' not in page and page.count('class="thumb"') == 8


def people_rows(page: str) -> dict[int, str]:
    """The people table's rows by person number, as HTML."""
    table = page[page.index('<table class="tracks" id="people"') : page.index("</table>")]
    rows = re.finditer(r'<tr class="[^"]*" id="person-(\d+)".*?</tr>', table, re.DOTALL)
    return {int(row.group(1)): row.group(0) for row in rows}


def test_people_table_says_who_was_counted_and_why(modelless_app):
    client = modelless_app.test_client()
    job_id = finished(modelless_app, result_task(four_people(), 0.75))
    page = client.get(f"/jobs/{job_id}").get_data(as_text=True)
    rows = people_rows(page)
    assert sorted(rows) == [0, 1, 2, 3]  # person N is track_id N
    assert 'class="counted"' in rows[0] and 'data-label="In the verdict">counted</td>' in rows[0]
    assert 'class="counted sets-verdict"' in rows[1] and "sets the verdict" in rows[1]
    assert re.search(
        r'<td class="reason"[^>]*>counted, small faces weighed down \(×0\.\d\d: 0\.\d\d counts as 0\.\d\d\)</td>',
        rows[1],
    )
    assert 'class="left-out"' in rows[2] and 'data-counted="false"' in rows[2] and 'data-reason="static"' in rows[2]
    assert "left out: a still picture (photo, poster, screen)" in rows[2]
    assert 'class="left-out"' in rows[3] and "left out: seen in too few frames" in rows[3]
    assert "sets the verdict" not in rows[0] + rows[2] + rows[3]
    # each row: faces, when seen, face size, mean and max p_fake
    assert 'data-label="Faces">8</td>' in rows[1] and "0.0–7.0 s" in rows[1] and "64 px" in rows[1]
    assert "0.900" in rows[1] and "5.0–5.0 s" in rows[3] and "0.950" in rows[3]
    assert 'id="people-count">4 <span class="muted">(2 counted)</span>' in page
    # on a phone each row is a card: every cell but the person's carries its column's name
    headers = re.findall(r'<th[^>]*role="columnheader">([^<]+)</th>', page)
    assert headers == ["Person", "Mean p_fake", "In the verdict", "Faces", "Seen", "Face size", "Max p_fake"]
    assert all(re.findall(r'<td[^>]*role="cell" data-label="([^"]+)"', row) == headers[1:] for row in rows.values())
    # the people before the images: the chart, then the table, then the boxed frame and the faces
    assert page.index('id="chart"') < page.index('class="card people-card"') < page.index('class="card faces-card"')
    assert "people left out of the verdict" in page  # the chart's hint says how they are drawn
    # the JSON: the same people, with the new keys
    result = client.get(f"/api/v1/jobs/{job_id}").get_json()["result"]
    by_person = {t["track_id"] + 1: t for t in result["tracks"]}
    assert {n: (t["counted"], t["reason"], t["sets_verdict"]) for n, t in by_person.items()} == {
        1: (True, "counted", False),
        2: (True, "counted_small_faces", True),
        3: (False, "static", False),
        4: (False, "too_few_faces", False),
    }
    assert by_person[3]["static"] and by_person[2]["size_weight"] < 1.0 == by_person[1]["size_weight"]
    assert by_person[4]["reason_text"] == "left out: seen in too few frames"
    assert all(t["verdict_score"] is not None for t in result["tracks"])


def test_a_left_out_person_under_a_real_verdict_is_listed_with_its_reason(modelless_app):
    faces = [face(i, 0, 0.1) for i in range(10)] + [face(3, 1, 0.9)]
    client = modelless_app.test_client()
    job_id = finished(modelless_app, result_task(faces, 0.1))
    page = client.get(f"/jobs/{job_id}").get_data(as_text=True)
    verdict = page[page.index('id="verdict"') : page.index("</section>", page.index('id="verdict"'))]
    assert 'data-kind="person_left_out"' in verdict and "Person 1 scores 0.90" in verdict
    assert "seen in too few frames" in verdict and "half" not in verdict
    rows = people_rows(page)
    assert 'class="counted sets-verdict"' in rows[0]
    assert 'class="left-out"' in rows[1] and "left out: seen in too few frames" in rows[1]


# --- an UNCERTAIN band: the verdict, the page and the index say it ----------------------------


def verdict_html(page: str) -> str:
    return page[page.index('id="verdict"') : page.index("</section>", page.index('id="verdict"'))]


def test_an_uncertain_verdict_has_its_own_style_sentence_and_rule(modelless_app):
    client = modelless_app.test_client()
    job_id = finished(modelless_app, result_task(one_person_at(0.55), 0.55, threshold=0.7, uncertain_below=0.4))
    result = client.get(f"/api/v1/jobs/{job_id}").get_json()["result"]
    assert result["label"] == "UNCERTAIN" and result["uncertain_below"] == 0.4 and result["threshold"] == 0.7
    assert result["label_rule"] == f"FAKE at p_fake >= 0.7, REAL under 0.4, UNCERTAIN between; {EVIDENCE_RULE_TEXT}"
    assert result["verdict_text"].startswith("The model cannot tell with the confidence it was validated for")
    page = client.get(f"/jobs/{job_id}").get_data(as_text=True)
    verdict = verdict_html(page)
    assert '<section class="card verdict verdict-uncertain" id="verdict" data-label="UNCERTAIN">' in page
    assert 'id="verdict-label">UNCERTAIN<' in verdict
    assert (
        "The model cannot tell with the confidence it was validated for: p_fake 0.550 is between the two "
        "thresholds (REAL under 0.40, FAKE at 0.70 and above), so the verdict is UNCERTAIN." in verdict
    )
    assert "below the threshold" not in verdict  # the one-cut sentence is not said of an UNCERTAIN verdict
    # the gauge: the band between its two thresholds; the rule in the facts
    assert 'class="gauge-uncertain" x="40.0%" y="14" width="30.0%"' in verdict
    assert 'class="gauge-threshold gauge-threshold-low" x1="40.0%"' in verdict and "uncertain 0.40–0.70" in verdict
    rule = '<dd id="label-rule">FAKE at p_fake &gt;= 0.7, REAL under 0.4, UNCERTAIN between; a clip on little face'
    assert rule in verdict
    assert "under the lower one (REAL under 0.40) towards real" in page  # the chart's hint
    # the person's and the faces' scores in the uncertain colour too
    assert '<span class="pill pill-uncertain">0.550</span>' in people_rows(page)[0]
    assert page.count('<span class="pill pill-uncertain">0.550</span>') == 1 + 6
    assert " style=" not in page  # still nothing the content security policy would block
    # a FAKE and a REAL under the same band say which threshold they are on the far side of
    fake_page = client.get(
        f"/jobs/{finished(modelless_app, result_task(one_person_at(0.9), 0.9, threshold=0.7, uncertain_below=0.4))}"
    )
    assert "at or above the FAKE threshold 0.70" in fake_page.get_data(as_text=True)
    real_id = finished(modelless_app, result_task(one_person_at(0.1), 0.1, threshold=0.7, uncertain_below=0.4))
    real_page = client.get(f"/jobs/{real_id}").get_data(as_text=True)
    assert "verdict-real" in real_page and "under the REAL threshold 0.40, so the verdict is REAL." in real_page


def one_person_at(p_fake: float):
    return [face(i, 0, p_fake) for i in range(6)]


def test_the_index_explains_the_band_only_when_the_app_has_one(make_modelless_app):
    band = make_modelless_app(config=ScanConfig(aggregation="track_max", threshold=0.7, uncertain_below=0.4))
    page = band.test_client().get("/").get_data(as_text=True)
    labels = page[page.index('id="labels-explained"') : page.index("</dd>", page.index('id="labels-explained"'))]
    labels = " ".join(labels.split())  # the template's line breaks
    assert '<span class="tag tag-uncertain">UNCERTAIN</span> between' in labels
    assert "when it is under 0.40" in labels and "at least 0.70" in labels
    assert "cannot tell with the confidence it was validated for" in labels
    assert "(FAKE at p_fake &gt;= 0.7, REAL under 0.4, UNCERTAIN between; a clip on little face evidence" in labels
    one_cut = make_modelless_app().test_client().get("/").get_data(as_text=True)
    assert "tag-uncertain" not in one_cut and "UNCERTAIN" not in one_cut
    assert 'otherwise <span class="tag tag-real">REAL</span>' in one_cut
    health = band.test_client().get("/healthz").get_json()
    assert health["uncertain_below"] == 0.4 and "UNCERTAIN between" in health["label_rule"]
