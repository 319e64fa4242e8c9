"""The one architecture registry (timm's ``register_model`` / ``list_models``): every network a weights spec may
name, with how a scorer for it is loaded.

Each entry names the loader of its architecture (:mod:`pipeline.models.meso4`, which builds
:mod:`pipeline.models.mesoinception` too, :mod:`pipeline.models.backbone_scorer`, and for ensembles
:func:`pipeline.models.factory.load_ensemble`, whose members the factory loads); this module imports those
lazily, so reading the registry (a weights spec checking its ``architecture``) imports neither TensorFlow nor
onnxruntime. :func:`pipeline.models.factory.load_scorer` is the only caller of :func:`create_scorer`.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Any


@dataclasses.dataclass(frozen=True)
class Architecture:
    """One registered network: ``name`` (as weights specs write it), ``display_name`` (for people),
    ``family`` (``meso`` for MesoNet's CNNs, ``backbone`` for a frozen pretrained trunk with a head,
    ``ensemble``), ``runtime`` (what runs it: ``tensorflow`` or ``onnxruntime``), ``loader``
    (``module:function`` taking a weights path, returning a scorer), ``weights_suffix`` (the file name ending
    its weights use) and ``saliency`` (how evidence maps are made: ``grad-cam`` or ``occlusion``)."""

    name: str
    display_name: str
    family: str
    runtime: str
    loader: str
    weights_suffix: str
    saliency: str
    description: str = ""

    def load(self, weights_path: str | Path, *, threads: int | None = None):
        """The scorer of ``weights_path``, from the loader this entry names. ``threads``: intra-op threads of
        an onnxruntime model (TensorFlow's are set once per process by the factory)."""
        loader = _resolve_loader(self.loader)
        if self.runtime == "onnxruntime":
            return loader(Path(weights_path), threads=threads)
        return loader(Path(weights_path))


def _resolve_loader(loader: str) -> Callable:
    """``module:attr.attr`` to the callable (used by :meth:`Architecture.load`)."""
    module, path = loader.split(":")
    target: Any = importlib.import_module(module)
    for part in path.split("."):
        target = getattr(target, part)
    return target


_REGISTRY: dict[str, Architecture] = {}


def register_model(architecture: Architecture) -> Architecture:
    """Add ``architecture``; registering a name twice with another entry raises ``ValueError``."""
    old = _REGISTRY.get(architecture.name)
    if old is not None and old != architecture:
        raise ValueError(f"architecture {architecture.name!r} is already registered as {old}")
    _REGISTRY[architecture.name] = architecture
    return architecture


def list_models(family: str | None = None) -> list[str]:
    """Registered architecture names, sorted; only those of ``family`` when given."""
    return sorted(n for n, a in _REGISTRY.items() if family is None or a.family == family)


def get_architecture(name: str) -> Architecture:
    """The entry for ``name``. Raises ``KeyError`` naming the known ones."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown architecture {name!r}; known: {', '.join(list_models())}") from None


def is_registered(name: str) -> bool:
    return name in _REGISTRY


def create_scorer(architecture: str, weights_path: str | Path, *, threads: int | None = None):
    """Load the scorer of ``weights_path`` with its architecture's loader (``threads``: see
    :meth:`Architecture.load`)."""
    return get_architecture(architecture).load(weights_path, threads=threads)


def display_name(architecture: str) -> str:
    entry = _REGISTRY.get(architecture)
    return entry.display_name if entry else architecture


# The entries, declared once. Loaders are named, not imported, so nothing heavy loads with the registry.
for _entry in (
    Architecture(
        "meso4",
        "Meso-4",
        "meso",
        "tensorflow",
        "pipeline.models.meso4:MesoScorer.load",
        ".h5",
        "grad-cam",
        "MesoNet (Afchar et al. 2018): 4 conv blocks, 28,073 parameters; the seed project's model",
    ),
    Architecture(
        "mesoinception4",
        "MesoInception-4",
        "meso",
        "tensorflow",
        "pipeline.models.meso4:MesoScorer.load",
        ".h5",
        "grad-cam",
        "MesoNet (Afchar et al. 2018): Inception blocks then 2 conv blocks",
    ),
    Architecture(
        "ensemble",
        "An ensemble of models",
        "ensemble",
        "tensorflow",
        "pipeline.models.factory:load_ensemble",
        ".ensemble.json",
        "grad-cam",
        "members averaged in logit space after calibration",
    ),
    Architecture(
        "effnet-lite0-head",
        "EfficientNet-Lite0 features + MLP head",
        "backbone",
        "onnxruntime",
        "pipeline.models.backbone_scorer:BackboneScorer.load",
        ".npz",
        "occlusion",
        "frozen ImageNet EfficientNet-Lite0 (pooled statistics of stages 2-7), a small MLP fitted on cached features",
    ),
):
    register_model(_entry)
del _entry
