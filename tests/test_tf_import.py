"""The lean, quiet TensorFlow import: Keras' optional scikit-learn and matplotlib stay unloaded,
and stay importable afterwards; TensorFlow's native start-up lines stay off stderr. The imports
run in fresh interpreters (this one may have TensorFlow already)."""

from __future__ import annotations

import logging
import os
import subprocess
import sys

import pytest

from pipeline.tf_import import is_startup_noise, native_stderr_filtered

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


@pytest.mark.slow
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


@pytest.mark.slow
def test_already_imported_packages_are_left_alone():
    out = _run(
        "import sys, sklearn\n"
        "from pipeline.tf_import import import_tensorflow\n"
        "import_tensorflow()\n"
        "print(sys.modules['sklearn'] is sklearn)\n"
    )
    assert out == "True"


@pytest.mark.parametrize(
    "line, noise",
    [
        ("WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n", True),
        # absl before initialisation: time is seconds since 1970
        (
            "I0000 00:00:1796036334.159002   30942 cpu_feature_guard.cc:227] This TensorFlow binary is optimized",
            True,
        ),
        ("To enable the following instructions: AVX2 FMA, in other operations, rebuild TensorFlow", True),
        ("E0000 00:00:1796036334.159002   30942 cuda_dnn.cc:8310] Unable to register cuDNN factory", True),
        ("W0412 10:11:12.345678    123 gpu_device.cc:2344] Cannot dlopen some GPU libraries.", True),
        ("2024-01-01 12:00:00.123456: I tensorflow/core/util/port.cc:113] oneDNN custom operations are on", True),
        # kept: a fatal line, Python's own warnings and errors, our messages
        ("F0000 00:00:1796036334.159002   30942 cpu_feature_guard.cc:100] AVX not available, aborting", False),
        ("/x/keras/src/export.py:12: DeprecationWarning: np.object is deprecated", False),
        ("Traceback (most recent call last):", False),
        ("2026-11-30 10:58:11,512 WARNING pipeline: no video files under clips", False),
    ],
)
def test_startup_noise_is_told_from_everything_else(line, noise):
    assert is_startup_noise(line) is noise


def test_filtered_stderr_passes_other_lines_and_is_restored(capfd, caplog):
    caplog.set_level(logging.DEBUG, logger="pipeline.tf_import")
    noise = "I0000 00:00:1796036334.159002   30942 cpu_feature_guard.cc:227] optimized\n"
    with native_stderr_filtered() as dropped:
        os.write(2, noise.encode())
        os.write(2, b"F0000 00:00:1.0   1 x.cc:1] fatal\nno newline at the end")
    os.write(2, b"\nafter\n")
    err = capfd.readouterr().err
    assert err == "F0000 00:00:1.0   1 x.cc:1] fatal\nno newline at the end\nafter\n"
    assert dropped == [noise.strip()]
    assert "cpu_feature_guard" in caplog.text  # kept at DEBUG, not lost


def test_fd_2_is_restored_when_the_block_raises(capfd):
    with pytest.raises(RuntimeError, match="import failed"):
        with native_stderr_filtered():
            os.write(2, b"before the error\n")
            raise RuntimeError("import failed")
    os.write(2, b"after the error\n")
    assert capfd.readouterr().err == "before the error\nafter the error\n"


@pytest.mark.slow
def test_tensorflow_start_up_lines_stay_off_stderr_even_at_log_level_0():
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import logging, sys\n"
            "logging.basicConfig(stream=sys.stdout, level=logging.WARNING)\n"
            "logging.getLogger('pipeline.tf_import').setLevel(logging.DEBUG)\n"
            "from pipeline.tf_import import import_tensorflow\n"
            "tf = import_tensorflow()\n"
            "print(int(tf.reduce_sum(tf.ones(3))))\n",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={"TF_CPP_MIN_LOG_LEVEL": "0", "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stderr == ""
    assert done.stdout.splitlines()[-1] == "3"
    # what TensorFlow printed (on CPUs it was built for it may print nothing) went to the debug log
    printed = [line for line in done.stdout.splitlines()[:-1] if line]
    assert all("TensorFlow start-up: " in line for line in printed)
