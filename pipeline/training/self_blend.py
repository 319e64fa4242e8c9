"""Self-blended fakes from real faces (after Shiohara & Yamasaki, "Detecting Deepfakes with Self-Blended
Images", CVPR 2022), written from the paper's description: a real face is blended with a slightly changed copy of
itself inside a jittered mask of its landmark hull. The fake shares its real face's identity, lighting and camera,
so the only cue left is the blending itself: the boundary, the colour mismatch and the resampling that every
face-swap pipeline leaves.

Per face (:func:`self_blend`), each choice drawn from the face's own seed:

1. **Source**: the face itself, colour-shifted (hue, saturation, value, brightness, contrast), optionally
   blurred or sharpened, then scaled (0.94-1.06) and shifted (up to 3 % of the side).
2. **Mask**: the convex hull of dlib's 68 landmarks (``shape_predictor_68_face_landmarks.dat`` of the
   ``face_recognition_models`` package) or of the inner face (brows, eyes, nose, mouth: a mouth-and-eyes
   reenactment), deformed by random elastic displacement, dilated or eroded, blurred (soft edge), and
   multiplied by a blend ratio drawn from (0.25, 0.5, 0.75, 1, 1, 1).
3. **Blend**: ``source * mask + face * (1 - mask)``.

:func:`build_self_blended` writes a face set from a manifest of real faces: one blended face per real one, framed
at the model's margin, in the real face's own split group (a real face and its self-blend never straddle train and
validation), with a manifest ``file,label,source_video,split,origin``.
"""

from __future__ import annotations

import csv
import hashlib
import logging
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

LANDMARK_MODEL = "shape_predictor_68_face_landmarks.dat"
# 68-point indices (iBUG 300-W): jaw 0-16, brows 17-26, nose 27-35, eyes 36-47, mouth 48-67.
INNER_FACE = tuple(range(17, 68))
BLEND_RATIOS = (0.25, 0.5, 0.75, 1.0, 1.0, 1.0)


def load_landmarker():
    """dlib's 68-point shape predictor from the ``face_recognition_models`` package."""
    import dlib

    from pipeline.faces.identity import models_dir

    return dlib.shape_predictor(str(models_dir() / LANDMARK_MODEL))


def landmarks68(rgb: np.ndarray, predictor, box_fraction: float = 0.9) -> np.ndarray:
    """The 68 landmarks, float32 (68, 2) in pixels, of the face that fills a crop: dlib is given the centred
    square of ``box_fraction`` of the side as the face box (face crops are framed around their face)."""
    import dlib

    h, w = rgb.shape[:2]
    side = box_fraction * min(h, w)
    x1, y1 = round((w - side) / 2), round((h - side) / 2)
    shape = predictor(np.ascontiguousarray(rgb), dlib.rectangle(x1, y1, round(x1 + side), round(y1 + side)))
    return np.array([(shape.part(k).x, shape.part(k).y) for k in range(68)], dtype=np.float32)


def _colour_shift(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    import cv2

    hsv = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV).astype(np.float32)
    hsv[..., 0] = (hsv[..., 0] + rng.uniform(-8, 8)) % 180
    hsv[..., 1] *= rng.uniform(0.8, 1.2)
    hsv[..., 2] *= rng.uniform(0.85, 1.15)
    out = cv2.cvtColor(np.clip(hsv, 0, 255).astype(np.uint8), cv2.COLOR_HSV2RGB).astype(np.float32)
    out = (out - out.mean()) * rng.uniform(0.85, 1.15) + out.mean() + rng.uniform(-12, 12)
    return np.clip(out, 0, 255).astype(np.uint8)


def _source(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    import cv2

    out = _colour_shift(rgb, rng)
    kind = rng.integers(0, 3)
    if kind == 1:
        out = cv2.GaussianBlur(out, (0, 0), rng.uniform(0.5, 1.5))
    elif kind == 2:
        soft = cv2.GaussianBlur(out, (0, 0), 1.0)
        out = np.clip(out.astype(np.float32) * 1.6 - soft.astype(np.float32) * 0.6, 0, 255).astype(np.uint8)
    h, w = out.shape[:2]
    scale = rng.uniform(0.94, 1.06)
    shift = rng.uniform(-0.03, 0.03, 2) * np.array([w, h])
    matrix = cv2.getRotationMatrix2D((w / 2, h / 2), 0.0, scale)
    matrix[:, 2] += shift
    return cv2.warpAffine(out, matrix, (w, h), borderMode=cv2.BORDER_REFLECT)


def _mask(shape: tuple[int, int], points: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    import cv2

    h, w = shape
    chosen = points if rng.random() < 0.6 else points[list(INNER_FACE)]
    hull = cv2.convexHull(chosen.astype(np.int32))
    mask: np.ndarray = np.zeros((h, w), np.float32)
    cv2.fillConvexPoly(mask, hull, 1.0)
    # elastic deformation: a smooth random displacement field
    sigma = max(2.0, 0.06 * w)
    amplitude = rng.uniform(0.0, 0.04) * w

    def field() -> np.ndarray:
        smooth = cv2.GaussianBlur(rng.uniform(-1, 1, (h, w)).astype(np.float32), (0, 0), sigma)
        return smooth / max(1e-6, float(np.abs(smooth).max())) * amplitude

    dx, dy = field(), field()
    grid_x, grid_y = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    mask = cv2.remap(mask, grid_x + dx, grid_y + dy, cv2.INTER_LINEAR)
    k = int(rng.integers(1, max(2, w // 20)))
    kernel = np.ones((k, k), np.uint8)
    mask = cv2.erode(mask, kernel) if rng.random() < 0.5 else cv2.dilate(mask, kernel)
    mask = cv2.GaussianBlur(mask, (0, 0), rng.uniform(0.01, 0.06) * w)
    if mask.max() > 0:
        np.divide(mask, mask.max(), out=mask)
    return np.clip(mask * float(rng.choice(BLEND_RATIOS)), 0.0, 1.0)


def self_blend(rgb: np.ndarray, points: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A self-blended fake of a uint8 (H, W, 3) RGB face with its (68, 2) landmarks: (uint8 (H, W, 3) image,
    float32 (H, W) mask in [0, 1], 1 where the changed copy shows)."""
    source = _source(rgb, rng)
    mask = _mask(rgb.shape[:2], points, rng)
    m = mask[..., None]
    out = source.astype(np.float32) * m + rgb.astype(np.float32) * (1.0 - m)
    return np.clip(out + 0.5, 0, 255).astype(np.uint8), mask


def face_seed(key: str, seed: int) -> int:
    return int.from_bytes(hashlib.sha256(f"sbi:{seed}:{key}".encode()).digest()[:8], "little")


def build_self_blended(
    sources: list[tuple[str, Path, float]],
    output_dir: str | Path,
    *,
    crop_margin: float,
    size_px: int = 256,
    seed: int = 0,
    quality: int = 95,
) -> Path:
    """Write one self-blended face per real face of each ``(name, manifest, framing)`` source (a manifest with a
    ``split`` column; ``framing``: its crop margin) into ``output_dir``, framed at ``crop_margin`` and resized to
    ``size_px``, as JPEG of ``quality``; resumes (files already written are kept). Returns the manifest path."""
    from PIL import Image

    from pipeline.training.dataset import load_crop_rgb, load_faces

    out = Path(output_dir)
    (out / "fake").mkdir(parents=True, exist_ok=True)
    predictor = load_landmarker()
    rows = []
    for name, manifest, framing in sources:
        for item in load_faces(manifest):
            if item.label != "real" or item.split not in ("train", "val"):
                continue
            file = f"fake/{name}-{item.source_path.stem}.jpg"
            rows.append([file, "fake", f"{name}:{item.source_video}", item.split, f"{name}/{item.source_path.name}"])
            target = out / file
            if target.is_file():
                continue
            rgb = load_crop_rgb(item.source_path, size_px, "area", min(1.0, crop_margin / framing))
            points = landmarks68(rgb, predictor)
            fake, _ = self_blend(rgb, points, np.random.default_rng(face_seed(file, seed)))
            Image.fromarray(fake).save(target, quality=quality)
        log.info("self-blended %s: %d faces so far", name, len(rows))
    manifest_path = out / "manifest.csv"
    with open(manifest_path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["file", "label", "source_video", "split", "origin"])
        writer.writerows(rows)
    return manifest_path


def main(argv: list[str] | None = None) -> int:
    """``python -m pipeline.training.self_blend -o DIR NAME=MANIFEST:FRAMING ... [--crop-margin 0.93]``."""
    import argparse

    parser = argparse.ArgumentParser(description="Self-blended fakes from the real faces of face sets.")
    parser.add_argument("sources", nargs="+", metavar="NAME=MANIFEST:FRAMING")
    parser.add_argument("-o", "--output", required=True)
    parser.add_argument("--crop-margin", type=float, default=0.93)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    parsed = []
    for text in args.sources:
        name, rest = text.split("=", 1)
        manifest, framing = rest.rsplit(":", 1)
        parsed.append((name, Path(manifest), float(framing)))
    print(build_self_blended(parsed, args.output, crop_margin=args.crop_margin, seed=args.seed))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
