"""Score what the viewer sees: non-square pixels, HDR, several video streams, no duration.

Every variant is made with ffmpeg from the same frames as a square-pixel, SDR, single-stream
reference cut from a real clip of ``../shared/data/videos``, and must give the displayed size,
the faces and (within 0.05) the ``p_fake`` of that reference, scored with the default model.
(MesoNet's original ``Meso4_DF.h5`` moves by up to 0.07 between the same frames stored as
yuv420p and yuv444p, so it cannot tell a decoding fault from noise at this tolerance.)
"""

from __future__ import annotations

import logging
import subprocess
from pathlib import Path

import pytest

from pipeline.scan.analyze import ScanConfig, score_video
from pipeline.video import decode, probe
from pipeline.video.ffmpeg_bin import ffmpeg_exe, ffmpeg_filters
from pipeline.video.probe import probe_video
from tests.helpers import ffmpeg

P_FAKE_TOLERANCE = 0.05
SOURCE = "videos/real/ffpp_original_634.mp4"  # 1280x720, one face, yuv444p
CONFIG = ScanConfig(fps=1.0, max_frames=40)


@pytest.fixture(scope="module")
def source(shared_data) -> Path:
    return shared_data / SOURCE


def _x264(*extra: str) -> tuple[str, ...]:
    return ("-c:v", "libx264", "-pix_fmt", "yuv420p", "-crf", "16", *extra)


def _score(path: Path, detector, model):
    return score_video(path, detector, model, CONFIG).row


@pytest.fixture(scope="module")
def clips(tmp_path_factory, source) -> Path:
    return tmp_path_factory.mktemp("viewer")


# --------------------------------------------------------------------------------------------
# Non-square pixels
# --------------------------------------------------------------------------------------------

# (stored size, SAR, displayed size): the common real forms
SAR_KINDS = [
    ("anamorphic", (640, 720), "2:1", (1280, 720)),
    ("pal_wide", (720, 576), "64:45", (1024, 576)),
    ("pal_4x3", (720, 576), "16:15", (768, 576)),
    ("ntsc_wide", (720, 480), "32:27", (853, 480)),
    ("ntsc_4x3", (720, 480), "8:9", (640, 480)),
    ("hdv", (1440, 1080), "4:3", (1920, 1080)),
]


@pytest.mark.slow
@pytest.mark.parametrize("name, stored_wh, sar, display_wh", SAR_KINDS, ids=[k[0] for k in SAR_KINDS])
def test_non_square_pixels_are_scored_at_the_display_shape(
    clips, source, detector, default_scorer, name, stored_wh, sar, display_wh
):
    dw, dh = display_wh
    # a clip stored with non-square pixels (4:3 kinds crop the 16:9 source first)
    crop = "crop=960:720," if dw * 9 < dh * 16 - 9 else ""
    stored = clips / f"{name}_sar.mp4"
    sw, sh = stored_wh
    setsar = sar.replace(":", "/")
    ffmpeg(
        "-i",
        str(source),
        "-t",
        "3",
        "-vf",
        f"{crop}scale={sw}:{sh}:flags=lanczos,setsar={setsar}",
        *_x264(),
        str(stored),
    )
    # the reference: the same frames as a player shows them, in square pixels, stored losslessly
    reference = clips / f"{name}_reference.mkv"
    square = "scale=iw*sar:ih:flags=bicubic,setsar=1"
    ffmpeg("-i", str(stored), "-vf", square, "-c:v", "ffv1", "-pix_fmt", "yuv444p", str(reference))

    info = probe_video(stored)
    assert (info.coded_width, info.coded_height) == stored_wh
    assert info.sar_text == sar
    assert info.resolution_wh == display_wh

    ref_row, row = _score(reference, detector, default_scorer), _score(stored, detector, default_scorer)
    assert (row.width, row.height) == display_wh
    assert row.sample_aspect_ratio == sar
    assert ref_row.status == row.status == "ok"
    assert row.n_faces == ref_row.n_faces == row.n_frames
    assert row.p_fake == pytest.approx(ref_row.p_fake, abs=P_FAKE_TOLERANCE)


def test_the_dataset_builder_crops_from_the_display_shaped_frame(clips, source, tmp_path, detector):
    """Head-pose angles come from landmarks: on squashed frames the yaw is wrong."""
    from pipeline.scan.face_loop import FaceLoop
    from pipeline.video.decode import iter_frames, sampling_fps

    reference = clips / "pose_reference.mp4"
    ffmpeg("-i", str(source), "-t", "2", *_x264(), str(reference))
    stored = clips / "pose_sar.mp4"
    ffmpeg("-i", str(reference), "-vf", "scale=640:720,setsar=2/1", *_x264(), str(stored))

    def faces(path):
        info = probe_video(path)
        frames = iter_frames(path, info, sample_fps=sampling_fps(info, 1.0, 2), max_frames=2)
        return [face for batch in FaceLoop(frames, detector) for item in batch for face in item.faces]

    ref_faces, sar_faces = faces(reference), faces(stored)
    assert len(ref_faces) == len(sar_faces) == 2
    for a, b in zip(ref_faces, sar_faces):
        # boxes in display pixels: the same place, the same width (not half of it)
        assert b.box_xyxy == pytest.approx(a.box_xyxy, abs=12)
        assert b.width_px == pytest.approx(a.width_px, rel=0.08)


# --------------------------------------------------------------------------------------------
# HDR
# --------------------------------------------------------------------------------------------

HDR_KINDS = [
    # (name, transfer, container): phones record HLG in .mov with hvc1; streaming HDR10 is PQ
    ("hlg_mp4", "arib-std-b67", "mp4"),
    ("pq_mp4", "smpte2084", "mp4"),
    ("hlg_iphone_mov", "arib-std-b67", "mov"),
]


def _make_hdr(reference: Path, out: Path, transfer: str) -> Path:
    ffmpeg(
        "-i",
        str(reference),
        "-vf",
        f"zscale=tin=bt709:min=bt709:pin=bt709:t={transfer}:p=bt2020:m=bt2020nc,format=yuv420p10le",
        "-c:v",
        "libx265",
        "-x265-params",
        "log-level=error",
        "-crf",
        "16",
        "-tag:v",
        "hvc1",
        "-color_primaries",
        "bt2020",
        "-color_trc",
        transfer,
        "-colorspace",
        "bt2020nc",
        str(out),
    )
    return out


@pytest.fixture(scope="module")
def sdr_reference(clips, source) -> Path:
    # tagged BT.709, as the HDR variants are made from it (untagged, ffmpeg reads YUV as BT.601)
    reference = clips / "sdr_reference.mp4"
    tags = ("-colorspace", "bt709", "-color_primaries", "bt709", "-color_trc", "bt709")
    ffmpeg("-i", str(source), "-t", "3", *_x264(*tags), str(reference))
    return reference


@pytest.mark.slow
@pytest.mark.parametrize("name, transfer, container", HDR_KINDS, ids=[k[0] for k in HDR_KINDS])
def test_hdr_is_tone_mapped_to_sdr(clips, sdr_reference, detector, default_scorer, name, transfer, container):
    assert {"zscale", "tonemap"} <= ffmpeg_filters()  # the ffmpeg imageio-ffmpeg ships has them
    hdr = _make_hdr(sdr_reference, clips / f"{name}.{container}", transfer)
    info = probe_video(hdr)
    assert (info.color_transfer, info.pix_fmt, info.is_hdr) == (transfer, "yuv420p10le", True)

    frame = next(decode.iter_frames(hdr, info, sample_fps=1.0, max_frames=1))
    ref_frame = next(decode.iter_frames(sdr_reference, probe_video(sdr_reference), sample_fps=1.0, max_frames=1))
    # not washed out: the brightness of the SDR frames, highlights reaching white
    assert abs(float(frame.rgb.mean()) - float(ref_frame.rgb.mean())) < 4.0
    assert frame.rgb.max() >= 240

    ref_row, row = _score(sdr_reference, detector, default_scorer), _score(hdr, detector, default_scorer)
    assert (row.color_transfer, row.tone_mapped) == (transfer, True)
    assert (row.width, row.height) == (1280, 720)
    assert row.n_faces == ref_row.n_faces == row.n_frames
    assert row.p_fake == pytest.approx(ref_row.p_fake, abs=P_FAKE_TOLERANCE)


def test_sdr_decodes_as_before(sdr_reference):
    """SDR, square pixels, one stream: the decoder's command has no colour or scale filter."""
    info = probe_video(sdr_reference)
    command = " ".join(
        decode.build_decode_command(sdr_reference, info, sample_fps=1.0, max_frames=3, size_wh=(1280, 720))
    )
    assert "fps=fps=1.000000:round=up[s0];[s0]showinfo[s1] -map [s1]" in command  # sampled, each time logged
    for name in ("zscale", "tonemap", "scale=", "setsar"):
        assert name not in command


@pytest.mark.slow
def test_hdr_without_tone_mapping_filters_warns(clips, sdr_reference, detector, default_scorer, monkeypatch, caplog):
    hdr = _make_hdr(sdr_reference, clips / "hlg_no_filters.mp4", "arib-std-b67")
    monkeypatch.setattr(decode, "ffmpeg_filters", lambda: frozenset({"fps", "scale"}))
    with caplog.at_level(logging.WARNING):
        row = _score(hdr, detector, default_scorer)
    assert (row.color_transfer, row.tone_mapped) == ("arib-std-b67", False)
    assert "not converted to SDR" in caplog.text


# --------------------------------------------------------------------------------------------
# Which stream
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def preview(clips, sdr_reference) -> Path:
    out = clips / "preview.mp4"
    ffmpeg("-i", str(sdr_reference), "-vf", "fps=1,scale=160:90", *_x264(), str(out))
    return out


STREAM_ORDERS = [
    # (name, inputs in order, index of the film, dispositions, container): the film is always chosen
    ("preview_first_film_default", ("preview", "film"), 1, ("0", "default"), "mp4"),
    ("film_first_default", ("film", "preview"), 0, ("default", "0"), "mp4"),
    # the MP4 muxer marks the first stream default when none is: Matroska can leave both unmarked
    ("no_default_largest", ("preview", "film"), 1, ("0", "0"), "mkv"),
    ("all_default_largest", ("preview", "film"), 1, ("default", "default"), "mkv"),
]


@pytest.mark.parametrize(
    "name, order, film_index, dispositions, container", STREAM_ORDERS, ids=[s[0] for s in STREAM_ORDERS]
)
def test_the_main_stream_is_scored(
    clips, sdr_reference, preview, detector, default_scorer, name, order, film_index, dispositions, container
):
    paths = {"preview": preview, "film": sdr_reference}
    out = clips / f"{name}.{container}"
    args = []
    for p in order:
        args += ["-i", str(paths[p])]
    for i in range(len(order)):
        args += ["-map", f"{i}:v:0"]
    for i, disposition in enumerate(dispositions):
        args += [f"-disposition:v:{i}", disposition]
    if container == "mkv":
        args += ["-default_mode", "passthrough"]
    ffmpeg(*args, "-c", "copy", str(out))
    text = subprocess.run([ffmpeg_exe(), "-hide_banner", "-i", str(out)], capture_output=True).stderr.decode()
    assert text.count("(default)") == dispositions.count("default")
    info = probe_video(out)
    assert (info.stream_index, info.n_video_streams) == (film_index, 2)

    ref_row, row = _score(sdr_reference, detector, default_scorer), _score(out, detector, default_scorer)
    assert (row.stream_index, row.width, row.height) == (film_index, 1280, 720)
    assert row.n_faces == ref_row.n_faces == row.n_frames
    assert row.p_fake == pytest.approx(ref_row.p_fake, abs=1e-6)  # the very same frames


# --------------------------------------------------------------------------------------------
# No duration in the container
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def face_late_live_mkv(clips, sdr_reference) -> Path:
    """50 s of bars, then the 3-s face clip, written live (no duration) as a capture would."""
    bars = clips / "bars.mp4"
    ffmpeg("-f", "lavfi", "-i", "smptebars=size=1280x720:rate=25", "-t", "50", *_x264(), str(bars))
    out = clips / "face_late_live.mkv"
    ffmpeg(
        "-i",
        str(bars),
        "-i",
        str(sdr_reference),
        "-filter_complex",
        "[0:v][1:v]concat=n=2:v=1[v]",
        "-map",
        "[v]",
        *_x264(),
        "-f",
        "matroska",
        "-live",
        "1",
        str(out),
    )
    return out


@pytest.mark.slow
def test_a_clip_without_duration_is_covered_to_its_end(face_late_live_mkv, detector, default_scorer):
    info = probe_video(face_late_live_mkv)
    assert info.duration_source == "packets"
    assert info.duration_s == pytest.approx(53.0, abs=0.1)
    config = ScanConfig(fps=1.0, max_frames=20)  # 20 samples over 53 s: one every 2.65 s
    row = score_video(face_late_live_mkv, detector, default_scorer, config).row
    assert row.status == "ok"  # the face in the last 3 s was sampled
    assert (row.duration_source, row.reached_end) == ("packets", True)
    assert row.covered_s == pytest.approx(53.0, abs=0.1)
    assert row.n_frames == 20


def test_a_clip_whose_duration_cannot_be_known_says_so(
    face_late_live_mkv, detector, default_scorer, monkeypatch, caplog
):
    monkeypatch.setattr(probe, "measure_duration_s", lambda *a, **k: None)
    config = ScanConfig(fps=1.0, max_frames=20)
    with caplog.at_level(logging.WARNING):
        row = score_video(face_late_live_mkv, detector, default_scorer, config).row
    assert row.duration_s is None and row.duration_source == ""
    # (sparse decoding: the samples are the frames delivered, up to one frame after each sampling time)
    assert (row.reached_end, row.covered_s, row.n_frames) == (False, pytest.approx(20.0, abs=0.1), 20)
    assert row.status == "no_face"
    assert "only the first 20 s were sampled" in caplog.text
