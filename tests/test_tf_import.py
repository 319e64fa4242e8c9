"""The lean TensorFlow import: Keras' optional scikit-learn and matplotlib stay unloaded, and
stay importable afterwards. Runs in fresh interpreters (this one may have TensorFlow already)."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytest.importorskip("sklearn")
pytest.importorskip("matplotlib")


def _run(code: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=300,
        env={"TF_CPP_MIN_LOG_LEVEL": "3", "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip()


def test_tensorflow_loads_without_sklearn_and_matplotlib_which_stay_importable():
    out = _run(
        "import sys\n"
        "from pipeline.tf_import import import_tensorflow\n"
        "tf = import_tensorflow()\n"
        "print(tf.__name__, 'keras' in sys.modules, 'sklearn' in sys.modules, 'matplotlib' in sys.modules)\n"
        "import sklearn.metrics, matplotlib\n"
        "print(sklearn.__name__, matplotlib.__name__)\n"
    )
    assert out.splitlines() == ["tensorflow True False False", "sklearn matplotlib"]


def test_already_imported_packages_are_left_alone():
    out = _run(
        "import sys, sklearn\n"
        "from pipeline.tf_import import import_tensorflow\n"
        "import_tensorflow()\n"
        "print(sys.modules['sklearn'] is sklearn)\n"
    )
    assert out == "True"
