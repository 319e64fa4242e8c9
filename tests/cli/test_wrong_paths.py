"""Every command given a path of the wrong kind (a clip where labelled data or a scores file is
expected, a file where a folder is, a folder where a file is, a missing path, a text or binary
file) answers with one line naming what it expected, exit status 2, before any model is loaded."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pipeline.__main__ import main
from tests.helpers import make_lavfi_clip, run_python


@pytest.fixture(scope="module")
def paths(tmp_path_factory) -> dict[str, Path]:
    """One path of each kind: a clip, a text file named as a clip, a text file, a binary file
    that is no clip (a JPEG), a scores CSV, an empty folder and a path that does not exist."""
    root = tmp_path_factory.mktemp("kinds")
    made = {
        "clip": make_lavfi_clip(root / "clip.mp4", size="160x120", rate=10, duration_s=0.5),
        "text_mp4": root / "fake.mp4",
        "text": root / "notes.txt",
        "binary": root / "photo.jpg",
        "scores": root / "scores.csv",
        "folder": root / "folder",
        "missing": root / "missing",
    }
    made["text_mp4"].write_text("not a video\n", encoding="utf-8")
    made["text"].write_text("hello\n", encoding="utf-8")
    made["binary"].write_bytes(b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(range(256)))
    made["scores"].write_text("video_path,status\na.mp4,decode_error\n", encoding="utf-8")
    made["folder"].mkdir()
    return made


@pytest.fixture(autouse=True)
def no_model(monkeypatch):
    """A usage error is found before any model: loading one fails the test."""
    from pipeline.models import factory

    def refuse(*args, **kwargs):
        raise AssertionError("a model was loaded before the usage error")

    monkeypatch.setattr(factory, "load_models", refuse)
    monkeypatch.setattr(factory, "load_detector", refuse)


CASES = [
    # --- score: inputs and outputs -----------------------------------------------------------------
    (["score", "{missing}", "-o", "{tmp}/s.csv"], r"input not found: .*missing"),
    (["score", "{clip}", "-o", "{folder}"], r"output .*folder is a folder, not a file"),
    (["score", "{clip}", "-o", "{tmp}/out.mp4"], r"output .*out.mp4 is named as a video clip; .*scores.csv"),
    (["score", "{clip}", "-o", "{text}"], r"notes.txt is not a scores file \(it has no video_path"),
    (
        ["score", "{clip}", "-o", "{tmp}/s.csv", "--evidence-dir", "{text}"],
        r"--evidence-dir .* is a file, not a folder",
    ),
    (["score", "{clip}", "-o", "{tmp}/s.csv", "--faces-csv", "{folder}"], r"faces CSV .* is a folder, not a file"),
    # --- extract: a clip is accepted with its label; the rest is refused --------------------------
    (["extract", "{clip}", "-o", "{tmp}/ds"], r"clip.mp4 is one clip with no label: .*--label real"),
    (["extract", "{clip}", "-o", "{tmp}/ds", "--label", "maybe"], r"label 'maybe' is not one of"),
    (["extract", "{folder}", "-o", "{tmp}/ds", "--label", "fake"], r"a label is given to one clip only"),
    (["extract", "{binary}", "-o", "{tmp}/ds"], r"photo.jpg is neither a sources CSV .* nor a video clip"),
    (["extract", "{text}", "-o", "{tmp}/ds"], r"a sources manifest needs columns path,label"),
    (["extract", "{missing}", "-o", "{tmp}/ds"], r"sources not found"),
    (["extract", "{folder}", "-o", "{tmp}/ds"], r"no labelled clips under .*: expected subfolders"),
    (["extract", "{folder}", "-o", "{text}"], r"dataset folder .*notes.txt is a file, not a folder"),
    # --- evaluate: one clip has no labels ------------------------------------------------------------
    (
        ["evaluate", "{clip}", "-o", "{tmp}/r"],
        r"clip.mp4 is one video clip; evaluate needs labels: .*; to score one clip: deepfake-scan score .*clip.mp4",
    ),
    (["evaluate", "{text_mp4}", "-o", "{tmp}/r"], r"is one video clip; evaluate needs labels"),
    (["evaluate", "{binary}", "-o", "{tmp}/r"], r"photo.jpg is not a manifest CSV \(not text\)"),
    (["evaluate", "{text}", "-o", "{tmp}/r"], r"missing column\(s\) \['file', 'label'\]"),
    (["evaluate", "{missing}", "-o", "{tmp}/r"], r"data not found"),
    (["evaluate", "{folder}", "-o", "{tmp}/r"], r"no class subfolder"),
    (["evaluate", "{folder}", "-o", "{text}"], r"report folder .*notes.txt is a file, not a folder"),
    # --- train ------------------------------------------------------------------------------------------
    (
        ["train", "{clip}", "-o", "{tmp}/w.h5"],
        r"clip.mp4 is one video clip; train needs face crops: .*deepfake-scan extract CLIPS",
    ),
    (["train", "{binary}", "-o", "{tmp}/w.h5"], r"photo.jpg is not a manifest CSV \(not text\)"),
    (["train", "{missing}", "-o", "{tmp}/w.h5"], r"data not found"),
    (["train", "{folder}", "-o", "{tmp}/w.h5", "--init-weights", "{folder}"], r"--init-weights .* is a folder, not"),
    (["train", "{folder}", "-o", "{tmp}/w.h5", "--report-dir", "{text}"], r"--report-dir .* is a file, not a folder"),
    # --- report -----------------------------------------------------------------------------------------
    (
        ["report", "{clip}", "-o", "{tmp}/r.html"],
        r"clip.mp4 is one video clip; report needs the scores file .*: deepfake-scan score .*clip.mp4",
    ),
    (["report", "{folder}", "-o", "{tmp}/r.html"], r"scores file .*folder is a folder, not a file"),
    (["report", "{missing}", "-o", "{tmp}/r.html"], r"scores file .*missing not found"),
    (["report", "{text}", "-o", "{tmp}/r.html"], r"a scores file ends in one of"),
    (["report", "{scores}", "-o", "{tmp}/r.html", "--faces-csv", "{clip}"], r"clip.mp4 is not a faces CSV: not text"),
    (["report", "{scores}", "-o", "{tmp}/r.html", "--faces-csv", "{folder}"], r"faces CSV .* is a folder, not a file"),
    (["report", "{scores}", "-o", "{tmp}/r.html", "--evidence-dir", "{text}"], r"evidence folder .* is a file, not a"),
    (["report", "{scores}", "-o", "{clip}"], r"output .*clip.mp4 is named as a video clip; .*report.html"),
]


@pytest.mark.parametrize("argv, message", CASES, ids=[f"{c[0][0]}-{i}" for i, c in enumerate(CASES)])
def test_a_path_of_the_wrong_kind_is_one_line_and_exit_2(paths, tmp_path, capsys, argv, message):
    argv = [a.format(tmp=tmp_path, **paths) for a in argv]
    assert main(argv, prog="deepfake-scan") == 2
    err = capsys.readouterr().err
    assert err.startswith(f"deepfake-scan {argv[0]}: error: ") and err.count("\n") == 1, err
    assert re.search(message, err), err


def test_the_reported_cases_end_without_a_traceback(paths, tmp_path):
    """The issue's two commands, as typed: ``extract_faces.py clip.mp4`` printed a bare
    ``'utf-8' codec can't decode``, ``python -m pipeline evaluate clip.mp4`` a traceback."""
    code = (
        "import sys\nfrom pipeline.cli import evaluate, extract\n"
        f"sys.exit(10 * extract.main([{str(paths['clip'])!r}, '-o', {str(tmp_path / 'ds')!r}], prog='extract_faces.py')"
        f" + evaluate.main([{str(paths['clip'])!r}, '-o', {str(tmp_path / 'r')!r}]))\n"
    )
    proc = run_python(code)
    assert proc.returncode == 22, proc.stderr  # 2 and 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 2 and "Traceback" not in proc.stderr and "codec" not in proc.stderr, proc.stderr
    assert lines[0].startswith("extract_faces.py: error: ") and "one clip with no label" in lines[0]
    assert lines[1].startswith("python -m pipeline evaluate: error: ") and "one video clip" in lines[1]
    assert not (tmp_path / "ds").exists() and not (tmp_path / "r").exists()
