"""Import TensorFlow for scanning without the optional packages Keras drags in.

``import tensorflow`` loads Keras, and Keras imports scikit-learn (for its sklearn wrappers,
which pull in SciPy) and ``matplotlib.pyplot`` (for an image-gallery helper) whenever they are
installed. The scanner uses neither, and on a 2-core CPU they cost about 1.5 s of the ~4.5 s
TensorFlow import. :func:`import_tensorflow` hides them while TensorFlow and Keras load, then
unhides them, so a later ``import sklearn`` in the same process works as usual (only those two
Keras helpers see them as missing).
"""

from __future__ import annotations

import sys

# Imported by Keras in try/except ImportError blocks at import time, never used for scanning.
OPTIONAL_FOR_KERAS = ("sklearn", "matplotlib")


def import_tensorflow():
    """TensorFlow, imported once per process (Keras too), skipping :data:`OPTIONAL_FOR_KERAS`
    unless something imported them already."""
    if "tensorflow" in sys.modules and "keras" in sys.modules:
        return sys.modules["tensorflow"]
    hidden = [name for name in OPTIONAL_FOR_KERAS if name not in sys.modules]
    for name in hidden:
        sys.modules[name] = None  # makes ``import name`` raise ImportError
    try:
        import keras  # noqa: F401 - imported for its side effect: Keras registered while the optional imports are hidden
        import tensorflow as tf
    finally:
        for name in hidden:
            if name in sys.modules and sys.modules[name] is None:
                del sys.modules[name]
    return tf
