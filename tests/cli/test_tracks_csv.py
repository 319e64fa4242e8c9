"""``score_videos.py --tracks-csv``: one row per track (person) of each clip, in-process with the
session's models (the two-person field cases of ``../shared/cases``)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from pipeline.cli import score as cli
from pipeline.scan.aggregate import REASONS
from pipeline.scan.records import TrackRow, VideoRow
from tests.scan.test_records import TRACK_CONTRACT

# the columns, in this order, first (the whole contract is in tests/scan/test_records.py)
TRACK_COLUMNS = TRACK_CONTRACT[:10]
CASES = ("smaller_person_is_fake.mp4", "two_people_side_by_side.mp4")


def _read(path: Path) -> tuple[list[str], list[dict]]:
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        return list(reader.fieldnames or []), list(reader)


@pytest.fixture
def models(reuse_models):
    """main() with the session's models (see tests/conftest.py)."""


@pytest.fixture
def two_clips(tmp_path, shared_cases) -> Path:
    """A folder with two clips of two people each."""
    root = tmp_path / "in"
    root.mkdir()
    for name in CASES:
        (root / name).write_bytes((shared_cases / name).read_bytes())
    return root


def _args(inputs: Path, out: Path, tracks: Path, weights: Path) -> list[str]:
    return [str(inputs), "-o", str(out), "--tracks-csv", str(tracks), "--weights", str(weights), "-q"]


def test_tracks_csv_has_one_row_per_track_and_resumes(two_clips, tmp_path, meso4_df_path, models):
    out, tracks = tmp_path / "scores.csv", tmp_path / "tracks.csv"
    args = _args(two_clips, out, tracks, meso4_df_path)
    assert cli.main(args) == 0
    header, rows = _read(tracks)
    assert header[: len(TRACK_COLUMNS)] == TRACK_COLUMNS
    assert header == TrackRow.columns()
    assert {"static", "size_weight", "verdict_score", "sets_verdict"} <= set(header)
    clip_header, clips = _read(out)
    assert clip_header == VideoRow.columns()
    assert {"verdict_track_id", "n_tracks_counted", "n_cuts"} <= set(clip_header)
    assert sorted(Path(c["video_path"]).name for c in clips) == sorted(CASES)
    for clip in clips:
        assert clip["status"] == "ok"
        mine = [r for r in rows if r["video_path"] == clip["video_path"]]
        assert len(mine) == int(clip["n_tracks"]) == 2  # one row per track
        assert len({r["track_id"] for r in mine}) == len(mine)
        assert sum(int(r["n_faces"]) for r in mine) == int(clip["n_faces"])
        for r in mine:
            assert r["counted"] in ("True", "False") and r["reason"] in REASONS
            assert (r["counted"] == "True") == r["reason"].startswith("counted")
            assert 0 <= float(r["mean_p_fake"]) <= float(r["max_p_fake"]) <= 1
            assert float(r["first_timestamp_s"]) <= float(r["last_timestamp_s"])
            assert float(r["median_face_px"]) > 0
        assert int(clip["n_tracks_counted"]) == sum(r["counted"] == "True" for r in mine)
        (verdict,) = [r for r in mine if r["sets_verdict"] == "True"]
        assert verdict["track_id"] == clip["verdict_track_id"] and verdict["counted"] == "True"
        assert float(verdict["verdict_score"]) == pytest.approx(float(clip["p_fake"]), abs=1e-4)
        assert clip["n_cuts"] == "0"
    assert len(rows) == 4

    first = tracks.read_text()
    assert cli.main(args) == 0  # everything done: nothing rescored, nothing duplicated
    assert tracks.read_text() == first


def test_resume_drops_the_track_rows_of_an_unfinished_clip(two_clips, tmp_path, meso4_df_path, models):
    out, tracks = tmp_path / "scores.csv", tmp_path / "tracks.csv"
    args = _args(two_clips, out, tracks, meso4_df_path)
    assert cli.main(args) == 0
    _, before = _read(tracks)
    # killed after the second clip's tracks were written but before its row
    lines = out.read_text().splitlines(keepends=True)
    assert len(lines) == 3
    out.write_text("".join(lines[:2]))
    assert cli.main(args) == 0
    _, after = _read(tracks)
    _, clips = _read(out)
    assert len(clips) == 2
    key = ("video_path", "track_id", "n_faces", "counted", "reason")
    assert len(after) == len(before) == 4
    assert sorted(tuple(r[k] for k in key) for r in after) == sorted(tuple(r[k] for k in key) for r in before)


@pytest.mark.parametrize("same_as", ["-o", "--faces-csv"])
def test_tracks_csv_equal_to_another_output_is_refused(tmp_path, meso4_df_path, capsys, same_as):
    (tmp_path / "in").mkdir()
    target = tmp_path / "same.csv"
    args = [str(tmp_path / "in"), "--weights", str(meso4_df_path), "--tracks-csv", str(target)]
    if same_as == "-o":
        args += ["-o", str(tmp_path / "." / "same.csv")]  # the same file, spelled another way
    else:
        args += ["-o", str(tmp_path / "scores.csv"), "--faces-csv", str(target)]
    assert cli.main(args) == 2
    err = capsys.readouterr().err.strip()
    assert "--tracks-csv must differ from --output" in err and "\n" not in err
    assert not target.exists()
