"""The command line, called in-process as ``main(argv)`` with the real models."""

from __future__ import annotations

import csv
import logging
import os
import subprocess
import sys

import pandas as pd
import pytest

from pipeline.cli import score as cli
from pipeline.scan.records import VideoRow
from tests.helpers import run_python

REPO = cli.Path(__file__).resolve().parents[2]


@pytest.fixture
def batch_dir(tmp_path, clip_dir):
    """A folder with a face clip, a no-face clip and a broken clip, one in a subfolder."""
    root = tmp_path / "in"
    (root / "sub").mkdir(parents=True)
    (root / "face.MP4").write_bytes((clip_dir / "face.mp4").read_bytes())  # upper-case extension
    (root / "sub" / "noface.mp4").write_bytes((clip_dir / "noface.mp4").read_bytes())
    (root / "broken.mp4").write_bytes((clip_dir / "truncated.mp4").read_bytes())
    (root / "readme.txt").write_text("not a video, not picked up")
    return root


def _read(path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture
def models(reuse_models):
    """main() with the session's models (see tests/cli/conftest.py)."""


def test_help_is_fast_and_does_not_import_tensorflow():
    code = (
        "import sys\nfrom pipeline.cli import score as cli\ntry:\n    cli.main(['--help'])\nexcept SystemExit as e:\n"
        "    assert e.code == 0\nassert 'tensorflow' not in sys.modules and 'keras' not in sys.modules\n"
    )
    proc = run_python(code)
    assert proc.returncode == 0, proc.stderr
    assert "--max-frames" in proc.stdout and "p_fake" in proc.stdout


@pytest.mark.slow
def test_batch_gives_one_row_per_clip_with_statuses(batch_dir, tmp_path, meso4_df_path, models):
    out = tmp_path / "scores.csv"
    faces = tmp_path / "faces.csv"
    rc = cli.main([str(batch_dir), "-o", str(out), "--weights", str(meso4_df_path), "--faces-csv", str(faces), "-q"])
    assert rc == 0
    rows = {cli.Path(r["video_path"]).name: r for r in _read(out)}
    assert list(_read(out)[0]) == VideoRow.columns()
    assert set(rows) == {"face.MP4", "noface.mp4", "broken.mp4"}
    assert rows["face.MP4"]["status"] == "ok" and 0 <= float(rows["face.MP4"]["p_fake"]) <= 1
    assert rows["face.MP4"]["label"] in ("FAKE", "REAL")
    assert rows["noface.mp4"]["status"] == "no_face" and rows["noface.mp4"]["p_fake"] == ""
    assert rows["broken.mp4"]["status"] == "decode_error" and rows["broken.mp4"]["error"]
    face_rows = pd.read_csv(faces)
    assert len(face_rows) == int(rows["face.MP4"]["n_faces"])
    assert set(face_rows.columns) >= {
        "video_path",
        "frame_index",
        "timestamp_s",
        "track_id",
        "x1",
        "y1",
        "x2",
        "y2",
        "det_confidence",
        "p_fake",
    }


def test_rerun_resumes_without_duplicates(batch_dir, tmp_path, meso4_df_path, models):
    out = tmp_path / "scores.csv"
    args = [str(batch_dir), "-o", str(out), "--weights", str(meso4_df_path), "-q"]
    assert cli.main(args) == 0
    first = out.read_text()
    assert cli.main(args) == 0
    assert out.read_text() == first  # nothing re-scored, nothing duplicated


def test_torn_last_line_is_repaired_on_resume(batch_dir, tmp_path, meso4_df_path, models):
    out = tmp_path / "scores.csv"
    args = [str(batch_dir), "-o", str(out), "--weights", str(meso4_df_path), "-q"]
    assert cli.main(args) == 0
    lines = out.read_text().splitlines(keepends=True)
    # a killed run: the last row half written
    out.write_text("".join(lines[:-1]) + lines[-1][: len(lines[-1]) // 2])
    assert cli.main(args) == 0
    rows = _read(out)
    assert len(rows) == 3 and len({r["video_path"] for r in rows}) == 3
    assert all(r["status"] for r in rows)


def test_overwrite_starts_afresh(batch_dir, tmp_path, meso4_df_path, models):
    out = tmp_path / "scores.csv"
    out.write_text("video_path,status\nold.mp4,ok\n")  # not ours: resume refuses, overwrite replaces
    args = [str(batch_dir), "-o", str(out), "--weights", str(meso4_df_path), "-q"]
    assert cli.main(args) == 2
    assert cli.main(args + ["--overwrite"]) == 0
    assert len(_read(out)) == 3


@pytest.mark.parametrize(
    "make_args, message",
    [
        (lambda t, w: [str(t / "nope"), "-o", str(t / "o.csv"), "--weights", w], "input not found"),
        (lambda t, w: [str(t), "-o", str(t / "no" / "o.csv"), "--weights", w], "does not exist"),
        (lambda t, w: [str(t), "-o", str(t), "--weights", w], "is a folder"),
        (lambda t, w: [str(t), "-o", str(t / "o.csv"), "--weights", str(t / "none.h5")], "weights file not found"),
        (lambda t, w: [str(t), "-o", str(t / "o.csv"), "--weights", str(t / "junk.h5")], "unknown weights"),
    ],
)
def test_usage_errors_exit_2_with_one_line(tmp_path, meso4_df_path, capsys, make_args, message):
    (tmp_path / "junk.h5").write_bytes(b"not weights")
    assert cli.main(make_args(tmp_path, str(meso4_df_path))) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err


def test_second_run_on_the_same_output_is_refused(batch_dir, tmp_path, meso4_df_path, models, capsys):
    from pipeline.scan.records import VideoRow
    from pipeline.scan.sink import CsvSink

    out = tmp_path / "scores.csv"
    with CsvSink(out, VideoRow.columns(), resume=False):  # another run holds the output
        rc = cli.main([str(batch_dir), "-o", str(out), "--weights", str(meso4_df_path), "-q"])
    assert rc == 2
    assert "another run" in capsys.readouterr().err


@pytest.mark.slow
def test_python_dash_m_pipeline_score(batch_dir, tmp_path, meso4_df_path):
    """The module entry point, in a fresh process with the real models loaded once."""
    out = tmp_path / "m.csv"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pipeline",
            "score",
            str(batch_dir / "sub"),
            "-o",
            str(out),
            "--weights",
            str(meso4_df_path),
            "-q",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = _read(out)
    assert [r["status"] for r in rows] == ["no_face"]


@pytest.mark.slow
def test_two_workers_give_the_same_rows_as_one(batch_dir, tmp_path, meso4_df_path, models):
    one, two = tmp_path / "one.csv", tmp_path / "two.csv"
    base = [str(batch_dir), "--weights", str(meso4_df_path), "-q"]
    assert cli.main(base + ["-o", str(one)]) == 0
    assert cli.main(base + ["-o", str(two), "--workers", "2"]) == 0
    key = ["video_path", "status", "n_frames", "n_faces", "n_tracks"]
    a = pd.read_csv(one).sort_values("video_path").reset_index(drop=True)
    b = pd.read_csv(two).sort_values("video_path").reset_index(drop=True)
    pd.testing.assert_frame_equal(a[key], b[key])
    assert (a["p_fake"].fillna(-1) - b["p_fake"].fillna(-1)).abs().max() < 1e-4


def test_negative_full_frame_interval_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.build_parser().parse_args(["clips", "-o", "out.csv", "--full-frame-every", "-1"])
    assert exit_info.value.code == 2
    assert "must be >= 0" in capsys.readouterr().err


@pytest.mark.parametrize(
    "flag, value, says",
    [
        ("--pyramid-scale", "0.95", "must be in [0.3, 0.9], got 0.95"),  # the range DetectorConfig declares
        ("--detect-size", "10", "must be >= 24, got 10"),  # below MTCNN's smallest useful frame
    ],
)
def test_a_detector_value_out_of_its_range_is_a_usage_error(tmp_path, meso4_df_path, capsys, flag, value, says):
    with pytest.raises(SystemExit) as exit_info:
        cli.main([str(tmp_path), "-o", str(tmp_path / "o.csv"), "--weights", str(meso4_df_path), flag, value])
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err  # no usage block: one line
    assert exit_info.value.code == 2 and (f"argument {flag}: {says}" + " (see ") in err


def test_the_detector_in_process_gets_the_flags_settings(clip_dir, tmp_path, meso4_df_path, models, loaded):
    out = tmp_path / "o.csv"
    assert (
        cli.main(
            [
                str(clip_dir / "noface.mp4"),
                "-o",
                str(out),
                "--weights",
                str(meso4_df_path),
                "-q",
                "--detect-size",
                "320",
                "--pyramid-scale",
                "0.709",
                "--full-frame-every",
                "0.5",
                "--min-confidence",
                "0.8",
                "--min-face",
                "30",
            ]
        )
        == 0
    )
    (models_,) = loaded  # loaded once, by the factory
    config = models_.detector.config
    assert (config.detect_long_side_px, config.pyramid_scale, config.full_frame_every_s) == (320, 0.709, 0.5)
    assert (config.min_confidence, config.min_face_px) == (0.8, 30)
    assert models_.weights_path == meso4_df_path and models_.threshold == 0.5
    assert _read(out)[0]["status"] == "no_face"


def _weights_with_threshold(folder, threshold: float):
    """A copy of the project's weights whose sidecar says ``threshold`` (the sha256 still matches)."""
    import json
    import shutil

    weights = folder / "scanner.h5"
    shutil.copyfile(REPO / "weights" / "meso4_scanner_v1.h5", weights)
    fields = json.loads((REPO / "weights" / "meso4_scanner_v1.h5.json").read_text())
    fields["threshold"] = threshold
    (folder / "scanner.h5.json").write_text(json.dumps(fields))
    return weights


def test_the_weights_threshold_labels_unless_the_flag_is_given(clip_dir, tmp_path, models):
    """One p_fake p, three thresholds: the flag's, else the sidecar's, chosen on the other side
    of p from 0.5 so that the label shows which threshold was used."""
    clip = str(clip_dir / "face.mp4")
    base = [clip, "--fps", "1", "-q"]
    first = tmp_path / "first.csv"
    assert cli.main(base + ["-o", str(first), "--weights", str(_weights_with_threshold(tmp_path, 0.5))]) == 0
    (row,) = _read(first)
    p_fake = float(row["p_fake"])
    assert row["label"] == ("FAKE" if p_fake >= 0.5 else "REAL")
    spec_threshold = (p_fake + 1) / 2 if p_fake >= 0.5 else p_fake / 2  # flips the label
    weights = _weights_with_threshold(tmp_path, round(spec_threshold, 6))
    by_spec, by_flag = tmp_path / "spec.csv", tmp_path / "flag.csv"
    assert cli.main(base + ["-o", str(by_spec), "--weights", str(weights)]) == 0
    assert cli.main(base + ["-o", str(by_flag), "--weights", str(weights), "--threshold", "0.5"]) == 0
    (spec_row,), (flag_row,) = _read(by_spec), _read(by_flag)
    # the flag labels only: same weights, same bits (the sidecar's threshold is also the point small
    # faces are pulled toward, so a sidecar with another threshold may move p_fake; a flag never does)
    assert spec_row["p_fake"] == flag_row["p_fake"]
    assert spec_row["label"] != row["label"]  # the sidecar's threshold
    assert flag_row["label"] == row["label"]  # the explicit flag wins


def test_resuming_an_output_of_another_model_is_a_usage_error(tmp_path, capsys, meso4_df_path, reuse_models):
    from pipeline.scan.records import VideoRow
    from pipeline.scan.sink import CsvSink

    out = tmp_path / "scores.csv"
    with CsvSink(out, VideoRow.columns(), resume=False) as sink:
        sink.write(
            VideoRow(
                video_path="old.mp4", status="no_face", aggregation="track_max", model="meso4_scanner_v1", elapsed_s=0.1
            )
        )
    clip = tmp_path / "empty.mp4"
    clip.write_bytes(b"")
    assert cli.main([str(clip), "-o", str(out), "--weights", str(meso4_df_path), "-q"]) == 2
    err = capsys.readouterr().err
    assert "model meso4_scanner_v1 -> mesonet-meso4-df" in err and "--overwrite" in err
    assert cli.main([str(clip), "-o", str(out), "--weights", str(meso4_df_path), "-q", "--overwrite"]) == 0


def test_every_row_records_what_made_it(batch_dir, tmp_path, meso4_df_path, models):
    import pipeline
    from pipeline.models.weights import sha256_file

    out = tmp_path / "scores.csv"
    assert cli.main([str(batch_dir), "-o", str(out), "--weights", str(meso4_df_path), "--threshold", "0.6", "-q"]) == 0
    for row in _read(out):  # every status, errors included
        assert row["model"] == "mesonet-meso4-df"
        assert row["model_sha256"] == sha256_file(meso4_df_path)
        assert float(row["threshold"]) == 0.6
        assert row["scan_settings"].startswith("fps=1;max_frames=40;sparse_decode=1;detect_long_side_px=480;")
        assert row["tool_version"] == pipeline.__version__


@pytest.mark.parametrize(
    "changed, named",
    [
        (["--threshold", "0.7"], "threshold 0.6 -> 0.7"),
        (["--fps", "2"], "fps 1 -> 2"),
        (["--max-frames", "10"], "max_frames 40 -> 10"),
        (["--min-face", "60"], "min_face_px 40 -> 60"),
        (["--aggregation", "mean"], "aggregation track_max -> mean"),
    ],
)
def test_rerun_with_other_settings_stops_naming_them(
    batch_dir, tmp_path, meso4_df_path, models, capsys, changed, named
):
    out = tmp_path / "scores.csv"
    args = [str(batch_dir), "-o", str(out), "--weights", str(meso4_df_path), "--threshold", "0.6", "-q"]
    assert cli.main(args) == 0
    first = out.read_text()
    capsys.readouterr()
    assert cli.main(args + changed) == 2
    err = capsys.readouterr().err.strip()
    assert named in err and "--overwrite" in err and len(err.splitlines()) == 1
    assert out.read_text() == first  # nothing mixed in
    assert cli.main(args + changed + ["--overwrite"]) == 0
    assert len(_read(out)) == 3


# --- the command line as people use it (issue #16, section 6) -----------------------------------

# What TensorFlow's native side prints while it loads; none of it may reach the terminal.
TF_START_UP_LINES = (
    "absl::InitializeLog()",  # absl's notice before its first line
    "cpu_feature_guard",  # "I0000 ... cpu_feature_guard.cc:227] This TensorFlow binary is optimized ..."
    "This TensorFlow binary is optimized",
    "To enable the following instructions",  # the notice's second line
    "oneDNN custom operations",
)


@pytest.mark.slow
@pytest.mark.parametrize(
    "flags, tf_log_level",
    [
        (["-q"], None),  # quiet, TensorFlow's level left to the command line
        ([], "0"),  # not quiet, and TensorFlow told to print everything
    ],
)
def test_no_tensorflow_start_up_lines_reach_the_terminal(clip_dir, tmp_path, meso4_df_path, flags, tf_log_level):
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    if tf_log_level is not None:
        env["TF_CPP_MIN_LOG_LEVEL"] = tf_log_level
    out = tmp_path / "out.csv"
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline", "score", str(clip_dir / "noface.mp4"), "-o", str(out)]
        + ["--weights", str(meso4_df_path), *flags],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert [r["status"] for r in _read(out)] == ["no_face"]  # TensorFlow did load and run
    for line in TF_START_UP_LINES:
        assert line not in proc.stderr
    if "-q" in flags:
        assert proc.stderr == ""
    else:  # our own INFO lines are still there
        assert "wrote" in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv"]  # no lock file left


@pytest.mark.parametrize(
    "files",
    [
        [],  # an empty folder
        ["notes.txt", "sub/readme.md"],  # only files that are not videos
    ],
)
def test_inputs_without_videos_warn_and_exit_1_before_tensorflow(tmp_path, meso4_df_path, files):
    inputs = tmp_path / "in"
    inputs.mkdir()
    for name in files:
        (inputs / name).parent.mkdir(parents=True, exist_ok=True)
        (inputs / name).write_text("not a video")
    out = tmp_path / "out.csv"
    code = (
        "import sys, time\nfrom pipeline.cli import score as cli\nstarted = time.monotonic()\n"
        f"rc = cli.main([{str(inputs)!r}, '-o', {str(out)!r}, '--weights', {str(meso4_df_path)!r}])\n"
        "print(rc, round(time.monotonic() - started, 2), 'tensorflow' in sys.modules or 'keras' in sys.modules)\n"
    )
    proc = run_python(code)
    assert proc.returncode == 0, proc.stderr
    rc, seconds, tensorflow_loaded = proc.stdout.split()
    assert rc == "1" and tensorflow_loaded == "False"
    assert float(seconds) < 5.0
    assert f"no video files under {inputs}" in proc.stderr and "WARNING" in proc.stderr
    assert not out.exists() and not (tmp_path / "out.csv.lock").exists()


def test_no_lock_file_outlives_a_run(batch_dir, tmp_path, meso4_df_path, models):
    out, faces = tmp_path / "scores.csv", tmp_path / "faces.csv"
    rc = cli.main([str(batch_dir), "-o", str(out), "--faces-csv", str(faces), "--weights", str(meso4_df_path), "-q"])
    assert rc == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["faces.csv", "in", "scores.csv"]


def test_ctrl_c_exits_130_keeps_the_rows_and_removes_the_locks(
    batch_dir, tmp_path, meso4_df_path, models, monkeypatch, caplog
):
    from pipeline.scan import batch

    real_write = batch.CsvSink.write_many
    written = []

    def write_then_interrupt(self, rows):
        real_write(self, rows)
        if self.path.name == "scores.csv":
            written.append(1)
            raise KeyboardInterrupt  # Ctrl-C after the first clip's row

    monkeypatch.setattr(batch.CsvSink, "write_many", write_then_interrupt)
    out, faces = tmp_path / "scores.csv", tmp_path / "faces.csv"
    rc = cli.main([str(batch_dir), "-o", str(out), "--faces-csv", str(faces), "--weights", str(meso4_df_path), "-q"])
    assert rc == cli.EXIT_INTERRUPTED == 130
    assert written == [1] and len(_read(out)) == 1  # the row written before Ctrl-C stays
    assert "interrupted" in caplog.text and "run the same command again to resume" in caplog.text
    assert not list(tmp_path.glob("*.lock"))


def test_warnings_during_the_batch_go_above_the_progress_bar(batch_dir, tmp_path, monkeypatch):
    from tqdm.contrib.logging import _TqdmLoggingHandler

    from pipeline.scan.batch import BatchSummary

    seen = []

    def fake_run(args, models, config, paths):
        seen.append([type(h) for h in logging.getLogger().handlers])
        return BatchSummary({}, 0)

    monkeypatch.setattr(cli, "_run", fake_run)
    monkeypatch.setattr(cli, "resolve_scan_settings", lambda args: (None, None))
    monkeypatch.setattr(logging.getLogger(), "handlers", [logging.StreamHandler(sys.stderr)])
    # --overwrite: no resume check, which would resolve the (stubbed) weights
    assert cli.main([str(batch_dir), "-o", str(tmp_path / "o.csv"), "--workers", "2", "-q", "--overwrite"]) == 0
    assert len(seen) == 1
    assert _TqdmLoggingHandler in seen[0] and logging.StreamHandler not in seen[0]  # during the batch
    assert [type(h) for h in logging.getLogger().handlers] == [logging.StreamHandler]  # put back after


def test_the_closing_line_counts_the_labels_of_the_ok_clips(tmp_path, monkeypatch, caplog):
    from pipeline.scan.batch import BatchSummary

    (tmp_path / "a.mp4").write_bytes(b"")  # found by name; never opened (the batch is stubbed)
    summary = BatchSummary({"no_face": 2, "ok": 27}, 3, {"FAKE": 5, "UNCERTAIN": 6, "REAL": 16})
    monkeypatch.setattr(cli, "_run", lambda args, models, config, paths: summary)
    monkeypatch.setattr(cli, "resolve_scan_settings", lambda args: (None, None))
    out = tmp_path / "o.csv"
    with caplog.at_level(logging.INFO):
        assert cli.main([str(tmp_path / "a.mp4"), "-o", str(out), "--overwrite"]) == 0
    assert f"wrote {out}: ok 27 (FAKE 5, UNCERTAIN 6, REAL 16), no_face 2 (3 already done)" in caplog.text


@pytest.mark.parametrize(
    "hidden",
    [
        "distributed",  # dask installed without its [distributed] part
        "dask",  # no Dask at all
    ],
)
def test_engine_dask_without_dask_is_a_pip_hint(batch_dir, tmp_path, monkeypatch, capsys, hidden):
    monkeypatch.setitem(sys.modules, hidden, None)  # import of it fails, find_spec finds nothing
    rc = cli.main([str(batch_dir), "-o", str(tmp_path / "o.csv"), "--engine", "dask"])
    assert rc == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err
    assert f"needs {hidden}" in err and "pip install -e '.[dask]'" in err


def test_jsonl_output_by_extension_with_nested_faces(batch_dir, tmp_path, meso4_df_path, models):
    import json

    out = tmp_path / "scores.jsonl"
    args = [str(batch_dir), "-o", str(out), "--weights", str(meso4_df_path), "--nest-faces", "-q"]
    assert cli.main(args) == 0
    objects = {cli.Path(o["video_path"]).name: o for o in map(json.loads, out.read_text().splitlines())}
    assert set(objects) == {"face.MP4", "noface.mp4", "broken.mp4"}
    face = objects["face.MP4"]
    assert list(face) == [*VideoRow.columns(), "verdict_text", "caveats", "faces"]
    assert len(face["faces"]) == face["n_faces"] > 0 and face["p_fake"] is not None
    # the verdict in the web page's words: the same function says it on every surface
    from pipeline.report.explain import RowCuts, verdict_text

    row = VideoRow(**{k: face[k] for k in VideoRow.columns()})
    assert face["verdict_text"] == verdict_text(row, RowCuts.of(row)) and face["verdict_text"].endswith(".")
    assert isinstance(face["caveats"], list) and all(set(c) == {"kind", "text"} for c in face["caveats"])
    assert objects["broken.mp4"]["verdict_text"] is None  # no label, nothing to explain
    first = out.read_text()
    assert cli.main(args) == 0  # resumed: nothing new
    assert out.read_text() == first


def test_nest_faces_needs_a_jsonl_output(batch_dir, tmp_path, meso4_df_path, capsys):
    args = [str(batch_dir), "-o", str(tmp_path / "s.csv"), "--weights", str(meso4_df_path), "--nest-faces"]
    assert cli.main(args) == 2
    assert "--nest-faces needs a JSON Lines output" in capsys.readouterr().err


def test_evidence_dir_from_the_command_line(batch_dir, tmp_path, meso4_df_path, models):
    out, evidence = tmp_path / "scores.csv", tmp_path / "evidence"
    assert (
        cli.main([str(batch_dir), "-o", str(out), "--weights", str(meso4_df_path), "--evidence-dir", str(evidence)])
        == 0
    )
    index = _read(evidence / "evidence.csv")
    face_path = next(r["video_path"] for r in _read(out) if r["status"] == "ok")
    assert {r["video_path"] for r in index} == {face_path}  # no evidence for clips without a score
    assert {r["kind"] for r in index} == {"crop", "frame"}
    assert all((evidence / r["file"]).is_file() for r in index)


def test_the_same_clips_named_relatively_are_not_scored_again(batch_dir, tmp_path, meso4_df_path, models, monkeypatch):
    out = tmp_path / "scores.csv"
    assert cli.main([str(batch_dir), "-o", str(out), "--weights", str(meso4_df_path), "-q"]) == 0
    first = out.read_text()
    monkeypatch.chdir(batch_dir.parent)
    assert cli.main([batch_dir.name, "-o", str(out), "--weights", str(meso4_df_path), "-q"]) == 0
    assert out.read_text() == first  # absolute then relative: the same three clips, none twice


def test_a_resume_made_another_way_stops_before_tensorflow(batch_dir, tmp_path, meso4_df_path, models):
    out = tmp_path / "scores.csv"
    assert cli.main([str(batch_dir), "-o", str(out), "--weights", str(meso4_df_path), "-q"]) == 0
    code = (
        "import sys\nfrom pipeline.cli import score as cli\n"
        f"rc = cli.main([{str(batch_dir)!r}, '-o', {str(out)!r}, '--weights', {str(meso4_df_path)!r}, '--fps', '2'])\n"
        "assert rc == 2, rc\nassert 'tensorflow' not in sys.modules\n"
    )
    proc = run_python(code, timeout_s=120)
    assert proc.returncode == 0, proc.stderr
    assert "fps 1 -> 2" in proc.stderr


def test_an_evidence_folder_holds_one_run_only(batch_dir, tmp_path, meso4_df_path, models, capsys):
    out, evidence = tmp_path / "scores.csv", tmp_path / "evidence"
    base = [str(batch_dir), "--weights", str(meso4_df_path), "--evidence-dir", str(evidence), "-q"]
    assert cli.main(base + ["-o", str(out)]) == 0
    first_files = {p.name for p in evidence.glob("*.jpg")}
    assert first_files
    stray = evidence / "other_run__01_track0_t0.00s_p0.900.jpg"  # a file an earlier run listed
    stray.write_bytes(b"x")
    with open(evidence / "evidence.csv", "a") as f:
        f.write(f"gone.mp4,{stray.name},crop,0,0.0,0.9\n")
    # another output, other settings, the same evidence folder: refused, nothing mixed in
    assert cli.main(base + ["-o", str(tmp_path / "other.csv"), "--threshold", "0.7"]) == 2
    assert "holds evidence made with other settings (threshold 0.5 -> 0.7)" in capsys.readouterr().err
    # --overwrite starts the folder afresh: the earlier run's files are gone
    assert cli.main(base + ["-o", str(tmp_path / "other.csv"), "--threshold", "0.7", "--overwrite"]) == 0
    assert not stray.exists()
    assert {p.name for p in evidence.glob("*.jpg")} == first_files


def test_evidence_dir_that_is_a_file_is_a_usage_error(batch_dir, tmp_path, meso4_df_path, capsys):
    (tmp_path / "notes.txt").write_text("x")
    args = [str(batch_dir), "-o", str(tmp_path / "s.csv"), "--evidence-dir", str(tmp_path / "notes.txt")]
    assert cli.main(args + ["--weights", str(meso4_df_path)]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err
