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
def make_modelless_app(tmp_path):
    """Build apps whose models are stand-ins (no TensorFlow), uploads in ``tmp_path / "uploads"``,
    threshold 0.7 (unless ``config`` says otherwise), 1 MB upload cap unless ``web_fields`` say
    otherwise; workers stopped afterwards."""
    apps = []

    def make(config: ScanConfig | None = None, **web_fields):
        web = {"upload_dir": str(tmp_path / "uploads"), "max_upload_bytes": 1024 * 1024, **web_fields}
        config = config or ScanConfig(threshold=0.7)
        app = create_app(_UnusedDetector(), _NamedScorer(), config, WebConfig(**web))
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.extensions["deepfake_scanner"].close()


@pytest.fixture
def modelless_app(make_modelless_app):
    """An app whose models are stand-ins (no TensorFlow), uploads in ``tmp_path / "uploads"``,
    1 MB upload cap; its worker is stopped afterwards."""
    return make_modelless_app()
