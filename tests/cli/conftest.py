"""Fixtures of the command-line tests: the session's real models reused by ``main(argv)``."""

from __future__ import annotations

import pytest


@pytest.fixture
def loaded(monkeypatch):
    """Every :class:`LoadedModels` that ``load_models`` returns during the test, in order."""
    from pipeline.models import factory

    built = []
    real = factory.load_models

    def spy(*args, **kwargs):
        built.append(real(*args, **kwargs))
        return built[-1]

    monkeypatch.setattr(factory, "load_models", spy)
    return built
