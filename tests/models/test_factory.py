"""The one model factory: what to load (ModelSpec), the threshold rule, and real loading."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np
import pytest

from pipeline.errors import WeightsError
from pipeline.faces.detect import DetectorConfig
from pipeline.models import factory, weights
from pipeline.models.factory import (
    LoadedModels,
    ModelSpec,
    load_models,
    resolve_threshold,
    worker_spec,
)
from pipeline.models.weights import KNOWN_WEIGHTS, WeightsSpec

MESONET_DF = next(s for s in KNOWN_WEIGHTS.values() if s.name == "mesonet-meso4-df")


def _spec(threshold: float) -> WeightsSpec:
    return dataclasses.replace(MESONET_DF, threshold=threshold)


@pytest.mark.parametrize(
    "explicit, weights_spec, expected",
    [
        (None, None, 0.5),  # nothing known: the default
        (None, _spec(0.7), 0.7),  # the weights spec's own
        (0.3, _spec(0.7), 0.3),  # an explicit value wins over the spec
        (0.3, None, 0.3),  # explicit without a spec
        (0.5, _spec(0.7), 0.5),  # explicit 0.5 is a choice, not "unset"
    ],
)
def test_resolve_threshold_rule(explicit, weights_spec, expected):
    assert resolve_threshold(explicit, weights_spec) == expected


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"threshold": 0.0}, "threshold"),  # open interval: 0 labels everything FAKE
        ({"threshold": 1.0}, "threshold"),  # and 1 nothing
        ({"threshold": 1.5}, "threshold"),
        ({"intra_op_threads": 0}, "intra_op_threads"),
    ],
)
def test_model_spec_rejects_bad_values(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ModelSpec(**kwargs)


def test_model_spec_defaults():
    spec = ModelSpec()
    assert (spec.weights, spec.download, spec.threshold, spec.intra_op_threads) == (None, True, None, None)
    assert spec.detector == DetectorConfig()


def test_with_weights_pins_the_file_and_never_downloads(tmp_path):
    spec = ModelSpec(detector=DetectorConfig(detect_long_side_px=320), threshold=0.6, intra_op_threads=2)
    pinned = spec.with_weights(tmp_path / "w.h5")
    assert pinned.weights == str(tmp_path / "w.h5") and pinned.download is False
    assert (pinned.detector, pinned.threshold, pinned.intra_op_threads) == (spec.detector, 0.6, 2)
    assert spec.weights is None and spec.download  # frozen: the original is unchanged


def test_loaded_models_reject_a_bad_threshold():
    with pytest.raises(ValueError, match="threshold"):
        LoadedModels(None, object(), Path("w.h5"), 1.0)


@pytest.fixture
def no_default_weights(tmp_path, monkeypatch):
    """No weights in the repository's weights/ nor in the cache."""
    monkeypatch.setattr(weights, "REPO_WEIGHTS_DIR", tmp_path / "repo-weights")
    monkeypatch.setenv(weights.CACHE_ENV_VAR, str(tmp_path / "cache"))
    return tmp_path


def test_missing_default_weights_list_every_place_tried(no_default_weights):
    with pytest.raises(FileNotFoundError) as info:
        factory.resolve_model(ModelSpec(download=False))
    message = str(info.value)
    assert str(no_default_weights / "repo-weights" / weights.REPO_DEFAULT_NAME) in message
    assert str(no_default_weights / "cache" / "weights" / weights.DEFAULT_WEIGHTS_NAME) in message
    assert "--weights" in message


def test_load_models_raises_file_not_found_before_loading_anything(no_default_weights, monkeypatch):
    monkeypatch.setattr(factory, "configure_tensorflow", lambda threads: pytest.fail("TensorFlow started"))
    with pytest.raises(FileNotFoundError, match="tried"):
        load_models(ModelSpec(download=False))
    with pytest.raises(FileNotFoundError, match="none.h5"):
        load_models(ModelSpec(weights=no_default_weights / "none.h5"))


def test_unknown_weights_are_a_weights_error(tmp_path):
    junk = tmp_path / "junk.h5"
    junk.write_bytes(b"not weights")
    with pytest.raises(WeightsError, match="unknown weights"):
        factory.resolve_model(ModelSpec(weights=junk))


def test_worker_spec_pins_a_spec_and_shares_the_cores(meso4_df_path):
    spec = ModelSpec(weights=meso4_df_path, detector=DetectorConfig(min_face_px=30), threshold=0.6)
    pinned = worker_spec(spec, workers=2)
    assert pinned.weights == str(meso4_df_path) and pinned.download is False
    assert (pinned.detector, pinned.threshold) == (spec.detector, 0.6)
    assert pinned.intra_op_threads == max(1, (os.cpu_count() or 1) // 2)
    assert worker_spec(spec).intra_op_threads is None  # remote workers: left as they are
    assert worker_spec(dataclasses.replace(spec, intra_op_threads=3), workers=2).intra_op_threads == 3


def test_worker_spec_of_loaded_models_keeps_their_settings(detector, scorer):
    models = LoadedModels(detector, scorer, scorer.weights_path, 0.4)
    pinned = worker_spec(models)
    assert (pinned.weights, pinned.download, pinned.detector, pinned.threshold) == (
        str(scorer.weights_path),
        False,
        detector.config,
        0.4,
    )
    with pytest.raises(ValueError, match="detector"):
        worker_spec(LoadedModels(None, scorer, scorer.weights_path, 0.4))


def test_load_models_with_the_real_mesonet_weights(meso4_df_path):
    config = DetectorConfig(detect_long_side_px=320, pyramid_scale=0.709, min_face_px=30)
    models = load_models(ModelSpec(weights=meso4_df_path, detector=config))
    assert models.detector.config == config  # the spec's DetectorConfig, the only owner
    assert models.threshold == 0.5  # MesoNet's spec, no explicit threshold
    assert models.weights_path == meso4_df_path and models.weights_spec.name == "mesonet-meso4-df"
    assert models.scorer.spec.output == "p_real"  # the file's polarity; the scorer reports p_fake anyway


def test_load_models_without_detector_and_with_an_explicit_threshold(meso4_df_path):
    models = load_models(ModelSpec(weights=meso4_df_path, threshold=0.8), with_detector=False)
    assert models.detector is None and models.threshold == 0.8


def test_the_default_weights_are_the_projects_own_model():
    """Without --weights the scanner finds the project's default in weights/ (REPO_DEFAULT_NAME, whatever its
    family): its sidecar says p_fake, with its framing and calibration, and it loads and scores crops of its
    own input size."""
    from pipeline.models.factory import load_scorer
    from pipeline.models.weights import REPO_DEFAULT_NAME, REPO_WEIGHTS_DIR, resolve_weights

    assert (REPO_WEIGHTS_DIR / REPO_DEFAULT_NAME).is_file(), f"the default model weights/{REPO_DEFAULT_NAME} is missing"
    path = resolve_weights(download=False)
    assert path.name == REPO_DEFAULT_NAME
    scorer = load_scorer(path)
    assert scorer.spec.output == "p_fake" and path.name.startswith(scorer.name)
    assert scorer.spec.crop_margin == 0.93 and scorer.spec.temperature != 1.0  # framing and calibration in its spec
    size = scorer.spec.input_size_px
    p = scorer.score_p_fake(np.zeros((2, size, size, 3), np.uint8))
    assert p.shape == (2,) and ((p >= 0) & (p <= 1)).all()
