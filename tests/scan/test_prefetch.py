"""Decoding one clip ahead (pipeline/scan/analyze.py: ``_PrimedFrames``, ``open_clip``;
pipeline/scan/engines/local.py: ``_results_here``, ``ClipPrefetcher``): the frames are the same as
without it, the rows come in input order, the next clip is opened while the current one is
scored (the first while the models load), and leaving a batch early leaves no ffmpeg behind.
The real ffmpeg on small generated clips; stand-ins for MTCNN and Meso-4."""

from __future__ import annotations

import contextlib
import dataclasses
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import psutil
import pytest

from pipeline.errors import DecodeError
from pipeline.faces.boxes import FaceBox
from pipeline.faces.detect import DetectorConfig, FaceDetector
from pipeline.models.factory import LoadedModels, ModelSpec
from pipeline.scan import analyze, batch
from pipeline.scan.analyze import ScanConfig, _PrimedFrames, open_clip, score_video_safe
from pipeline.scan.engines import local
from pipeline.video.decode import Frame
from tests.helpers import StubScorer, make_lavfi_clip

# An upright face's five landmarks (left eye, right eye, nose, mouth left, mouth right) in a
# 100 px box: every face found looks upright, so no clip is probed turned or decoded twice.
UPRIGHT_LANDMARKS = ((40.0, 40.0), (60.0, 40.0), (50.0, 50.0), (42.0, 62.0), (58.0, 62.0))


class CentreDetector(FaceDetector):
    """Finds one upright face in the middle of every image it is given (its side half the
    image's short side; every frame searched whole): the stub scorer's ``p_fake`` then
    follows the clip's pixels."""

    def __init__(self):  # FaceDetector's own would import mtcnn, hence TensorFlow (seconds)
        self.config = DetectorConfig(full_frame_every_s=0.0)
        self.describer = None

    def detect(self, frames_rgb, *, min_face_px=None):
        out = []
        for rgb in frames_rgb:
            h, w = rgb.shape[:2]
            side = 0.5 * min(h, w)
            x1, y1 = (w - side) / 2, (h - side) / 2
            points = tuple((x1 + x * side / 100, y1 + y * side / 100) for x, y in UPRIGHT_LANDMARKS)
            out.append([FaceBox((x1, y1, x1 + side, y1 + side), 0.99, points)])
        return out

    def detect_in_images(self, images_rgb):
        return self.detect(images_rgb)


class NamedStubScorer(StubScorer):
    """:class:`StubScorer` with the spec fields a batch stamps on its rows."""

    class spec(StubScorer.spec):
        name = "stub"
        sha256 = "0" * 64
        threshold = None


def fake_models() -> LoadedModels:
    return LoadedModels(CentreDetector(), NamedStubScorer(), Path("stub.h5"), threshold=0.5)


def ffmpeg_children() -> list[psutil.Process]:
    """This process's ffmpeg children, running or exited and not yet reaped (zombies)."""
    found = []
    for child in psutil.Process().children(recursive=True):
        try:
            if "ffmpeg" in child.name():
                found.append(child)
        except psutil.NoSuchProcess:  # gone (reaped) meanwhile
            continue
    return found


def wait_for(condition, timeout_s: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


@pytest.fixture(autouse=True)
def no_ffmpeg_left_by_earlier_tests():
    """Each test starts with no ffmpeg child, so what a test finds running is its own."""
    assert wait_for(lambda: not ffmpeg_children()), ffmpeg_children()


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, Path]:
    """Three small clips, each its own picture and length (2, 3 and 4 s at 10 fps, so 4, 6 and
    8 frames sampled at 2 fps), a text file named .mp4, and a longer clip whose sampled frames
    (40 at 10 fps, 230 KB each) do not fit in the decoder's read-ahead, so its ffmpeg keeps
    running, blocked, until its frames are read or it is stopped."""
    root = tmp_path_factory.mktemp("prefetch")
    made = {
        "a": make_lavfi_clip(root / "a.mp4", size="160x120", rate=10, duration_s=2.0, source="testsrc2"),
        "b": make_lavfi_clip(root / "b.mp4", size="128x96", rate=10, duration_s=3.0, source="smptebars"),
        "c": make_lavfi_clip(root / "c.mp4", size="160x96", rate=10, duration_s=4.0, source="rgbtestsrc"),
        "long": make_lavfi_clip(root / "long.mp4", size="320x240", rate=10, duration_s=4.0, source="testsrc2"),
    }
    made["broken"] = root / "broken.mp4"
    made["broken"].write_text("this is a text file, not a video\n")
    return made


SMALL = ScanConfig(fps=2)  # 4, 6, 8 frames of clips a, b, c
LONG = ScanConfig(fps=10, max_frames=40)  # 40 frames of the long clip


# --------------------------------------------------------------------------------------------
# _PrimedFrames
# --------------------------------------------------------------------------------------------


def fake_frames(n: int, log: list, *, fail_first: BaseException | None = None):
    """``n`` tiny frames; ``log`` records each frame asked for and when the generator ended
    (its ``finally``)."""
    try:
        for i in range(n):
            log.append(("asked", i))
            if fail_first is not None:
                raise fail_first
            yield Frame(i, 3 * i, i / 2, np.full((2, 2, 3), i, np.uint8))
    finally:
        log.append("finally")


def test_primed_frames_asks_for_the_first_frame_at_construction():
    log: list = []
    frames = fake_frames(3, log)
    assert log == []  # a generator does nothing until asked
    primed = _PrimedFrames(frames)
    assert log == [("asked", 0)]  # the first frame (only) was asked for: its decoder is running
    assert [(f.sample_index, f.frame_index, f.timestamp_s) for f in primed] == [(0, 0, 0.0), (1, 3, 0.5), (2, 6, 1.0)]
    assert log == [("asked", 0), ("asked", 1), ("asked", 2), "finally"]


def test_primed_frames_raise_the_first_frames_error_when_iterated_on_the_iterating_thread():
    log: list = []
    built: list = []
    failing = fake_frames(3, log, fail_first=DecodeError("no frame"))
    thread = threading.Thread(target=lambda: built.append(_PrimedFrames(failing)))
    thread.start()
    thread.join(timeout=5)
    (primed,) = built  # construction did not raise, on the thread that built it
    assert log == [("asked", 0), "finally"]
    with pytest.raises(DecodeError, match="no frame"):
        list(primed)


def test_primed_frames_of_an_empty_iterator_yield_nothing():
    log: list = []
    primed = _PrimedFrames(fake_frames(0, log))
    assert log == ["finally"]
    assert list(primed) == []
    assert list(_PrimedFrames(iter([]))) == []  # a plain iterator, without close()


def test_closing_primed_frames_closes_the_generator():
    log: list = []
    primed = _PrimedFrames(fake_frames(3, log))
    primed.close()
    assert log == [("asked", 0), "finally"]  # the decoder's clean-up ran: ffmpeg would be killed
    assert list(primed) == []  # nothing more comes from a closed decoder


def test_closing_primed_frames_part_way_closes_the_generator():
    log: list = []
    primed = _PrimedFrames(fake_frames(4, log))
    it = iter(primed)
    assert [next(it).sample_index, next(it).sample_index] == [0, 1]
    primed.close()
    assert log[-1] == "finally" and ("asked", 2) not in log


# --------------------------------------------------------------------------------------------
# open_clip
# --------------------------------------------------------------------------------------------


def _frames_of(clip) -> list[tuple[int, int, float, np.ndarray]]:
    return [(f.sample_index, f.frame_index, f.timestamp_s, np.array(f.rgb)) for f in clip.frames]


@pytest.mark.parametrize(
    "name, config",
    [
        ("a", ScanConfig(fps=1)),  # sparse: 10 source frames a sample, non-reference frames skipped
        ("a", ScanConfig(fps=5)),  # every frame decoded, sampled by the fps filter
        ("long", LONG),  # more frames than the read-ahead holds: ffmpeg waits for the reader
    ],
)
def test_a_primed_clip_gives_the_frames_an_unprimed_one_does(clips, name, config):
    plain = open_clip(clips[name], config, prime=False)
    assert not ffmpeg_children()  # unprimed: nothing started until the frames are asked for
    plain_frames = _frames_of(plain)
    primed = open_clip(clips[name], config, prime=True)
    assert ffmpeg_children()  # primed: ffmpeg started before any frame is asked for
    primed_frames = _frames_of(primed)
    assert (primed.info, primed.sample_fps, primed.path) == (plain.info, plain.sample_fps, plain.path)
    assert len(primed_frames) == len(plain_frames) == round(config.fps * (2.0 if name == "a" else 4.0))
    for (i, fi, t, rgb), (pi, pfi, pt, prgb) in zip(plain_frames, primed_frames):
        assert (pi, pfi, pt) == (i, fi, t)
        assert np.array_equal(prgb, rgb)
    assert primed.cuts == plain.cuts  # both complete once the frames are exhausted
    assert wait_for(lambda: not ffmpeg_children(), 2.0)  # exhausted: ffmpeg reaped


@pytest.mark.parametrize("prime", [False, True])
def test_open_clip_raises_decode_error_for_a_text_file(clips, prime):
    with pytest.raises(DecodeError, match="not a readable video"):
        open_clip(clips["broken"], SMALL, prime=prime)
    assert not ffmpeg_children()


def test_closing_a_primed_clip_never_read_stops_its_ffmpeg(clips):
    clip = open_clip(clips["long"], LONG, prime=True)
    (proc,) = ffmpeg_children()
    time.sleep(0.3)
    assert proc.status() != psutil.STATUS_ZOMBIE  # blocked on its full pipe, not done
    clip.close()
    assert wait_for(lambda: not ffmpeg_children(), 2.0)


# --------------------------------------------------------------------------------------------
# A batch in this process
# --------------------------------------------------------------------------------------------

BATCH = ("a", "b", "broken", "c")


def test_a_batch_gives_the_rows_scoring_each_clip_alone_gives(tmp_path, clips):
    paths = [str(clips[name]) for name in BATCH]
    models = fake_models()
    out = tmp_path / "scores.csv"
    summary = batch.run_batch(paths, out, config=SMALL, models=models, progress=False, workers=1)
    assert summary.status_counts == {"ok": 3, "decode_error": 1}
    rows = pd.read_csv(out)
    assert list(rows["video_path"]) == paths  # input order
    assert list(rows["status"]) == ["ok", "ok", "decode_error", "ok"]
    alone = [score_video_safe(p, models.detector, models.scorer, SMALL).row for p in paths]
    assert [r.status for r in alone] == list(rows["status"])
    assert [r.n_frames for r in alone[:2] + alone[3:]] == [4, 6, 8]
    got = rows.drop(index=2)
    want = [r for r in alone if r.status == "ok"]
    assert list(got["n_frames"]) == [r.n_frames for r in want]
    assert list(got["n_faces"]) == [r.n_faces for r in want]
    assert list(got["p_fake"]) == pytest.approx([r.p_fake for r in want], abs=5e-7)  # the CSV keeps 6 decimals
    assert len({round(r.p_fake, 6) for r in want}) == 3  # each clip its own score: a mix-up would show
    assert "not a readable video" in rows["error"][2]
    assert not ffmpeg_children()


def test_results_here_equal_scoring_each_clip_alone(clips):
    paths = [str(clips[name]) for name in BATCH]
    models = fake_models()
    results = list(local._results_here(paths, models, SMALL, False, False))
    alone = [score_video_safe(p, models.detector, models.scorer, SMALL) for p in paths]
    assert [r.row.video_path for r in results] == paths
    for got, want in zip(results, alone):
        assert (got.row.status, got.row.n_frames, got.row.p_fake) == (
            want.row.status,
            want.row.n_frames,
            want.row.p_fake,
        )
        assert [(f.sample_index, f.timestamp_s, f.p_fake) for f in got.faces] == [
            (f.sample_index, f.timestamp_s, f.p_fake) for f in want.faces
        ]


# --------------------------------------------------------------------------------------------
# When clips are opened
# --------------------------------------------------------------------------------------------


class EventLog(list):
    """A list of events, appended to from several threads."""

    def __init__(self):
        super().__init__()
        self._lock = threading.Lock()
        self.clips: list = []  # every OpenedClip made

    def record(self, *event) -> None:
        with self._lock:
            self.append(event)


@pytest.fixture
def events(monkeypatch):
    """The batch's steps in order: ``("open", name)`` when a clip is handed to the prefetcher,
    ``("opened", name, primed)`` when opening it (probe, decoder started) finished on its
    thread, ``("load",)`` when the models are loaded (a stand-in :func:`load_models` that waits
    up to 5 s for the first clip to be opened first, as TensorFlow's load takes seconds), and
    ``("scored", name)`` when a clip's result is made; the test adds ``("result", name)`` as
    the results come."""
    from pipeline.models import factory

    log = EventLog()
    first_opened = threading.Event()
    record = log.record

    real_open = local.ClipPrefetcher.open
    real_open_clip = analyze.open_clip
    real_score_here = local._score_here

    def spy_open(self, path):
        record("open", Path(path).stem)
        return real_open(self, path)

    def spy_open_clip(path, config=ScanConfig(), *, prime=False, **kwargs):
        try:
            clip = real_open_clip(path, config, prime=prime, **kwargs)
            log.clips.append(clip)  # held here too: only an explicit close, not the GC, stops its ffmpeg
            return clip
        finally:
            record("opened", Path(path).stem, prime)
            first_opened.set()

    def fake_load(spec):
        record("load", first_opened.wait(timeout=5))
        return fake_models()

    def spy_score_here(path, *args, **kwargs):
        result = real_score_here(path, *args, **kwargs)
        record("scored", Path(path).stem)
        return result

    monkeypatch.setattr(local.ClipPrefetcher, "open", spy_open)
    monkeypatch.setattr(analyze, "open_clip", spy_open_clip)
    monkeypatch.setattr(factory, "load_models", fake_load)
    monkeypatch.setattr(local, "_score_here", spy_score_here)
    return log


def _main_thread_events(log: list) -> list:
    """The steps taken in order on the batch's own thread (opening finishes on another)."""
    return [e for e in log if e[0] != "opened"]


def test_each_next_clip_is_opened_while_the_current_one_is_scored(clips, events, monkeypatch):
    monkeypatch.setattr(local, "START_UP_CLIPS_AHEAD", 1)  # one clip ahead from the start
    paths = [str(clips[name]) for name in BATCH]
    for result in local._results_here(paths, ModelSpec(), SMALL, False, False):
        events.record("result", Path(result.row.video_path).stem)
    assert _main_thread_events(events) == [
        ("open", "a"),  # the first clip before the models
        ("load", True),  # ... and it was opened (probed, ffmpeg started) before they were loaded
        ("open", "b"),  # a's frames all delivered: b opens before a's result is made
        ("scored", "a"),
        ("result", "a"),
        ("open", "broken"),
        ("scored", "b"),
        ("result", "b"),
        ("scored", "broken"),  # failed when opened: its frames were never delivered ...
        ("open", "c"),  # ... so c opens after its result is made, before it is yielded
        ("result", "broken"),
        ("scored", "c"),
        ("result", "c"),
    ]
    opened = [e for e in events if e[0] == "opened"]
    assert opened == [("opened", name, True) for name in BATCH]  # each once, primed, none opened again
    assert not ffmpeg_children()


def test_the_first_clips_are_all_opened_while_the_models_load(clips, events):
    """TensorFlow's import keeps one core busy for seconds and a clip's decoder stops once its
    read-ahead is full: the first START_UP_CLIPS_AHEAD clips decode meanwhile."""
    assert local.START_UP_CLIPS_AHEAD == 3
    paths = [str(clips[name]) for name in BATCH]  # a, b, broken, c
    results = [r.row for r in local._results_here(paths, ModelSpec(), SMALL, False, False)]
    assert [r.status for r in results] == ["ok", "ok", "decode_error", "ok"]
    main = _main_thread_events(events)
    assert main[:4] == [("open", "a"), ("open", "b"), ("open", "broken"), ("load", True)]
    opened = [e for e in events if e[0] == "opened"]
    assert sorted(opened) == sorted(("opened", name, True) for name in BATCH)  # each once, primed
    assert [e[1] for e in opened[:3]] == ["a", "b", "broken"]
    assert not ffmpeg_children()


def test_loaded_models_are_not_loaded_again_and_a_single_clip_opens_once(clips, events):
    results = list(local._results_here([str(clips["a"])], fake_models(), SMALL, False, False))
    assert [r.row.status for r in results] == ["ok"]
    assert [e for e in events if e[0] in ("open", "opened", "load")] == [("open", "a"), ("opened", "a", True)]


def test_nothing_to_score_opens_nothing_and_loads_nothing(events):
    assert list(local._results_here([], ModelSpec(), SMALL, False, False)) == []
    assert list(events) == []


# --------------------------------------------------------------------------------------------
# Leaving a batch early
# --------------------------------------------------------------------------------------------


def test_leaving_after_the_first_result_stops_the_clip_opened_ahead(clips, events):
    paths = [str(clips[name]) for name in ("a", "long", "c")]
    with contextlib.closing(local._results_here(paths, fake_models(), LONG, False, False)) as results:
        first = next(results)
        assert first.row.status == "ok"
        # the long clip was opened ahead and its ffmpeg is running, blocked on its full pipe
        assert wait_for(lambda: ("opened", "long", True) in events)
        (proc,) = ffmpeg_children()
        assert proc.status() != psutil.STATUS_ZOMBIE
    assert wait_for(lambda: not ffmpeg_children(), 2.0), ffmpeg_children()  # killed and reaped
    assert not any(e[1] == "c" for e in events if e[0] in ("open", "opened"))  # never opened


def test_leaving_while_the_next_clip_is_being_opened_stops_it_once_open(clips, events, monkeypatch):
    """Left while the prefetch thread is still opening the next clip: it is stopped as soon as
    it is open."""
    slow_open_clip = analyze.open_clip  # the spy above
    entered, release = threading.Event(), threading.Event()

    def slower(path, config=ScanConfig(), *, prime=False, **kwargs):
        if Path(path).stem == "long":
            entered.set()
            release.wait(timeout=5)
        return slow_open_clip(path, config, prime=prime, **kwargs)

    monkeypatch.setattr(analyze, "open_clip", slower)
    paths = [str(clips["a"]), str(clips["long"])]
    try:
        with contextlib.closing(local._results_here(paths, fake_models(), LONG, False, False)) as results:
            assert next(results).row.status == "ok"
            assert entered.wait(timeout=5)  # the prefetch thread has begun opening the long clip ...
            assert ("opened", "long", True) not in events  # ... and is not done
    finally:
        release.set()
    assert wait_for(lambda: ("opened", "long", True) in events)
    assert wait_for(lambda: not ffmpeg_children(), 2.0), ffmpeg_children()


def test_leaving_when_an_error_escapes_stops_the_clip_opened_ahead(clips, events, monkeypatch):
    """An error out of the consumer (a full disk writing the row, Ctrl-C) leaves through the
    ``with`` block as closing does."""
    paths = [str(clips["a"]), str(clips["long"])]
    with pytest.raises(KeyboardInterrupt):
        for _result in local._results_here(paths, fake_models(), LONG, False, False):
            assert wait_for(lambda: ("opened", "long", True) in events)
            assert ffmpeg_children()
            raise KeyboardInterrupt
    assert wait_for(lambda: not ffmpeg_children(), 2.0), ffmpeg_children()


def test_scoring_with_opened_takes_the_clip_as_given(clips):
    """``score_video(opened=...)`` scores the clip opened, and calls ``on_decoded`` once, after
    the last frame and before the result."""
    models = fake_models()
    delivered: list[int] = []
    calls: list[int] = []  # how many frames had been delivered when on_decoded was called
    clip = open_clip(clips["b"], SMALL, prime=True)

    def counted(frames):
        for frame in frames:
            delivered.append(frame.sample_index)
            yield frame

    clip = dataclasses.replace(clip, frames=counted(clip.frames))
    result = analyze.score_video(
        clips["b"],
        models.detector,
        models.scorer,
        SMALL,
        opened=lambda: clip,
        on_decoded=lambda: calls.append(len(delivered)),
    )
    assert delivered == list(range(6)) and calls == [6]
    alone = analyze.score_video(clips["b"], models.detector, models.scorer, SMALL)
    fields = ("video_path", "status", "p_fake", "n_frames", "n_faces", "n_tracks", "n_cuts", "width", "height")
    assert [getattr(result.row, f) for f in fields] == [getattr(alone.row, f) for f in fields]
    assert result.row.status == "ok" and result.row.n_frames == 6


@pytest.mark.slow
def test_the_time_budget_of_a_clip_opened_ahead_starts_at_its_turn(clips, monkeypatch):
    """A clip opened while the models load (or while the clip before it is scored) is not timed
    out for that wait: its ``--timeout`` counts from when its turn comes. Found by a helper:
    a 1.5 s budget and a 3 s model load gave the first clip ``timeout`` with ``elapsed_s`` 0.04."""
    from pipeline.models import factory

    def slow_load(spec):
        time.sleep(3.0)
        return fake_models()

    monkeypatch.setattr(factory, "load_models", slow_load)
    config = ScanConfig(fps=10, max_frames=40, timeout_s=1.5)
    results = local._results_here([str(clips["long"]), str(clips["a"])], ModelSpec(), config, False, False)
    try:
        rows = [r.row for r in results]
    finally:
        results.close()
    assert [r.status for r in rows] == ["ok", "ok"], [r.error for r in rows]
    assert rows[0].n_frames == 40


@pytest.mark.slow
def test_a_decoder_that_never_delivers_is_still_stopped_by_its_budget(clips, monkeypatch):
    """The clock of a clip opened ahead starts when its turn comes, and taking it starts the
    clock before waiting for the opening: a decoder stuck before its first frame still ends
    in ``timeout``, not in a wait forever."""
    import subprocess

    real_popen = subprocess.Popen

    def stuck_popen(args, *a, **kw):  # the decoder reads its input from a pipe nobody writes
        if "rawvideo" in args:
            args = list(args)
            args[args.index("-i") + 1] = "pipe:0"
            args[args.index("-protocol_whitelist") + 1] = "file,pipe"
            kw["stdin"] = subprocess.PIPE
        return real_popen(args, *a, **kw)

    from pipeline.models import factory

    monkeypatch.setattr(factory, "load_models", lambda spec: fake_models())
    monkeypatch.setattr(subprocess, "Popen", stuck_popen)
    started = time.monotonic()
    results = local._results_here([str(clips["a"])], ModelSpec(), ScanConfig(fps=2, timeout_s=1.5), False, False)
    try:
        (result,) = list(results)
    finally:
        results.close()
    assert result.row.status == "timeout", result.row
    assert result.row.elapsed_s >= 1.5 - 0.05  # the whole budget, from the clip's turn
    assert time.monotonic() - started < 20


LEFT_OPEN = """
import sys
from pipeline.scan.engines import local
from pipeline.scan.analyze import ScanConfig
from pipeline.models import factory
sys.path.insert(0, sys.argv[2])
from test_prefetch import fake_models
factory.load_models = lambda spec: fake_models()
results = local._results_here([sys.argv[1], sys.argv[1]], None, ScanConfig(fps=10, max_frames=40), False, False)
next(results)  # the second clip is now opened ahead, its ffmpeg blocked on a full pipe
raise KeyboardInterrupt  # never closed: the interpreter exits with a decoder alive
"""


def test_an_interpreter_left_with_a_decoder_running_exits_cleanly(clips):
    """A batch (or any frame generator) not closed when Python exits used to abort the
    interpreter (``Fatal Python error: _enter_buffered_busy``, exit code 134): its pipe was
    closed after daemon threads were frozen, one of them holding the pipe's lock. Decoders
    still running are now killed at exit first: the KeyboardInterrupt ends the process as it
    should (by SIGINT, as Python does for an uncaught one)."""
    import subprocess
    import sys

    here = Path(__file__).resolve().parent
    repo = here.parents[1]
    done = subprocess.run(
        [sys.executable, "-c", LEFT_OPEN, str(clips["long"]), str(here)],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "Fatal Python error" not in done.stderr, done.stderr[-2000:]
    assert done.returncode in (-2, 1, 130), (done.returncode, done.stderr[-2000:])
