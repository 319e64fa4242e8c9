"""``python -m pipeline serve``, called in-process as ``main(argv)``; the servers are faked."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from pipeline.cli import serve as server
from tests.helpers import REPO_ROOT


def test_help_does_not_import_tensorflow():
    code = (
        "import sys\nfrom pipeline.cli.serve import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit as e:\n    assert e.code == 0\n"
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'TensorFlow imported'\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert "--server {waitress,flask}" in proc.stdout and "--max-upload-mb" in proc.stdout
    # the scan flags shared with score, including the two serve once lacked
    assert "--pyramid-scale" in proc.stdout and "--full-frame-every" in proc.stdout


def test_missing_weights_is_a_usage_error(tmp_path, capsys):
    assert server.main(["--weights", str(tmp_path / "none.h5")], prog="serve") == 2
    assert "weights file not found" in capsys.readouterr().err


def test_a_detector_value_out_of_its_range_is_a_usage_error(meso4_df_path, capsys):
    with pytest.raises(SystemExit) as exit_info:  # the range DetectorConfig declares: 0.3..0.9
        server.main(["--weights", str(meso4_df_path), "--pyramid-scale", "0.95"], prog="serve")
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err  # no usage block: one line
    assert exit_info.value.code == 2 and ("argument --pyramid-scale: must be in [0.3, 0.9], got 0.95" + " (see ") in err


def test_a_port_out_of_range_is_refused_by_the_parser(capsys):
    with pytest.raises(SystemExit) as exit_info:
        server.main(["--port", "70000"], prog="serve")
    assert exit_info.value.code == 2 and "0..65535" in capsys.readouterr().err


@pytest.fixture
def fake_servers(monkeypatch):
    """waitress and Flask's server replaced by recorders; returns what they were called with."""
    calls: dict = {}

    class FakeWaitress:
        effective_host, effective_port = "127.0.0.1", "8123"

        def run(self):
            calls["waitress"] = True

        def close(self):
            calls["closed"] = True

    def fake_build(app, host, port, **kwargs):
        calls.update(app=app, host=host, port=port, **kwargs)
        return FakeWaitress()

    def fake_run(self, **kwargs):
        calls.update(app=self, **kwargs)

    monkeypatch.setattr(server, "build_waitress_server", fake_build)
    monkeypatch.setattr("flask.Flask.run", fake_run)
    return calls


@pytest.fixture
def serve_loaded(monkeypatch, reuse_models):
    """The LoadedModels serve's main() built (through the factory, with the session's networks)."""
    built = []
    real = server.load_models

    def spy(spec, **kwargs):
        built.append((spec, real(spec, **kwargs)))
        return built[-1][1]

    monkeypatch.setattr(server, "load_models", spy)
    return built


@pytest.mark.parametrize("server_name", ["waitress", "flask"])
def test_main_serves_with_the_chosen_server_never_in_debug(fake_servers, serve_loaded, meso4_df_path, server_name):
    calls = fake_servers
    argv = [
        "--weights",
        str(meso4_df_path),
        "--port",
        "8123",
        "--server",
        server_name,
        "--max-upload-mb",
        "5",
        "--threshold",
        "0.7",
    ]
    assert server.main(argv, prog="serve") == 0
    app = calls["app"]
    assert app.debug is False and app.config["MAX_CONTENT_LENGTH"] == 5 * 1024 * 1024
    assert app.extensions["deepfake_scanner"].config.threshold == 0.7
    assert not app.extensions["deepfake_scanner"].jobs.stats()["worker_alive"]  # stopped on the way out
    if server_name == "waitress":
        assert calls["waitress"] and calls["closed"] and calls["port"] == 8123
        assert calls["max_upload_bytes"] == 5 * 1024 * 1024
    else:
        assert calls["debug"] is False and calls["use_reloader"] is False and calls["port"] == 8123


def test_models_are_loaded_once_from_the_pinned_spec_with_the_detector_flags(fake_servers, serve_loaded, meso4_df_path):
    argv = [
        "--weights",
        str(meso4_df_path),
        "--pyramid-scale",
        "0.709",
        "--full-frame-every",
        "0.5",
        "--detect-size",
        "320",
        "--min-face",
        "30",
    ]
    assert server.main(argv, prog="serve") == 0
    ((spec, models),) = serve_loaded
    assert spec.weights == str(meso4_df_path) and spec.download is False
    config = models.detector.config
    assert (config.pyramid_scale, config.full_frame_every_s, config.detect_long_side_px, config.min_face_px) == (
        0.709,
        0.5,
        320,
        30,
    )
    assert fake_servers["app"].extensions["deepfake_scanner"].config.threshold == 0.5  # MesoNet's own


def test_without_the_flag_the_weights_threshold_is_used(fake_servers, serve_loaded, tmp_path):
    weights = tmp_path / "scanner.h5"
    shutil.copyfile(REPO_ROOT / "weights" / "meso4_scanner_v1.h5", weights)
    fields = json.loads((REPO_ROOT / "weights" / "meso4_scanner_v1.h5.json").read_text())
    fields["threshold"] = 0.7
    (tmp_path / "scanner.h5.json").write_text(json.dumps(fields))
    assert server.main(["--weights", str(weights)], prog="serve") == 0
    assert fake_servers["app"].extensions["deepfake_scanner"].config.threshold == 0.7
    assert serve_loaded[0][1].threshold == 0.7


@pytest.mark.parametrize(
    "server_name, hidden",
    [
        ("waitress", "waitress"),  # the default server's package missing
        ("waitress", "flask"),  # the app's package missing
        ("flask", "flask"),
    ],
)
def test_a_missing_web_extra_is_a_one_line_pip_hint(monkeypatch, capsys, server_name, hidden):
    monkeypatch.setitem(sys.modules, hidden, None)  # import of it fails, find_spec finds nothing
    monkeypatch.setattr(server, "load_models", lambda spec: pytest.fail("models loaded before the check"))
    assert server.main(["--server", server_name]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err
    assert f"needs {hidden}" in err and "pip install -e '.[web]'" in err
