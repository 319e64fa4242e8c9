"""The web app through Flask's test client, with the real ffmpeg, MTCNN and Meso-4."""

from __future__ import annotations

import io
import json
import re
import threading
import time

import numpy as np
import pytest
from PIL import Image

from pipeline.faces.detect import DetectorConfig
from pipeline.scan.analyze import ScanConfig
from pipeline.web.app import WebConfig, create_app
from tests.helpers import astronaut_rgb, ffmpeg

API = "/api/v1/score"
WAIT = "?wait=120"


# --- helpers and fixtures ----------------------------------------------------------------


def png_bytes(rgb: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def face_png() -> bytes:
    return png_bytes(astronaut_rgb())


@pytest.fixture(scope="module")
def noface_png() -> bytes:
    """A smooth colour ramp: nothing MTCNN takes for a face."""
    ramp = np.linspace(0, 255, 320, dtype=np.uint8)
    rgb = np.stack([np.tile(ramp, (240, 1)), np.tile(ramp[::-1], (240, 1)), np.full((240, 320), 90, np.uint8)], axis=2)
    return png_bytes(rgb)


@pytest.fixture(scope="module")
def audio_only_m4a(tmp_path_factory):
    path = tmp_path_factory.mktemp("audio") / "tone.m4a"
    ffmpeg("-f", "lavfi", "-i", "sine=frequency=440:duration=1", "-c:a", "aac", str(path))
    return path.read_bytes()


@pytest.fixture(scope="module")
def index_only_mp4(clip_dir, tmp_path_factory) -> bytes:
    """An MP4 with its index (moov) first and its frames cut off: ffmpeg probes it, decodes nothing."""
    path = tmp_path_factory.mktemp("faststart") / "faststart.mp4"
    ffmpeg("-i", str(clip_dir / "face.mp4"), "-c", "copy", "-movflags", "+faststart", str(path))
    data, offset = path.read_bytes(), 0
    while data[offset + 4 : offset + 8] != b"mdat":
        offset += int.from_bytes(data[offset : offset + 4], "big")
    return data[: offset + 16]


@pytest.fixture
def upload_dir(tmp_path):
    return tmp_path / "uploads"


@pytest.fixture
def make_app(detector, scorer, upload_dir):
    """Build apps around the session's models; their workers are stopped afterwards, and the
    upload folder must then be empty."""
    apps = []

    def make(*, config: ScanConfig | None = None, detector_=None, **web_fields):
        app = create_app(
            detector_ or detector, scorer, config or ScanConfig(), WebConfig(upload_dir=str(upload_dir), **web_fields)
        )
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.extensions["deepfake_scanner"].close()
    assert list(upload_dir.iterdir()) == []


@pytest.fixture
def app(make_app):
    return make_app()


@pytest.fixture
def client(app):
    return app.test_client()


def post_file(client, name: str, data: bytes, url: str = API + WAIT, field: str = "file"):
    return client.post(url, data={field: (io.BytesIO(data), name)}, content_type="multipart/form-data")


def assert_empty(upload_dir) -> None:
    assert list(upload_dir.iterdir()) == [], "an upload was left on disk"


def assert_json_error(response, status: int, fragment: str = "") -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    error = response.get_json()["error"]
    assert error["status"] == status and fragment.lower() in error["message"].lower()
    return error


def assert_html_error(response, status: int, fragment: str = "") -> str:
    assert response.status_code == status
    assert response.mimetype == "text/html"
    page = response.get_data(as_text=True)
    assert f"Error {status}" in page and fragment.lower() in page.lower() and "Traceback" not in page
    return page


# --- pages, health, headers ----------------------------------------------------------------


def test_healthz(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "ok" and body["model"] == "mesonet-meso4-df" and body["threshold"] == 0.5
    assert body["queue"]["worker_alive"] and body["queue"]["queued"] == 0


def test_index_page_uses_only_local_assets(client):
    response = client.get("/")
    assert response.status_code == 200 and response.mimetype == "text/html"
    page = response.get_data(as_text=True)
    assert 'action="/score"' in page and 'name="file"' in page and 'enctype="multipart/form-data"' in page
    assert "1 = fake" in page and "threshold" in page
    # every asset is on this server: no scheme, no protocol-relative URL
    for url in re.findall(r'(?:src|href)="([^"]*)"', page):
        assert not re.match(r"^(?:[a-z]+:)?//", url, re.IGNORECASE), url
    for asset in ("/static/style.css", "/static/app.js"):
        assert asset in page
        static = client.get(asset)
        assert static.status_code == 200 and b"http://" not in static.data.replace(b"http://www.w3.org/2000/svg", b"")
        assert b"https://" not in static.data


def test_security_headers(client):
    for url in ("/", "/healthz"):
        headers = client.get(url).headers
        assert "default-src 'none'" in headers["Content-Security-Policy"]
        assert "script-src 'self'" in headers["Content-Security-Policy"]
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["X-Frame-Options"] == "DENY"


def test_no_debug_mode_and_no_traceback_on_errors(make_app):
    app = make_app()

    def broken():
        raise RuntimeError("secret internals")

    app.add_url_rule("/api/v1/broken", "api_broken", broken)
    app.add_url_rule("/broken", "broken", broken)
    assert app.debug is False and not app.config["DEBUG"] and not app.config["PROPAGATE_EXCEPTIONS"]
    client = app.test_client()
    error = assert_json_error(client.get("/api/v1/broken"), 500)
    assert "secret internals" not in error["message"]
    page = assert_html_error(client.get("/broken"), 500)
    assert "secret internals" not in page


@pytest.mark.parametrize(
    "url, status, as_json",
    [
        ("/api/v1/jobs/no-such-job", 404, True),  # unknown job id
        ("/api/v1/jobs/" + "A" * 22, 404, True),  # well-formed but unknown
        ("/api/v1/jobs/no-such-job/faces/0.jpg", 404, True),  # thumbnail of an unknown job
        ("/jobs/no-such-job", 404, False),  # the job page
        ("/static/../app.py", 404, False),  # no way out of static/
        ("/static/%2e%2e/app.py", 404, False),
        ("/nothing-here", 404, False),
        ("/api/v1/nothing-here", 404, True),
    ],
)
def test_unknown_things_are_404(client, url, status, as_json):
    response = client.get(url)
    if as_json:
        assert_json_error(response, status)
    else:
        assert response.status_code == status and response.mimetype == "text/html"


def test_wrong_method_is_json_405(client):
    assert_json_error(client.get(API), 405)


# --- upload errors -----------------------------------------------------------------------


def test_missing_field_is_400(client, face_png, upload_dir):
    assert_json_error(post_file(client, "face.png", face_png, field="video"), 400, "field 'file'")
    assert_json_error(client.post(API, data={}, content_type="multipart/form-data"), 400, "field 'file'")
    assert_html_error(post_file(client, "face.png", face_png, url="/score", field="upload"), 400)
    assert_empty(upload_dir)


def test_no_file_chosen_is_400(client, upload_dir):
    # what a browser sends when the form is submitted without a file
    assert_json_error(post_file(client, "", b""), 400, "no file")
    assert_empty(upload_dir)


def test_bad_wait_is_400(client, face_png):
    assert_json_error(post_file(client, "face.png", face_png, url=API + "?wait=soon"), 400, "wait")
    assert_json_error(post_file(client, "face.png", face_png, url=API + "?wait=100000"), 400, "wait")


def test_too_large_is_413(make_app, face_png, upload_dir):
    client = make_app(max_upload_bytes=10_000).test_client()
    assert len(face_png) > 10_000
    assert_json_error(post_file(client, "face.png", face_png), 413, "larger than")
    assert_html_error(post_file(client, "face.png", face_png, url="/score"), 413, "larger than")
    assert_empty(upload_dir)


def _half(data: bytes) -> bytes:
    return data[: len(data) // 2]


@pytest.mark.parametrize(
    "name, content, status, fragment",
    [
        ("notes.mp4", "clip:notes.mp4", 415, "not an image or a video"),  # text named .mp4
        ("truncated.mp4", "clip:truncated.mp4", 422, "moov atom not found"),  # half an mp4: no index
        ("empty.mp4", "clip:empty.mp4", 422, "empty"),  # zero bytes
        ("random.png", "random", 415, "not an image or a video"),  # noise named .png
        ("half.png", "half-png", 422, "image cannot be decoded"),  # truncated PNG
        ("tone.m4a", "audio", 415, "no video stream"),  # audio only, a real container
        ("list.mp4", "playlist", 415, "not an image or a video"),  # HLS playlist: never given to ffmpeg
        ("fake.mp4", "ftyp-garbage", 422, "looks like mp4/mov video"),  # mp4 signature, garbage after
        ("cut.mp4", "index-only", 422, "no frame of this video"),  # probes fine, no frame decodes
    ],
)
@pytest.mark.parametrize("url", [API + WAIT, "/score"])
def test_wrong_content_is_415_or_422(
    client, clip_dir, face_png, audio_only_m4a, index_only_mp4, upload_dir, name, content, status, fragment, url
):
    if content.startswith("clip:"):
        data = (clip_dir / content.split(":", 1)[1]).read_bytes()
    else:
        data = {
            "random": bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8)),
            "half-png": _half(face_png),
            "audio": audio_only_m4a,
            "playlist": b"#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1,\nfile:///etc/passwd\n#EXT-X-ENDLIST\n",
            "ftyp-garbage": b"\x00\x00\x00\x18ftypisom" + bytes(range(256)) * 8,
            "index-only": index_only_mp4,
        }[content]
    response = post_file(client, name, data, url=url)
    if url.startswith("/api/"):
        error = assert_json_error(response, status, fragment)
        assert str(upload_dir) not in error["message"]  # the private path is never shown
    else:
        assert str(upload_dir) not in assert_html_error(response, status, fragment)
    assert_empty(upload_dir)


def test_clip_longer_than_the_cap_is_422(make_app, clip_dir, upload_dir):
    client = make_app(max_duration_s=1.0).test_client()
    assert_json_error(post_file(client, "face.mp4", (clip_dir / "face.mp4").read_bytes()), 422, "up to 1 s")
    assert_empty(upload_dir)


def test_full_queue_is_503_and_uploads_wait_on_disk_only_while_queued(make_app, detector, face_png, upload_dir):
    gate, entered = threading.Event(), threading.Event()

    class GatedDetector:
        config = detector.config

        def detect(self, frames):
            entered.set()
            gate.wait(60)
            return detector.detect(frames)

    client = make_app(detector_=GatedDetector(), max_queued=1).test_client()
    try:
        first = post_file(client, "1.png", face_png, url=API)
        assert first.status_code == 202 and entered.wait(30)
        second = post_file(client, "2.png", face_png, url=API)
        assert second.status_code == 202 and second.headers["Location"] == second.get_json()["links"]["self"]
        assert second.get_json()["state"] == "queued" and second.get_json()["progress"]["jobs_ahead"] == 0
        queued_page = client.get(second.get_json()["links"]["page"]).get_data(as_text=True)
        assert "Waiting in the queue" in queued_page and 'http-equiv="refresh"' in queued_page
        assert len(list(upload_dir.iterdir())) == 2  # the running and the waiting upload
        response = post_file(client, "3.png", face_png, url=API)
        assert_json_error(response, 503, "busy")
        assert response.headers["Retry-After"]
        assert len(list(upload_dir.iterdir())) == 2  # the refused upload is gone
    finally:
        gate.set()
    for job in (first, second):
        done = client.get(job.get_json()["links"]["self"] + "").get_json()
        app_state = client.application.extensions["deepfake_scanner"]
        done = app_state.jobs.wait(done["id"], 60)
        assert done["state"] == "done" and done["result"]["status"] == "ok"
    assert_empty(upload_dir)


# --- scoring ------------------------------------------------------------------------------


def test_image_with_a_face(client, face_png, upload_dir):
    response = post_file(client, "astronaut.png", face_png)
    assert response.status_code == 200
    job = response.get_json()
    assert job["state"] == "done" and job["kind"] == "image" and job["filename"] == "astronaut.png"
    result = job["result"]
    assert result["status"] == "ok" and 0.0 <= result["p_fake"] <= 1.0
    assert result["label"] == ("FAKE" if result["p_fake"] >= 0.5 else "REAL")
    assert result["p_fake"] < 0.5  # a real photograph
    assert result["threshold"] == 0.5 and result["model"]["name"] == "mesonet-meso4-df"
    assert "1 = fake" in result["p_fake_meaning"]
    assert result["media"] == {
        **result["media"],
        "kind": "image",
        "width": 512,
        "height": 512,
        "frames_sampled": 1,
        "duration_s": None,
    }
    assert result["media"]["faces_found"] == len(result["faces"]) >= 1
    face = result["faces"][0]
    thumbnail = client.get(face["thumbnail_url"])
    assert thumbnail.status_code == 200 and thumbnail.mimetype == "image/jpeg"
    assert Image.open(io.BytesIO(thumbnail.data)).size == (256, 256)
    # the evidence: Grad-CAM over the crop, and the image itself with the face boxed
    overlay = client.get(face["saliency_url"])
    assert overlay.status_code == 200 and Image.open(io.BytesIO(overlay.data)).size == (256, 256)
    assert overlay.data != thumbnail.data
    assert result["frame"] == {**result["frame"], "width": 512, "height": 512, "timestamp_s": 0.0}
    frame = client.get(result["frame"]["url"])
    assert frame.status_code == 200 and Image.open(io.BytesIO(frame.data)).size == (512, 512)
    assert result["model"]["summary"] == (
        "Meso-4 published with MesoNet (Afchar et al. 2018), trained on MesoNet's Deepfake set "
        "(mesonet-meso4-df); says FAKE at p_fake ≥ 0.50"
    )
    assert job["total_s"] >= result["processing_s"] > 0
    page = client.get(job["links"]["page"]).get_data(as_text=True)
    assert 'id="verdict"' in page and result["label"] in page and f"{result['p_fake']:.3f}" in page
    assert 'class="thumb"' in page and 'id="chart"' not in page  # no time axis for a still image
    assert_empty(upload_dir)


def test_image_without_a_face(client, noface_png, upload_dir):
    job = post_file(client, "ramp.png", noface_png).get_json()
    result = job["result"]
    assert job["state"] == "done" and result["status"] == "no_face"
    assert result["p_fake"] is None and result["label"] is None and result["faces"] == []
    page = client.get(job["links"]["page"]).get_data(as_text=True)
    assert "No face found" in page and "p_fake" in page
    assert_empty(upload_dir)


def test_clip_with_a_face(client, clip_dir, upload_dir):
    response = post_file(client, "face.mp4", (clip_dir / "face.mp4").read_bytes())
    job = response.get_json()
    assert response.status_code == 200 and job["state"] == "done" and job["kind"] == "video"
    result = job["result"]
    assert result["status"] == "ok" and result["label"] in ("FAKE", "REAL") and result["p_fake"] < 0.3
    media = result["media"]
    assert (media["width"], media["height"]) == (1280, 720) and media["duration_s"] == pytest.approx(3.0, abs=0.1)
    # at 1 fps the face jumps ~420 px between samples, so the tracker may see up to 3 people
    assert media["frames_sampled"] == 3 and media["faces_found"] == 3 and 1 <= media["tracks"] <= 3
    assert job["progress"]["frames_done"] == job["progress"]["frames_total"] == 3
    p = [f["p_fake"] for f in result["faces"]]
    assert p == sorted(p, reverse=True)  # worst first
    assert sorted(f["timestamp_s"] for f in result["faces"]) == [0.0, 1.0, 2.0]
    assert all(client.get(f["thumbnail_url"]).status_code == 200 for f in result["faces"])
    assert all(client.get(f["saliency_url"]).status_code == 200 for f in result["faces"])
    # the frame of the worst face, decoded again and boxed: one face in each frame of this clip
    frame = result["frame"]
    assert (frame["width"], frame["height"], frame["n_faces"]) == (1280, 720, 1)
    assert frame["timestamp_s"] in {f["timestamp_s"] for f in result["faces"]}
    assert Image.open(io.BytesIO(client.get(frame["url"]).data)).size == (1280, 720)
    assert 0 < result["evidence_s"] < result["processing_s"] + 5
    assert sum(t["n_faces"] for t in result["tracks"]) == 3 and len(result["tracks"]) == media["tracks"]
    # track_max: one counted person's score is the clip's p_fake, and every person says why they count or not
    (decider,) = [t for t in result["tracks"] if t["sets_verdict"]]
    assert decider["sets_clip_p_fake"] and decider["counted"]
    assert decider["verdict_score"] == pytest.approx(result["p_fake"], abs=1e-4)
    assert all(t["reason_text"] and 0.35 <= t["size_weight"] <= 1.0 for t in result["tracks"])
    page = client.get(job["links"]["page"]).get_data(as_text=True)
    assert 'id="chart"' in page and page.count('class="thumb"') == 3 and "Frames sampled" in page
    assert page.count('class="overlay"') == 3 and 'id="frame"' in page
    data = json.loads(
        re.search(r'<script type="application/json" id="job-data">(.*?)</script>', page, re.DOTALL).group(1)
    )
    assert data["result"]["p_fake"] == result["p_fake"]
    assert_empty(upload_dir)


def test_clip_without_a_face(client, clip_dir, upload_dir):
    job = post_file(client, "noface.mp4", (clip_dir / "noface.mp4").read_bytes()).get_json()
    assert job["result"]["status"] == "no_face" and job["result"]["p_fake"] is None
    assert job["result"]["media"]["frames_sampled"] == 2
    assert_empty(upload_dir)


def test_sampled_frames_are_capped(make_app, clip_dir, upload_dir):
    client = make_app(config=ScanConfig(max_frames=2)).test_client()
    job = post_file(client, "face.mp4", (clip_dir / "face.mp4").read_bytes()).get_json()
    assert job["result"]["media"]["frames_sampled"] == 2


def test_async_job_is_polled_until_done(client, clip_dir, upload_dir):
    response = post_file(client, "face.mp4", (clip_dir / "face.mp4").read_bytes(), url=API)
    assert response.status_code == 202
    url = response.headers["Location"]
    deadline = time.monotonic() + 120
    while (job := client.get(url).get_json())["state"] in ("queued", "running"):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert job["state"] == "done" and job["result"]["status"] == "ok"
    assert_empty(upload_dir)


def test_form_upload_redirects_to_the_job_page(client, face_png, upload_dir):
    response = post_file(client, "astronaut.png", face_png, url="/score")
    assert response.status_code == 303
    page_url = response.headers["Location"]
    job_id = page_url.rsplit("/", 1)[-1]
    client.application.extensions["deepfake_scanner"].jobs.wait(job_id, 60)
    page = client.get(page_url).get_data(as_text=True)
    assert 'id="verdict"' in page and "threshold 0.50" in page and "mesonet-meso4-df" in page
    assert_empty(upload_dir)


@pytest.mark.parametrize(
    "name",
    [
        "../../x.png",  # climbs out of the upload folder
        "..\\..\\x.png",  # the same, Windows style
        "/tmp/x.png",  # absolute
        "a/../../../x.png",
        "<img src=x onerror=alert(1)>.png",  # markup in a name is shown as text
    ],
)
def test_file_names_never_become_paths(client, face_png, upload_dir, tmp_path, name):
    job = post_file(client, name, face_png).get_json()
    assert job["state"] == "done" and job["result"]["status"] == "ok"
    assert "/" not in job["filename"] and "\\" not in job["filename"] and job["filename"] not in (".", "..")
    assert not (tmp_path / "x.png").exists() and not (upload_dir.parent.parent / "x.png").exists()
    page = client.get(job["links"]["page"]).get_data(as_text=True)
    assert "<img src=x" not in page
    assert_empty(upload_dir)


def test_concurrent_uploads_never_run_the_models_at_once(make_app, detector, face_png, clip_dir, upload_dir):
    class CountingDetector:
        config = detector.config
        active = peak = 0
        lock = threading.Lock()

        def detect(self, frames):
            with self.lock:
                self.active += 1
                self.peak = max(self.peak, self.active)
            try:
                time.sleep(0.05)
                return detector.detect(frames)
            finally:
                with self.lock:
                    self.active -= 1

    counting = CountingDetector()
    app = make_app(detector_=counting)
    uploads = [("face.png", face_png), ("face.mp4", (clip_dir / "face.mp4").read_bytes())] * 3
    results: list = [None] * len(uploads)

    def send(i):
        results[i] = post_file(app.test_client(), *uploads[i]).get_json()

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(uploads))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(180)
    assert all(r["state"] == "done" and r["result"]["status"] == "ok" for r in results)
    assert len({r["id"] for r in results}) == len(uploads)
    assert counting.peak == 1
    for kind in ("image", "video"):  # the same input gives the same answer under load
        assert len({r["result"]["p_fake"] for r in results if r["kind"] == kind}) == 1
    assert_empty(upload_dir)


def test_scoring_failure_is_a_failed_job_with_a_message(make_app, face_png, upload_dir):
    class BrokenDetector:
        config = DetectorConfig()

        def detect(self, frames):
            raise RuntimeError("detector broke")

    client = make_app(detector_=BrokenDetector()).test_client()
    job = post_file(client, "face.png", face_png).get_json()
    assert job["state"] == "failed" and "detector broke" in job["error"]
    assert "Could not scan" in client.get(job["links"]["page"]).get_data(as_text=True)
    assert_empty(upload_dir)
