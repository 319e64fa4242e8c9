"""pipeline/training/self_blend.py on real faces of ../shared/data: dlib's landmarks, the blend and its mask, and
the face set written from a manifest (one fake per real face, in its split group, resumed)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pipeline.training.dataset import load_faces, load_rgb
from pipeline.training.self_blend import build_self_blended, landmarks68, load_landmarker, self_blend

pytestmark = pytest.mark.shared_data

# (folder under ../shared/data, the framing of its crops)
FACE_SETS = [("dfdc_faces", 0.93), ("faces", 1.11)]


@pytest.fixture(scope="module")
def predictor():
    """dlib's 68-point shape predictor, loaded once."""
    return load_landmarker()


def _first_real(shared_data: Path, folder: str) -> Path:
    return sorted((shared_data / folder / "real").glob("*.jpg"))[0]


@pytest.fixture(scope="module", params=[name for name, _ in FACE_SETS])
def face(request, shared_data, predictor):
    """A real face of each shared face set with its landmarks: (uint8 (H, W, 3), float32 (68, 2))."""
    rgb = load_rgb(_first_real(shared_data, request.param))
    return rgb, landmarks68(rgb, predictor)


def test_landmarks_are_68_points_on_the_face(face):
    rgb, points = face
    h, w = rgb.shape[:2]
    assert points.shape == (68, 2) and points.dtype == np.float32
    # the jaw may leave a tight crop (DFDC's, at 0.93, cuts the chin): allow 10 % of the side
    assert (points >= -0.1 * w).all() and (points[:, 0] <= 1.1 * w).all() and (points[:, 1] <= 1.1 * h).all()
    # eyes and nose lie inside the crop
    inner = points[27:48]
    assert (inner >= 0).all() and (inner[:, 0] < w).all() and (inner[:, 1] < h).all()
    # and in the order of a face: the subject's right eye (36-41) left of the left eye (42-47),
    # the eyes above the nose tip (30), the nose tip above the mouth (48-67)
    right_eye, left_eye = points[36:42].mean(0), points[42:48].mean(0)
    assert right_eye[0] < left_eye[0]
    assert max(right_eye[1], left_eye[1]) < points[30, 1] < points[48:68, 1].mean()


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4, 5])
def test_self_blend_is_repeatable_and_keeps_the_face_outside_its_mask(face, seed):
    rgb, points = face
    fake, mask = self_blend(rgb, points, np.random.default_rng(seed))
    again, mask_again = self_blend(rgb, points, np.random.default_rng(seed))
    np.testing.assert_array_equal(fake, again)
    np.testing.assert_array_equal(mask, mask_again)
    assert fake.dtype == np.uint8 and fake.shape == rgb.shape
    assert mask.dtype == np.float32 and mask.shape == rgb.shape[:2]
    assert mask.min() >= 0.0 and mask.max() <= 1.0
    change = np.abs(fake.astype(np.int16) - rgb.astype(np.int16)).max(axis=2)
    # where the mask is 0 the real face shows as it is (+-1 for rounding)
    assert change[mask == 0].max(initial=0) <= 1
    # where it is nearly 0, nearly so: the change is at most mask * 255 (+1)
    faint = mask < 0.01
    assert faint.any() or (mask > 0).all()
    assert change[faint].max(initial=0) <= 0.01 * 255 + 1
    # and the blend changed the face: the mask is not empty and the pixels under it moved
    assert mask.max() >= 0.25 and change[mask > 0.2].mean() > 1.0


@pytest.mark.parametrize("seed", range(8))
def test_the_mask_covers_the_face_centre(face, seed):
    rgb, points = face
    _, mask = self_blend(rgb, points, np.random.default_rng(seed))
    h, w = mask.shape
    nose_x, nose_y = np.round(points[30]).astype(int)
    # the crop's centre and the nose tip are inside the blended region, near its full strength
    assert mask[h // 2, w // 2] >= 0.5 * mask.max()
    assert mask[nose_y, nose_x] >= 0.5 * mask.max()
    # and the mask is the face, not the frame: a corner of the crop is left alone
    assert min(mask[0, 0], mask[0, -1]) < 0.5 * mask.max()


def test_seeds_give_different_fakes(face):
    rgb, points = face
    a, mask_a = self_blend(rgb, points, np.random.default_rng(0))
    b, mask_b = self_blend(rgb, points, np.random.default_rng(1))
    assert not np.array_equal(a, b) and not np.array_equal(mask_a, mask_b)


def _write_manifest(path: Path, shared_data: Path) -> list[dict]:
    """4 real and 2 fake DFDC faces (absolute paths) with a split column; returns the rows."""
    with open(shared_data / "dfdc_faces" / "faces.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    real = [r for r in rows if r["label"] == "real"][:4]
    fake = [r for r in rows if r["label"] == "fake"][:2]
    chosen = []
    for k, r in enumerate(real + fake):
        split = "val" if k in (1, 4) else "train"  # a real and a fake in each split
        chosen.append(
            {
                "file": str(shared_data / "dfdc_faces" / r["file"]),
                "label": r["label"],
                "source_video": r["source_video"],
                "split": split,
            }
        )
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["file", "label", "source_video", "split"])
        writer.writeheader()
        writer.writerows(chosen)
    return chosen


def _read(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_build_self_blended_writes_one_fake_per_real_face_and_resumes(tmp_path, shared_data, monkeypatch):
    manifest = tmp_path / "dfdc.csv"
    rows = _write_manifest(manifest, shared_data)
    out = tmp_path / "sbi"
    written = build_self_blended([("dfdc", manifest, 0.93)], out, crop_margin=0.93, size_px=128)
    assert written == out / "manifest.csv"
    made = _read(written)
    real = [r for r in rows if r["label"] == "real"]
    # one fake per real face, in the real face's split and group (prefixed by the source), fakes skipped
    assert [(m["label"], m["split"], m["source_video"]) for m in made] == [
        ("fake", r["split"], f"dfdc:{r['source_video']}") for r in real
    ]
    assert [m["origin"] for m in made] == [f"dfdc/{Path(r['file']).name}" for r in real]
    fakes_in = {Path(r["file"]).name for r in rows if r["label"] == "fake"}
    assert not any(m["origin"].split("/", 1)[1] in fakes_in for m in made)
    for m in made:
        with Image.open(out / m["file"]) as image:
            assert image.format == "JPEG" and image.size == (128, 128)
    # the face set loads as a training set does: files next to the manifest, labels and splits kept
    items = load_faces(written)
    assert [i.split for i in items] == [r["split"] for r in real] and {i.label for i in items} == {"fake"}
    assert all(i.source_path.is_file() for i in items)

    # a second run resumes: nothing is blended or written again
    mtimes = {m["file"]: (out / m["file"]).stat().st_mtime_ns for m in made}
    import pipeline.training.self_blend as module

    def refuse(*args, **kwargs):
        raise AssertionError("a face already written was blended again")

    monkeypatch.setattr(module, "self_blend", refuse)
    build_self_blended([("dfdc", manifest, 0.93)], out, crop_margin=0.93, size_px=128)
    assert {f: (out / f).stat().st_mtime_ns for f in mtimes} == mtimes
    assert _read(written) == made

    # a face removed since is written again, and only that one
    monkeypatch.undo()
    gone = made[0]["file"]
    (out / gone).unlink()
    build_self_blended([("dfdc", manifest, 0.93)], out, crop_margin=0.93, size_px=128)
    assert (out / gone).is_file()
    assert {f: (out / f).stat().st_mtime_ns for f in mtimes if f != gone} == {
        f: t for f, t in mtimes.items() if f != gone
    }


def test_the_same_seed_rebuilds_the_same_fakes(tmp_path, shared_data):
    manifest = tmp_path / "dfdc.csv"
    _write_manifest(manifest, shared_data)
    a = build_self_blended([("dfdc", manifest, 0.93)], tmp_path / "a", crop_margin=0.93, size_px=96, seed=3)
    b = build_self_blended([("dfdc", manifest, 0.93)], tmp_path / "b", crop_margin=0.93, size_px=96, seed=3)
    c = build_self_blended([("dfdc", manifest, 0.93)], tmp_path / "c", crop_margin=0.93, size_px=96, seed=4)
    files = [m["file"] for m in _read(a)]
    assert files == [m["file"] for m in _read(b)] == [m["file"] for m in _read(c)]
    assert all((a.parent / f).read_bytes() == (b.parent / f).read_bytes() for f in files)
    assert any((a.parent / f).read_bytes() != (c.parent / f).read_bytes() for f in files)
