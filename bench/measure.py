"""Run whole processes and measure them (shared by the bench scripts).

Peak RSS comes from ``wait4`` in a small launcher process, never from the bench script itself:
a child forked from a process that already holds TensorFlow reports the parent's memory as its
own ``ru_maxrss`` (the high-water mark survives ``exec``), which inflated earlier figures.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def run_process(cmd: list[str]) -> tuple[float, float, str]:
    """(wall seconds, peak RSS MiB of the command, stdout) of one command.

    Output goes to files, not pipes: a pipe nobody reads fills up and blocks the run.
    """
    with tempfile.TemporaryDirectory() as tmp:
        report = os.path.join(tmp, "report.json")
        launcher = [sys.executable, os.path.abspath(__file__), report, *cmd]
        with open(os.path.join(tmp, "out"), "w+b") as out_file, open(os.path.join(tmp, "err"), "w+b") as err_file:
            subprocess.run(launcher, stdout=out_file, stderr=err_file, check=False)
            with open(report) as f:
                result = json.load(f)
            if result["exit_code"] != 0:
                err_file.seek(0)
                raise RuntimeError(err_file.read().decode(errors="replace")[-2000:])
            out_file.seek(0)
            return result["wall_s"], result["maxrss_kib"] / 1024.0, out_file.read().decode(errors="replace")


def run_scanner(inputs: list[str], weights: str, extra: list[str]) -> tuple[float, float, list[dict]]:
    """(wall seconds, peak RSS MiB, CSV rows) of one ``score_videos.py`` run. The peak RSS is
    the largest process the scanner waited for: itself, or a worker process."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "out.csv")
        cmd = [sys.executable, str(REPO / "score_videos.py"), *inputs, "-o", out, "--weights", weights, "-q", *extra]
        wall, rss, _ = run_process(cmd)
        with open(out, newline="") as f:
            rows = list(csv.DictReader(f))
    return wall, rss, rows


def _launch(report: str, cmd: list[str]) -> int:
    """Launcher mode: run ``cmd`` from this small process and write its wall time, exit code
    and peak RSS to ``report``."""
    started = time.perf_counter()
    proc = subprocess.Popen(cmd)
    _, status, usage = os.wait4(proc.pid, 0)
    result = {"wall_s": time.perf_counter() - started, "exit_code": os.waitstatus_to_exitcode(status),
              "maxrss_kib": usage.ru_maxrss}
    with open(report, "w") as f:
        json.dump(result, f)
    return 0


if __name__ == "__main__":
    sys.exit(_launch(sys.argv[1], sys.argv[2:]))
