"""Many clips into one CSV: the batch runner with real worker processes."""

from __future__ import annotations

import dataclasses
import threading
import time

import pandas as pd
import pytest

from pipeline.models.factory import LoadedModels, ModelSpec
from pipeline.scan.analyze import ScanConfig
from pipeline.scan.batch import ClipProgress, run_batch
from pipeline.scan.engines.pool import MAX_CLIP_ATTEMPTS, _ClipQueue, _retry_or_give_up


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
            run_batch(
                paths, out, config=ScanConfig(fps=4), models=ModelSpec(weights=meso4_df_path), workers=2, progress=False
            )
        except BaseException as exc:  # noqa: BLE001 - any failure in the thread is surfaced by the assertion below
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


def test_loaded_models_score_in_this_process(tmp_path, clip_dir, detector, scorer):
    out = tmp_path / "scores.csv"
    models = LoadedModels(detector, scorer, scorer.weights_path, threshold=0.5)
    summary = run_batch(
        [str(clip_dir / "noface.mp4"), str(clip_dir / "notes.mp4")],
        out,
        config=ScanConfig(),
        models=models,
        progress=False,
    )
    assert summary.status_counts == {"no_face": 1, "decode_error": 1} and summary.skipped == 0
    assert list(pd.read_csv(out)["status"]) == ["no_face", "decode_error"]


def test_a_spec_is_loaded_through_the_factory_once(tmp_path, clip_dir, meso4_df_path, detector, scorer, monkeypatch):
    from pipeline.scan import batch

    specs = []

    def fake_load(spec):
        specs.append(spec)
        return LoadedModels(detector, scorer, meso4_df_path, threshold=0.5)

    from pipeline.models import factory

    monkeypatch.setattr(batch, "load_models", fake_load)
    monkeypatch.setattr(factory, "load_models", fake_load)
    spec = ModelSpec(weights=meso4_df_path)
    clips = [str(clip_dir / "noface.mp4"), str(clip_dir / "face.mp4")]
    summary = run_batch(
        clips[:1] * 2, tmp_path / "o.csv", config=ScanConfig(), models=spec, progress=False, overwrite=True
    )
    assert specs == [spec] and summary.status_counts == {"no_face": 2}
    # a resume with nothing left to score never loads the models
    summary = run_batch(clips[:1], tmp_path / "o.csv", config=ScanConfig(), models=spec, progress=False)
    assert specs == [spec] and summary.status_counts == {} and summary.skipped == 1


def test_a_sidecar_asked_for_on_resume_says_the_clips_done_have_no_rows(tmp_path, clip_dir, detector, scorer, caplog):
    models = LoadedModels(detector, scorer, scorer.weights_path, threshold=0.5)
    out, tracks = tmp_path / "o.csv", tmp_path / "tracks.csv"
    run_batch([str(clip_dir / "noface.mp4")], out, config=ScanConfig(), models=models, progress=False)
    run_batch(
        [str(clip_dir / "noface.mp4")], out, config=ScanConfig(), models=models, progress=False, tracks_csv=tracks
    )
    assert f"{tracks} has no rows for the 1 clips already done in {out}" in caplog.text
    assert "--overwrite" in caplog.text


def test_unknown_engine_names_the_valid_ones(tmp_path):
    with pytest.raises(ValueError, match="local"):
        run_batch([], tmp_path / "o.csv", config=ScanConfig(), models=ModelSpec(), engine="spark")


def test_clip_queue_retries_first_and_counts_attempts():
    queue = _ClipQueue(iter(["a", "b"]))
    assert queue.next_path() == "a"
    queue.retry.append("a")  # "a" was in flight when a worker died
    assert [queue.next_path(), queue.next_path()] == ["a", "b"]
    assert queue.attempts == {"a": 2, "b": 1}
    assert queue.next_path() is None and not queue.has_more()


def test_a_clip_that_keeps_killing_workers_becomes_an_error_row():
    queue = _ClipQueue(iter([]))
    queue.attempts.update({"deadly.mp4": MAX_CLIP_ATTEMPTS, "unlucky.mp4": 1})
    rows = [r.row for r in _retry_or_give_up(["deadly.mp4", "unlucky.mp4"], queue, ScanConfig())]
    assert [(r.video_path, r.status) for r in rows] == [("deadly.mp4", "error")]
    assert "worker process died" in rows[0].error
    assert list(queue.retry) == ["unlucky.mp4"] and "deadly.mp4" not in queue.attempts


def _settings(**overrides):
    from pipeline.scan.provenance import RunSettings

    values = dict(
        model="m1",
        model_sha256="a" * 64,
        threshold=0.5,
        aggregation="track_max",
        scan_settings="fps=1;max_frames=40;detect_long_side_px=480",
        tool_version="0.2.0",
    )
    return RunSettings(**{**values, **overrides})


def _write_stamped(out, settings):
    from pipeline.scan.records import VideoRow
    from pipeline.scan.sink import CsvSink

    row = VideoRow(video_path="a.mp4", status="decode_error", elapsed_s=0.1, error="x")
    with CsvSink(out, VideoRow.columns(), resume=False) as sink:
        sink.write(dataclasses.replace(row, **settings.columns()))


@pytest.mark.parametrize(
    "overrides, named",
    [
        (dict(model="m2"), "model m1 -> m2"),
        (dict(model_sha256="b" * 64), "model_sha256 " + "a" * 64 + " -> " + "b" * 64),
        (dict(threshold=0.477), "threshold 0.5 -> 0.477"),
        (dict(aggregation="mean"), "aggregation track_max -> mean"),
        (dict(scan_settings="fps=2;max_frames=40;detect_long_side_px=480"), "fps 1 -> 2"),
        (dict(scan_settings="fps=1;max_frames=40;detect_long_side_px=640"), "detect_long_side_px 480 -> 640"),
        (dict(tool_version="0.3.0"), "tool_version 0.2.0 -> 0.3.0"),
        (dict(uncertain_below=0.3), "uncertain_below (none: one cut) -> 0.3"),
    ],
)
def test_resuming_with_other_settings_is_refused_naming_the_difference(tmp_path, overrides, named):
    from pipeline.scan.batch import ResumeMismatchError, check_resume_settings

    out = tmp_path / "scores.csv"
    _write_stamped(out, _settings())
    check_resume_settings(out, _settings())  # the same settings: resumed
    check_resume_settings(tmp_path / "missing.csv", _settings(**overrides))  # nothing to resume
    with pytest.raises(ResumeMismatchError) as excinfo:
        check_resume_settings(out, _settings(**overrides))
    message = str(excinfo.value)
    assert named in message and "--overwrite" in message and "\n" not in message


def test_resuming_rows_of_an_older_version_is_refused(tmp_path):
    from pipeline.scan.batch import ResumeMismatchError, check_resume_settings

    out = tmp_path / "scores.csv"
    out.write_text(
        "video_path,status,p_fake,label,aggregation,model,elapsed_s,error\na.mp4,ok,0.9,FAKE,track_max,m1,1,\n"
    )
    with pytest.raises(
        ResumeMismatchError, match="older version.*model_sha256, threshold, scan_settings, tool_version"
    ):
        check_resume_settings(out, _settings())


def test_a_band_resumed_with_another_band_or_one_cut_is_refused(tmp_path):
    from pipeline.scan.batch import ResumeMismatchError, check_resume_settings

    out = tmp_path / "scores.csv"
    _write_stamped(out, _settings(uncertain_below=0.4))
    check_resume_settings(out, _settings(uncertain_below=0.4))  # the same band: resumed
    with pytest.raises(ResumeMismatchError, match=r"uncertain_below 0.4 -> 0.3"):
        check_resume_settings(out, _settings(uncertain_below=0.3))
    with pytest.raises(ResumeMismatchError, match=r"uncertain_below 0.4 -> \(none: one cut\)"):
        check_resume_settings(out, _settings())  # --threshold forces one cut: labels made another way


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_resuming_an_output_without_the_label_columns_is_refused_naming_them(tmp_path, suffix):
    import json

    from pipeline.scan.batch import ResumeMismatchError, check_resume_settings
    from pipeline.scan.records import VideoRow

    out = tmp_path / f"scores{suffix}"
    row = {c: "" for c in VideoRow.columns() if c not in ("label_rule", "uncertain_below")}
    row.update(video_path="a.mp4", status="no_face", **{k: str(v) for k, v in _settings().columns().items()})
    del row["uncertain_below"]
    if suffix == ".csv":
        out.write_text(",".join(row) + "\n" + ",".join(row.values()) + "\n")
    else:
        out.write_text(json.dumps({**row, "threshold": 0.5}) + "\n")
    # rows that record every setting but the band: they cannot be checked, and are refused as such
    with pytest.raises(ResumeMismatchError, match=r"older version.*\(uncertain_below missing\)"):
        check_resume_settings(out, _settings())
    # with the band recorded but not the rule: refused, naming the column
    if suffix == ".csv":
        out.write_text(",".join([*row, "uncertain_below"]) + "\n" + ",".join([*row.values(), ""]) + "\n")
    else:
        out.write_text(json.dumps({**row, "threshold": 0.5, "uncertain_below": None}) + "\n")
    with pytest.raises(ResumeMismatchError) as excinfo:
        check_resume_settings(out, _settings())
    message = str(excinfo.value)
    assert "another version of the scanner (it lacks label_rule)" in message and "--overwrite" in message


class RowsEngine:
    """An engine (:class:`pipeline.scan.engines.base.Engine`) that yields the given rows of the clips it is given."""

    scores_here = True

    def __init__(self, rows):
        self.rows = rows

    def results(self, clips, models, config, *, keep_crops=False):
        from pipeline.scan.analyze import VideoResult

        clips = list(clips)
        return [VideoResult(r) for r in self.rows if r.video_path in clips]


def test_the_summary_counts_the_labels_of_the_ok_clips(tmp_path, monkeypatch):
    import json

    from pipeline.scan import batch
    from pipeline.scan.analyze import error_row
    from pipeline.scan.records import VideoRow, label_for

    config = ScanConfig(aggregation="track_max", threshold=0.7, uncertain_below=0.4)
    rows = [
        VideoRow(
            f"{p}.mp4",
            "ok",
            p_fake=p,
            label=label_for(p, 0.7, 0.4),
            threshold=0.7,
            uncertain_below=0.4,
            label_rule=config.label_rule,
        )
        for p in (0.9, 0.5, 0.6, 0.1)
    ]
    rows.append(error_row("gone.mp4", "error", "file not found", 0.0, config, "m1"))
    settings = _settings(threshold=0.7, uncertain_below=0.4)
    monkeypatch.setattr(batch, "run_settings", lambda models, config: settings)
    monkeypatch.setattr(batch, "engine_for", lambda *a, **k: RowsEngine(rows))
    out = tmp_path / "scores.jsonl"
    paths = [r.video_path for r in rows]
    summary = run_batch(paths, out, config=config, models=ModelSpec(), progress=False)
    assert summary.status_counts == {"ok": 4, "error": 1}
    assert summary.label_counts == {"FAKE": 1, "UNCERTAIN": 2, "REAL": 1}
    assert summary.counts_text() == "ok 4 (FAKE 1, UNCERTAIN 2, REAL 1), error 1"
    # the JSON Lines rows carry the label, the band and the rule, the error row too
    objects = [json.loads(line) for line in out.read_text().splitlines()]
    assert [o["label"] for o in objects] == ["FAKE", "UNCERTAIN", "UNCERTAIN", "REAL", ""]
    assert {(o["uncertain_below"], o["threshold"], o["label_rule"]) for o in objects} == {(0.4, 0.7, config.label_rule)}
    # a resume of it with the same settings is accepted (nothing new here: nothing counted)
    resumed = run_batch(paths, out, config=config, models=ModelSpec(), progress=False)
    assert resumed.skipped == 5 and resumed.status_counts == {} and resumed.counts_text() == ""
    # a batch with one cut has no UNCERTAIN count

    one_cut = batch.batch_label_counts(collections_counter(FAKE=2), ScanConfig(threshold=0.7))
    assert one_cut == {"FAKE": 2, "REAL": 0}


def collections_counter(**counts):
    import collections

    return collections.Counter(counts)


def test_the_clip_bar_estimates_from_the_second_clip_on():
    """The first clip also pays for loading the models: a rate measured from the bar's start
    would be 3/1.2 s (2.5 clips/s) here, where the clips after the first come at 10/s."""
    with ClipProgress(5) as bar:
        time.sleep(1.0)  # the first clip, models loading
        bar.advance()
        assert bar.rate_per_s is None  # nothing to estimate from yet: the bar shows "?"
        for _ in range(2):
            time.sleep(0.1)
            bar.advance()
        assert 6.0 < bar.rate_per_s < 11.0, bar.rate_per_s
        assert bar.done == 3
        assert bar._bar.format_dict["elapsed"] >= 1.0  # elapsed still counts from the start


def test_a_batch_without_a_bar_still_counts_its_clips():
    with ClipProgress(2, enabled=False) as bar:
        bar.advance("ok=1")
        bar.advance("ok=2")
    assert bar.done == 2 and bar.rate_per_s is None
