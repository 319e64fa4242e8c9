"""Fixtures for the web tests that need no model: an app around stand-ins that are never called."""

from __future__ import annotations

import pytest

from pipeline.scan.analyze import ScanConfig
from pipeline.web.app import WebConfig, create_app


class _UnusedDetector:
    """Routes never touch a model; any call would be a bug."""

    def __getattr__(self, name):
        raise AssertionError(f"the detector was used ({name}) outside a job")


class _NamedScorer:
    name = "stand-in-scorer"

    def __getattr__(self, name):
        raise AssertionError(f"the scorer was used ({name}) outside a job")


@pytest.fixture
def modelless_app(tmp_path):
    """An app whose models are stand-ins (no TensorFlow), uploads in ``tmp_path / "uploads"``,
    1 MB upload cap; its worker is stopped afterwards."""
    app = create_app(
        _UnusedDetector(),
        _NamedScorer(),
        ScanConfig(threshold=0.7),
        WebConfig(upload_dir=str(tmp_path / "uploads"), max_upload_bytes=1024 * 1024),
    )
    yield app
    app.extensions["deepfake_scanner"].close()
