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


def run_process(cmd: list[str], own_rss: bool = False) -> tuple[float, float, str]:
    """(wall seconds, peak RSS MiB, stdout) of one command.

    The peak RSS is the largest of the command and the children it waited for (``wait4``), or
    with ``own_rss`` the command's own process alone, sampled every 0.2 s (a driver without its
    worker processes). Output goes to files, not pipes: a pipe nobody reads fills up and
    blocks the run.
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
            rss_kib = result["own_peak_rss_kib"] if own_rss else result["maxrss_kib"]
            return result["wall_s"], rss_kib / 1024.0, out_file.read().decode(errors="replace")


def run_scanner(
    inputs: list[str], weights: str, extra: list[str], own_rss: bool = False
) -> tuple[float, float, list[dict]]:
    """(wall seconds, peak RSS MiB, CSV rows) of one ``score_videos.py`` run. The peak RSS is
    that of the largest process (the scanner or a worker), or with ``own_rss`` the scanner's
    own process alone."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "out.csv")
        cmd = [sys.executable, str(REPO / "score_videos.py"), *inputs, "-o", out, "--weights", weights, "-q", *extra]
        wall, rss, _ = run_process(cmd, own_rss)
        with open(out, newline="") as f:
            rows = list(csv.DictReader(f))
    return wall, rss, rows


def _launch(report: str, cmd: list[str]) -> int:
    """Launcher mode: run ``cmd`` from this small process and write its wall time, exit code
    and peak RSS (``wait4``, and its own process sampled) to ``report``."""
    import psutil

    started = time.perf_counter()
    proc = subprocess.Popen(cmd)
    own_peak = 0
    while True:
        waited_pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if waited_pid:
            break
        try:
            own_peak = max(own_peak, psutil.Process(proc.pid).memory_info().rss)
        except psutil.Error:  # exiting between the two calls
            pass
        time.sleep(0.2)
    result = {
        "wall_s": time.perf_counter() - started,
        "exit_code": os.waitstatus_to_exitcode(status),
        "maxrss_kib": usage.ru_maxrss,
        "own_peak_rss_kib": own_peak // 1024,
    }
    with open(report, "w") as f:
        json.dump(result, f)
    return 0


if __name__ == "__main__":
    sys.exit(_launch(sys.argv[1], sys.argv[2:]))
