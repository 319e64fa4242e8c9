"""pipeline/settings.py: each setting and its range declared once, read by every config and flag."""

from __future__ import annotations

import argparse
import dataclasses
import math
import pickle

import numpy as np
import pytest

from pipeline.errors import ConfigError, ScannerError
from pipeline.faces.detect import DetectorConfig
from pipeline.scan.config import ScanConfig
from pipeline.scan.provenance import run_settings
from pipeline.settings import SETTINGS, SPARSE_DECODE_ENV, Range, check, setting


@pytest.mark.parametrize(
    "range_, text, inside, outside",
    [
        (Range(0.0, 1.0, low_open=True, high_open=True), "in (0, 1)", [1e-9, 0.5], [0.0, 1.0, math.nan]),
        (Range(0.5, 3.0), "in [0.5, 3]", [0.5, 3.0], [0.49, 3.01]),
        (Range(0.0, None, low_open=True), "> 0", [1e-6, 1e9], [0.0, -1.0]),
        (Range(1), ">= 1", [1, 40], [0]),
        (Range(None, 4.0), "<= 4", [-5.0, 4.0], [4.5]),
    ],
)
def test_a_range_says_itself_and_holds_what_it_says(range_, text, inside, outside):
    assert str(range_) == text
    assert all(v in range_ for v in inside)
    assert not any(v in range_ for v in outside)
    assert True not in range_ and "0.5" not in range_  # a flag or a text is no number


def test_a_value_out_of_range_is_a_config_error_naming_setting_range_and_value():
    with pytest.raises(ConfigError, match=r"^threshold must be in \(0, 1\), got 1.0$") as info:
        check("threshold", 1.0)
    assert isinstance(info.value, ValueError) and isinstance(info.value, ScannerError)
    with pytest.raises(ConfigError, match="max_frames must be a whole number, got 2.5"):
        check("max_frames", 2.5)
    assert check("max_frames", np.int64(3)) == 3  # numpy integers (a pandas cell) are whole numbers
    with pytest.raises(KeyError, match="no setting 'thresh'"):
        check("thresh", 0.5)


def test_the_flag_type_of_a_setting_refuses_in_argparse_words():
    parse = setting("threshold").parse
    assert parse("0.25") == 0.25
    with pytest.raises(argparse.ArgumentTypeError, match=r"must be in \(0, 1\), got 1.5"):
        parse("1.5")
    with pytest.raises(argparse.ArgumentTypeError, match="must be a whole number, got 4.5"):
        setting("max_frames").parse("4.5")


def test_every_detector_and_scan_field_with_a_range_is_a_declared_setting():
    for field in dataclasses.fields(DetectorConfig):
        assert field.name in SETTINGS, field.name
    for name in ("fps", "max_frames", "threshold", "uncertain_below", "timeout_s", "sparse_decode"):
        assert name in {f.name for f in dataclasses.fields(ScanConfig)} and name in SETTINGS


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: ScanConfig(threshold=0.0), r"threshold must be in \(0, 1\), got 0.0"),
        (lambda: ScanConfig(fps=0), "fps must be > 0, got 0"),
        (lambda: ScanConfig(timeout_s=-1.0), "timeout_s must be > 0, got -1.0"),
        (lambda: ScanConfig(threshold=0.5, uncertain_below=0.6), r"uncertain_below must be in \(0, threshold\]"),
        (lambda: DetectorConfig(region_margin=5.0), r"region_margin must be in \[1.2, 4\], got 5.0"),
        (lambda: DetectorConfig(min_face_px=-1), "min_face_px must be >= 0, got -1"),
    ],
)
def test_configs_check_their_fields_against_the_declared_ranges(make, message):
    with pytest.raises(ConfigError, match=message):
        make()


def test_sparse_decoding_is_a_scan_field_whose_environment_override_is_read_when_the_config_is_made(monkeypatch):
    monkeypatch.delenv(SPARSE_DECODE_ENV, raising=False)
    assert ScanConfig().sparse_decode is True
    monkeypatch.setenv(SPARSE_DECODE_ENV, "off")
    off = ScanConfig()
    assert off.sparse_decode is False
    monkeypatch.delenv(SPARSE_DECODE_ENV)
    # a worker process or a Dask worker gets the config as it was made, whatever its own environment
    assert pickle.loads(pickle.dumps(off)).sparse_decode is False
    assert ScanConfig(sparse_decode=False).sparse_decode is False


def test_the_rows_provenance_states_the_configs_sparse_decoding_not_the_environments(monkeypatch):
    from pipeline.models.factory import ModelSpec

    monkeypatch.setenv(SPARSE_DECODE_ENV, "1")
    settings = run_settings(ModelSpec(weights="meso4_scanner_v1"), ScanConfig(sparse_decode=False))
    assert "sparse_decode=0" in settings.scan_settings


def test_the_decoder_skips_frames_only_when_the_scan_says_so(monkeypatch):
    from pipeline.video import decode
    from tests.video.test_sparse_decode import _info

    monkeypatch.setattr(decode, "can_skip_frames", lambda: True)
    monkeypatch.setenv(SPARSE_DECODE_ENV, "0")  # the environment's default is overruled by the scan's
    assert decode.skips_frames(_info(), 1.0, sparse=True) is True
    monkeypatch.delenv(SPARSE_DECODE_ENV)
    assert decode.skips_frames(_info(), 1.0, sparse=False) is False
    assert decode.skips_frames(_info(), 1.0) is True  # None: the environment's default


def test_the_usage_docs_carry_the_settings_table_as_declared():
    from pathlib import Path

    from pipeline.settings import settings_table

    docs = (Path(__file__).resolve().parents[1] / "docs" / "usage.md").read_text()
    assert settings_table() in docs, (
        "docs/usage.md's settings table is stale: replace the table under its '<!-- generated by' line with "
        "the output of: python -c 'from pipeline.settings import settings_table; print(settings_table())'"
    )


def test_no_module_but_settings_states_a_declared_settings_range():
    import re
    from pathlib import Path

    package = Path(__file__).resolve().parents[1] / "pipeline"
    names = "|".join(n for n in SETTINGS if n != "uncertain_below")  # its tie to the threshold is ScanConfig's
    stated = re.compile(rf"\b({names}) must be (in [\(\[]|[<>]=? ?\d|positive)")
    found = [
        f"{path.relative_to(package.parent)}:{n}: {line.strip()}"
        for path in sorted(package.rglob("*.py"))
        if path.name != "settings.py"
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if stated.search(line)
    ]
    assert found == [], "\n".join(found)
