"""Clips that are not plain videos with a header, through the web API (Flask's test client, the real
ffmpeg, MTCNN and Meso-4): containers that state no duration against ``--max-duration``, and animated
images (GIF, WebP, APNG), which are clips (:mod:`pipeline.video.animated`)."""

from __future__ import annotations

import dataclasses
import io
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageSequence

from pipeline.scan.analyze import ScanConfig, VideoResult
from pipeline.scan.records import VideoRow
from pipeline.video.decode import iter_frames
from pipeline.video.ffmpeg_bin import ffmpeg_exe
from pipeline.video.probe import VideoInfo
from pipeline.web import scoring
from pipeline.web.app import WebConfig, create_app
from pipeline.web.scoring import UploadRejected, build_result, check_upload
from tests.helpers import astronaut_rgb
from tests.web.fakes import FakeScorer

API_WAIT = "/api/v1/score?wait=120"
REFERENCE_CLIP = "videos/real/ffpp_original_634.mp4"  # under ../shared/data
REFERENCE_SIZE_WH = (1280, 720)
FRAME_INTERVAL_MS = 500  # 2 frames a second, 4 s: 4 samples at the web app's 1 fps


# --- fixtures and helpers ----------------------------------------------------------------


@pytest.fixture
def upload_dir(tmp_path):
    return tmp_path / "uploads"


@pytest.fixture
def make_app(detector, scorer, upload_dir):
    """Build apps around the session's models (MesoNet DF); their workers are stopped afterwards,
    and the upload folder must then be empty."""
    apps = []

    def make(*, config: ScanConfig | None = None, **web_fields):
        app = create_app(detector, scorer, config or ScanConfig(), WebConfig(upload_dir=str(upload_dir), **web_fields))
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.extensions["deepfake_scanner"].close()
    assert list(upload_dir.iterdir()) == [], "an upload was left on disk"


def post(client, name: str, data: bytes):
    return client.post(API_WAIT, data={"file": (io.BytesIO(data), name)}, content_type="multipart/form-data")


def scored(client, name: str, data: bytes) -> dict:
    """The finished job of one upload (asserting it was accepted and done)."""
    response = post(client, name, data)
    assert response.status_code == 200, response.get_data(as_text=True)
    job = response.get_json()
    assert job["state"] == "done", job
    return job


def rejected(client, name: str, data: bytes, status: int) -> str:
    response = post(client, name, data)
    assert response.status_code == status, response.get_data(as_text=True)
    return response.get_json()["error"]["message"]


def run_ffmpeg_to_pipe(*args: str) -> bytes:
    """ffmpeg's output written to a pipe (``pipe:1``), so its muxer can never seek back."""
    proc = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-nostdin", *args, "pipe:1"],
        capture_output=True,  # stdout is a pipe, never a file the muxer could seek in
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    return proc.stdout


def container_duration_text(path: Path) -> str:
    """What ``ffmpeg -i`` prints after "Duration:" (``N/A`` when the container states none)."""
    proc = subprocess.run([ffmpeg_exe(), "-hide_banner", "-i", str(path)], capture_output=True, timeout=60)
    text = proc.stderr.decode(errors="replace")
    return text.split("Duration:", 1)[1].split(",", 1)[0].strip()


@pytest.fixture(scope="module")
def webm_without_duration(tmp_path_factory) -> Path:
    """A 12 s WebM (VP8, 320x240, 10 fps, test bars: no face) written through a pipe, as browsers'
    MediaRecorder and live captures write them: no duration in its header."""
    path = tmp_path_factory.mktemp("webm") / "recording.webm"
    # the source ends by itself (no -t): the muxer never learns the length, and cannot seek back
    path.write_bytes(
        run_ffmpeg_to_pipe(
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x240:rate=10:duration=12",
            "-c:v",
            "libvpx",
            "-deadline",
            "realtime",
            "-cpu-used",
            "8",
            "-f",
            "webm",
        )  # fmt: skip
    )
    assert container_duration_text(path) == "N/A"
    return path


# --- no duration in the container: the web app's cap holds -------------------------------------


def test_webm_without_duration_over_the_cap_is_422_naming_its_length(make_app, webm_without_duration):
    client = make_app(max_duration_s=10).test_client()
    message = rejected(client, "recording.webm", webm_without_duration.read_bytes(), 422)
    assert "12 s long" in message and "up to 10 s" in message and "measured" in message


def test_webm_without_duration_under_the_cap_is_scored_over_its_whole_length(make_app, webm_without_duration):
    # 6 frames at most: at 1 fps without the measured length they would span only the first 6 s
    client = make_app(max_duration_s=60, config=ScanConfig(max_frames=6)).test_client()
    job = scored(client, "recording.webm", webm_without_duration.read_bytes())
    result = job["result"]
    assert job["kind"] == "video" and result["status"] == "no_face"  # test bars
    media = result["media"]
    assert media["duration_s"] == pytest.approx(12.0, abs=0.2) and media["duration_source"] == "packets"
    assert media["frames_sampled"] == 6 and media["sample_fps"] == pytest.approx(0.5, abs=0.01)
    assert media["covered_s"] == pytest.approx(12.0, abs=0.2) and media["reached_end"] is True
    assert media["container"] == "Matroska/WebM" and media["stream_index"] == 0
    assert media["sample_aspect_ratio"] == "1:1" and media["color_transfer"] is None
    assert media["tone_mapped"] is None and media["rotation_guess_deg"] is None
    page = client.get(job["links"]["page"]).get_data(as_text=True)
    assert "the whole clip" in page and "measured" in page


def _without_duration(info: VideoInfo) -> VideoInfo:
    return dataclasses.replace(info, duration_s=None, duration_source="")


@pytest.mark.parametrize(
    "max_duration_s, outcome",
    [
        (600.0, 422),  # a cap is set: a clip of unknown length cannot be held to it
        (None, "video"),  # no cap: taken, and scored as far as the frame cap reaches
    ],
)
def test_clip_whose_length_cannot_be_measured(monkeypatch, webm_without_duration, max_duration_s, outcome):
    # the packet pass failed (a damaged or pathological file): the probe knows no duration
    real_probe = scoring.probe_video
    monkeypatch.setattr(scoring, "probe_video", lambda path, **kw: _without_duration(real_probe(path, **kw)))
    if outcome == 422:
        with pytest.raises(UploadRejected) as caught:
            check_upload(webm_without_duration, ScanConfig(), max_duration_s=max_duration_s)
        assert caught.value.status == 422
        assert "cannot be told" in caught.value.message and "up to 600 s" in caught.value.message
    else:
        checked = check_upload(webm_without_duration, ScanConfig(), max_duration_s=max_duration_s)
        assert checked.kind == outcome and checked.info.duration_s is None


def test_unmeasurable_clip_is_422_through_the_api(make_app, monkeypatch, webm_without_duration):
    real_probe = scoring.probe_video
    monkeypatch.setattr(scoring, "probe_video", lambda path, **kw: _without_duration(real_probe(path, **kw)))
    client = make_app(max_duration_s=60).test_client()
    message = rejected(client, "recording.webm", webm_without_duration.read_bytes(), 422)
    assert "no duration" in message and "up to 60 s" in message


def test_partial_coverage_is_a_note_in_the_result():
    # the row of a clip whose length stayed unknown and whose samples hit the frame cap
    row = VideoRow("x.webm", "no_face", n_frames=40, duration_s=None, covered_s=40.0, reached_end=False, sample_fps=1.0)
    payload, _ = build_result(
        VideoResult(row), kind="video", config=ScanConfig(), scorer=FakeScorer(), job_id="j", max_thumbnails=0
    )
    assert payload["media"]["reached_end"] is False and payload["media"]["covered_s"] == 40.0
    assert any("first 40 s" in note["text"] and "no length" in note["text"] for note in payload["notes"])
    assert [note["kind"] for note in payload["notes"]] == ["partial_coverage"]


def test_case_without_duration_is_held_to_the_cap_and_scored_whole(make_app, shared_cases):
    """``no_duration_face_after_70s.mkv``: 82 s, no duration in its header, the face only after 70 s."""
    data = (shared_cases / "no_duration_face_after_70s.mkv").read_bytes()
    capped = make_app(max_duration_s=60).test_client()
    assert "82 s long" in rejected(capped, "capture.mkv", data, 422)
    job = scored(make_app(max_duration_s=None).test_client(), "capture.mkv", data)
    result, media = job["result"], job["result"]["media"]
    assert result["status"] == "ok" and result["media"]["faces_found"] >= 1
    assert media["duration_s"] == pytest.approx(82.0, abs=0.1) and media["duration_source"] == "packets"
    assert media["reached_end"] is True and media["covered_s"] == pytest.approx(82.0, abs=0.1)
    assert min(f["timestamp_s"] for f in result["faces"]) >= 69.0  # the face only appears after 70 s


# --- animated images are clips -----------------------------------------------------------


@pytest.fixture(scope="module")
def face_frames_rgb(shared_data) -> np.ndarray:
    """The first 4 s of a real FF++ clip at 2 frames a second: uint8 (8, 720, 1280, 3) RGB."""
    proc = subprocess.run(
        [ffmpeg_exe(), "-v", "error", "-nostdin", "-i", str(shared_data / REFERENCE_CLIP), "-t", "4"]
        + ["-vf", f"fps={1000 // FRAME_INTERVAL_MS}", "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1"],
        capture_output=True,
        timeout=120,
        check=True,
    )
    width, height = REFERENCE_SIZE_WH
    frames = np.frombuffer(proc.stdout, dtype=np.uint8).reshape(-1, height, width, 3)
    assert len(frames) == 8
    return frames


def mp4_bytes(frames_rgb: np.ndarray, *, lossless: bool) -> bytes:
    """The frames as an MP4 at the animation's rate: H.264 RGB with no loss (``lossless``), or
    the ordinary kind (4:2:0, CRF 18)."""
    height, width = frames_rgb.shape[1:3]
    codec = ["-c:v", "libx264rgb", "-qp", "0"] if lossless else ["-c:v", "libx264", "-crf", "18", "-pix_fmt", "yuv420p"]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "frames.mp4"
        subprocess.run(
            [ffmpeg_exe(), "-v", "error", "-nostdin", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}"]
            + ["-r", str(1000 / FRAME_INTERVAL_MS), "-i", "pipe:0", *codec, str(path)],
            input=np.ascontiguousarray(frames_rgb).tobytes(),
            capture_output=True,
            timeout=120,
            check=True,
        )
        return path.read_bytes()


def animated_bytes(frames_rgb: np.ndarray, image_format: str, **options) -> bytes:
    """The frames as an animated image written by Pillow, each shown ``FRAME_INTERVAL_MS``."""
    images = [Image.fromarray(f) for f in frames_rgb]
    buffer = io.BytesIO()
    images[0].save(
        buffer,
        format=image_format,
        save_all=True,
        append_images=images[1:],
        duration=FRAME_INTERVAL_MS,
        loop=0,
        **options,
    )
    return buffer.getvalue()


def pillow_frames_rgb(data: bytes) -> np.ndarray:
    """Every frame of an animated image as Pillow (libwebp, zlib, its GIF decoder) decodes it."""
    with Image.open(io.BytesIO(data)) as image:
        return np.stack([np.asarray(frame.convert("RGB")) for frame in ImageSequence.Iterator(image)])


@pytest.fixture(scope="module")
def reference_p_fake(face_frames_rgb, detector, scorer, tmp_path_factory) -> float:
    """p_fake of the same frames as an ordinary MP4 (CRF 18), through the API."""
    upload_dir = tmp_path_factory.mktemp("reference")
    app = create_app(detector, scorer, ScanConfig(), WebConfig(upload_dir=str(upload_dir)))
    try:
        job = scored(app.test_client(), "reference.mp4", mp4_bytes(face_frames_rgb, lossless=False))
    finally:
        app.extensions["deepfake_scanner"].close()
    assert job["result"]["status"] == "ok" and job["result"]["media"]["faces_found"] == 4
    return job["result"]["p_fake"]


# Measured with MesoNet DF on these 8 frames (4 sampled), clip p_fake (track_max):
#   ordinary MP4 (CRF 18) 0.319; the frames losslessly (lossless MP4, APNG, lossless WebP) 0.348;
#   GIF 0.327; WebP at Pillow's default quality 80: 0.378.
# Each animated file scores exactly as a lossless MP4 of the pixels Pillow decodes from it (same
# frames sampled at the same times, same colours), except lossy WebP, where ffmpeg's and libwebp's
# YUV-to-RGB conversions differ by 1.4 grey levels on average (0.378 against 0.391).
# Against the ordinary MP4 the differences are the codecs' own: Meso-4 reads fine texture, and the
# MP4's compression alone moves p_fake by 0.029 from the lossless frames; lossy WebP moves it 0.060.
@pytest.mark.slow
@pytest.mark.parametrize(
    "image_format, options, container, same_pixels_tol, reference_tol",
    [
        ("GIF", {}, "animated GIF", 1e-3, 0.05),  # 256 colours, dithered: 0.327 against 0.319
        ("WEBP", {"lossless": True}, "animated WebP", 1e-3, 0.05),  # 0.348 against 0.319
        ("WEBP", {"quality": 80}, "animated WebP", 0.03, 0.08),  # lossy: 0.378 against 0.319
        ("PNG", {}, "animated PNG (APNG)", 1e-3, 0.05),  # lossless: 0.348 against 0.319
    ],
)
def test_animated_image_is_scored_as_a_clip(
    make_app, face_frames_rgb, reference_p_fake, image_format, options, container, same_pixels_tol, reference_tol
):
    data = animated_bytes(face_frames_rgb, image_format, **options)
    client = make_app().test_client()
    job = scored(client, f"face.{image_format.lower()}", data)
    result, media = job["result"], job["result"]["media"]
    assert job["kind"] == "video" and media["kind"] == "video" and media["container"] == container
    assert result["status"] == "ok" and media["frames_sampled"] == 4 and media["faces_found"] >= 4
    assert media["duration_s"] == pytest.approx(4.0, abs=0.6) and media["reached_end"] is True
    assert (media["width"], media["height"]) == REFERENCE_SIZE_WH
    assert sorted({f["timestamp_s"] for f in result["faces"]}) == [0.0, 1.0, 2.0, 3.0]
    # the same pixels as an MP4 with no loss: only the container differs
    same_pixels = scored(client, "same.mp4", mp4_bytes(pillow_frames_rgb(data), lossless=True))["result"]
    assert result["p_fake"] == pytest.approx(same_pixels["p_fake"], abs=same_pixels_tol)
    # the source frames as an ordinary MP4: the codecs differ too
    assert result["p_fake"] == pytest.approx(reference_p_fake, abs=reference_tol)


def test_animation_longer_than_the_cap_is_422(make_app):
    frames = [Image.fromarray(np.full((120, 160, 3), 30 * i, np.uint8)) for i in range(4)]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:], duration=1000, loop=0)  # 4 s
    client = make_app(max_duration_s=2).test_client()
    assert "4 s long" in rejected(client, "long.gif", buffer.getvalue(), 422)


def test_gif_frame_times_are_respected(tmp_path):
    # 5 frames of 0.1 s, then 5 of 0.5 s (3 s in all): sampled at 5 fps, a viewer sees frame 2 at
    # 0.2 s, frame 5 at 0.6 and 0.8 s, frame 6 at 1.0 s ... frame 9 until 3.0 s
    durations_ms = [100] * 5 + [500] * 5
    frames = [Image.fromarray(np.full((120, 160, 3), 20 * i, np.uint8)) for i in range(10)]
    path = tmp_path / "timing.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=durations_ms, loop=0)
    checked = check_upload(path, ScanConfig(), max_duration_s=None)
    assert checked.kind == "video" and checked.container == "animated GIF"
    levels = [int(f.rgb[0, 0, 0]) for f in iter_frames(path, checked.info, sample_fps=5, max_frames=40)]
    shown_from_ms = np.cumsum([0, *durations_ms[:-1]])
    expected = [20 * int(np.searchsorted(shown_from_ms, t_ms, side="right") - 1) for t_ms in range(0, 3000, 200)]
    assert checked.info.duration_s == pytest.approx(3.0) and levels == expected


@pytest.mark.parametrize(
    "image_format, options",
    [
        ("GIF", {}),  # one frame: a still image
        ("GIF", {"save_all": True, "append_images": [], "duration": 100, "loop": 0}),  # saved as an animation of one
        ("WEBP", {"save_all": True, "append_images": [], "duration": 100, "loop": 0}),
        ("PNG", {}),
    ],
)
def test_single_frame_image_stays_an_image(make_app, image_format, options):
    buffer = io.BytesIO()
    Image.fromarray(astronaut_rgb()).save(buffer, format=image_format, **options)
    job = scored(make_app().test_client(), f"face.{image_format.lower()}", buffer.getvalue())
    media = job["result"]["media"]
    assert job["kind"] == "image" and media["kind"] == "image" and media["container"] == image_format
    assert media["frames_sampled"] == 1 and job["result"]["status"] == "ok"
    assert media["covered_s"] is None and media["duration_source"] is None
