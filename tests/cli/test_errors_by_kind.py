"""The command lines catch our errors alone: a ScannerError is one line and exit 2, anything else
(a bug) leaves with its traceback (exit 1), where before a ValueError or an OSError from deep
inside was dressed up as a usage error."""

from __future__ import annotations

import subprocess
import sys

import pytest

from pipeline.cli import evaluate as evaluate_cli
from pipeline.cli import extract as extract_cli
from pipeline.cli import score as score_cli
from pipeline.cli import serve as serve_cli
from pipeline.cli import train as train_cli
from pipeline.errors import ConfigError


def _bug(*args, **kwargs):
    raise ValueError("a bug, not the user's input")


def _ours(*args, **kwargs):
    raise ConfigError("fps must be > 0, got 0")


@pytest.fixture
def data(tmp_path):
    for label in ("real", "fake"):
        (tmp_path / "data" / label).mkdir(parents=True)
    return tmp_path / "data"


def _commands(tmp_path, data):
    """(module, the function its main calls first that we make fail, argv) per command."""
    out = tmp_path / "out"
    return [
        (score_cli, "resolve_scan_settings", [str(data), "-o", str(tmp_path / "s.csv")]),
        (serve_cli, "resolve_scan_settings", []),
        (train_cli, "config_from_args", [str(data), "-o", str(tmp_path / "w.h5")]),
        (evaluate_cli, "config_from_args", [str(data), "-o", str(out)]),
        (extract_cli, "config_from_args", [str(data), "-o", str(out)]),
    ]


@pytest.mark.parametrize("index", range(5), ids=["score", "serve", "train", "evaluate", "extract"])
def test_a_bug_is_a_traceback_and_our_error_is_one_line(index, tmp_path, data, monkeypatch, capsys):
    module, name, argv = _commands(tmp_path, data)[index]
    if module is serve_cli:
        pytest.importorskip("flask")
    monkeypatch.setattr(module, name, _bug)
    with pytest.raises(ValueError, match="a bug"):
        module.main(argv)
    capsys.readouterr()
    monkeypatch.setattr(module, name, _ours)
    assert module.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith("error: fps must be > 0, got 0") and len(err.splitlines()) == 1, err


def test_an_output_the_disk_refuses_is_our_error_naming_it(tmp_path, monkeypatch):
    import errno

    from pipeline.errors import OutputError, writing
    from pipeline.scan.records import VideoRow
    from pipeline.scan.sink import CsvSink

    def full(self, values):
        raise OSError(errno.ENOSPC, "No space left on device")

    out = tmp_path / "s.csv"
    with CsvSink(out, VideoRow.columns(), resume=False) as sink:
        monkeypatch.setattr(CsvSink, "_write_line", full)
        with pytest.raises(OutputError, match=f"cannot write {out}: No space left on device"):
            sink.write(VideoRow("a.mp4", "no_face"))
    with pytest.raises(OutputError, match="cannot write report/: No space left on device"):
        with writing("report/"):
            raise OSError(errno.ENOSPC, "No space left on device")
    with pytest.raises(ConfigError):  # ours pass through unchanged
        with writing("report/"):
            raise ConfigError("x")


def test_a_bug_exits_1_with_its_traceback_in_a_real_process(tmp_path, data):
    code = (
        "import sys, pipeline.cli.train as t\n"
        "t.config_from_args = lambda args: {}['no such key']\n"
        f"sys.exit(t.main([{str(data)!r}, '-o', {str(tmp_path / 'w.h5')!r}]))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and "Traceback" in done.stderr and "KeyError" in done.stderr
