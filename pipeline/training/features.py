"""A cache of backbone features per face and view, so that heads train on 2 cores in minutes.

Running the frozen backbone (:class:`pipeline.models.backbone.OnnxBackbone`) is the only costly step of
training a head; it is done once per face and *view* and kept on disk:

- a **view** is the face framed as the model is (centre crop ``target / source`` margin, resized to the
  backbone's side) and, for views >= 1, changed as videos change faces (:func:`augment_view`: JPEG quality
  30-95, downscale and back, flip, colour, blur, noise, darkening), each draw seeded by the face's file name,
  the view and the cache seed, so a rebuilt cache is the same bit for bit;
- the cache folder's name holds the backbone's sha256 and the framing (``<backbone sha256[:12]>_m0.93``), so a
  cache of another backbone or framing is never mixed in; ``cache.json`` there records the views' settings;
- per source: ``<source>.csv`` (file, label, group, split: the face list, in order) and per view and chunk of
  :data:`CHUNK_FACES` faces ``<source>.v<view>.<chunk>.npy`` (float16, (n, F)). A chunk is written
  atomically when done, so a run stopped by its time budget resumes where it stopped.

Read the cache back with :func:`load_cached`.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
import logging
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from pipeline.atomic import atomic_path
from pipeline.errors import ConfigError

log = logging.getLogger(__name__)

CHUNK_FACES = 1024
CACHE_FORMAT = 1


@dataclasses.dataclass(frozen=True)
class ViewConfig:
    """How augmented views (views >= 1) change a face; each change is applied with its probability.

    ``jpeg_quality``: re-encoding quality range; ``downscale``: side factor range of a shrink and re-enlarge
    (a small face in a large frame); ``colour``: brightness / contrast / saturation spread (multiplicative);
    ``blur_sigma_px``: Gaussian blur range at the backbone's side; ``noise_sigma``: grey levels of Gaussian
    noise; ``darken``: gamma range (> 1 darkens), applied with ``dark_p``.
    """

    jpeg_p: float = 0.8
    jpeg_quality: tuple[int, int] = (30, 95)
    downscale_p: float = 0.4
    downscale: tuple[float, float] = (0.3, 0.8)
    flip_p: float = 0.5
    colour_p: float = 0.5
    colour: float = 0.15
    blur_p: float = 0.25
    blur_sigma_px: tuple[float, float] = (0.5, 1.6)
    noise_p: float = 0.25
    noise_sigma: tuple[float, float] = (2.0, 8.0)
    dark_p: float = 0.2
    darken: tuple[float, float] = (1.3, 2.2)

    def __post_init__(self) -> None:
        for name in ("jpeg_p", "downscale_p", "flip_p", "colour_p", "blur_p", "noise_p", "dark_p"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        q_lo, q_hi = self.jpeg_quality
        if not 1 <= q_lo <= q_hi <= 100:
            raise ConfigError(f"jpeg_quality must be 1 <= lo <= hi <= 100, got {self.jpeg_quality}")
        lo, hi = self.downscale
        if not 0.05 <= lo <= hi <= 1.0:
            raise ConfigError(f"downscale must be 0.05 <= lo <= hi <= 1, got {self.downscale}")


def view_seed(file_key: str, view: int, seed: int) -> int:
    """The seed of one face's view: stable across runs and machines (sha256, not Python's hash)."""
    digest = hashlib.sha256(f"{seed}:{view}:{file_key}".encode()).digest()
    return int.from_bytes(digest[:8], "little")


def augment_view(rgb: np.ndarray, rng: np.random.Generator, config: ViewConfig = ViewConfig()) -> np.ndarray:
    """One augmented view of a uint8 (S, S, 3) RGB face, same shape: the changes of ``config`` in a fixed
    order (geometry and resolution, colour, blur, noise, then JPEG last, as a video encoder comes last)."""
    import cv2

    out = np.ascontiguousarray(rgb)
    side = out.shape[0]
    if rng.random() < config.flip_p:
        out = np.ascontiguousarray(out[:, ::-1])
    if rng.random() < config.downscale_p:
        small = max(8, round(side * rng.uniform(*config.downscale)))
        out = cv2.resize(out, (small, small), interpolation=cv2.INTER_AREA)
        out = cv2.resize(out, (side, side), interpolation=cv2.INTER_LINEAR)
    work = None
    if rng.random() < config.colour_p:
        work = out.astype(np.float32)
        grey = work.mean(axis=2, keepdims=True)
        saturation = 1.0 + rng.uniform(-config.colour, config.colour)
        work = grey + (work - grey) * saturation
        contrast = 1.0 + rng.uniform(-config.colour, config.colour)
        work = (work - work.mean()) * contrast + work.mean() * (1.0 + rng.uniform(-config.colour, config.colour))
    if rng.random() < config.dark_p:
        work = out.astype(np.float32) if work is None else work
        gamma = rng.uniform(*config.darken)
        work = 255.0 * (np.clip(work, 0, 255) / 255.0) ** gamma
    if work is not None:
        out = np.clip(work, 0, 255).astype(np.uint8)
    if rng.random() < config.blur_p:
        out = cv2.GaussianBlur(out, (0, 0), rng.uniform(*config.blur_sigma_px))
    if rng.random() < config.noise_p:
        noise = rng.normal(0.0, rng.uniform(*config.noise_sigma), out.shape)
        out = np.clip(out.astype(np.float32) + noise, 0, 255).astype(np.uint8)
    if rng.random() < config.jpeg_p:
        quality = int(rng.integers(config.jpeg_quality[0], config.jpeg_quality[1] + 1))
        ok, data = cv2.imencode(".jpg", out[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])
        decoded = cv2.imdecode(data, cv2.IMREAD_COLOR) if ok else None
        if decoded is not None:
            out = np.ascontiguousarray(decoded[:, :, ::-1])
    return out


@dataclasses.dataclass(frozen=True)
class CachedFace:
    """One face of the cache's list: its file (as the manifest names it), label, split group and split."""

    file: str
    label: str
    group: str
    split: str

    @property
    def y(self) -> int:
        return 1 if self.label == "fake" else 0


def cache_dir_for(root: str | Path, backbone_sha256: str, crop_margin: float) -> Path:
    """The cache folder of one backbone and framing under ``root``."""
    return Path(root) / f"{backbone_sha256[:12]}_m{crop_margin:.2f}"


def _write_list(path: Path, faces: Sequence[CachedFace]) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["file", "label", "group", "split"])
        for face in faces:
            writer.writerow([face.file, face.label, face.group, face.split])


def _read_list(path: Path) -> list[CachedFace]:
    with open(path, newline="", encoding="utf-8") as f:
        return [CachedFace(r["file"], r["label"], r["group"], r["split"]) for r in csv.DictReader(f)]


def build_cache(
    root: str | Path,
    source: str,
    faces: Sequence[tuple[CachedFace, Path]],
    backbone,
    *,
    source_margin: float,
    crop_margin: float,
    views: int,
    seed: int = 0,
    config: ViewConfig = ViewConfig(),
    deadline: float | None = None,
) -> dict:
    """Compute and store the features of ``faces`` (each with its image path) for views ``0..views-1``.

    ``backbone``: an :class:`pipeline.models.backbone.OnnxBackbone`; ``source_margin`` / ``crop_margin``: the
    set's framing and the model's (crop side / MTCNN box side). Chunks already on disk are kept; stops
    before a chunk that would start after ``deadline`` (``time.monotonic()``). Returns counts and seconds.
    Raises ``ValueError`` if the cache holds another face list under the same source name.
    """
    from pipeline.training.dataset import load_crop_rgb

    folder = cache_dir_for(root, backbone.info.sha256, crop_margin)
    folder.mkdir(parents=True, exist_ok=True)
    meta_path = folder / "cache.json"
    meta = {
        "format": CACHE_FORMAT,
        "backbone": backbone.info.name,
        "backbone_sha256": backbone.info.sha256,
        "crop_margin": crop_margin,
        "seed": seed,
        "views": dataclasses.asdict(config),
    }
    meta = json.loads(json.dumps(meta))  # tuples as JSON lists, as read back
    if meta_path.is_file():
        old = json.loads(meta_path.read_text())
        if {k: old.get(k) for k in meta} != meta:
            raise ValueError(f"{meta_path} was built with other settings: {old}")
    else:
        meta_path.write_text(json.dumps(meta, indent=2, sort_keys=True))
    listed = [face for face, _ in faces]
    list_path = folder / f"{source}.csv"
    if list_path.is_file() and _read_list(list_path) != listed:
        raise ValueError(f"{list_path} lists other faces than asked for; use another cache root or remove it")
    _write_list(list_path, listed)
    fraction = crop_margin / source_margin
    size = backbone.info.input_size_px
    done = computed = 0
    start = time.monotonic()
    for chunk, first in enumerate(range(0, len(faces), CHUNK_FACES)):
        part = faces[first : first + CHUNK_FACES]
        todo = [v for v in range(views) if not (folder / f"{source}.v{v}.{chunk:04d}.npy").is_file()]
        if not todo:
            done += len(part) * views
            continue
        if deadline is not None and time.monotonic() > deadline:
            log.info("%s: time budget reached at chunk %d", source, chunk)
            break
        base = [load_crop_rgb(path, size, "area", min(1.0, fraction)) for _, path in part]
        for v in todo:
            if v == 0:
                crops = np.stack(base)
            else:
                crops = np.stack(
                    [
                        augment_view(rgb, np.random.default_rng(view_seed(face.file, v, seed)), config)
                        for rgb, (face, _) in zip(base, part)
                    ]
                )
            feats = backbone.features(crops).astype(np.float16)
            target = folder / f"{source}.v{v}.{chunk:04d}.npy"
            with atomic_path(target) as tmp, open(tmp, "wb") as f:
                np.save(f, feats)
            computed += len(part)
        done += len(part) * views
        log.info("%s: chunk %d done (%d faces x %d views)", source, chunk, len(part), len(todo))
    return {
        "source": source,
        "faces": len(faces),
        "views_done": done,
        "computed": computed,
        "seconds": round(time.monotonic() - start, 1),
    }


def load_cached(folder: str | Path, source: str, view: int) -> tuple[list[CachedFace], np.ndarray]:
    """The face list and float32 (N, F) features of one source and view. Raises ``FileNotFoundError``
    when a chunk is missing (the cache is incomplete: rebuild it)."""
    folder = Path(folder)
    faces = _read_list(folder / f"{source}.csv")
    n_chunks = (len(faces) + CHUNK_FACES - 1) // CHUNK_FACES
    parts = []
    for chunk in range(n_chunks):
        path = folder / f"{source}.v{view}.{chunk:04d}.npy"
        if not path.is_file():
            raise FileNotFoundError(f"feature cache incomplete: {path} is missing")
        parts.append(np.load(path).astype(np.float32))
    feats = np.concatenate(parts) if parts else np.empty((0, 0), np.float32)
    if len(feats) != len(faces):
        raise ValueError(f"{folder}/{source}: {len(feats)} feature rows for {len(faces)} faces")
    return faces, feats
