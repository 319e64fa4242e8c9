"""Helpers the tests share: the repository's paths, the project's ffmpeg, and small generated
clips and images. A plain module (``from tests.helpers import ...``); fixtures live in conftest.py."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
SHARED_CASES = REPO_ROOT.parent / "shared" / "cases"
MESONET_DIR = SHARED_DATA / "weights" / "mesonet"


def ffmpeg(*args: str) -> None:
    """Run the project's ffmpeg with ``args``; raise with its stderr on failure."""
    from pipeline.video.ffmpeg_bin import ffmpeg_exe

    proc = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-nostdin", "-y", *args], capture_output=True, timeout=120
    )
    if proc.returncode != 0:
        raise RuntimeError(f"ffmpeg {' '.join(args)} failed: {proc.stderr.decode(errors='replace')}")


def make_lavfi_clip(
    path: Path,
    *,
    size: str = "320x240",
    rate: float = 25,
    duration_s: float = 2.0,
    source: str = "testsrc2",
    extra: tuple[str, ...] = ("-c:v", "libx264", "-pix_fmt", "yuv420p"),
) -> Path:
    """A synthetic clip (no face) from an ffmpeg lavfi source."""
    ffmpeg("-f", "lavfi", "-i", f"{source}=size={size}:rate={rate}", "-t", str(duration_s), *extra, str(path))
    return path


def astronaut_rgb() -> np.ndarray:
    """A real face photo that ships with scikit-image (NASA, public domain): uint8 512x512x3."""
    from skimage import data

    return data.astronaut()


def make_face_clip(
    path: Path, *, duration_s: float = 3.0, rate: int = 25, size_wh=(1280, 720), rotate_display_deg: int | None = None
) -> Path:
    """A still face panned across a frame: the astronaut photo slides horizontally.

    ``size_wh`` is the upright size a viewer sees. With ``rotate_display_deg`` (clockwise) the
    frames are stored turned the other way and carry display-matrix metadata that turns them
    upright again, as a phone does: ``size_wh=(720, 1280), rotate_display_deg=90`` is a
    portrait phone clip coded as 1280x720.
    """
    import cv2

    w, h = size_wh
    face = astronaut_rgb()
    scale = min(h, int(w * 0.6)) / face.shape[0]
    face = cv2.resize(face, (round(face.shape[1] * scale), round(face.shape[0] * scale)), interpolation=cv2.INTER_AREA)
    n = int(duration_s * rate)
    raw = bytearray()
    for i in range(n):
        frame = np.full((h, w, 3), 40, dtype=np.uint8)
        x = int((w - face.shape[1]) * i / max(1, n - 1))
        frame[: face.shape[0], x : x + face.shape[1]] = face
        if rotate_display_deg:
            # store the frame rotated so that applying the display rotation makes it upright again
            k = {90: 1, 180: 2, 270: 3}[rotate_display_deg]
            frame = np.ascontiguousarray(np.rot90(frame, k=k))
        raw += frame.tobytes()
    sh, sw = (frame.shape[0], frame.shape[1])
    from pipeline.video.ffmpeg_bin import ffmpeg_exe

    tmp = path.with_suffix(".tmp.mp4") if rotate_display_deg else path
    proc = subprocess.run(
        [
            ffmpeg_exe(),
            "-hide_banner",
            "-loglevel",
            "error",
            "-y",
            "-f",
            "rawvideo",
            "-pix_fmt",
            "rgb24",
            "-s",
            f"{sw}x{sh}",
            "-r",
            str(rate),
            "-i",
            "pipe:",
            "-c:v",
            "libx264",
            "-pix_fmt",
            "yuv420p",
            "-crf",
            "18",
            str(tmp),
        ],
        input=bytes(raw),
        capture_output=True,
        timeout=120,
    )
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr.decode(errors="replace"))
    if rotate_display_deg:
        # -display_rotation is counter-clockwise; the frames were turned counter-clockwise by k*90
        ffmpeg("-display_rotation", str(-rotate_display_deg), "-i", str(tmp), "-c", "copy", str(path))
        tmp.unlink()
    return path


class StubScorer:
    """Meso-4 stand-in for tests of our own logic: ``p_fake`` = mean pixel / 255 of each 32x32
    crop; records the size of each batch it scores in ``batches``."""

    class spec:
        crop_margin = 1.3
        input_size_px = 32
        resize_interpolation = "area"

    name = "stub"

    def __init__(self):
        self.batches: list[int] = []

    def score_p_fake(self, crops: np.ndarray) -> np.ndarray:
        assert crops.shape[1:] == (32, 32, 3) and crops.dtype == np.uint8
        self.batches.append(len(crops))
        return crops.reshape(len(crops), -1).mean(axis=1) / 255.0


def run_python(code: str, timeout_s: float = 60) -> subprocess.CompletedProcess:
    """``code`` run by a fresh interpreter in the repository root (nothing imported yet: what a
    command imports, and how long it takes, shows), its output captured as text."""
    command = [sys.executable, "-c", code]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout_s, cwd=REPO_ROOT)


BACKBONE_ONNX = REPO_ROOT / "weights" / "effnet_lite0_blocks.onnx"


def write_tiny_head(
    folder: Path, name: str = "tiny_head", *, seed: int = 0, backbone: Path | str = BACKBONE_ONNX, **fields
) -> Path:
    """A backbone-family weights file for tests of our own logic: ``folder/NAME.npz``, a one-layer head
    (mean 0, scale 1, random weights (2816, 1), bias 0) on the real EfficientNet-Lite0 backbone, and its
    sidecar ``NAME.npz.json`` (``backbone``: as given, absolute by default; ``fields`` override the rest)."""
    import json

    from pipeline.models.head import Head
    from pipeline.models.weights import sha256_file, sidecar_path

    rng = np.random.default_rng(seed)
    width = 2816
    head = Head(
        mean=np.zeros(width, dtype=np.float32),
        scale=np.ones(width, dtype=np.float32),
        weights=(rng.normal(0.0, 0.02, (width, 1)).astype(np.float32),),
        biases=(np.zeros(1, dtype=np.float32),),
    )
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.npz"
    head.save(path)
    spec = {
        "name": name,
        "architecture": "effnet-lite0-head",
        "sha256": sha256_file(path),
        "output": "p_fake",
        "input_size_px": 224,
        "input_scale": "(x-127)/128",
        "crop_margin": 0.93,
        "backbone": str(backbone),
        "provenance": "a random head for tests",
        **fields,
    }
    sidecar_path(path).write_text(json.dumps(spec, indent=2))
    return path
