"""``import pipeline``: cheap, with the public verbs imported lazily (PEP 562)."""

from __future__ import annotations

import subprocess
import sys

import pytest

import pipeline
from tests.helpers import REPO_ROOT

VERBS = {
    "score_video": "pipeline.scan.analyze",
    "run_batch": "pipeline.scan.batch",
    "load_models": "pipeline.models.factory",
    "build_dataset": "pipeline.training.extract",
    "train": "pipeline.training.train",
    "evaluate": "pipeline.training.evaluate",
}


def test_import_pipeline_imports_no_tensorflow_and_no_verb_module():
    code = (
        "import sys\nimport pipeline\n"
        "heavy = [m for m in ('tensorflow', 'keras', 'mtcnn', 'pipeline.scan.analyze', 'pipeline.training.train')"
        " if m in sys.modules]\nassert not heavy, heavy\nprint(sorted(pipeline.__all__))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "run_batch" in proc.stdout


def test_all_lists_the_verbs():
    assert set(pipeline.__all__) == {*VERBS, "__version__"}
    assert set(VERBS) <= set(dir(pipeline))


@pytest.mark.parametrize("verb, module", sorted(VERBS.items()))
def test_each_verb_is_its_modules_function(verb, module):
    import importlib

    function = getattr(pipeline, verb)
    assert callable(function) and function.__module__ == module
    assert function is getattr(importlib.import_module(module), function.__name__)


def test_an_unknown_name_is_an_attribute_error_naming_the_verbs():
    with pytest.raises(AttributeError, match="run_batch"):
        pipeline.no_such_verb  # noqa: B018 - the attribute access itself is what must raise
