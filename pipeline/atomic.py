"""Write a file so that readers see the old file or the whole new one, never half of one."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(target: str | Path, suffix: str = ".part") -> Iterator[Path]:
    """A temporary path beside ``target`` to write to. When the block ends normally it replaces
    ``target`` in one rename, with the permissions a plain ``open`` would give (mkstemp makes
    0600); when it raises, the temporary file is removed and ``target`` is untouched.

    The ``suffix`` (``.part`` by default) keeps a file left by a killed process out of image and
    weight globs.
    """
    target = Path(target)
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=suffix)
    os.close(fd)
    try:
        yield Path(tmp_name)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp_name, 0o666 & ~umask)
        os.replace(tmp_name, target)
    finally:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)
