"""Run ``score_videos.py`` as a whole process and measure it (shared by the bench scripts)."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def run_scanner(inputs: list[str], weights: str, extra: list[str]) -> tuple[float, float, list[dict]]:
    """(wall seconds, peak RSS MiB of the largest process, CSV rows) of one scanner run.

    stderr goes to a file, not a pipe: a pipe nobody reads fills up and blocks the run.
    """
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "out.csv")
        cmd = [sys.executable, str(REPO / "score_videos.py"), *inputs, "-o", out, "--weights", weights, "-q", *extra]
        with open(os.path.join(tmp, "stderr.txt"), "w+b") as err_file:
            started = time.perf_counter()
            proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err_file)
            _, status, usage = os.wait4(proc.pid, 0)
            wall = time.perf_counter() - started
            if os.waitstatus_to_exitcode(status) != 0:
                err_file.seek(0)
                raise RuntimeError(err_file.read().decode(errors="replace")[-2000:])
        with open(out, newline="") as f:
            rows = list(csv.DictReader(f))
    return wall, usage.ru_maxrss / 1024.0, rows
