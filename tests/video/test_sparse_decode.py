"""pipeline/video/decode.py, sparse sampling: non-reference frames skipped, each frame's actual time recorded."""

from __future__ import annotations

import io
import logging

import numpy as np
import pytest

from pipeline.video import decode
from pipeline.video.decode import (
    SPARSE_MIN_FRAMES_PER_SAMPLE,
    build_decode_command,
    decode_sampled_frame,
    iter_frames,
    skips_frames,
)
from pipeline.video.ffmpeg_bin import ffmpeg_exe
from pipeline.video.probe import VideoInfo, probe_video
from tests.video.test_decode import _encode_rgb, _gray_ramp_frames

CLIP_FPS = 25
# With at most 3 consecutive non-reference frames (3 B-frames), a sample lands at most this many
# source frames after the frame on screen at its sampling time.
MAX_SHIFT_FRAMES = 4


def _info(*, codec="h264", fps: float | None = 25.0, format_name="mov,mp4,m4a,3gp,3g2,mj2") -> VideoInfo:
    return VideoInfo(
        stream_index=0,
        coded_width=64,
        coded_height=48,
        rotation_deg=0,
        fps=fps,
        duration_s=10.0,
        start_s=0.0,
        codec=codec,
        format_name=format_name,
    )


@pytest.mark.parametrize(
    "info, sample_fps, expected",
    [
        # the default: 1 fps on a 25 fps H.264 clip, 25 frames per sample
        (_info(), 1.0, True),
        # exactly the threshold
        (_info(fps=25.0), 25.0 / SPARSE_MIN_FRAMES_PER_SAMPLE, True),
        # dense sampling (2 fps on 25 fps: 12.5 frames per sample) decodes everything
        (_info(), 2.0, False),
        # sampling at the clip's own rate
        (_info(), 25.0, False),
        # unknown clip rate: nothing to measure the gap against
        (_info(fps=None), 1.0, False),
        # the other inter-frame codecs measured exact with noref
        (_info(codec="hevc"), 1.0, True),
        (_info(codec="mpeg2video", format_name="mpeg"), 1.0, True),
        (_info(codec="mpeg4"), 1.0, True),
        (_info(codec="av1"), 1.0, True),
        # VP9 marks no frame non-reference (altref or not): nothing would be skipped
        (_info(codec="vp9", format_name="matroska,webm"), 1.0, False),
        # intra-only codecs: every frame stands alone, nothing to skip
        (_info(codec="prores"), 1.0, False),
        (_info(codec="mjpeg"), 1.0, False),
        # a raw elementary stream: no container timestamps to sample by
        (_info(format_name="h264"), 1.0, False),
    ],
)
def test_skips_frames(info, sample_fps, expected, monkeypatch):
    monkeypatch.setattr(decode, "can_skip_frames", lambda: True)
    monkeypatch.setenv(decode.SPARSE_DECODE_ENV, "1")
    assert skips_frames(info, sample_fps) is expected


def test_skips_frames_by_default_unless_switched_off_and_only_when_ffmpeg_can(monkeypatch):
    monkeypatch.setattr(decode, "can_skip_frames", lambda: True)
    monkeypatch.delenv(decode.SPARSE_DECODE_ENV, raising=False)
    assert skips_frames(_info(), 1.0)  # on by default
    monkeypatch.setenv(decode.SPARSE_DECODE_ENV, "0")
    assert not skips_frames(_info(), 1.0)
    monkeypatch.setenv(decode.SPARSE_DECODE_ENV, "1")
    assert skips_frames(_info(), 1.0)
    monkeypatch.setattr(decode, "can_skip_frames", lambda: False)  # ffmpeg before 5.1: no -fps_mode
    assert not skips_frames(_info(), 1.0)


def test_build_decode_command_sparse():
    info = _info()
    full = build_decode_command("x.mp4", info, sample_fps=1.0, max_frames=40, size_wh=(64, 48))
    sparse = build_decode_command("x.mp4", info, sample_fps=1.0, max_frames=40, size_wh=(64, 48), skip_frames=True)
    # decoding everything: the command as it always was
    assert "-skip_frame" not in full and "fps=fps=1.000000:round=up" in " ".join(full)
    assert full[full.index("-loglevel") + 1] == "error"
    # sparse: a decoder option (before -i), select + showinfo, frames passed through, levels tagged
    assert sparse.index("-skip_frame") < sparse.index("-i") and sparse[sparse.index("-skip_frame") + 1] == "noref"
    graph = sparse[sparse.index("-filter_complex") + 1]
    assert "select=" in graph and "showinfo" in graph and "fps=" not in graph
    assert sparse[sparse.index("-fps_mode") + 1] == "passthrough"
    assert sparse[sparse.index("-loglevel") + 1] == "level+info" and "-nostats" in sparse


def _have_encoder(name: str) -> bool:
    import subprocess

    out = subprocess.run([ffmpeg_exe(), "-hide_banner", "-encoders"], capture_output=True, text=True).stdout
    return f" {name} " in out


# (file name, encoder options, frames skipped?)
CODEC_CASES = [
    # x264 with a B-pyramid: B-frames that P-frames refer to must still be decoded
    (
        "x264_pyramid.mp4",
        ("-c:v", "libx264", "-pix_fmt", "yuv420p", "-crf", "10", "-x264-params", "b-pyramid=normal:bframes=3"),
        True,
    ),
    # HEVC (x265 codes most pictures as B: only noref is safe)
    ("x265.mp4", ("-c:v", "libx265", "-pix_fmt", "yuv420p", "-crf", "10", "-x265-params", "log-level=error"), True),
    # MPEG-2 in a program stream, 2 B-frames
    ("mpeg2.mpg", ("-c:v", "mpeg2video", "-bf", "2", "-q:v", "2"), True),
    # MPEG-4 part 2, 2 B-frames
    ("mpeg4.mp4", ("-c:v", "mpeg4", "-bf", "2", "-q:v", "2"), True),
    # AV1: hidden frames, some not referenced
    ("av1.mp4", ("-c:v", "libsvtav1", "-preset", "12", "-crf", "20"), True),
    # VP9 with alternate reference frames: decoded whole
    ("vp9.webm", ("-c:v", "libvpx-vp9", "-crf", "10", "-b:v", "0", "-auto-alt-ref", "1", "-cpu-used", "8"), False),
    # ProRes, intra-only: decoded whole
    ("prores.mov", ("-c:v", "prores_ks", "-pix_fmt", "yuv422p10le"), False),
]


@pytest.mark.parametrize("name, extra, sparse", CODEC_CASES, ids=[c[0] for c in CODEC_CASES])
@pytest.mark.parametrize("sample_fps", [1.0, 1.5])
def test_sparse_sampling_per_codec(tmp_path, monkeypatch, name, extra, sparse, sample_fps):
    if not _have_encoder(extra[1]):
        pytest.skip(f"this ffmpeg has no {extra[1]} encoder")
    monkeypatch.setenv(decode.SPARSE_DECODE_ENV, "1")
    clip = _encode_rgb(_gray_ramp_frames(100), tmp_path / name, rate=CLIP_FPS, extra=extra)  # 4 s
    info = probe_video(clip)
    assert skips_frames(info, sample_fps) is sparse
    frames = list(iter_frames(clip, info, sample_fps=sample_fps, max_frames=40))
    exact = list(iter_frames(clip, info, sample_fps=sample_fps, max_frames=40, decode_all=True))
    every = list(iter_frames(clip, info, sample_fps=CLIP_FPS, max_frames=1000, decode_all=True))
    assert [f.frame_index for f in every] == list(range(100))
    # as many samples as decoding everything, in order
    assert len(frames) == len(exact) and [f.sample_index for f in frames] == list(range(len(exact)))
    for f, e in zip(frames, exact):
        # the pixels are exactly those of source frame frame_index decoded with every frame before it
        assert np.array_equal(f.rgb, every[f.frame_index].rgb)
        # never before the frame on screen at the sampling time, at most a few frames after it
        assert e.frame_index <= f.frame_index <= e.frame_index + (MAX_SHIFT_FRAMES if sparse else 0)
        if sparse:  # the frame's own time
            assert f.timestamp_s == pytest.approx(f.frame_index / CLIP_FPS, abs=1e-3)
        else:  # the sampling time, as always
            assert (f.frame_index, f.timestamp_s) == (e.frame_index, pytest.approx(e.timestamp_s))


def test_decode_sampled_frame_matches_the_sparse_scan(tmp_path, monkeypatch):
    monkeypatch.setenv(decode.SPARSE_DECODE_ENV, "1")
    clip = _encode_rgb(_gray_ramp_frames(100), tmp_path / "b.mp4", extra=CODEC_CASES[0][1])
    info = probe_video(clip)
    assert skips_frames(info, 1.0)
    frames = list(iter_frames(clip, info, sample_fps=1.0, max_frames=40))
    again = decode_sampled_frame(clip, info, sample_fps=1.0, sample_index=2)
    assert (again.frame_index, again.timestamp_s) == (frames[2].frame_index, frames[2].timestamp_s)
    assert np.array_equal(again.rgb, frames[2].rgb)


def test_sparse_sampling_reports_damage(tmp_path, caplog, monkeypatch):
    monkeypatch.setenv(decode.SPARSE_DECODE_ENV, "1")
    clip = _encode_rgb(
        _gray_ramp_frames(100, wh=(160, 120)),
        tmp_path / "clip.ts",
        extra=("-c:v", "libx264", "-pix_fmt", "yuv420p", "-f", "mpegts"),
    )
    data = bytearray(clip.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 2000] = b"\xab" * 2000
    clip.write_bytes(bytes(data))
    info = probe_video(clip)
    assert skips_frames(info, 1.0)
    with caplog.at_level(logging.WARNING, logger="pipeline.video.decode"):
        frames = list(iter_frames(clip, info, sample_fps=1.0, max_frames=40))
    assert len(frames) >= 3
    # the damage is reported as before, with ffmpeg's error lines and none of its info lines
    assert "decoding ended with errors" in caplog.text
    assert "[info]" not in caplog.text and "showinfo" not in caplog.text and "pts_time" not in caplog.text


def test_stderr_tail_with_tagged_levels():
    log_text = (
        b"[info] Input #0, mov,mp4,m4a,3gp,3g2,mj2, from 'x.mp4':\n"
        b"[Parsed_showinfo_1 @ 0x5601] [info] n:   0 pts:      0 pts_time:0       duration:    400\n"
        b"[Parsed_showinfo_1 @ 0x5601] [info] color_range:unknown\n"
        b"[h264 @ 0x5602] [warning] a warning -loglevel error never showed\n"
        b"[h264 @ 0x5602] [error] Invalid NAL unit size (2 > 1).\n"
        b"[Parsed_showinfo_1 @ 0x5601] [info] n:   1 pts:  12800 pts_time:1.067734 duration:    400\n"
        b"[fatal] Error opening output files\n"
    )
    tail = decode._StderrTail(io.BytesIO(log_text), tagged_levels=True)
    assert tail.next_timestamp_s() == 0.0
    assert tail.next_timestamp_s() == pytest.approx(1.067734)
    # the log ended: no more times, at once and again
    assert tail.next_timestamp_s(timeout_s=0.5) is None and tail.next_timestamp_s(timeout_s=0.5) is None
    tail.join()
    # what -loglevel error would have printed, untagged
    assert tail.text() == "[h264 @ 0x5602] Invalid NAL unit size (2 > 1).\nError opening output files"


def test_stderr_tail_never_waits_past_its_timeout():
    import os
    import time

    read_end, write_end = os.pipe()
    with os.fdopen(read_end, "rb") as pipe:
        tail = decode._StderrTail(pipe, tagged_levels=True)
        started = time.perf_counter()
        assert tail.next_timestamp_s(timeout_s=0.2) is None  # nothing written yet
        assert time.perf_counter() - started < 2.0
        os.close(write_end)
        tail.join()
