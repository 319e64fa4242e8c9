"""Hostile inputs and interruptions: every input gets a clear status, nothing hangs, nothing is
lost or written twice. Inputs are generated on the fly with ffmpeg, numpy and plain bytes."""

from __future__ import annotations

import csv
import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.cli import score as cli
from pipeline.scan.records import display_path
from tests.helpers import ffmpeg, make_face_clip, make_lavfi_clip

REPO = Path(__file__).resolve().parents[2]
X264 = ("-c:v", "libx264")


def _jpeg_bytes() -> bytes:
    from PIL import Image
    from skimage import data

    buf = io.BytesIO()
    Image.fromarray(data.astronaut()).save(buf, format="JPEG")
    return buf.getvalue()


def _corrupt_middle(src: Path, dst: Path) -> None:
    data = bytearray(src.read_bytes())
    rng = np.random.default_rng(1)
    for start in range(len(data) * 2 // 5, len(data) * 3 // 5, 997):
        data[start : start + 64] = rng.integers(0, 256, 64, dtype=np.uint8).tobytes()
    dst.write_bytes(bytes(data))


@pytest.fixture(scope="module")
def hostile_dir(tmp_path_factory, clip_dir) -> tuple[Path, dict[str, str]]:
    """A folder of hostile inputs and the status each must get (by file name)."""
    d = tmp_path_factory.mktemp("hostile")
    expected: dict[str, str] = {}

    def add(name: str, status: str) -> Path:
        expected[name] = status
        return d / name

    add("empty.mp4", "decode_error").write_bytes(b"")
    face = (clip_dir / "face.mp4").read_bytes()
    add("truncated no moov.mp4", "decode_error").write_bytes(face[: len(face) // 2])
    add("random.mp4", "decode_error").write_bytes(np.random.default_rng(0).bytes(50_000))
    add("text.mp4", "decode_error").write_text("hello, I am a text file\n" * 100)
    add("photo.mp4", "decode_error").write_bytes(_jpeg_bytes())
    ffmpeg(
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=440:duration=1",
        "-c:a",
        "aac",
        "-f",
        "mp4",
        str(add("audio_only.mp4", "decode_error")),
    )
    ffmpeg(
        "-f",
        "lavfi",
        "-i",
        "color=c=black:s=64x64:d=1",
        "-frames:v",
        "0",
        *X264,
        str(add("zero_frames.mp4", "decode_error")),
    )
    make_lavfi_clip(
        add("1x1.mp4", "no_face"), size="1x1", source="color", duration_s=1, extra=(*X264, "-pix_fmt", "yuv444p")
    )
    make_lavfi_clip(
        add("16x16.mp4", "no_face"), size="16x16", source="color", duration_s=1, extra=(*X264, "-pix_fmt", "yuv444p")
    )
    make_lavfi_clip(
        add("8k.mp4", "no_face"),
        size="7680x4320",
        rate=1,
        duration_s=2,
        extra=(*X264, "-preset", "ultrafast", "-pix_fmt", "yuv420p"),
    )
    ts = d / "face_source.ts"
    ffmpeg("-i", str(clip_dir / "face.mp4"), "-c", "copy", str(ts))
    _corrupt_middle(ts, add("broken middle.ts", "ok"))
    ts.unlink()
    ffmpeg(
        "-i",
        str(clip_dir / "face.mp4"),
        "-vf",
        "setpts='PTS*(1+0.5*sin(N/5))'",
        "-fps_mode",
        "vfr",
        *X264,
        "-pix_fmt",
        "yuv420p",
        str(add("vfr.mp4", "ok")),
    )
    for rotation in (90, 180, 270):
        make_face_clip(
            add(f"rot{rotation}.mp4", "ok"),
            duration_s=2,
            size_wh=(720, 1280) if rotation != 180 else (1280, 720),
            rotate_display_deg=rotation,
        )
    for pix_fmt in ("yuv420p10le", "yuv444p"):
        ffmpeg("-i", str(clip_dir / "face.mp4"), *X264, "-pix_fmt", pix_fmt, str(add(f"{pix_fmt}.mp4", "ok")))
    ffmpeg(
        "-i",
        str(clip_dir / "face.mp4"),
        *X264,
        "-pix_fmt",
        "yuv420p",
        "-flags",
        "+ildct+ilme",
        "-x264opts",
        "tff=1",
        str(add("interlaced.mp4", "ok")),
    )
    for name in (
        "with space, comma.mp4",
        "quote\" and 'apostrophe.mp4",
        "new\nline.mp4",
        "=HYPERLINK(1).mp4",
        "-minus.mp4",
        "@at.mp4",
    ):
        add(name, "ok").write_bytes(face)
    raw_name = b"caf\xe9 latin1.mp4"  # not UTF-8
    with open(os.path.join(os.fsencode(d), raw_name), "wb") as f:
        f.write(face)
    expected[display_path(os.fsdecode(raw_name))] = "ok"
    os.mkfifo(add("fifo.mp4", "decode_error"))
    (d / "loop").symlink_to(d)  # a symlink loop: the walk must not hang
    (d / "dangling.mp4").symlink_to(d / "gone.mp4")
    expected["dangling.mp4"] = "error"
    return d, expected


@pytest.fixture
def models(reuse_models):
    """The session's real models, reused by the command line through the factory."""


@pytest.mark.slow
def test_every_hostile_input_gets_its_status(hostile_dir, tmp_path, meso4_df_path, models):
    folder, expected = hostile_dir
    out = tmp_path / "scores.csv"
    started = time.monotonic()
    assert (
        cli.main([str(folder), "-o", str(out), "--weights", str(meso4_df_path), "-q", "--fps", "2", "--timeout", "120"])
        == 0
    )
    assert time.monotonic() - started < 300
    raw = out.read_bytes()
    raw.decode("utf-8")  # valid UTF-8 whatever the file names
    frame = pd.read_csv(out, keep_default_na=False)
    names = [
        Path(p).name if "\n" not in p else p.split("/")[-1]
        for p in frame["video_path"].map(lambda v: v[1:] if v.startswith("'") else v)
    ]
    got = dict(zip(names, frame["status"]))
    assert len(frame) == len(expected) and frame["video_path"].is_unique
    assert got == expected, {k: (got.get(k), v) for k, v in expected.items() if got.get(k) != v}
    # nothing a spreadsheet would run as a formula
    for row in csv.reader(io.StringIO(raw.decode())):
        assert not any(cell.startswith(("=", "+", "-", "@")) for cell in row), row
    ok = frame[frame["status"] == "ok"]
    assert ((ok["p_fake"].astype(float) >= 0) & (ok["p_fake"].astype(float) <= 1)).all()
    not_ok = frame[frame["status"] != "ok"]
    failed = frame[~frame["status"].isin(["ok", "no_face"])]
    assert (not_ok["p_fake"] == "").all() and (failed["error"].str.len() > 0).all()
    by_name = dict(zip(names, frame.to_dict("records")))
    assert int(by_name["8k.mp4"]["width"]) == 7680  # reported at source size, decoded at <= 3840 px
    assert int(by_name["broken middle.ts"]["n_frames"]) >= 2  # good frames are still scored


def test_a_file_that_disappears_is_an_error_row(tmp_path, clip_dir, detector, scorer):
    from pipeline.scan.analyze import ScanConfig
    from pipeline.scan.batch import run_batch

    present = tmp_path / "present.mp4"
    present.write_bytes((clip_dir / "noface.mp4").read_bytes())
    gone = tmp_path / "gone.mp4"  # listed, then deleted before its turn
    out = tmp_path / "o.csv"
    from pipeline.models.factory import LoadedModels

    models = LoadedModels(detector, scorer, scorer.weights_path, threshold=0.5)
    run_batch([str(gone), str(present)], out, config=ScanConfig(), models=models, progress=False)
    rows = pd.read_csv(out, keep_default_na=False).set_index("video_path")
    assert rows.loc[str(gone), "status"] == "error" and "not found" in rows.loc[str(gone), "error"]
    assert rows.loc[str(present), "status"] == "no_face"


def test_ten_thousand_entries_are_walked_quickly(tmp_path):
    from pipeline.video.discover import iter_videos

    for i in range(10_000):
        (tmp_path / (f"{i:05d}.txt" if i % 1000 else f"{i:05d}.MP4")).touch()
    started = time.monotonic()
    found = list(iter_videos([tmp_path]))
    assert len(found) == 10 and time.monotonic() - started < 5


def test_disk_full_is_a_clear_error(tmp_path, meso4_df_path, clip_dir, capsys):
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full on this system")
    rc = cli.main(
        [str(clip_dir / "noface.mp4"), "-o", "/dev/full", "--weights", str(meso4_df_path), "--overwrite", "-q"]
    )
    assert rc == 2
    assert "No space left on device" in capsys.readouterr().err


def _run_cli(args: list[str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(REPO / "score_videos.py"), *args],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


@pytest.mark.slow
def test_kill_9_then_rerun_gives_every_clip_exactly_once(tmp_path, clip_dir, meso4_df_path):
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(8):
        (folder / f"clip{i}.mp4").write_bytes((clip_dir / ("face.mp4" if i % 2 else "noface.mp4")).read_bytes())
    out = tmp_path / "scores.csv"
    args = [str(folder), "-o", str(out), "--weights", str(meso4_df_path), "-q", "--fps", "4"]
    rng = np.random.default_rng(7)
    for _ in range(3):  # kill at random moments, a few times over
        proc = _run_cli(args)
        deadline = time.monotonic() + 120
        rows_before = len(out.read_text().splitlines()) if out.exists() else 0
        while time.monotonic() < deadline and proc.poll() is None:
            if out.exists() and len(out.read_text().splitlines()) > rows_before:
                time.sleep(float(rng.uniform(0.0, 1.5)))
                break
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    final = _run_cli(args)
    assert final.wait(timeout=300) == 0
    frame = pd.read_csv(out)
    assert sorted(frame["video_path"]) == sorted(str(p) for p in folder.iterdir())
    assert set(frame["status"]) == {"ok", "no_face"}
