"""pipeline/scan/sink.py: append-only CSV with resume, torn-tail repair and a lock against two writers."""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest

from pipeline.errors import OutputLockedError
from pipeline.scan import sink as sink_module
from pipeline.scan.sink import CsvSink, read_done_keys

REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclasses.dataclass(frozen=True)
class Row:
    video_path: str
    p_fake: float | None
    n_faces: int


COLUMNS = [f.name for f in dataclasses.fields(Row)]


def write_rows(path: Path, rows: list[Row], *, resume: bool) -> None:
    with CsvSink(path, COLUMNS, resume=resume) as sink:
        for row in rows:
            sink.write(row)


def read_rows(path: Path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.reader(f))


def test_new_file_starts_with_the_header(tmp_path):
    path = tmp_path / "out.csv"
    write_rows(path, [], resume=False)
    assert path.read_text(encoding="utf-8") == "video_path,p_fake,n_faces\n"


def test_rows_are_readable_by_csv_and_pandas(tmp_path):
    path = tmp_path / "out.csv"
    with CsvSink(path, COLUMNS, resume=False) as sink:
        sink.write(Row("a.mp4", 0.25, 3))
        sink.write_many([Row("b.mp4", None, 0), Row("c.mp4", 2.5e-05, 1)])
        # each row is on disk before the sink closes
        assert len(read_rows(path)) == 1 + 3
    assert read_rows(path) == [COLUMNS, ["a.mp4", "0.25", "3"], ["b.mp4", "", "0"], ["c.mp4", "2.5e-05", "1"]]
    frame = pd.read_csv(path)
    assert list(frame.columns) == COLUMNS
    assert frame["video_path"].tolist() == ["a.mp4", "b.mp4", "c.mp4"]
    assert frame["p_fake"].tolist()[0] == 0.25
    assert pd.isna(frame["p_fake"][1])  # None is an empty cell, read back as missing
    assert frame["p_fake"][2] == pytest.approx(2.5e-05)


def test_resume_keeps_rows_and_appends(tmp_path):
    path = tmp_path / "out.csv"
    write_rows(path, [Row("a.mp4", 0.1, 1)], resume=False)
    write_rows(path, [Row("b.mp4", 0.2, 2)], resume=True)
    assert [r[0] for r in read_rows(path)] == ["video_path", "a.mp4", "b.mp4"]


@pytest.mark.parametrize(
    "exists",
    [
        False,  # no file yet
        True,  # an old file with rows: replaced
    ],
)
def test_without_resume_the_file_is_replaced(tmp_path, exists):
    path = tmp_path / "out.csv"
    if exists:
        write_rows(path, [Row("old.mp4", 0.9, 1)], resume=False)
    write_rows(path, [Row("new.mp4", 0.1, 1)], resume=False)
    assert read_rows(path) == [COLUMNS, ["new.mp4", "0.1", "1"]]


@pytest.mark.parametrize(
    "content",
    [
        None,  # no file
        "",  # empty file (killed before the header landed)
    ],
)
def test_resume_on_missing_or_empty_file_writes_the_header(tmp_path, content):
    path = tmp_path / "out.csv"
    if content is not None:
        path.write_text(content)
    write_rows(path, [Row("a.mp4", 0.5, 1)], resume=True)
    assert read_rows(path) == [COLUMNS, ["a.mp4", "0.5", "1"]]


@pytest.mark.parametrize(
    "torn_tail",
    [
        "c.mp4,0.",  # killed inside a number
        "c.mp4",  # killed after the path
        '"dir, with comma/c.mp4",0.3',  # killed inside a row with a quoted path
        "x" * 70_000,  # a torn line longer than the 64 KiB block the trimmer reads at a time
    ],
)
def test_torn_last_line_is_cut_on_resume_and_never_duplicated(tmp_path, torn_tail):
    path = tmp_path / "out.csv"
    write_rows(path, [Row("a.mp4", 0.1, 1), Row("b.mp4", 0.2, 2)], resume=False)
    with open(path, "a", encoding="utf-8") as f:
        f.write(torn_tail)
    with CsvSink(path, COLUMNS, resume=True) as sink:
        assert read_done_keys(path, "video_path", COLUMNS) == {"a.mp4", "b.mp4"}
        sink.write(Row("c.mp4", 0.3, 3))
    assert read_rows(path) == [COLUMNS, ["a.mp4", "0.1", "1"], ["b.mp4", "0.2", "2"], ["c.mp4", "0.3", "3"]]


def test_torn_row_whose_path_contains_a_newline_is_cut_whole(tmp_path):
    path = tmp_path / "out.csv"
    write_rows(path, [Row("a.mp4", 0.1, 1)], resume=False)
    with open(path, "a", encoding="utf-8") as f:
        f.write('"dir\nwith newline/c.mp')  # killed while writing a row whose path holds a newline
    write_rows(path, [Row("b.mp4", 0.2, 2)], resume=True)
    assert read_done_keys(path, "video_path", COLUMNS) == {"a.mp4", "b.mp4"}


def test_header_mismatch_on_resume_raises(tmp_path):
    path = tmp_path / "out.csv"
    path.write_text("path,score\nold.mp4,0.5\n")
    with pytest.raises(
        ValueError,
        match=r"has columns \['path', 'score'\], expected \['video_path', 'p_fake', "
        r"'n_faces'\]; use --overwrite",
    ):
        write_rows(path, [Row("a.mp4", 0.5, 1)], resume=True)
    assert path.read_text() == "path,score\nold.mp4,0.5\n"  # the foreign file is left alone


def test_failed_enter_releases_the_lock(tmp_path):
    path = tmp_path / "out.csv"
    write_rows(path, [Row("a.mp4", 0.5, 1)], resume=False)
    with pytest.raises(ValueError) as excinfo:  # like a logged or chained exception, keeps the traceback alive
        CsvSink(path, ["other"], resume=True).__enter__()
    assert excinfo.value is not None
    write_rows(path, [Row("b.mp4", 0.5, 1)], resume=True)  # raises OutputLockedError today


@pytest.mark.parametrize(
    "content, expected",
    [
        (None, set()),  # no file
        ("", set()),  # empty file
        ("video_path,p_fake,n_faces\n", set()),  # header only
        ("video_path,p_fake,n_faces\na.mp4,0.1,1\nb.mp4,,0\n", {"a.mp4", "b.mp4"}),  # empty cells are fine
        ("video_path,p_fake,n_faces\na.mp4,0.1,1\nb.mp4,0.2,2,extra\n", {"a.mp4"}),  # too many fields: not ours
    ],
)
def test_read_done_keys(tmp_path, content, expected):
    path = tmp_path / "out.csv"
    if content is not None:
        path.write_text(content)
    assert read_done_keys(path, "video_path", COLUMNS) == expected


def test_read_done_keys_skips_rows_with_missing_fields(tmp_path):
    path = tmp_path / "out.csv"
    path.write_text("video_path,p_fake,n_faces\na.mp4,0.1,1\nb.mp4,0.2\n")
    assert read_done_keys(path, "video_path", COLUMNS) == {"a.mp4"}


def test_read_done_keys_rejects_a_foreign_csv(tmp_path):
    path = tmp_path / "other.csv"
    path.write_text("name,score\nx,1\n")
    with pytest.raises(ValueError, match=r"no 'video_path' column\); use --overwrite"):
        read_done_keys(path, "video_path", COLUMNS)


def test_second_sink_in_the_same_process_is_locked_out(tmp_path):
    # flock locks belong to the open file description: a second open() conflicts even in-process
    path = tmp_path / "out.csv"
    with CsvSink(path, COLUMNS, resume=False) as sink:
        with pytest.raises(OutputLockedError, match="is being written by another run"):
            with CsvSink(path, COLUMNS, resume=True):
                pass
        sink.write(Row("a.mp4", 0.5, 1))  # the first writer is unaffected
    write_rows(path, [Row("b.mp4", 0.5, 1)], resume=True)  # released on exit
    assert [r[0] for r in read_rows(path)] == ["video_path", "a.mp4", "b.mp4"]


def test_second_sink_in_another_process_is_locked_out(tmp_path):
    path = tmp_path / "out.csv"
    script = textwrap.dedent(f"""
        from pipeline.errors import OutputLockedError
        from pipeline.scan.sink import CsvSink
        try:
            with CsvSink({str(path)!r}, {COLUMNS!r}, resume=True):
                print("opened")
        except OutputLockedError:
            print("locked")
    """)

    def other_process() -> str:
        env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
        proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=60)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout.strip()

    with CsvSink(path, COLUMNS, resume=False):
        assert other_process() == "locked"
    assert other_process() == "opened"


@pytest.mark.parametrize(
    "video_path",
    [
        "clips/plain.mp4",  # ordinary
        "clips/a, b.mp4",  # comma
        'clips/say "hi".mp4',  # double quotes
        "clips/it's.mp4",  # single quote
        "clips/two\nlines.mp4",  # newline
        "clips/cr\r\nlf.mp4",  # carriage return + newline
        " clips/leading space.mp4 ",  # leading and trailing spaces
        "clips/vidéo 日本.mp4",  # non-ASCII
    ],
)
def test_awkward_paths_survive_a_round_trip(tmp_path, video_path):
    path = tmp_path / "out.csv"
    write_rows(path, [Row(video_path, 0.5, 1), Row("next.mp4", 0.25, 2)], resume=False)
    write_rows(path, [Row("last.mp4", 0.75, 3)], resume=True)  # resume must not damage the row either
    assert [r[0] for r in read_rows(path)[1:]] == [video_path, "next.mp4", "last.mp4"]
    assert read_done_keys(path, "video_path", COLUMNS) == {video_path, "next.mp4", "last.mp4"}
    frame = pd.read_csv(path, keep_default_na=False, skipinitialspace=False)
    assert frame["video_path"].tolist() == [video_path, "next.mp4", "last.mp4"]


def test_a_full_disk_leaves_only_complete_rows(tmp_path, monkeypatch):
    import errno

    path = tmp_path / "out.csv"
    with pytest.raises(OSError, match="No space"):
        with CsvSink(path, COLUMNS, resume=False) as sink:
            sink.write(Row("a.mp4", 0.1, 1))

            def full(fd):  # the disk fills up while the next rows are flushed
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

            monkeypatch.setattr(os, "fsync", full)
            sink.write_many([Row("b.mp4", 0.2, 2), Row("c.mp4", 0.3, 3)])
    assert read_rows(path) == [COLUMNS, ["a.mp4", "0.1", "1"]]


@pytest.mark.parametrize(
    "text, cell",
    [
        ("=HYPERLINK(1)", "'=HYPERLINK(1)"),  # formula
        ("+1", "'+1"),
        ("-x.mp4", "'-x.mp4"),
        ("@SUM", "'@SUM"),
        ("'quoted", "''quoted"),  # an apostrophe is escaped too, so unescaping is exact
        ("plain.mp4", "plain.mp4"),
    ],
)
def test_formula_cells_are_escaped_reversibly(text, cell):
    from pipeline.scan.sink import escape_cell, unescape_cell

    assert escape_cell(text) == cell
    assert unescape_cell(cell) == text


# --- the lock file lives only as long as the run ------------------------------------------------


class Interrupted(Exception):
    """Stands in for an error raised inside the ``with`` block."""


@pytest.mark.parametrize(
    "ending",
    [
        None,  # normal end
        Interrupted,  # an error inside the block
        KeyboardInterrupt,  # Ctrl-C
    ],
)
def test_the_lock_file_is_removed_when_the_sink_closes(tmp_path, ending):
    path = tmp_path / "out.csv"
    lock = tmp_path / "out.csv.lock"
    with pytest.raises(ending) if ending else contextlib.nullcontext():
        with CsvSink(path, COLUMNS, resume=False) as sink:
            assert lock.is_file()  # held while writing
            sink.write(Row("a.mp4", 0.5, 1))
            if ending:
                raise ending()
    assert not lock.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv"]


def test_a_failed_enter_removes_the_lock_file(tmp_path):
    path = tmp_path / "out.csv"
    path.write_text("other\nx\n")
    with pytest.raises(ValueError, match="has columns"):
        with CsvSink(path, COLUMNS, resume=True):
            pass
    assert not (tmp_path / "out.csv.lock").exists()


def test_a_refused_sink_leaves_the_holders_lock_file(tmp_path):
    path = tmp_path / "out.csv"
    lock = tmp_path / "out.csv.lock"
    with CsvSink(path, COLUMNS, resume=False):
        held = os.stat(lock)
        with pytest.raises(OutputLockedError):
            with CsvSink(path, COLUMNS, resume=True):
                pass
        assert os.path.samestat(os.stat(lock), held)  # the refused one removed nothing
    assert not lock.exists()


def test_a_stale_lock_file_left_by_a_kill_is_taken_and_removed(tmp_path):
    path = tmp_path / "out.csv"
    lock = tmp_path / "out.csv.lock"
    lock.touch()  # what kill -9 leaves: a file nobody holds
    write_rows(path, [Row("a.mp4", 0.5, 1)], resume=True)
    assert read_rows(path)[1][0] == "a.mp4"
    assert not lock.exists()


def test_a_lock_file_removed_between_open_and_flock_is_locked_afresh(tmp_path, monkeypatch):
    # The race the removal opens: run B opens out.csv.lock, run A (the holder) finishes and
    # unlinks it, B's flock then succeeds on the orphan inode. B must notice and lock the file
    # that the path names now, or a third run could lock a new file and write alongside B.
    path = tmp_path / "out.csv"
    lock = tmp_path / "out.csv.lock"
    real_flock = sink_module.fcntl.flock
    orphaned: list[int] = []

    def flock_after_the_holder_left(fd, operation):
        if operation & sink_module.fcntl.LOCK_EX and not orphaned:
            orphaned.append(os.fstat(fd).st_ino)
            lock.unlink()  # the holder finishes right now
        return real_flock(fd, operation)

    monkeypatch.setattr(sink_module.fcntl, "flock", flock_after_the_holder_left)
    with CsvSink(path, COLUMNS, resume=False) as sink:
        assert orphaned, "the race was not staged"
        held = os.fstat(sink._lock_fd)
        assert os.path.samestat(os.stat(lock), held)  # locked the file the path names
        with pytest.raises(OutputLockedError):  # so a third run is refused
            with CsvSink(path, COLUMNS, resume=True):
                pass
    assert not lock.exists()
