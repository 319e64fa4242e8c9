"""Shared fixtures: the real data folder, clip generators, and the real models (built once)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.helpers import SHARED_CASES, SHARED_DATA, make_face_clip, make_lavfi_clip


def pytest_addoption(parser):
    parser.addoption(
        "--full",
        action="store_true",
        default=False,
        help="run the whole suite: also the tests marked slow (real models on real clips, the browser); CI runs this",
    )


def pytest_collection_modifyitems(config, items):
    """Without ``--full`` (or an explicit ``-m``), the tests marked ``slow`` are left out: the fast loop."""
    if config.getoption("--full") or config.getoption("-m"):
        return
    slow = [item for item in items if item.get_closest_marker("slow") is not None]
    if slow:
        config.hook.pytest_deselected(items=slow)
        items[:] = [item for item in items if item.get_closest_marker("slow") is None]


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data``. Missing: fail under CI (``$CI`` set), skip on a developer machine."""
    if not (SHARED_DATA / "SOURCES.md").is_file():
        message = f"real data folder {SHARED_DATA} is missing"
        if os.environ.get("CI"):
            pytest.fail(message + " (required when CI is set)")
        pytest.skip(message)
    return SHARED_DATA


@pytest.fixture(scope="session")
def shared_cases() -> Path:
    """``../shared/cases``: clips reproducing reported problems. Missing: fail under CI, skip elsewhere."""
    if not (SHARED_CASES / "README.md").is_file():
        message = f"field cases folder {SHARED_CASES} is missing"
        if os.environ.get("CI"):
            pytest.fail(message + " (required when CI is set)")
        pytest.skip(message)
    return SHARED_CASES


@pytest.fixture(scope="session")
def meso4_df_path(shared_data) -> Path:
    return shared_data / "weights" / "mesonet" / "Meso4_DF.h5"


@pytest.fixture(scope="session")
def detector():
    """The real MTCNN, built once for the whole test session."""
    from pipeline.models.factory import load_detector

    return load_detector()


@pytest.fixture(scope="session")
def scorer(meso4_df_path):
    """Meso-4 with the original MesoNet DF weights, built once."""
    from pipeline.models.meso4 import MesoScorer

    return MesoScorer.load(meso4_df_path)


@pytest.fixture(scope="session")
def default_scorer():
    """The scorer of the repository's default weights (what ``score`` uses with no ``--weights``), built once."""
    from pipeline.models.factory import ModelSpec, load_scorer, resolve_model

    return load_scorer(resolve_model(ModelSpec())[0])


@pytest.fixture(scope="session")
def clip_dir(tmp_path_factory) -> Path:
    """Small generated clips shared by the integration tests (made once per session)."""
    root = tmp_path_factory.mktemp("clips")
    make_face_clip(root / "face.mp4")
    make_lavfi_clip(root / "noface.mp4", duration_s=2.0)
    make_face_clip(root / "portrait_rot90.mp4", size_wh=(720, 1280), rotate_display_deg=90)
    good = (root / "face.mp4").read_bytes()
    (root / "truncated.mp4").write_bytes(good[: len(good) // 2])
    (root / "empty.mp4").write_bytes(b"")
    (root / "notes.mp4").write_text("this is a text file, not a video\n")
    return root


@pytest.fixture
def reuse_models(monkeypatch, detector, scorer):
    """Make :func:`pipeline.models.factory.load_models` reuse the session's MTCNN networks and,
    for the MesoNet DF file, the session's Meso-4, instead of building them per call.

    Only the builders are replaced: the factory still resolves the weights, builds the
    :class:`FaceDetector` with the spec's :class:`DetectorConfig` and resolves the threshold.
    Other weights files are loaded for real."""
    from pipeline.faces import detect
    from pipeline.models.meso4 import MesoScorer
    from pipeline.models.weights import spec_for_weights

    load = MesoScorer.load.__func__

    def load_or_reuse(cls, path):
        return scorer if spec_for_weights(path) == scorer.spec else load(cls, path)

    monkeypatch.setattr(detect, "build_mtcnn", lambda compiled=True: detector._mtcnn)
    monkeypatch.setattr(MesoScorer, "load", classmethod(load_or_reuse))
