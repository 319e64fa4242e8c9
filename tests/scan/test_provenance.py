"""pipeline/scan/provenance.py: what made a row, and how two runs' settings differ."""

from __future__ import annotations

import pytest

from pipeline.faces.detect import DetectorConfig
from pipeline.scan.provenance import RunSettings, scan_settings_text


def test_scan_settings_text_is_canonical(monkeypatch):
    from pipeline.video import decode

    monkeypatch.delenv(decode.SPARSE_DECODE_ENV, raising=False)  # sparse decoding is the default
    text = scan_settings_text(1.0, 40, DetectorConfig())
    assert text == (
        "fps=1;max_frames=40;sparse_decode=1;detect_long_side_px=480;min_confidence=0.9;min_face_px=40;pyramid_scale=0.6;"
        "full_frame_every_s=1;region_margin=2.5;region_px=96"
    )
    # frames per MTCNN call change no result: not recorded
    assert scan_settings_text(1.0, 40, DetectorConfig(batch_size=2)) == text
    assert scan_settings_text(0.5, 40, DetectorConfig()) != text
    # sparse decoding moves samples by a frame or two: a run without it is another run
    monkeypatch.setenv(decode.SPARSE_DECODE_ENV, "0")
    off = scan_settings_text(1.0, 40, DetectorConfig())
    assert off == text.replace("sparse_decode=1", "sparse_decode=0")
    # a refused resume names the difference and, since no flag sets it, the variable that does
    (difference,) = _run(scan_settings=off).differences(_as_read_back(_run(scan_settings=text)))
    assert difference.startswith("sparse_decode 1 -> 0") and "DEEPFAKE_SCANNER_SPARSE_DECODE" in difference


def _run(**overrides) -> RunSettings:
    values = dict(
        model="meso4_mix_v2",
        model_sha256="f" * 64,
        threshold=0.477,
        aggregation="track_max",
        scan_settings=scan_settings_text(1.0, 40, DetectorConfig()),
        tool_version="0.2.0",
    )
    return RunSettings(**{**values, **overrides})


def _as_read_back(settings: RunSettings) -> dict:
    return {k: str(v) for k, v in settings.columns().items()}


def test_the_same_settings_read_back_have_no_difference():
    assert _run().differences(_as_read_back(_run())) == []
    # a threshold read back from text compares as a number
    assert _run(threshold=0.5).differences({**_as_read_back(_run()), "threshold": "0.500000"}) == []


@pytest.mark.parametrize(
    "recorded, expected",
    [
        (dict(threshold="0.5"), ["threshold 0.5 -> 0.477"]),
        (dict(threshold=""), ["threshold (none) -> 0.477"]),
        (dict(model=""), ["model (none) -> meso4_mix_v2"]),
        (
            dict(scan_settings=scan_settings_text(2.0, 20, DetectorConfig(min_face_px=60))),
            ["fps 2 -> 1", "max_frames 20 -> 40", "min_face_px 60 -> 40"],
        ),
        (dict(scan_settings=""), ["scan_settings (none) -> " + scan_settings_text(1.0, 40, DetectorConfig())]),
    ],
)
def test_differences_name_each_setting(recorded, expected):
    assert _run().differences({**_as_read_back(_run()), **recorded}) == expected
