"""Fixtures of the model tests: a tiny head on the real EfficientNet-Lite0 backbone, built once."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import write_tiny_head


@pytest.fixture(scope="session")
def tiny_head_path(tmp_path_factory) -> Path:
    """A random one-layer head (``tiny_head.npz`` + sidecar) naming the repository's backbone by absolute path."""
    return write_tiny_head(tmp_path_factory.mktemp("tiny_head"))


@pytest.fixture(scope="session")
def backbone_scorer(tiny_head_path):
    """The :class:`pipeline.models.backbone_scorer.BackboneScorer` of :func:`tiny_head_path`, one thread."""
    from pipeline.models.backbone_scorer import BackboneScorer

    return BackboneScorer.load(tiny_head_path, threads=1)
