"""pipeline/models/weights.py: weight specs, the one resolver, and sha256-checked downloads (no TensorFlow).

Network: only a loopback HTTP server on 127.0.0.1 started by the fixtures below.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import http.server
import json
import socket
import threading
import urllib.error
from pathlib import Path

import pytest

import pipeline.models.weights as weights
from pipeline.errors import WeightsError
from pipeline.models.weights import (
    DEFAULT_WEIGHTS_NAME,
    KNOWN_WEIGHTS,
    REPO_DEFAULT_NAME,
    WeightsSpec,
    fetch_weights,
    resolve_weights,
    sha256_file,
    sidecar_path,
    spec_for_weights,
)

# captured before the autouse fixture points the download at loopback
ORIGINAL_DEFAULT_DOWNLOAD = weights.DEFAULT_DOWNLOAD

PAYLOAD = b"not really HDF5, but bytes with a known sha256\n" * 100
PAYLOAD_SHA256 = hashlib.sha256(PAYLOAD).hexdigest()


def _spec(**overrides) -> WeightsSpec:
    fields = dict(name="test-meso4", architecture="meso4", sha256=PAYLOAD_SHA256, output="p_fake")
    return WeightsSpec(**{**fields, **overrides})


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*")) if folder.exists() else []


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    """Serves a folder; ``/truncated/...`` promises 100 kB and hangs up after 1 kB."""

    def do_GET(self):
        if self.path.startswith("/truncated/"):
            self.send_response(200)
            self.send_header("Content-Length", "100000")
            self.end_headers()
            self.wfile.write(PAYLOAD[:1000])
            self.close_connection = True
            return
        super().do_GET()

    def log_message(self, format, *args):
        pass


@pytest.fixture
def http_root(tmp_path) -> Path:
    root = tmp_path / "served"
    root.mkdir()
    (root / DEFAULT_WEIGHTS_NAME).write_bytes(PAYLOAD)
    return root


@pytest.fixture
def server_url(http_root, monkeypatch):
    """Base URL of a loopback HTTP server serving ``http_root``; shut down after the test."""
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "*")
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(http_root))
    )
    # a short poll interval: shutdown() waits for one poll
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def unreachable_url() -> str:
    """A loopback URL nothing listens on (the port was free a moment ago)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/{DEFAULT_WEIGHTS_NAME}"


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch, unreachable_url):
    """No test sees the real weights/ folder, the real cache or the internet."""
    repo = tmp_path / "repo_weights"
    cache = tmp_path / "cache"
    monkeypatch.setattr(weights, "REPO_WEIGHTS_DIR", repo)
    monkeypatch.setenv(weights.CACHE_ENV_VAR, str(cache))
    monkeypatch.setattr(weights, "DEFAULT_DOWNLOAD", dataclasses.replace(weights.DEFAULT_DOWNLOAD, url=unreachable_url))
    return repo, cache


# --------------------------------------------------------------------------------------------
# Specs
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "file_name, spec_name",
    [
        # Meso-4 trained on the Deepfake set
        ("Meso4_DF.h5", "mesonet-meso4-df"),
        # Meso-4 trained on Face2Face
        ("Meso4_F2F.h5", "mesonet-meso4-f2f"),
    ],
)
def test_known_mesonet_weights_are_recognised_by_sha256(shared_data, file_name, spec_name):
    path = shared_data / "weights" / "mesonet" / file_name
    assert not sidecar_path(path).exists()  # recognised by content, not by a sidecar
    spec = spec_for_weights(path)
    assert spec.name == spec_name
    # Keras sorted the class folders df < real: the sigmoid is P(real)
    assert spec.output == "p_real"
    assert spec.sha256 == sha256_file(path)
    assert spec.url.endswith("/" + file_name)
    assert (spec.architecture, spec.input_size_px, spec.color_order, spec.input_scale) == ("meso4", 256, "rgb", "x/255")


def test_mesoinception_files_are_known_by_sha256(shared_data):
    for file_name, name in (
        ("MesoInception_DF.h5", "mesonet-mesoinception4-df"),
        ("MesoInception_F2F.h5", "mesonet-mesoinception4-f2f"),
    ):
        spec = spec_for_weights(shared_data / "weights" / "mesonet" / file_name)
        assert (spec.name, spec.architecture, spec.output) == (name, "mesoinception4", "p_real")


def test_known_weights_table_is_keyed_by_its_own_sha256():
    assert all(key == spec.sha256 and len(key) == 64 for key, spec in KNOWN_WEIGHTS.items())
    # the default download is the known DF file, saved under the name it is looked up by
    assert KNOWN_WEIGHTS[ORIGINAL_DEFAULT_DOWNLOAD.sha256].name == "mesonet-meso4-df"
    assert ORIGINAL_DEFAULT_DOWNLOAD.url.endswith("/" + DEFAULT_WEIGHTS_NAME)


@pytest.mark.parametrize(
    "file_name",
    [
        # not weights at all
        "NOTICE.MesoNet",
    ],
)
def test_unknown_weights_without_sidecar(shared_data, file_name):
    path = shared_data / "weights" / "mesonet" / file_name
    with pytest.raises(WeightsError, match=r"unknown weights .*no spec sidecar " + file_name + r"\.json"):
        spec_for_weights(path)


def test_sidecar_makes_weights_known(tmp_path):
    path = tmp_path / "finetuned.h5"
    path.write_bytes(PAYLOAD)
    spec = _spec(threshold=0.7, provenance="fine-tuned on our own clips", url=None)
    sidecar_path(path).write_text(spec.to_json())
    assert sidecar_path(path).name == "finetuned.h5.json"
    assert spec_for_weights(path) == spec


def test_sidecar_ignores_unknown_fields(tmp_path):
    path = tmp_path / "finetuned.h5"
    path.write_bytes(PAYLOAD)
    fields = json.loads(_spec().to_json()) | {"trained_on": "2024 clips"}
    sidecar_path(path).write_text(json.dumps(fields))
    assert spec_for_weights(path) == _spec()


def test_sidecar_sha256_mismatch(tmp_path):
    path = tmp_path / "finetuned.h5"
    path.write_bytes(PAYLOAD + b"changed after the sidecar was written")
    sidecar_path(path).write_text(_spec().to_json())
    with pytest.raises(WeightsError, match="does not match its sidecar"):
        spec_for_weights(path)


@pytest.mark.parametrize(
    "sidecar_text, match",
    [
        # not JSON
        ("{not json", "invalid spec sidecar"),
        # JSON, but an output meaning that does not exist
        (_spec(output="p_fake").to_json().replace('"p_fake"', '"probability"'), "invalid spec sidecar.*output must be"),
        # a required field missing
        (json.dumps({"name": "x", "architecture": "meso4", "output": "p_fake"}), "invalid spec sidecar.*sha256"),
        # a field of the wrong type
        (_spec().to_json().replace('"threshold": 0.5', '"threshold": "high"'), "invalid spec sidecar"),
        # valid JSON that is not an object: AttributeError (`list.items`) escapes
        pytest.param("[1, 2]", "invalid spec sidecar"),
    ],
)
def test_invalid_sidecar(tmp_path, sidecar_text, match):
    path = tmp_path / "finetuned.h5"
    path.write_bytes(PAYLOAD)
    sidecar_path(path).write_text(sidecar_text)
    with pytest.raises(WeightsError, match=match):
        spec_for_weights(path)


def test_spec_for_missing_weights(tmp_path):
    with pytest.raises(WeightsError, match="cannot read weights"):
        spec_for_weights(tmp_path / "missing.h5")


@pytest.mark.parametrize(
    "overrides, match",
    [
        # output must say which class the sigmoid is
        (dict(output="fake"), r"output must be one of \('p_real', 'p_fake'\), got 'fake'"),
        # only the architectures of pipeline.models.registry
        (
            dict(architecture="xception"),
            r"architecture must be one of \('effnet-lite0-head', 'ensemble', 'meso4', 'mesoinception4'\), "
            r"got 'xception'",
        ),
        # BGR input is not supported
        (dict(color_order="bgr"), r"input must be rgb scaled one of \('x/255', '\(x-127\)/128'\), got bgr"),
        # [-1, 1] scaling is not one of the two (MesoNet's x/255, EfficientNet-Lite's (x - 127) / 128)
        (dict(input_scale="x/127.5-1"), r"input must be rgb scaled one of .*, got rgb, x/127.5-1"),
        # threshold 0 would call everything fake
        (dict(threshold=0.0), r"threshold must be in \(0, 1\), got 0.0"),
        # threshold 1 would call nothing fake
        (dict(threshold=1.0), r"threshold must be in \(0, 1\), got 1.0"),
        # NaN threshold
        (dict(threshold=float("nan")), r"threshold must be in \(0, 1\), got nan"),
    ],
)
def test_weights_spec_validates(overrides, match):
    with pytest.raises(ValueError, match=match):
        _spec(**overrides)


def test_weights_spec_json_round_trip():
    spec = _spec(url="https://example.invalid/w.h5", license="Apache-2.0")
    assert WeightsSpec(**json.loads(spec.to_json())) == spec


RANGE = {"sharpness": [3.0, 300.0], "face_px": [80, 540.5]}


def test_validated_range_is_held_in_measure_order_and_round_trips(tmp_path):
    spec = _spec(validated_range=RANGE, validated_range_source="on 10 faces")
    assert spec.validated_range == (("face_px", (80.0, 540.5)), ("sharpness", (3.0, 300.0)))  # field order
    assert dict(spec.validated_range)["face_px"] == (80.0, 540.5)
    assert hash(spec) == hash(_spec(validated_range=dict(spec.validated_range), validated_range_source="on 10 faces"))
    assert json.loads(spec.to_json())["validated_range"] == {"face_px": [80.0, 540.5], "sharpness": [3.0, 300.0]}
    assert WeightsSpec(**json.loads(spec.to_json())) == spec
    path = tmp_path / "finetuned.h5"
    path.write_bytes(PAYLOAD)
    sidecar_path(path).write_text(spec.to_json())
    assert spec_for_weights(path) == spec


@pytest.mark.parametrize("unknown", [None, {}, ()])
def test_validated_range_may_be_unknown(unknown):
    assert _spec(validated_range=unknown).validated_range == ()
    assert all(not spec.validated_range for spec in KNOWN_WEIGHTS.values())  # MesoNet's files: never measured


@pytest.mark.parametrize(
    "validated_range, match",
    [
        # a measure FaceQuality does not have
        ({"contrast": [0, 1]}, r"unknown measures \['contrast'\]"),
        # low above high
        ({"brightness": [200, 20]}, r"brightness: low 200 > high 20"),
        # one bound only
        ({"brightness": [20]}, r"brightness: expected \[low, high\]"),
        # not a pair at all
        ({"brightness": 20}, r"brightness: expected \[low, high\]"),
        # a bound that is not a number, or not finite
        ({"brightness": ["dark", 200]}, "finite numbers"),
        ({"noise_sigma": [0, float("nan")]}, "finite numbers"),
        ({"noise_sigma": [0, float("inf")]}, "finite numbers"),
    ],
)
def test_validated_range_is_checked(tmp_path, validated_range, match):
    with pytest.raises(ValueError, match=match):
        _spec(validated_range=validated_range)
    path = tmp_path / "finetuned.h5"  # and through a sidecar: a WeightsError naming it
    path.write_bytes(PAYLOAD)
    fields = json.loads(_spec().to_json()) | {"validated_range": validated_range}
    sidecar_path(path).write_text(json.dumps(fields))
    with pytest.raises(WeightsError, match="invalid spec sidecar.*validated_range"):
        spec_for_weights(path)


def test_shipped_default_spec_carries_a_validated_range():
    from pipeline.faces.quality import QUALITY_MEASURES

    spec = spec_for_weights(Path(__file__).resolve().parents[2] / "weights" / REPO_DEFAULT_NAME)
    assert spec.name == "lite0_mix_v1"
    assert [name for name, _ in spec.validated_range] == list(QUALITY_MEASURES)
    bounds = dict(spec.validated_range)
    assert bounds["face_px"][0] > 60  # a 40-60 px face of a screen-recorded call is outside
    assert 0 < bounds["brightness"][0] < bounds["brightness"][1] < 255
    assert "faces" in spec.validated_range_source and "dfdc" in spec.validated_range_source


# --------------------------------------------------------------------------------------------
# resolve_weights
# --------------------------------------------------------------------------------------------


def test_resolve_explicit_path(tmp_path):
    explicit = tmp_path / "elsewhere" / "mine.h5"
    explicit.parent.mkdir()
    explicit.write_bytes(PAYLOAD)
    (weights.REPO_WEIGHTS_DIR).mkdir()
    (weights.REPO_WEIGHTS_DIR / REPO_DEFAULT_NAME).write_bytes(PAYLOAD)
    # explicit wins over the repository default
    assert resolve_weights(explicit) == explicit


def test_resolve_explicit_missing_is_not_replaced_by_a_default(tmp_path):
    (weights.REPO_WEIGHTS_DIR).mkdir()
    (weights.REPO_WEIGHTS_DIR / REPO_DEFAULT_NAME).write_bytes(PAYLOAD)
    with pytest.raises(FileNotFoundError, match="weights file not found: .*typo.h5"):
        resolve_weights(tmp_path / "typo.h5")


@pytest.mark.parametrize(
    "in_repo, in_cache, expected",
    [
        # the repository's weights/ comes first
        (True, True, "repo"),
        # then the cache
        (False, True, "cache"),
        # then a download into the cache
        (False, False, "download"),
    ],
)
def test_resolve_order(isolated, monkeypatch, server_url, in_repo, in_cache, expected):
    repo, cache = isolated
    monkeypatch.setattr(weights, "DEFAULT_DOWNLOAD", _spec(url=f"{server_url}/{DEFAULT_WEIGHTS_NAME}"))
    if in_repo:
        repo.mkdir()
        (repo / REPO_DEFAULT_NAME).write_bytes(b"repo copy")
    if in_cache:
        (cache / "weights").mkdir(parents=True)
        (cache / "weights" / DEFAULT_WEIGHTS_NAME).write_bytes(b"cache copy")
    path = resolve_weights()
    expected_path = {"repo": repo, "cache": cache / "weights", "download": cache / "weights"}[expected]
    assert path == expected_path / (REPO_DEFAULT_NAME if expected == "repo" else DEFAULT_WEIGHTS_NAME)
    expected_bytes = {"repo": b"repo copy", "cache": b"cache copy", "download": PAYLOAD}[expected]
    assert path.read_bytes() == expected_bytes
    assert not [n for n in _leftovers(cache) if n.endswith(".part")]


def test_resolve_downloaded_file_is_then_found_in_the_cache(isolated, monkeypatch, server_url, http_root):
    _, cache = isolated
    monkeypatch.setattr(weights, "DEFAULT_DOWNLOAD", _spec(url=f"{server_url}/{DEFAULT_WEIGHTS_NAME}"))
    first = resolve_weights()
    (http_root / DEFAULT_WEIGHTS_NAME).unlink()  # a second download would now 404
    assert resolve_weights() == first == cache / "weights" / DEFAULT_WEIGHTS_NAME


def test_resolve_without_download_lists_every_place(isolated, server_url, monkeypatch):
    repo, cache = isolated
    # a working server is there, but download=False must not use it
    monkeypatch.setattr(weights, "DEFAULT_DOWNLOAD", _spec(url=f"{server_url}/{DEFAULT_WEIGHTS_NAME}"))
    with pytest.raises(FileNotFoundError) as excinfo:
        resolve_weights(download=False)
    message = str(excinfo.value)
    assert str(repo / REPO_DEFAULT_NAME) in message
    assert str(cache / "weights" / DEFAULT_WEIGHTS_NAME) in message
    assert "--weights" in message
    assert server_url not in message
    assert _leftovers(cache) == []


def test_resolve_with_unreachable_download_lists_every_place(isolated, unreachable_url):
    repo, cache = isolated
    with pytest.raises(FileNotFoundError) as excinfo:
        resolve_weights(download=True)
    message = str(excinfo.value)
    assert str(repo / REPO_DEFAULT_NAME) in message
    assert str(cache / "weights" / DEFAULT_WEIGHTS_NAME) in message
    assert unreachable_url in message and "refused" in message.lower()
    assert not (cache / "weights" / DEFAULT_WEIGHTS_NAME).exists()
    assert _leftovers(cache / "weights") == []


def test_resolve_with_corrupt_download_lists_the_checksum_failure(isolated, monkeypatch, server_url):
    _, cache = isolated
    monkeypatch.setattr(weights, "DEFAULT_DOWNLOAD", _spec(sha256="0" * 64, url=f"{server_url}/{DEFAULT_WEIGHTS_NAME}"))
    with pytest.raises(FileNotFoundError, match="has sha256 .* expected 0000"):
        resolve_weights()
    assert _leftovers(cache / "weights") == []


def test_cache_dir_falls_back_to_xdg(monkeypatch, tmp_path):
    monkeypatch.delenv(weights.CACHE_ENV_VAR)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert weights.cache_dir() == tmp_path / "xdg" / "deepfake-scanner"


# --------------------------------------------------------------------------------------------
# fetch_weights against a loopback server
# --------------------------------------------------------------------------------------------


def test_fetch_weights_good_download(tmp_path, server_url):
    target = tmp_path / "dl" / "nested" / "w.h5"  # parents are created
    result = fetch_weights(f"{server_url}/{DEFAULT_WEIGHTS_NAME}", target, PAYLOAD_SHA256, timeout_s=10)
    assert result == target
    assert target.read_bytes() == PAYLOAD
    assert _leftovers(target.parent) == ["w.h5"]


def test_fetch_weights_sha256_mismatch_leaves_nothing(tmp_path, server_url):
    target = tmp_path / "dl" / "w.h5"
    with pytest.raises(WeightsError, match="has sha256 .*expected ffff"):
        fetch_weights(f"{server_url}/{DEFAULT_WEIGHTS_NAME}", target, "f" * 64, timeout_s=10)
    assert not target.exists()
    assert _leftovers(target.parent) == []


def test_fetch_weights_bad_download_keeps_an_existing_good_file(tmp_path, server_url):
    target = tmp_path / "w.h5"
    target.write_bytes(b"the good file already here")
    with pytest.raises(WeightsError):
        fetch_weights(f"{server_url}/{DEFAULT_WEIGHTS_NAME}", target, "f" * 64, timeout_s=10)
    assert target.read_bytes() == b"the good file already here"
    assert not list(tmp_path.glob("*.part"))


@pytest.mark.parametrize(
    "where, error",
    [
        # the server answers 404
        ("missing_file", urllib.error.HTTPError),
        # the connection drops mid-body: the short file fails its sha256
        ("truncated", WeightsError),
        # nothing listens
        ("closed_port", urllib.error.URLError),
    ],
)
def test_fetch_weights_failure_leaves_nothing(tmp_path, server_url, unreachable_url, where, error):
    url = {
        "missing_file": f"{server_url}/no_such_file.h5",
        "closed_port": unreachable_url,
        "truncated": f"{server_url}/truncated/{DEFAULT_WEIGHTS_NAME}",
    }[where]
    target = tmp_path / "dl" / "w.h5"
    with pytest.raises(error) as excinfo:
        fetch_weights(url, target, PAYLOAD_SHA256, timeout_s=10)
    # resolve_weights catches OSError and WeightsError
    assert isinstance(excinfo.value, (OSError, WeightsError))
    if error is urllib.error.HTTPError:
        assert excinfo.value.code == 404
    assert not target.exists()
    assert _leftovers(target.parent) == []


def test_models_are_selectable_by_name(tmp_path, monkeypatch, shared_data):
    from pipeline.models.weights import model_names, resolve_weights

    weights.REPO_WEIGHTS_DIR.mkdir()  # the autouse fixture points it at an empty folder
    own = weights.REPO_WEIGHTS_DIR / "meso4_scanner_v1.h5"
    own.write_bytes(PAYLOAD)
    sidecar_path(own).write_text(_spec(name="meso4_scanner_v1").to_json())
    assert resolve_weights("meso4_scanner_v1") == own
    assert "meso4_scanner_v1" in model_names() and "mesonet-meso4-df" in model_names()
    # a known MesoNet file by name: from the cache when it is there (sha256-checked), never downloaded here
    monkeypatch.setenv("DEEPFAKE_SCANNER_CACHE", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="downloads are off"):
        resolve_weights("mesonet-mesoinception4-df", download=False)
    (tmp_path / "weights").mkdir()
    (tmp_path / "weights" / "MesoInception_DF.h5").write_bytes(
        (shared_data / "weights" / "mesonet" / "MesoInception_DF.h5").read_bytes()
    )
    assert resolve_weights("mesonet-mesoinception4-df", download=False).name == "MesoInception_DF.h5"
    with pytest.raises(FileNotFoundError, match="models: .*meso4_scanner_v1"):
        resolve_weights("no_such_model")


def test_unknown_weights_name_the_files_that_are_supported(tmp_path):
    path = tmp_path / "Meso4_custom.h5"
    path.write_bytes(b"not MesoNet's")
    with pytest.raises(WeightsError) as excinfo:
        spec_for_weights(path)
    message = str(excinfo.value)
    for known in ("Meso4_DF.h5", "Meso4_F2F.h5", "MesoInception_DF.h5", "MesoInception_F2F.h5"):
        assert known in message
    assert "Meso4_custom.h5.json" in message  # and the way to make it known


@pytest.mark.parametrize(
    "files, listed",
    [
        (["Meso4_DF.h5", "b.ensemble.json", "notes.txt"], "weights files in it: Meso4_DF.h5, b.ensemble.json"),
        ([], ""),  # an empty folder lists nothing
    ],
)
def test_a_directory_given_as_weights_says_it_is_one(tmp_path, files, listed):
    folder = tmp_path / "mesonet"
    folder.mkdir()
    for name in files:
        (folder / name).write_bytes(b"x")
    with pytest.raises(FileNotFoundError, match=r"is a directory: give one weights file") as excinfo:
        resolve_weights(str(folder))
    assert listed in str(excinfo.value)
    assert "notes.txt" not in str(excinfo.value)


def test_a_weights_spec_is_worked_out_once_per_file_until_the_file_changes(tmp_path, monkeypatch):
    import shutil

    from pipeline.models import weights

    source = Path(__file__).resolve().parents[2] / "weights" / "meso4_scanner_v1.h5"
    copy = tmp_path / "scanner.h5"
    shutil.copyfile(source, copy)
    shutil.copyfile(str(source) + ".json", str(copy) + ".json")
    hashed = []
    real = weights.sha256_file
    monkeypatch.setattr(weights, "sha256_file", lambda p: hashed.append(p) or real(p))
    first = weights.spec_for_weights(copy)
    assert weights.spec_for_weights(copy) is first and weights.spec_for_weights(str(copy)) is first
    assert len(hashed) == 1  # the command line, the rows' provenance and the model load of a run: one hash
    with open(copy, "ab") as f:  # the file changed: its spec is worked out again (and no longer matches)
        f.write(b"\0")
    with pytest.raises(weights.WeightsError, match="does not match its sidecar"):
        weights.spec_for_weights(copy)
    assert len(hashed) == 2
