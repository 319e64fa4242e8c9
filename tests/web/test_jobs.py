"""pipeline/web/jobs.py: the bounded job queue and its one worker thread (no model needed)."""

from __future__ import annotations

import threading
import time

import pytest

from pipeline.web.jobs import JobOutcome, JobQueue, QueueFullError


def test_job_queue_runs_in_order_and_cleans_up():
    queue = JobQueue(max_queued=4)
    cleaned = []
    try:
        ids = [
            queue.submit(
                "image", f"{i}.png", lambda p, i=i: JobOutcome({"i": i}), cleanup=lambda i=i: cleaned.append(i)
            )
            for i in range(3)
        ]
        results = [queue.wait(job_id, 10) for job_id in ids]
    finally:
        queue.close()
    assert [r["result"]["i"] for r in results] == [0, 1, 2]
    assert [r["state"] for r in results] == ["done"] * 3
    assert cleaned == [0, 1, 2]


def test_job_queue_failure_is_a_failed_job_and_still_cleans_up():
    queue = JobQueue()
    cleaned = threading.Event()

    def boom(progress):
        raise RuntimeError("model exploded")

    try:
        job = queue.wait(queue.submit("video", "x.mp4", boom, cleanup=cleaned.set), 10)
    finally:
        queue.close()
    assert job["state"] == "failed" and "model exploded" in job["error"] and job["result"] is None
    assert cleaned.is_set()


def test_job_queue_is_bounded_and_close_drops_waiting_jobs():
    queue = JobQueue(max_queued=1)
    gate, started = threading.Event(), threading.Event()
    cleaned = []

    def blocked(progress):
        started.set()
        gate.wait(10)
        return JobOutcome({})

    running = queue.submit("video", "a", blocked, cleanup=lambda: cleaned.append("a"))
    assert started.wait(10)
    waiting = queue.submit("video", "b", blocked, cleanup=lambda: cleaned.append("b"))
    assert queue.snapshot(waiting)["progress"]["jobs_ahead"] == 0
    with pytest.raises(QueueFullError):
        queue.submit("video", "c", blocked)
    gate.set()
    queue.close()
    assert sorted(cleaned) == ["a", "b"]
    assert queue.snapshot(running)["state"] == "done"
    assert queue.snapshot(waiting)["state"] == "failed"


def test_job_queue_keeps_results_for_a_bounded_count_and_time():
    queue = JobQueue(keep_jobs=2, keep_s=0.5)
    try:
        ids = [queue.submit("image", str(i), lambda p: JobOutcome({})) for i in range(3)]
        for job_id in ids:
            queue.wait(job_id, 10)
        assert queue.snapshot(ids[0]) is None  # beyond keep_jobs, the oldest goes
        assert queue.snapshot(ids[2])["state"] == "done"
        time.sleep(0.6)
        assert queue.snapshot(ids[2]) is None  # past keep_s
    finally:
        queue.close()


def test_job_states_in_snapshots_follow_the_job():
    queue = JobQueue()
    gate, started = threading.Event(), threading.Event()

    def blocked(progress):
        started.set()
        gate.wait(10)
        return JobOutcome({"ok": True})

    try:
        job_id = queue.submit("image", "a.png", blocked)
        assert started.wait(10)
        assert queue.snapshot(job_id)["state"] == "running"
        gate.set()
        assert queue.wait(job_id, 10)["state"] == "done"
    finally:
        gate.set()
        queue.close()


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"max_queued": 0}, "max_queued must be >= 1, got 0"),  # nothing could ever wait
        ({"keep_jobs": 0}, "keep_jobs must be >= 1, got 0"),  # results dropped at once
        ({"keep_s": 0.0}, "keep_s must be > 0, got 0.0"),  # results expire at once
    ],
)
def test_job_queue_rejects_bad_limits(kwargs, match):
    with pytest.raises(ValueError, match=match):
        JobQueue(**kwargs)
