"""The command line, called in-process as ``main(argv)`` with the real models."""

from __future__ import annotations

import csv
import subprocess
import sys

import pandas as pd
import pytest

from pipeline.cli import score as cli
from pipeline.scan.records import VideoRow

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
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    assert "--max-frames" in proc.stdout and "p_fake" in proc.stdout


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
    "flag, value",
    [
        ("--pyramid-scale", "0.95"),  # argparse takes any float; DetectorConfig allows 0.3..0.9
        ("--detect-size", "10"),  # below MTCNN's smallest useful frame
    ],
)
def test_a_detector_value_the_config_rejects_is_a_usage_error(tmp_path, meso4_df_path, capsys, flag, value):
    rc = cli.main([str(tmp_path), "-o", str(tmp_path / "o.csv"), "--weights", str(meso4_df_path), flag, value])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "must be" in err and "\n" not in err


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
    assert spec_row["p_fake"] == flag_row["p_fake"] == row["p_fake"]  # same model, same bits
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
        assert row["scan_settings"].startswith("fps=1;max_frames=40;detect_long_side_px=480;")
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
