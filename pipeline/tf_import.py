"""Import TensorFlow for scanning: without the optional packages Keras drags in, and without
TensorFlow's native start-up chatter on the terminal.

``import tensorflow`` loads Keras, and Keras imports scikit-learn (for its sklearn wrappers,
which pull in SciPy) and ``matplotlib.pyplot`` (for an image-gallery helper) whenever they are
installed. The scanner uses neither, and on a 2-core CPU they cost about 1.5 s of the ~4.5 s
TensorFlow import. :func:`import_tensorflow` hides them while TensorFlow and Keras load, then
unhides them, so a later ``import sklearn`` in the same process works as usual (only those two
Keras helpers see them as missing).

TensorFlow's C++ side also writes start-up lines straight to file descriptor 2 while it is
imported (TensorFlow 2.21 with ``TF_CPP_MIN_LOG_LEVEL`` 0, measured)::

    WARNING: All log messages before absl::InitializeLog() is called are written to STDERR
    I0000 00:00:1796036334.159002   30942 cpu_feature_guard.cc:227] This TensorFlow binary is optimized ...
    To enable the following instructions: AVX2 FMA, in other operations, rebuild TensorFlow ...

(``TF_CPP_MIN_LOG_LEVEL`` >= 1 hides these three, but the command line only sets it when the
user has not, and error-level lines such as the ``E0000 ... Unable to register cuDNN factory``
some TensorFlow builds print on CUDA machines pass level 2; not measured here). Python cannot
reach those writes, so while TensorFlow is imported fd 2 is pointed at a pipe
(:func:`native_stderr_filtered`): a thread passes every line through to the real stderr at once
except :func:`is_startup_noise` lines, which are logged at DEBUG on ``pipeline.tf_import``
afterwards. A fatal (``F``) line, a Python warning or traceback, anything unknown, still
reaches the terminal, even if the import then aborts.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
import threading
from collections.abc import Iterator

log = logging.getLogger(__name__)

# Imported by Keras in try/except ImportError blocks at import time, never used for scanning.
OPTIONAL_FOR_KERAS = ("sklearn", "matplotlib")

# absl's own notice before its first log line, word for word.
_ABSL_PREFACE = "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"
# absl log lines at info, warning and error level: "I0000 00:00:1796036334.159002   30942 file.cc:227] ...";
# before absl is initialised the time is "00:00:<seconds since 1970>", hence the loose time pattern
_ABSL_LINE = re.compile(r"^[IWE]\d{4} [\d:.]+\s+\d+ \S+:\d+\] ")
# TensorFlow's older (tsl) format: "2024-01-01 12:00:00.123456: I tensorflow/core/...cc:123] ..."
_TSL_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: [IWE] \S+:\d+\] ")
# the second line of cpu_feature_guard's notice, which carries no prefix of its own
_CPU_FEATURES_TAIL = "To enable the following instructions:"


def is_startup_noise(line: str) -> bool:
    """True for a line TensorFlow's native code writes while it loads and that tells a user of
    the scanner nothing: absl's pre-initialisation notice, absl or tsl log lines at ``I``, ``W``
    or ``E`` level, and the CPU-instructions notice's second line. False for everything else,
    fatal (``F``) lines and Python warnings included."""
    line = line.rstrip("\r\n")
    return (
        line == _ABSL_PREFACE
        or line.startswith(_CPU_FEATURES_TAIL)
        or bool(_ABSL_LINE.match(line))
        or bool(_TSL_LINE.match(line))
    )


@contextlib.contextmanager
def native_stderr_filtered() -> Iterator[list[str]]:
    """Point file descriptor 2 at a pipe for the ``with`` block and pass its lines on to the
    real stderr as they come, except :func:`is_startup_noise` lines, which are collected in the
    list this yields and logged at DEBUG after the block. On leaving (normally or by an
    exception) fd 2 is restored before anything else is written, so the traceback of a failed
    import reaches the terminal. Without a usable fd 2 (e.g. closed) the block runs unfiltered."""
    dropped: list[str] = []
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):
        yield dropped
        return
    read_fd, write_fd = os.pipe()
    forwarder = threading.Thread(target=_forward, args=(read_fd, saved, dropped), daemon=True)
    forwarder.start()
    os.dup2(write_fd, 2)
    os.close(write_fd)
    try:
        yield dropped
    finally:
        with contextlib.suppress(OSError, ValueError, AttributeError):
            sys.stderr.flush()
        os.dup2(saved, 2)  # closes the pipe's last write end: the forwarder reads to the end, then stops
        forwarder.join(timeout=5.0)
        if not forwarder.is_alive():  # else a child holds the pipe open: leak the fd rather than reuse it
            os.close(saved)
        for line in dropped:
            log.debug("TensorFlow start-up: %s", line)


def _forward(read_fd: int, out_fd: int, dropped: list[str]) -> None:
    """Copy lines from ``read_fd`` to ``out_fd`` until end of file, keeping noise lines in
    ``dropped`` instead (one line at a time, so a fatal line is out before an abort)."""
    with os.fdopen(read_fd, "rb", buffering=0) as pipe:
        pending = b""
        while chunk := pipe.read(65536):
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for raw in lines:
                _pass_or_drop(raw + b"\n", out_fd, dropped)
        if pending:
            _pass_or_drop(pending, out_fd, dropped)


def _pass_or_drop(raw: bytes, out_fd: int, dropped: list[str]) -> None:
    text = raw.decode("utf-8", errors="replace")
    if is_startup_noise(text):
        dropped.append(text.rstrip("\r\n"))
        return
    with contextlib.suppress(OSError):
        os.write(out_fd, raw)


def import_tensorflow():
    """TensorFlow, imported once per process (Keras too), skipping :data:`OPTIONAL_FOR_KERAS`
    unless something imported them already, with TensorFlow's native start-up lines kept off
    the terminal (:func:`native_stderr_filtered`). Raises what ``import tensorflow`` raises."""
    if "tensorflow" in sys.modules and "keras" in sys.modules:
        return sys.modules["tensorflow"]
    hidden = [name for name in OPTIONAL_FOR_KERAS if name not in sys.modules]
    for name in hidden:
        sys.modules[name] = None  # makes ``import name`` raise ImportError
    try:
        with native_stderr_filtered():
            import keras  # noqa: F401 - imported for its side effect: Keras registered while the optional imports are hidden
            import tensorflow as tf
    finally:
        for name in hidden:
            if name in sys.modules and sys.modules[name] is None:
                del sys.modules[name]
    return tf
