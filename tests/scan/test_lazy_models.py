"""pipeline/scan/engines/local.py and pool.py: the models are loaded only once a clip that opens
is due. A batch of only unreadable files (each fails its probe: a ``decode_error`` row) loads no
model, in this process or in a worker process, and its rows are those a batch with the models
loaded writes."""

from __future__ import annotations

import csv
import time
from pathlib import Path

import pytest

from pipeline.faces.detect import DetectorConfig
from pipeline.models import factory
from pipeline.models.factory import LoadedModels, ModelSpec, resolve_model
from pipeline.scan import batch
from pipeline.scan.analyze import ScanConfig
from pipeline.scan.engines import local, pool
from tests.helpers import make_lavfi_clip, run_python, write_tiny_head
from tests.scan.test_prefetch import CentreDetector, NamedStubScorer, fake_models

SMALL = ScanConfig(fps=2, max_frames=8)
# the stand-in detector's settings, so that a spec and the stand-in models stamp the same rows
STUB_DETECTOR = DetectorConfig(full_frame_every_s=0.0)


@pytest.fixture(scope="module")
def broken_dir(tmp_path_factory) -> Path:
    """Three text files named as clips: each fails its probe."""
    root = tmp_path_factory.mktemp("broken")
    for name in ("a", "b", "c"):
        (root / f"{name}.mp4").write_text("not a video\n", encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def good_clip(tmp_path_factory) -> Path:
    return make_lavfi_clip(tmp_path_factory.mktemp("good") / "good.mp4", size="160x120", rate=10, duration_s=1.0)


@pytest.fixture(scope="module")
def unloadable(tmp_path_factory) -> ModelSpec:
    """A model whose spec resolves without TensorFlow (the rows' stamp) but whose loading fails
    (its backbone file is missing): any load, in this process or in a worker, shows."""
    weights = write_tiny_head(tmp_path_factory.mktemp("weights"), backbone="/nonexistent/backbone.onnx")
    return ModelSpec(weights=str(weights), download=False, detector=STUB_DETECTOR)


@pytest.fixture
def loads(monkeypatch) -> list:
    """Each call of :func:`pipeline.models.factory.load_models` (stand-in models, no TensorFlow),
    recorded with the time it was made."""
    calls: list[float] = []

    def fake_load(spec, **kwargs):
        calls.append(time.monotonic())
        return fake_models()

    monkeypatch.setattr(factory, "load_models", fake_load)
    monkeypatch.setattr(batch, "load_models", fake_load)
    return calls


def stand_in_models(spec: ModelSpec) -> LoadedModels:
    """Stand-in models whose scorer carries the spec of ``spec``'s weights (name, sha256): rows
    stamped as a run of ``spec`` (with ``STUB_DETECTOR``) stamps them."""
    weights_path, weights_spec = resolve_model(spec)

    class Scorer(NamedStubScorer):
        spec = weights_spec
        name = weights_spec.name

    return LoadedModels(CentreDetector(), Scorer(), weights_path, threshold=0.5)


def _rows(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as f:
        return [{k: v for k, v in row.items() if k != "elapsed_s"} for row in csv.DictReader(f)]


@pytest.mark.parametrize("workers", [1, 2])  # this process; a pool of worker processes
def test_only_broken_files_load_no_model_and_write_the_rows_a_loaded_run_writes(
    broken_dir, tmp_path, unloadable, workers
):
    paths = sorted(str(p) for p in broken_dir.iterdir())
    lazy, loaded = tmp_path / "lazy.csv", tmp_path / "loaded.csv"
    # a load would raise here (workers=1) or make error rows (a worker's failure): neither happens
    summary = batch.run_batch(paths, lazy, config=SMALL, models=unloadable, workers=workers)
    assert summary.status_counts == {"decode_error": 3}
    batch.run_batch(paths, loaded, config=SMALL, models=stand_in_models(unloadable))
    rows = sorted(_rows(lazy), key=lambda r: r["video_path"])  # a pool writes them as they finish
    assert rows == _rows(loaded)  # the same rows, to the model stamped and the error worded
    assert [r["status"] for r in rows] == ["decode_error"] * 3
    assert all(r["model"] == "tiny_head" and "not a readable video" in r["error"] for r in rows)


def test_the_models_load_once_the_first_clip_that_opens_is_due(broken_dir, good_clip, loads, monkeypatch):
    made: list[float] = []
    real = local._score_here

    def spy(path, *args, **kwargs):
        result = real(path, *args, **kwargs)
        made.append(time.monotonic())
        return result

    monkeypatch.setattr(local, "_score_here", spy)
    paths = [str(broken_dir / "a.mp4"), str(good_clip), str(broken_dir / "b.mp4"), str(good_clip)]
    rows = [r.row for r in local._results_here(paths, ModelSpec(), SMALL, False, False)]
    assert [r.status for r in rows] == ["decode_error", "ok", "decode_error", "ok"]
    assert len(loads) == 1  # once, for the good clip ...
    assert made[0] < loads[0] < made[1]  # ... after the broken clip's row was made


def test_a_worker_loads_its_models_when_its_first_clip_that_opens_comes(broken_dir, good_clip, loads):
    """The worker-pool path, run in this process: the initializer loads nothing, a broken clip
    gets its row without a model, the first good clip loads the models, the next reuses them."""
    pool._init_worker(ModelSpec(), SMALL)
    try:
        assert pool._score_in_worker(str(broken_dir / "a.mp4")).row.status == "decode_error"
        assert loads == []
        assert pool._score_in_worker(str(good_clip)).row.status == "ok"
        assert pool._score_in_worker(str(good_clip)).row.status == "ok"
        assert pool._score_in_worker(str(broken_dir / "b.mp4")).row.status == "decode_error"
        assert len(loads) == 1
    finally:
        pool._WORKER_STATE.clear()


def test_the_time_budget_of_a_worker_clip_starts_after_its_models_load(good_clip, monkeypatch):
    """The models load after the clip is opened: loading them is not counted against the clip's
    ``--timeout``."""

    def slow_load(spec, **kwargs):
        time.sleep(2.0)
        return fake_models()

    monkeypatch.setattr(factory, "load_models", slow_load)
    pool._init_worker(ModelSpec(), ScanConfig(fps=2, max_frames=8, timeout_s=1.5))
    try:
        row = pool._score_in_worker(str(good_clip)).row
    finally:
        pool._WORKER_STATE.clear()
    assert row.status == "ok", row.error


SCORE_BROKEN = """
import sys
from pipeline.cli.score import main
rc = main([sys.argv[1], "-o", sys.argv[2], "-q"])
heavy = sorted(m for m in ("tensorflow", "keras", "mtcnn", "onnxruntime") if m in sys.modules)
print(rc, ",".join(heavy) or "none")
"""


def test_the_command_on_a_folder_of_broken_files_imports_no_model_library(broken_dir, tmp_path):
    out = tmp_path / "scores.csv"
    code = f"import sys; sys.argv = ['x', {str(broken_dir)!r}, {str(out)!r}]\n" + SCORE_BROKEN
    proc = run_python(code, timeout_s=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["0", "none"], proc.stdout + proc.stderr
    assert [r["status"] for r in _rows(out)] == ["decode_error"] * 3
