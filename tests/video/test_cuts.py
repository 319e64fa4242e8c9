"""pipeline/video/decode.py: shot cuts found by ffmpeg's scdet in the same decode as the frames."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.video.decode import CUT_SCORE_THRESHOLD, build_decode_command, can_detect_cuts, iter_frames
from pipeline.video.probe import probe_video
from tests.helpers import ffmpeg, make_lavfi_clip

SIZE = "320x240"


def concat_clip(path: Path, *parts: tuple[str, float], inputs: str = "lavfi") -> Path:
    """Clips ``parts`` (lavfi source or file, seconds) one after the other, as one shot each."""
    args: list[str] = []
    for source, seconds in parts:
        if inputs == "lavfi":
            args += ["-f", "lavfi", "-t", str(seconds), "-i", f"{source}=size={SIZE}:rate=25"]
        else:
            args += ["-t", str(seconds), "-i", str(source)]
    scaled = "".join(f"[{i}:v]scale={SIZE.replace('x', ':')},setsar=1,fps=25[v{i}];" for i in range(len(parts)))
    joined = "".join(f"[v{i}]" for i in range(len(parts)))
    graph = f"{scaled}{joined}concat=n={len(parts)}:v=1:a=0,format=yuv420p"
    ffmpeg(*args, "-filter_complex", graph, "-an", "-c:v", "libx264", str(path))
    return path


def decode_cuts(path: Path, *, sample_fps: float = 2.0, max_frames: int = 100) -> tuple[int, list[float]]:
    cuts: list[float] = []
    n = sum(
        1 for _ in iter_frames(path, probe_video(path), sample_fps=sample_fps, max_frames=max_frames, cut_times_s=cuts)
    )
    return n, cuts


def test_this_ffmpeg_can_detect_cuts():
    assert can_detect_cuts()
    assert CUT_SCORE_THRESHOLD == 10.0


@pytest.mark.parametrize(
    "parts, join_s",
    [
        ([("testsrc2", 2.0), ("smptebars", 2.0)], 2.0),  # a cut between two different pictures
        ([("testsrc2", 1.32), ("mandelbrot", 2.0)], 1.32),  # between samples (2 fps)
        ([("mandelbrot", 2.6), ("testsrc2", 1.0)], 2.6),
    ],
)
def test_one_cut_near_the_join(tmp_path, parts, join_s):
    n, cuts = decode_cuts(concat_clip(tmp_path / "cut.mp4", *parts))
    assert n >= 6
    assert len(cuts) == 1
    assert cuts[0] == pytest.approx(join_s, abs=0.1)


@pytest.mark.parametrize("source", ["testsrc2", "mandelbrot", "smptebars"])
def test_a_continuous_clip_has_no_cut(tmp_path, source):
    clip = make_lavfi_clip(tmp_path / "one_shot.mp4", duration_s=4.0, source=source)
    n, cuts = decode_cuts(clip)
    assert n == 8 and cuts == []


def test_cut_times_count_from_the_first_frame_of_a_clip_that_starts_late(tmp_path):
    # MPEG-TS starts its clock at 1.4 s: cuts are in the frames' time, from 0
    clip = concat_clip(tmp_path / "cut.mp4", ("testsrc2", 2.0), ("smptebars", 2.0))
    ts = tmp_path / "cut.ts"
    ffmpeg("-i", str(clip), "-c", "copy", "-f", "mpegts", str(ts))
    assert probe_video(ts).start_s > 1.0
    assert decode_cuts(ts)[1] == [pytest.approx(2.0, abs=0.1)]


def test_two_cuts_in_order(tmp_path):
    clip = concat_clip(tmp_path / "cuts.mp4", ("testsrc2", 1.0), ("smptebars", 1.0), ("mandelbrot", 1.0))
    _, cuts = decode_cuts(clip)
    assert cuts == [pytest.approx(1.0, abs=0.1), pytest.approx(2.0, abs=0.1)]


def test_sampling_does_not_hide_a_cut(tmp_path):
    # scdet sees every decoded frame before sampling: a cut between two samples a second
    # apart is still found
    clip = concat_clip(tmp_path / "cut.mp4", ("testsrc2", 1.44), ("smptebars", 2.0))
    n, cuts = decode_cuts(clip, sample_fps=0.5)
    assert n == 2
    assert cuts == [pytest.approx(1.44, abs=0.1)]


def test_a_cut_with_sparse_decoding(tmp_path, monkeypatch):
    monkeypatch.setenv("DEEPFAKE_SCANNER_SPARSE_DECODE", "1")
    clip = concat_clip(tmp_path / "cut.mp4", ("testsrc2", 2.0), ("smptebars", 2.0))
    n, cuts = decode_cuts(clip, sample_fps=1.0)
    assert n == 4
    assert cuts == [pytest.approx(2.0, abs=0.1)]


def test_cut_between_two_real_clips(tmp_path, shared_data):
    real = shared_data / "videos" / "real"
    clip = concat_clip(
        tmp_path / "two_people.mp4",
        (real / "ffpp_original_634.mp4", 1.6),
        (real / "ffpp_original_519.mp4", 2.0),
        inputs="file",
    )
    n, cuts = decode_cuts(clip)
    assert n >= 7
    assert cuts == [pytest.approx(1.6, abs=0.1)]
    # each of them alone: one shot
    for name in ("ffpp_original_634.mp4", "ffpp_original_519.mp4"):
        alone = concat_clip(tmp_path / name, (real / name, 3.0), inputs="file")
        assert decode_cuts(alone)[1] == []


def test_frames_are_the_same_with_or_without_cut_detection(tmp_path):
    clip = concat_clip(tmp_path / "cut.mp4", ("testsrc2", 1.0), ("smptebars", 1.0))
    info = probe_video(clip)
    plain = [f.rgb.tobytes() for f in iter_frames(clip, info, sample_fps=4, max_frames=100)]
    with_cuts = [f.rgb.tobytes() for f in iter_frames(clip, info, sample_fps=4, max_frames=100, cut_times_s=[])]
    assert plain == with_cuts and len(plain) == 8


@pytest.mark.parametrize("detect_cuts", [False, True])
def test_the_command_has_scdet_only_when_asked(tmp_path, detect_cuts):
    clip = make_lavfi_clip(tmp_path / "a.mp4")
    info = probe_video(clip)
    args = build_decode_command(clip, info, sample_fps=2.0, max_frames=10, size_wh=(320, 240), detect_cuts=detect_cuts)
    graph = args[args.index("-filter_complex") + 1]  # not the path: the test's folder is named after it
    assert ("scdet" in graph) is detect_cuts
    assert ("threshold=10" in graph) is detect_cuts
    assert args[args.index("-loglevel") + 1] == "level+info"  # showinfo times every sample, cuts or not
    if detect_cuts:  # cuts are scored on every decoded frame, before sampling
        assert graph.index("scdet") < graph.index("fps=")
