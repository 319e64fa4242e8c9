"""pipeline/errors.py: every error of ours under ScannerError, each with its own kind, declared
in one module; the command lines catch ours alone."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from pipeline import errors
from pipeline.errors import ScannerError, all_errors

PACKAGE = Path(__file__).resolve().parents[1] / "pipeline"


def test_every_error_is_a_scanner_error_with_a_kind_of_its_own():
    classes = all_errors()
    assert len(classes) >= 14
    kinds = [cls.kind for cls in classes]
    assert len(set(kinds)) == len(kinds), kinds
    assert all(issubclass(cls, ScannerError) and cls.__doc__ for cls in classes)


def test_no_module_declares_an_exception_outside_errors_py():
    declared = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name == "errors.py" and path.parent == PACKAGE:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef):
                bases = {getattr(b, "id", getattr(b, "attr", "")) for b in node.bases}
                if any(b.endswith(("Error", "Exception", "Rejected")) for b in bases) or node.name.endswith("Error"):
                    declared.append(f"{path.relative_to(PACKAGE.parent)}: {node.name}")
    assert declared == [], declared


@pytest.mark.parametrize(
    "cls, builtin",
    [
        (errors.ConfigError, ValueError),
        (errors.ResumeMismatchError, ValueError),
        (errors.DatasetError, ValueError),
        (errors.ReportError, ValueError),
        (errors.DecodeTimeoutError, TimeoutError),
        (errors.WeightsNotFoundError, FileNotFoundError),
        (errors.OutputError, OSError),
    ],
)
def test_errors_that_refine_a_builtin_are_still_caught_as_it(cls, builtin):
    assert issubclass(cls, builtin) and issubclass(cls, ScannerError)


def test_the_old_homes_of_moved_errors_still_name_the_same_class():
    from pipeline.report import html
    from pipeline.video import decode
    from pipeline.web import jobs, scoring

    assert decode.DecodeTimeoutError is errors.DecodeTimeoutError
    assert jobs.QueueFullError is errors.QueueFullError
    assert scoring.UploadRejected is errors.UploadRejected
    assert html.ReportError is errors.ReportError


def test_the_report_command_turns_only_our_errors_into_a_usage_line(tmp_path, monkeypatch, capsys):
    from pipeline.cli import report

    scores = tmp_path / "s.csv"
    scores.write_text("video_path,status\n")
    assert report.main([str(scores), "-o", str(tmp_path / "no-such-folder" / "r.html")]) == 2
    assert "folder" in capsys.readouterr().err
    monkeypatch.setattr(report, "write_report", lambda config: (_ for _ in ()).throw(KeyError("a bug")))
    with pytest.raises(KeyError, match="a bug"):  # not ours: a traceback, never a usage message
        report.main([str(scores), "-o", str(tmp_path / "r.html")])
