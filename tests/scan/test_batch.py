"""Many clips into one CSV: the batch runner with real worker processes."""

from __future__ import annotations

import threading
import time

import pandas as pd
import pytest

from pipeline.scan.batch import run_batch
from pipeline.scan.analyze import ScanConfig


def _worker_processes():
    """The pool's worker processes; children that exit meanwhile (ffmpeg, zombies) are skipped."""
    import psutil

    workers = []
    for p in psutil.Process().children(recursive=True):
        try:
            cmdline = " ".join(p.cmdline())
        except psutil.Error:  # gone, or a zombie not yet reaped
            continue
        if "spawn_main" in cmdline and "resource_tracker" not in cmdline:
            workers.append(p)
    return workers


@pytest.mark.slow
def test_a_killed_worker_loses_no_clip_and_writes_none_twice(tmp_path, clip_dir, meso4_df_path, caplog):
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(6):
        (folder / f"face{i}.mp4").write_bytes((clip_dir / "face.mp4").read_bytes())
    paths = sorted(str(p) for p in folder.iterdir())
    out = tmp_path / "scores.csv"
    errors = []

    def run() -> None:
        try:
            run_batch(paths, out, config=ScanConfig(fps=4), weights_path=meso4_df_path, workers=2, progress=False)
        except BaseException as exc:  # surfaced by the assertion below
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    deadline = time.monotonic() + 240
    # wait until the first clip is written (workers are up and busy), then kill one worker
    while time.monotonic() < deadline and (not out.exists() or len(out.read_text().splitlines()) < 2):
        time.sleep(0.2)
    victims = _worker_processes()
    assert victims, "no worker process to kill"
    victims[0].kill()
    thread.join(timeout=300)
    assert not thread.is_alive() and not errors, errors
    rows = pd.read_csv(out)
    assert sorted(rows["video_path"]) == paths  # every clip exactly once
    assert (rows["status"] == "ok").all(), rows[["video_path", "status", "error"]]
    assert "worker process died; retrying" in caplog.text  # the kill hit a clip in flight
