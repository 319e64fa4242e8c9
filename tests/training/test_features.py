"""The feature cache: views are repeatable, chunks resume, another face list or setting is refused."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from PIL import Image

from pipeline.training.features import (
    CHUNK_FACES,
    CachedFace,
    ViewConfig,
    augment_view,
    build_cache,
    cache_dir_for,
    load_cached,
    view_seed,
)


@dataclasses.dataclass
class _Info:
    name: str = "test-backbone"
    sha256: str = "ab" * 32
    input_size_px: int = 32
    n_features: int = 3


class _MeanColourBackbone:
    """Our own stand-in for the ONNX trunk (a unit test of the cache's logic): features = mean RGB."""

    def __init__(self):
        self.info = _Info()
        self.calls = 0

    def features(self, crops):
        self.calls += 1
        return crops.reshape(len(crops), -1, 3).mean(axis=1).astype(np.float32)


def _faces(tmp_path, n):
    rng = np.random.default_rng(0)
    out = []
    for k in range(n):
        path = tmp_path / "img" / f"{k}.png"
        path.parent.mkdir(exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(path)
        out.append((CachedFace(f"img/{k}.png", "fake" if k % 2 else "real", f"g{k // 4}", "train"), path))
    return out


def test_views_are_repeatable_and_differ_from_the_face():
    rgb = np.random.default_rng(3).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    config = ViewConfig(jpeg_p=1.0, noise_p=1.0)
    a = augment_view(rgb, np.random.default_rng(view_seed("x.jpg", 1, 0)), config)
    b = augment_view(rgb, np.random.default_rng(view_seed("x.jpg", 1, 0)), config)
    c = augment_view(rgb, np.random.default_rng(view_seed("x.jpg", 2, 0)), config)
    assert a.shape == rgb.shape and a.dtype == np.uint8
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, rgb) and not np.array_equal(a, c)


def test_view_config_ranges_are_checked():
    with pytest.raises(ValueError, match="jpeg_p"):
        ViewConfig(jpeg_p=1.5)
    with pytest.raises(ValueError, match="downscale"):
        ViewConfig(downscale=(0.9, 0.5))


def test_cache_builds_loads_and_resumes(tmp_path):
    faces = _faces(tmp_path, 6)
    backbone = _MeanColourBackbone()
    stats = build_cache(tmp_path / "c", "s", faces, backbone, source_margin=1.0, crop_margin=1.0, views=2)
    assert stats["computed"] == 12 and backbone.calls == 2
    folder = cache_dir_for(tmp_path / "c", backbone.info.sha256, 1.0)
    listed, view0 = load_cached(folder, "s", 0)
    assert [f.file for f in listed] == [f.file for f, _ in faces]
    assert view0.shape == (6, 3) and view0.dtype == np.float32
    # view 0 is the face itself, resized: its mean colour
    first = np.asarray(Image.open(faces[0][1]).convert("RGB")).reshape(-1, 3).mean(axis=0)
    np.testing.assert_allclose(view0[0], first, atol=1.0)
    again = build_cache(tmp_path / "c", "s", faces, backbone, source_margin=1.0, crop_margin=1.0, views=2)
    assert again["computed"] == 0 and backbone.calls == 2  # nothing recomputed


def test_cache_stops_at_its_deadline_and_says_what_is_missing(tmp_path):
    faces = _faces(tmp_path, 3)
    backbone = _MeanColourBackbone()
    build_cache(tmp_path / "c", "s", faces, backbone, source_margin=1.0, crop_margin=1.0, views=1, deadline=0.0)
    folder = cache_dir_for(tmp_path / "c", backbone.info.sha256, 1.0)
    with pytest.raises(FileNotFoundError, match="incomplete"):
        load_cached(folder, "s", 0)
    assert CHUNK_FACES > 3


def test_cache_refuses_another_face_list_or_other_settings(tmp_path):
    faces = _faces(tmp_path, 4)
    backbone = _MeanColourBackbone()
    build_cache(tmp_path / "c", "s", faces, backbone, source_margin=1.0, crop_margin=1.0, views=1)
    with pytest.raises(ValueError, match="other faces"):
        build_cache(tmp_path / "c", "s", faces[:2], backbone, source_margin=1.0, crop_margin=1.0, views=1)
    with pytest.raises(ValueError, match="other settings"):
        build_cache(tmp_path / "c", "s", faces, backbone, source_margin=1.0, crop_margin=1.0, views=1, seed=5)
