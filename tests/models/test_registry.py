"""The architecture registry: what is registered, that every loader resolves, and the errors."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import pytest

from pipeline.errors import WeightsError
from pipeline.models import registry
from pipeline.models.registry import (
    Architecture,
    create_scorer,
    display_name,
    get_architecture,
    list_models,
    register_model,
)
from pipeline.models.saliency import SALIENCY_METHODS
from pipeline.models.weights import WEIGHTS_SUFFIXES, WeightsSpec, sha256_file, sidecar_path, spec_for_weights
from tests.helpers import REPO_ROOT

EXPECTED = ("effnet-lite0-head", "ensemble", "meso4", "mesoinception4")


@pytest.fixture
def scratch_registry(monkeypatch):
    """A copy of the registry that a test may add to; the real one is left as it was."""
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))


def _fake_loader(weights_path):
    return ("loaded", weights_path)


def test_every_family_is_listed_once_and_sorted():
    names = list_models()
    assert set(EXPECTED) <= set(names)
    assert names == sorted(set(names))


@pytest.mark.parametrize(
    "family, expected",
    [
        ("meso", ["meso4", "mesoinception4"]),  # MesoNet's two CNNs
        ("backbone", ["effnet-lite0-head"]),  # the frozen trunk with a head
        ("ensemble", ["ensemble"]),
        ("no-such-family", []),  # an unknown family lists nothing rather than raising
    ],
)
def test_list_models_by_family(family, expected):
    assert list_models(family) == expected


@pytest.mark.parametrize("name", list_models())
def test_every_entry_is_complete_and_its_loader_resolves(name):
    entry = get_architecture(name)
    assert entry.name == name
    assert entry.display_name and entry.description  # people read both (web app, README)
    assert entry.runtime in ("tensorflow", "onnxruntime")
    assert entry.weights_suffix in WEIGHTS_SUFFIXES
    assert entry.saliency in SALIENCY_METHODS
    assert callable(registry._resolve_loader(entry.loader))


def test_resolving_every_loader_imports_no_runtime():
    # the loaders are named "module:attr", so reading them imports neither TensorFlow nor onnxruntime
    code = (
        "import sys\n"
        "from pipeline.models import registry\n"
        "for name in registry.list_models():\n"
        "    assert callable(registry._resolve_loader(registry.get_architecture(name).loader)), name\n"
        "heavy = [m for m in ('tensorflow', 'keras', 'onnxruntime') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
        "print('ok', len(registry.list_models()))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("ok ")


def test_display_names():
    assert display_name("meso4") == "Meso-4"
    assert display_name("mesoinception4") == "MesoInception-4"
    assert display_name("effnet-lite0-head") == "EfficientNet-Lite0 features + MLP head"
    assert display_name("not-registered") == "not-registered"  # shown as written rather than raising


def test_an_unknown_architecture_names_the_known_ones(tmp_path):
    with pytest.raises(KeyError, match=r"unknown architecture 'meso5'; known: .*effnet-lite0-head.*meso4"):
        get_architecture("meso5")
    with pytest.raises(KeyError, match="unknown architecture 'meso5'"):
        create_scorer("meso5", tmp_path / "w.h5")


def test_weights_spec_refuses_an_unregistered_architecture():
    with pytest.raises(ValueError, match=r"architecture must be one of \(.*'meso4'.*\), got 'xception'"):
        WeightsSpec(name="x", architecture="xception", sha256="0" * 64, output="p_fake")


def test_a_sidecar_naming_an_unregistered_architecture_is_a_weights_error(tmp_path):
    path = tmp_path / "w.npz"
    path.write_bytes(b"not read as a head: the spec fails first")
    fields = {"name": "w", "architecture": "xception", "sha256": sha256_file(path), "output": "p_fake"}
    sidecar_path(path).write_text(json.dumps(fields))
    with pytest.raises(WeightsError, match="invalid spec sidecar.*architecture must be one of"):
        spec_for_weights(path)


def test_registering_a_conflicting_duplicate_raises(scratch_registry):
    meso4 = get_architecture("meso4")
    assert register_model(meso4) is meso4  # the same entry again: no change, no error
    with pytest.raises(ValueError, match="architecture 'meso4' is already registered"):
        register_model(dataclasses.replace(meso4, loader="elsewhere:load"))
    assert get_architecture("meso4") == meso4  # the refused entry did not replace the first


def test_create_scorer_calls_the_entry_loader_with_a_path(scratch_registry, tmp_path):
    register_model(
        Architecture("fake-arch", "A fake", "meso", "tensorflow", f"{__name__}:_fake_loader", ".h5", "grad-cam")
    )
    assert "fake-arch" in list_models("meso")
    assert create_scorer("fake-arch", str(tmp_path / "w.h5")) == ("loaded", tmp_path / "w.h5")


def test_the_factory_loads_a_head_through_the_registry(tiny_head_path):
    from pipeline.models.backbone_scorer import BackboneScorer
    from pipeline.models.factory import load_scorer

    scorer = load_scorer(tiny_head_path)
    assert isinstance(scorer, BackboneScorer)
    assert scorer.spec.architecture == "effnet-lite0-head" and scorer.spec.input_size_px == 224
    assert scorer.weights_path == tiny_head_path
