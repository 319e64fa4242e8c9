"""A decode never claims more than it delivered: no phantom frames before the picture starts, on
every decode path and codec; files cut short, decoders stopped from outside and video that ends
before the audio are told apart; interlaced streams are found (stated or measured) and
deinterlaced. Every clip is made here with ffmpeg."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from pipeline.video import decode
from pipeline.video.completeness import check_coverage
from pipeline.video.decode import DecodeReport, build_decode_command, iter_frames, sampling_fps, skips_frames
from pipeline.video.ffmpeg_bin import ffmpeg_exe
from pipeline.video.interlace import detect_field_order, parse_idet
from pipeline.video.probe import packets_end_s, probe_video
from tests.helpers import ffmpeg

LEAD_S = 3.0
VIDEO_S = 3.0


def _have_encoder(name: str) -> bool:
    out = subprocess.run([ffmpeg_exe(), "-hide_banner", "-encoders"], capture_output=True, text=True).stdout
    return f" {name} " in out


def _late_video(path: Path, codec: str, audio: str) -> Path:
    """LEAD_S of audio alone, then VIDEO_S of moving test picture (as a camera that comes on
    after a call started)."""
    ffmpeg(
        "-f", "lavfi", "-i", f"sine=d={LEAD_S + VIDEO_S}",
        "-itsoffset", str(LEAD_S), "-f", "lavfi", "-i", f"testsrc2=size=160x120:rate=25:d={VIDEO_S}",
        "-map", "1:v", "-map", "0:a", "-c:v", codec, "-c:a", audio, str(path),
    )  # fmt: skip
    return path


# (file name, video encoder, audio encoder): the containers and codecs the scanner supports that
# can hold a video stream starting after the audio
LATE_CASES = [
    ("h264.mp4", "libx264", "aac"),
    ("hevc.mkv", "libx265", "aac"),
    ("vp9.webm", "libvpx-vp9", "libopus"),
    ("vp8.webm", "libvpx", "libopus"),
    ("prores.mov", "prores_ks", "aac"),
    ("mjpeg.mov", "mjpeg", "aac"),
]


@pytest.fixture(scope="module")
def late_clips(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("late")
    return {name: _late_video(root / name, v, a) for name, v, a in LATE_CASES if _have_encoder(v)}


@pytest.mark.parametrize("name", [c[0] for c in LATE_CASES])
@pytest.mark.parametrize("fps, decode_all", [(1.0, False), (1.0, True), (2.0, False), (5.0, False)])
def test_no_phantom_frames_before_the_picture_starts(late_clips, name, fps, decode_all):
    """Only frames of the video stream, at their own times: before the fix the first frame was
    repeated over the audio-only lead on the ``fps``-filter path and each copy scored."""
    if name not in late_clips:
        pytest.skip(f"this ffmpeg cannot encode {name}")
    clip = late_clips[name]
    info = probe_video(clip)
    rate = sampling_fps(info, fps, 40)
    report = DecodeReport()
    frames = list(iter_frames(clip, info, sample_fps=rate, max_frames=40, decode_all=decode_all, report=report))
    times = [f.timestamp_s for f in frames]
    assert times[0] >= LEAD_S - 1e-3, times
    assert len(frames) == pytest.approx(VIDEO_S * rate, abs=1)
    assert times == sorted(times) and len(set(times)) == len(times)
    assert (report.n_frames, report.first_timestamp_s, report.last_timestamp_s) == (len(frames), times[0], times[-1])
    # testsrc2 moves: consecutive samples differ (copies of one frame would not)
    assert all(not np.array_equal(a.rgb, b.rgb) for a, b in zip(frames, frames[1:]))
    seen = check_coverage(clip, info, rate, report, max_frames=40)
    assert seen.reached_end and not seen.partial
    assert seen.covered_s == pytest.approx(VIDEO_S, abs=1.0 / rate + 0.05)


def test_both_paths_write_only_the_streams_frames():
    from tests.video.test_sparse_decode import _info

    info = _info()
    for skip in (False, True):
        args = build_decode_command("x.mp4", info, sample_fps=1.0, max_frames=40, size_wh=(64, 48), skip_frames=skip)
        assert args[args.index("-fps_mode") + 1] == "passthrough"
        assert "showinfo" in args[args.index("-filter_complex") + 1]


@pytest.fixture(scope="module")
def ten_second_clip(tmp_path_factory) -> Path:
    """10 s of moving picture with sound, index first (``+faststart``, as web downloads are)."""
    path = tmp_path_factory.mktemp("ten") / "ten.mp4"
    ffmpeg(
        "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25:d=10", "-f", "lavfi", "-i", "sine=d=10",
        "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", "-movflags", "+faststart", str(path),
    )  # fmt: skip
    return path


def _decode(clip: Path, fps: float = 1.0) -> tuple:
    info = probe_video(clip)
    rate = sampling_fps(info, fps, 40)
    report = DecodeReport()
    list(iter_frames(clip, info, sample_fps=rate, max_frames=40, report=report))
    return info, rate, report


@pytest.mark.parametrize("share", [0.1, 0.3, 0.6])
def test_a_download_cut_short_is_partial(ten_second_clip, tmp_path, share):
    """The first part of a faststart MP4 plays and its header still says 10 s: it was ``ok`` with
    ``reached_end`` True."""
    data = ten_second_clip.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: int(len(data) * share)])
    info, rate, report = _decode(cut)
    assert info.duration_s == pytest.approx(10.0, abs=0.1)
    seen = check_coverage(cut, info, rate, report, max_frames=40)
    assert seen.partial and not seen.reached_end
    assert seen.covered_s < 10.0 * share + 1.5
    assert seen.reason.startswith(f"decoded {seen.covered_s:.1f} s of {info.duration_s:.1f} s: ")
    assert "cut short" in seen.reason


def test_the_whole_file_is_not_partial(ten_second_clip):
    info, rate, report = _decode(ten_second_clip)
    seen = check_coverage(ten_second_clip, info, rate, report, max_frames=40)
    assert (seen.partial, seen.reached_end, seen.covered_s) == (False, True, pytest.approx(10.0, abs=0.1))


def test_video_that_ends_before_the_audio_is_whole(tmp_path):
    """2 s of picture in a 6 s file (audio runs on): all of the video was seen."""
    clip = tmp_path / "short_video.mp4"
    ffmpeg(
        "-f", "lavfi", "-i", "testsrc2=size=160x120:rate=25:d=2", "-f", "lavfi", "-i", "sine=d=6",
        "-c:v", "libx264", "-c:a", "aac", str(clip),
    )  # fmt: skip
    info, rate, report = _decode(clip)
    assert info.duration_s == pytest.approx(6.0, abs=0.1)
    assert packets_end_s(clip, "0") == pytest.approx(6.0, abs=0.1)
    assert packets_end_s(clip, f"0:{info.stream_index}") < 2.5
    seen = check_coverage(clip, info, rate, report, max_frames=40)
    assert seen.reached_end and not seen.partial and seen.covered_s == pytest.approx(2.0, abs=0.1)


def test_a_decoder_stopped_by_sigint_keeps_its_frames_and_is_partial(tmp_path):
    """ffmpeg exits cleanly on SIGINT (code 255): its clip was ``ok`` on 29 of 31 frames."""
    import psutil

    clip = tmp_path / "long.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=320x240:rate=10:d=6", "-c:v", "libx264", str(clip))
    info = probe_video(clip)
    report = DecodeReport()
    frames = iter_frames(clip, info, sample_fps=10.0, max_frames=60, report=report)
    next(frames)  # ffmpeg now blocks on the full pipe, far from the end
    (proc,) = [p for p in psutil.Process().children() if "ffmpeg" in p.name()]
    proc.send_signal(signal.SIGINT)
    time.sleep(0.5)
    n = 1 + sum(1 for _ in frames)
    assert report.stopped_by == "SIGINT" and n < 60
    seen = check_coverage(clip, info, 10.0, report, max_frames=60)
    assert seen.partial and seen.reason.endswith("the decoder was stopped by SIGINT")


def test_a_budget_that_runs_out_after_every_sample_arrived_is_no_timeout(tmp_path, monkeypatch):
    """ffmpeg still decoding the tail after the last sample arrived: the clip is whole, not a ``timeout``."""
    clip = tmp_path / "c.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=160x120:rate=25:d=4", "-c:v", "libx264", str(clip))
    info = probe_video(clip)
    watchdogs = []
    real = decode._Watchdog

    class FiresAtTheEnd(real):
        def __init__(self, proc, timeout_s, starts=None):
            super().__init__(proc, None, starts)
            self.proc = proc
            watchdogs.append(self)

        def fire(self):  # what the real one does when the budget is spent
            self.timed_out.set()
            self.proc.kill()

    monkeypatch.setattr(decode, "_Watchdog", FiresAtTheEnd)
    report = DecodeReport()
    frames = list(iter_frames(clip, info, sample_fps=1.0, max_frames=40, timeout_s=60.0, report=report))
    assert len(frames) == 4 and not report.timed_out_after_all
    # the same decode with the budget spent just after the last sample
    report = DecodeReport()
    stream = iter_frames(clip, info, sample_fps=1.0, max_frames=40, timeout_s=60.0, report=report)
    got = [next(stream) for _ in range(4)]
    watchdogs[-1].fire()
    assert list(stream) == [] and len(got) == 4
    assert report.timed_out_after_all
    # too few samples when it ran out: a timeout
    stream = iter_frames(clip, info, sample_fps=1.0, max_frames=40, timeout_s=60.0, report=DecodeReport())
    next(stream)
    watchdogs[-1].fire()
    with pytest.raises(decode.DecodeTimeoutError):
        list(stream)


# --------------------------------------------------------------------------------------------
# Interlacing
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def interlaced(tmp_path_factory) -> dict[str, Path]:
    """The same moving picture: 576i MPEG-2 flagged top field first; woven fields stored as
    progressive MPEG-4 Part 2, which states no field order; and progressive."""
    from tests.helpers import make_face_clip

    root = tmp_path_factory.mktemp("interlaced")
    # a photo panned fast at 50 frames/s (synthetic test patterns fool idet: real pictures do not)
    source = str(make_face_clip(root / "source.mp4", duration_s=1.2, rate=50, size_wh=(720, 576)))
    out = {
        "flagged": root / "flagged.ts",
        "unflagged": root / "unflagged.avi",
        "flagged_progressive": root / "flagged_progressive.ts",
        "progressive": root / "progressive.ts",
    }
    ffmpeg(
        "-i", source, "-vf", "tinterlace=interleave_top,fieldorder=tff", "-c:v", "mpeg2video",
        "-flags", "+ildct+ilme", "-b:v", "8M", str(out["flagged"]),
    )  # fmt: skip
    ffmpeg(
        "-i", source, "-vf", "tinterlace=interleave_top", "-c:v", "mpeg4", "-q:v", "2",
        str(out["unflagged"]),
    )  # fmt: skip
    # woven fields flagged progressive, as re-encoded broadcast captures often are
    ffmpeg("-i", source, "-vf", "tinterlace=interleave_top,setfield=prog", "-c:v", "mpeg2video", "-b:v", "8M",
           str(out["flagged_progressive"]))  # fmt: skip
    ffmpeg("-i", source, "-r", "25", "-c:v", "mpeg2video", "-b:v", "8M", str(out["progressive"]))
    return out


def test_interlacing_is_read_from_the_stream_or_measured(interlaced):
    flagged = probe_video(interlaced["flagged"])
    assert (flagged.field_order, flagged.interlace_source, flagged.is_interlaced) == ("tff", "stream", True)
    unflagged = probe_video(interlaced["unflagged"])
    assert (unflagged.field_order, unflagged.interlace_source, unflagged.is_interlaced) == ("tff", "idet", True)
    wrongly_flagged = probe_video(interlaced["flagged_progressive"])
    assert (wrongly_flagged.field_order, wrongly_flagged.interlace_source) == ("tff", "idet")
    progressive = probe_video(interlaced["progressive"])
    assert (progressive.field_order, progressive.is_interlaced) == ("progressive", False)
    assert detect_field_order(interlaced["progressive"], progressive.stream_index) == "progressive"


def test_interlaced_streams_are_deinterlaced_before_sampling(interlaced):
    info = probe_video(interlaced["flagged"])
    rate = sampling_fps(info, 1.0, 40)
    assert not skips_frames(info, rate)  # bwdif needs every field
    args = build_decode_command(interlaced["flagged"], info, sample_fps=rate, max_frames=40, size_wh=info.resolution_wh)
    graph = args[args.index("-filter_complex") + 1]
    assert graph.index("bwdif") < graph.index("fps=")

    def combing(path: Path) -> float:
        """Mean absolute difference between neighbouring lines, less that between lines two apart."""
        clip_info = probe_video(path)
        frame = next(iter_frames(path, clip_info, sample_fps=1.0, max_frames=1))
        grey = frame.rgb.astype(np.float32).mean(axis=2)
        return float(np.abs(np.diff(grey, axis=0)).mean() - np.abs(grey[2:] - grey[:-2]).mean() / 2)

    def raw_combing(path: Path) -> float:
        """The same measure on the first stored frame as it is, fields woven."""
        raw = subprocess.run(
            [ffmpeg_exe(), "-v", "error", "-i", str(path), "-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "gray", "-"],
            capture_output=True,
            check=True,
        ).stdout
        grey = np.frombuffer(raw, np.uint8).reshape(576, 720).astype(np.float32)
        return float(np.abs(np.diff(grey, axis=0)).mean() - np.abs(grey[2:] - grey[:-2]).mean() / 2)

    # woven fields of moving picture comb; deinterlaced they read like the progressive picture
    assert raw_combing(interlaced["flagged"]) > combing(interlaced["progressive"]) + 5.0
    assert combing(interlaced["flagged"]) < combing(interlaced["progressive"]) + 2.0
    assert combing(interlaced["unflagged"]) < combing(interlaced["progressive"]) + 2.0


@pytest.mark.parametrize(
    "log, expected",
    [
        ("Multi frame detection: TFF:    61 BFF:     0 Progressive:     0 Undetermined:     0", "tff"),
        ("Multi frame detection: TFF:     2 BFF:    40 Progressive:     3 Undetermined:    15", "bff"),
        ("Multi frame detection: TFF:     3 BFF:     0 Progressive:    57 Undetermined:     0", "progressive"),
        ("Multi frame detection: TFF:     1 BFF:     0 Progressive:     2 Undetermined:    57", ""),  # too few decided
        ("no idet here", ""),
    ],
)
def test_parse_idet(log, expected):
    assert parse_idet("Multi frame detection: TFF: 0 BFF: 0 Progressive: 0 Undetermined: 0\n" + log) == expected


def _line_excess(rgb: np.ndarray) -> float:
    """Combing: mean absolute difference between neighbouring lines, less half that between lines two apart."""
    grey = rgb.astype(np.float32).mean(axis=2)
    return float(np.abs(np.diff(grey, axis=0)).mean() - np.abs(grey[2:] - grey[:-2]).mean() / 2)


def test_the_dataset_builder_deinterlaces_too(interlaced):
    """``extract_faces.py`` samples through the same decode, so its crops are not combed either."""
    from pipeline.training.extract import ExtractConfig, SourceClip, _sample_frames

    progressive = next(
        iter_frames(interlaced["progressive"], probe_video(interlaced["progressive"]), sample_fps=1.0, max_frames=1)
    )
    for name in ("flagged", "unflagged"):
        frames = _sample_frames(SourceClip(str(interlaced[name]), "real", name), ExtractConfig(fps=1.0))
        first = next(iter(frames))
        frames.close()
        assert _line_excess(first.rgb) < _line_excess(progressive.rgb) + 2.0, name
