"""Every command's ``--help``, called in-process: defaults and units shown, and the usage line
names the command as it was typed (console script, script or ``python -m pipeline``)."""

from __future__ import annotations

import importlib
import shutil
import subprocess
import sys

import pytest

from pipeline import __main__ as entry
from tests.helpers import REPO_ROOT


def _help(module: str, prog: str | None, capsys) -> str:
    main = importlib.import_module(module).main
    with pytest.raises(SystemExit) as excinfo:
        main(["--help"]) if prog is None else main(["--help"], prog=prog)
    assert excinfo.value.code == 0
    return capsys.readouterr().out


@pytest.mark.parametrize(
    "module, unit",
    [
        ("pipeline.cli.score", "seconds"),  # --timeout
        ("pipeline.cli.extract", "frames sampled per second"),  # --fps
        ("pipeline.cli.evaluate", "pixels"),  # --detect-size, --min-face
        ("pipeline.cli.train", "minutes"),  # --max-minutes
        ("pipeline.cli.serve", "seconds"),  # --max-duration
    ],
)
def test_help_shows_defaults_and_units_and_the_command_as_typed(capsys, module, unit):
    prog = f"python -m pipeline {module.rsplit('.', 1)[-1]}"
    text = _help(module, prog, capsys)
    assert text.startswith(f"usage: {prog} [-h]")
    assert "(default: " in text and "(default: None)" not in text
    assert unit in text


@pytest.mark.parametrize(
    "argv0, module, usage",
    [
        ("/venv/bin/score-videos", "pipeline.cli.score", "usage: score-videos "),  # console script
        ("/repo/score_videos.py", "pipeline.cli.score", "usage: score_videos.py "),  # the script
        ("/venv/bin/pytest", "pipeline.cli.score", "usage: score_videos.py "),  # anything else: the script's name
        ("/repo/extract_faces.py", "pipeline.cli.extract", "usage: extract_faces.py "),
    ],
)
def test_commands_started_directly_take_their_name_from_argv0(monkeypatch, capsys, argv0, module, usage):
    monkeypatch.setattr(sys, "argv", [argv0])
    assert _help(module, None, capsys).startswith(usage)


@pytest.mark.parametrize(
    "argv0, prog",
    [
        ("/venv/bin/deepfake-scan", "deepfake-scan"),  # the console script
        ("/repo/pipeline/__main__.py", "python -m pipeline"),  # python -m pipeline
    ],
)
def test_the_entry_point_names_its_commands_as_typed(monkeypatch, capsys, argv0, prog):
    monkeypatch.setattr(sys, "argv", [argv0])
    assert entry.main(["--help"]) == 0
    assert capsys.readouterr().out.startswith(f"usage: {prog} COMMAND")
    with pytest.raises(SystemExit) as excinfo:
        entry.main(["score", "--help"])
    assert excinfo.value.code == 0
    assert capsys.readouterr().out.startswith(f"usage: {prog} score [-h]")
    assert entry.main(["nope"]) == 2
    assert capsys.readouterr().err.startswith(f"{prog}: error: unknown command 'nope'")


@pytest.mark.parametrize(
    "script, usage",
    [
        ("deepfake-scan", "usage: deepfake-scan score "),
        ("score-videos", "usage: score-videos "),
    ],
)
def test_installed_console_scripts_name_themselves(script, usage):
    path = shutil.which(script, path=str(REPO_ROOT / ".venv" / "bin")) or shutil.which(script)
    if path is None:
        pytest.skip(f"{script} is not installed (pip install -e .)")
    argv = [path, "score", "--help"] if script == "deepfake-scan" else [path, "--help"]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60, cwd=REPO_ROOT)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(usage)
