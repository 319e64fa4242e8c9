"""Deepfake-video scanner: ffmpeg decoding, MTCNN faces, per-face scores, one ``p_fake`` per clip.

Every score this package emits is ``p_fake``: the probability that a face or a clip is
manipulated, 1 = fake, 0 = real. Importing the package is cheap: TensorFlow, MTCNN and
the model are only loaded by the functions that need them.

The public verbs, each imported from its module on first use (PEP 562)::

    import pipeline

    models = pipeline.load_models()                      # MTCNN + the scorer, once
    result = pipeline.score_video("clip.mp4", models.detector, models.scorer)
    pipeline.run_batch(paths, "scores.csv", config=config, models=models)

``build_dataset`` (face crops from labelled clips), ``train`` and ``evaluate`` are the
training side.
"""

from __future__ import annotations

import importlib

__version__ = "0.7.0"

# verb -> (module, name in that module); the modules are imported only when a verb is used
_VERBS: dict[str, tuple[str, str]] = {
    "score_video": ("pipeline.scan.analyze", "score_video"),
    "run_batch": ("pipeline.scan.batch", "run_batch"),
    "load_models": ("pipeline.models.factory", "load_models"),
    "build_dataset": ("pipeline.training.extract", "build_dataset"),
    "train": ("pipeline.training.train", "train"),
    "evaluate": ("pipeline.training.evaluate", "evaluate"),
}

__all__ = ["__version__", "build_dataset", "evaluate", "load_models", "run_batch", "score_video", "train"]


def __getattr__(name: str):
    """``pipeline.<verb>``: import the verb's module now and return the function. Raises
    ``AttributeError`` for any other name (as a module without it would)."""
    try:
        module_name, attribute = _VERBS[name]
    except KeyError:
        raise AttributeError(f"module 'pipeline' has no attribute {name!r}; its verbs are {sorted(_VERBS)}") from None
    value = getattr(importlib.import_module(module_name), attribute)
    globals()[name] = value  # the next use is a plain attribute look-up
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_VERBS))
