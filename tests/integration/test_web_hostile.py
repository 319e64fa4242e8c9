"""The web app under hostile traffic, on the real waitress server on 127.0.0.1: 20 concurrent
uploads, a client that disconnects mid-upload, oversize bodies and traversal names. Right status
codes, no leaked temporary files, and the server stays up."""

from __future__ import annotations

import concurrent.futures as cf
import http.client
import io
import json
import socket
import threading
import time
import uuid

import numpy as np
import pytest

from pipeline.cli.serve import build_waitress_server
from pipeline.scan.analyze import ScanConfig
from pipeline.web.app import WebConfig, create_app
from tests.helpers import astronaut_rgb

MAX_UPLOAD = 8 * 1024 * 1024


def _png(rgb) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def server(detector, scorer, tmp_path_factory):
    upload_dir = tmp_path_factory.mktemp("hostile-uploads")
    app = create_app(
        detector,
        scorer,
        ScanConfig(),
        WebConfig(upload_dir=str(upload_dir), max_upload_bytes=MAX_UPLOAD, max_queued=32),
    )
    srv = build_waitress_server(app, "127.0.0.1", 0, threads=8, max_upload_bytes=MAX_UPLOAD)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    yield {"port": srv.effective_port, "upload_dir": upload_dir}
    srv.close()
    thread.join(10)
    app.extensions["deepfake_scanner"].close()


def _post(port: int, filename: str, data: bytes, wait_s: int = 120) -> tuple[int, dict]:
    boundary = uuid.uuid4().hex
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
            f"Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    conn.request(
        "POST",
        f"/api/v1/score?wait={wait_s}",
        body=body,
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    response = conn.getresponse()
    payload = response.read()
    conn.close()
    try:
        return response.status, json.loads(payload)
    except ValueError:
        return response.status, {"raw": payload[:200]}


def _healthy(port: int) -> bool:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", "/healthz")
    ok = conn.getresponse().status == 200
    conn.close()
    return ok


def _wait_empty(folder, timeout_s: float = 60) -> list:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and list(folder.iterdir()):
        time.sleep(0.2)
    return list(folder.iterdir())


@pytest.mark.slow
def test_twenty_concurrent_uploads(server, clip_dir):
    face = _png(astronaut_rgb())
    noise = _png(np.random.default_rng(0).integers(0, 256, (120, 160, 3), dtype=np.uint8))
    uploads = (
        [("face.png", face, 200)] * 8
        + [("noise.png", noise, 200)] * 4
        + [("clip.mp4", (clip_dir / "face.mp4").read_bytes(), 200)] * 2
        + [("notes.mp4", b"just text\n" * 50, 415)] * 3
        + [("broken.mp4", (clip_dir / "truncated.mp4").read_bytes(), 422)] * 3
    )
    assert len(uploads) == 20
    with cf.ThreadPoolExecutor(20) as pool:
        futures = [pool.submit(_post, server["port"], name, data) for name, data, _ in uploads]
        results = [f.result() for f in futures]
    for (name, _, expected), (status, payload) in zip(uploads, results):
        assert status == expected, (name, status, payload)
        if status == 200:
            assert payload["state"] == "done", payload
    assert _healthy(server["port"])
    assert _wait_empty(server["upload_dir"]) == []  # every upload deleted


def test_client_disconnecting_mid_upload(server):
    face = _png(astronaut_rgb())
    for _ in range(3):
        sock = socket.create_connection(("127.0.0.1", server["port"]), timeout=30)
        boundary = "x" * 16
        head = (
            f"POST /api/v1/score HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; "
            f"boundary={boundary}\r\nContent-Length: {len(face) * 4}\r\n\r\n"
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n\r\n'
        ).encode()
        sock.sendall(head + face[: len(face) // 2])  # half the body, then the client is gone
        sock.close()
    time.sleep(1.0)
    assert _healthy(server["port"])
    assert _wait_empty(server["upload_dir"]) == []
    status, payload = _post(server["port"], "face.png", face)  # and it still serves
    assert status == 200 and payload["state"] == "done"


def test_oversize_upload_is_413_and_leaves_nothing(server):
    status, _ = _post(server["port"], "big.mp4", b"\0" * (MAX_UPLOAD + 1024))
    assert status == 413
    assert _wait_empty(server["upload_dir"]) == []
    assert _healthy(server["port"])


@pytest.mark.parametrize("name", ["../../x.png", "/etc/passwd", "..\\..\\x.png", "a/../../b.png", "\x00.png"])
def test_traversal_names_never_escape(server, name, tmp_path):
    before = set(server["upload_dir"].parent.iterdir())
    status, payload = _post(server["port"], name, _png(astronaut_rgb()))
    assert status == 200 and payload["state"] == "done"
    assert set(server["upload_dir"].parent.iterdir()) == before  # nothing written beside the upload folder
    assert _wait_empty(server["upload_dir"]) == []
