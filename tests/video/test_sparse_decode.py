"""pipeline/video/decode.py, sparse sampling: non-reference frames skipped, each frame's actual time recorded."""

from __future__ import annotations

import io
import logging
import math
import re
import subprocess

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
    for off in ("0", "false", "No", " OFF "):
        monkeypatch.setenv(decode.SPARSE_DECODE_ENV, off)
        assert not skips_frames(_info(), 1.0), off
    for on in ("1", "yes", "true", ""):
        monkeypatch.setenv(decode.SPARSE_DECODE_ENV, on)
        assert skips_frames(_info(), 1.0), on
    monkeypatch.setattr(decode, "can_skip_frames", lambda: False)  # ffmpeg before 5.1: no -fps_mode
    assert not skips_frames(_info(), 1.0)


def test_build_decode_command_sparse():
    info = _info()
    full = build_decode_command("x.mp4", info, sample_fps=1.0, max_frames=40, size_wh=(64, 48))
    sparse = build_decode_command("x.mp4", info, sample_fps=1.0, max_frames=40, size_wh=(64, 48), skip_frames=True)
    # decoding everything: the fps filter, each sample's time logged, only the stream's own frames written
    assert "-skip_frame" not in full and "fps=fps=1.000000:round=up" in " ".join(full)
    assert "showinfo" in full[full.index("-filter_complex") + 1]
    assert full[full.index("-fps_mode") + 1] == "passthrough"
    assert full[full.index("-loglevel") + 1] == "level+info"
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


# -- timing of sparse samples, measured against the clip itself ---------------------------------

_SHOWINFO_TIME_RE = re.compile(r"^\[Parsed_showinfo_\d+ @ [^\]]*\] n:\s*\d+ pts:\s*-?\d+ pts_time:(\S+)", re.MULTILINE)
X264 = ("-c:v", "libx264", "-pix_fmt", "yuv420p", "-crf", "10")
# Clips of 160x120; at most 117 frames, so that gray steps of 2 (consecutive frames still apart
# after yuv420p) stay within uint8.
SIZE_WH = (160, 120)


def _decoded_times_s(clip, *, skip_noref: bool) -> list[float]:
    """The presentation time of every frame ffmpeg decodes from ``clip`` (with ``skip_noref``:
    every frame left by ``-skip_frame noref``), in order, from ``showinfo``."""
    args = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "info"]
    if skip_noref:
        args += ["-skip_frame", "noref"]
    args += ["-i", str(clip), "-map", "0:v:0", "-vf", "showinfo", "-fps_mode", "passthrough", "-f", "null", "-"]
    done = subprocess.run(args, capture_output=True, text=True, timeout=60, check=True)
    times = [float(t) for t in _SHOWINFO_TIME_RE.findall(done.stderr)]
    assert times == sorted(times) and times, done.stderr[-2000:]
    return times


def _largest_gap_s(times_s: list[float]) -> float:
    return float(np.max(np.diff(times_s)))


def _first_from(times_s: list[float], start_s: float) -> float | None:
    """The first of ``times_s`` at or after ``start_s`` (within 1 ms)."""
    return next((t for t in times_s if t >= start_s - 1e-3), None)


def _on_frame_grid(t_s: float) -> bool:
    return abs(t_s * CLIP_FPS - round(t_s * CLIP_FPS)) < 1e-6


# frame-aligned sampling times (1 s = 25 frames, 16 and 18 frames) and one that is not (1.5 fps)
CFR_SAMPLE_RATES = (1.0, CLIP_FPS / 16, CLIP_FPS / 18, 1.5)


@pytest.mark.parametrize("b_adapt", [1, 2], ids=["b-adapt=1", "b-adapt=2"])
@pytest.mark.parametrize(
    "pyramid, max_late_frames",
    [
        # x264's B-pyramid with 3 B-frames makes the middle one a reference: every other frame is decoded
        ("normal", 1),
        # no pyramid: runs of up to 3 non-reference B-frames
        ("none", 3),
    ],
    ids=["b-pyramid", "no-pyramid"],
)
def test_sparse_sample_within_one_decoded_interval_constant_rate(
    tmp_path, monkeypatch, pyramid, max_late_frames, b_adapt
):
    monkeypatch.setenv(decode.SPARSE_DECODE_ENV, "1")
    params = f"bframes=3:b-pyramid={pyramid}:b-adapt={b_adapt}"
    clip = _encode_rgb(
        _gray_ramp_frames(100, wh=SIZE_WH), tmp_path / "cfr.mp4", rate=CLIP_FPS, extra=(*X264, "-x264-params", params)
    )
    info = probe_video(clip)
    all_s = _decoded_times_s(clip, skip_noref=False)
    kept_s = _decoded_times_s(clip, skip_noref=True)
    assert all_s == pytest.approx([i / CLIP_FPS for i in range(100)], abs=1e-3)
    assert len(kept_s) < len(all_s)  # frames are skipped
    # the largest gap between consecutive frames decoded with non-reference frames skipped
    gap_s = _largest_gap_s(kept_s)
    assert gap_s <= (max_late_frames + 1) / CLIP_FPS + 1e-3
    every = list(iter_frames(clip, info, sample_fps=CLIP_FPS, max_frames=1000, decode_all=True))
    assert [f.frame_index for f in every] == list(range(100))
    lateness = []
    for sample_fps in CFR_SAMPLE_RATES:
        assert skips_frames(info, sample_fps)
        frames = list(iter_frames(clip, info, sample_fps=sample_fps, max_frames=40))
        exact = list(iter_frames(clip, info, sample_fps=sample_fps, max_frames=40, decode_all=True))
        assert len(frames) == len(exact) and [f.sample_index for f in frames] == list(range(len(exact)))
        for f, e in zip(frames, exact):
            t = f.sampling_time_s
            assert t == pytest.approx(f.sample_index / sample_fps) and e.timestamp_s == pytest.approx(t)
            on_screen_s = e.frame_index / CLIP_FPS  # the start of the frame on screen at t
            # the first decoded frame from the one on screen at t on
            assert f.timestamp_s == pytest.approx(_first_from(kept_s, on_screen_s), abs=1e-3)
            # within one decoded-frame interval of t, never before the frame on screen at t
            assert on_screen_s - 1e-3 <= f.timestamp_s < t + gap_s
            if _on_frame_grid(t):  # a sampling time that starts a frame: never before it
                assert f.timestamp_s >= t - 1e-6
            assert 0 <= f.frame_index - e.frame_index <= max_late_frames
            assert f.timestamp_s == pytest.approx(f.frame_index / CLIP_FPS, abs=1e-3)
            assert np.array_equal(f.rgb, every[f.frame_index].rgb)
            lateness.append(f.frame_index - e.frame_index)
    assert max(lateness) >= 1  # the clip does exercise the bound


# A variable frame rate: 40 frames at 25 fps, 20 at 10 fps, 50 at 50 fps (4.6 s), times in ms.
VFR_PTS_S = "if(lt(N,40),N*0.04,if(lt(N,60),1.6+(N-40)*0.1,3.6+(N-60)*0.02))"


def test_sparse_sampling_variable_frame_rate(tmp_path, monkeypatch):
    monkeypatch.setenv(decode.SPARSE_DECODE_ENV, "1")
    vfr = ("-vf", f"settb=1/1000,setpts='({VFR_PTS_S})/TB'", "-fps_mode", "vfr", "-enc_time_base", "1:1000")
    params = ("-x264-params", "bframes=3:b-pyramid=normal:b-adapt=2")
    clip = _encode_rgb(
        _gray_ramp_frames(110, wh=SIZE_WH), tmp_path / "vfr.mp4", rate=CLIP_FPS, extra=(*vfr, *X264, *params)
    )
    all_s = _decoded_times_s(clip, skip_noref=False)
    intervals_s = np.diff(all_s)
    assert len(all_s) == 110
    assert intervals_s.min() == pytest.approx(0.02, abs=2e-3) and intervals_s.max() == pytest.approx(0.1, abs=2e-3)
    info = probe_video(clip)
    # ffmpeg reports the average rate (110 frames in 4.6 s), not the 25, 10 or 50 fps of the parts
    assert info.fps == pytest.approx(110 / 4.6, rel=0.02)
    kept_s = _decoded_times_s(clip, skip_noref=True)
    assert len(kept_s) < len(all_s)
    gap_s = _largest_gap_s(kept_s)
    # every 10 ms the frame on screen: each frame (20 ms or longer) is there from its own time on
    every = list(iter_frames(clip, info, sample_fps=100, max_frames=1000, decode_all=True))
    for sample_fps in (1.0, 1.2):
        assert skips_frames(info, sample_fps)
        frames = list(iter_frames(clip, info, sample_fps=sample_fps, max_frames=40))
        exact = list(iter_frames(clip, info, sample_fps=sample_fps, max_frames=40, decode_all=True))
        assert len(frames) == len(exact) and [f.sample_index for f in frames] == list(range(len(exact)))
        for f in frames:
            t = f.sampling_time_s
            assert t == pytest.approx(f.sample_index / sample_fps)
            # a frame actually decoded: the first after t - 1/fps. 1/fps is the average frame length,
            # not this frame's: the frame chosen can be the one before the frame on screen at t.
            assert f.timestamp_s == pytest.approx(_first_from(kept_s, t - 1 / info.fps + 1e-3), abs=1e-3)
            # so within one decoded-frame interval after t, or less than 1/fps before it
            assert t - 1 / info.fps < f.timestamp_s < t + gap_s
            # the pixels of the frame shown at timestamp_s in a full decode
            shown = every[math.ceil(f.timestamp_s * 100 - 1e-6)]
            assert shown.timestamp_s - f.timestamp_s < 0.01
            assert np.array_equal(f.rgb, shown.rgb)


def test_sparse_sampling_intra_only_h264_skips_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv(decode.SPARSE_DECODE_ENV, "1")
    clip = _encode_rgb(
        _gray_ramp_frames(100, wh=SIZE_WH),
        tmp_path / "intra.mp4",
        rate=CLIP_FPS,
        extra=(*X264, "-x264-params", "keyint=1"),
    )
    info = probe_video(clip)
    # every frame an I-frame and a reference: -skip_frame noref leaves them all
    assert _decoded_times_s(clip, skip_noref=True) == _decoded_times_s(clip, skip_noref=False)
    for sample_fps in (1.0, 1.5):
        assert skips_frames(info, sample_fps)  # by codec: h264
        frames = list(iter_frames(clip, info, sample_fps=sample_fps, max_frames=40))
        exact = list(iter_frames(clip, info, sample_fps=sample_fps, max_frames=40, decode_all=True))
        # exactly the frames on screen at the sampling times
        assert [f.frame_index for f in frames] == [e.frame_index for e in exact]
        for f, e in zip(frames, exact):
            assert np.array_equal(f.rgb, e.rgb)
            assert f.timestamp_s == pytest.approx(e.frame_index / CLIP_FPS, abs=1e-3)
            assert f.sampling_time_s == pytest.approx(e.timestamp_s)


def test_sparse_decoding_is_the_default(tmp_path, monkeypatch):
    # x264's defaults: 3 B-frames, B-pyramid
    clip = _encode_rgb(_gray_ramp_frames(100, wh=SIZE_WH), tmp_path / "x264.mp4", rate=CLIP_FPS, extra=X264)
    info = probe_video(clip)
    kept_s = _decoded_times_s(clip, skip_noref=True)
    # the frames sparse decoding delivers at 1 fps: some sampling times fall on skipped frames
    expected_s = [_first_from(kept_s, k) for k in range(4)]
    assert expected_s != pytest.approx([0.0, 1.0, 2.0, 3.0], abs=1e-3)

    monkeypatch.delenv(decode.SPARSE_DECODE_ENV, raising=False)
    assert skips_frames(info, 1.0)
    frames = list(iter_frames(clip, info, sample_fps=1.0, max_frames=40))
    assert [f.timestamp_s for f in frames] == pytest.approx(expected_s, abs=1e-3)  # the real times
    assert [f.sampling_time_s for f in frames] == [0.0, 1.0, 2.0, 3.0]
    assert any(f.timestamp_s != f.sampling_time_s for f in frames)

    monkeypatch.setenv(decode.SPARSE_DECODE_ENV, "0")
    assert not skips_frames(info, 1.0)
    frames = list(iter_frames(clip, info, sample_fps=1.0, max_frames=40))
    # every frame decoded: the sampling times, exactly
    assert [f.timestamp_s for f in frames] == [f.sample_index / 1.0 for f in frames] == [0.0, 1.0, 2.0, 3.0]
    assert all(f.sampling_time_s == f.timestamp_s for f in frames)
    assert [f.frame_index for f in frames] == [0, 25, 50, 75]
