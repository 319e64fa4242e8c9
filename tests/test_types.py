"""The type checker is clean: ``python -m mypy`` over what setup.cfg's ``[mypy]`` section names (the package,
and tests/protocol_conformance.py: the real scorers and detector against their protocols). About 8 s with
no cache, well under a second with one."""

from __future__ import annotations

import subprocess
import sys

from tests.helpers import REPO_ROOT


def test_mypy_is_clean():
    proc = subprocess.run([sys.executable, "-m", "mypy"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
