"""Labelled face crops for training and evaluation: where they are, what they are, how to split them.

Two layouts are read (``load_faces``):

* a folder with one subfolder per class: ``real/`` and ``fake/`` (any case), also the seed
  project's ``Real/`` and ``DeepFake/`` and MesoNet's ``df/``; images are found recursively;
  the source video is unknown (a ``manifest.csv`` or ``faces.csv`` in the folder is read
  instead when there is one: the dataset builder's output is such a folder);
* a manifest CSV ``file,label[,source_video][,split][,...]``, ``file`` relative to the CSV (an
  absolute path is taken as is), ``label`` ``real``/``fake`` (or ``0``/``1``, 1 = fake), other
  columns ignored. ``../shared/data/faces/faces.csv`` is one; the dataset builder writes the
  same columns plus a ``split`` column (``train``/``val``/``test``).

Labels follow the project's polarity everywhere: ``y = 1`` is fake. Frames of one clip are
near-duplicates, so every split here is by source video, never by image.
"""

from __future__ import annotations

import csv
import dataclasses
import logging
import random
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from pipeline.errors import DatasetError

log = logging.getLogger(__name__)

LABEL_NAMES = ("real", "fake")  # index = y: 0 real, 1 fake
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
# class folder names, compared lower-case: the project's own, the seed's (Real/DeepFake), MesoNet's (df)
CLASS_FOLDERS = {"real": "real", "fake": "fake", "deepfake": "fake", "df": "fake"}
LABEL_ALIASES = {"real": "real", "fake": "fake", "deepfake": "fake", "df": "fake", "0": "real", "1": "fake"}
SPLIT_ALIASES = {
    "train": "train",
    "training": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "test": "test",
}
MANIFEST_REQUIRED = ("file", "label")
# manifests looked for inside a DATA folder, in order: the dataset builder's, then the shared faces'
FOLDER_MANIFESTS = ("manifest.csv", "faces.csv")


@dataclasses.dataclass(frozen=True)
class FaceItem:
    """One labelled face crop. ``source_path`` is absolute; ``source_video`` groups frames of one
    clip (``None`` when unknown); ``split`` is the manifest's own split, if it has one."""

    source_path: Path
    label: str
    source_video: str | None = None
    split: str | None = None

    def __post_init__(self) -> None:
        if self.label not in LABEL_NAMES:
            raise ValueError(f"label must be one of {LABEL_NAMES}, got {self.label!r}")
        if self.split is not None and self.split not in SPLIT_ALIASES.values():
            raise ValueError(f"split must be one of {sorted(set(SPLIT_ALIASES.values()))}, got {self.split!r}")

    @property
    def y(self) -> int:
        """1 = fake, 0 = real."""
        return LABEL_NAMES.index(self.label)


def load_faces(data: str | Path, group_column: str = "source_video") -> list[FaceItem]:
    """Every labelled face under ``data`` (a class-folder tree or a manifest CSV), in a stable
    order (manifest order, or sorted paths). ``group_column``: the manifest column whose value
    becomes each face's ``source_video``, the group a split keeps on one side (DFDC's
    ``original_video`` keeps a real clip and the fakes made from it together). Raises
    :class:`DatasetError` naming what is wrong."""
    path = Path(data)
    if path.is_file():
        return _read_manifest(path, group_column)
    if path.is_dir():
        # a manifest beside the class folders wins: it names source videos (and splits)
        for name in FOLDER_MANIFESTS:
            if (path / name).is_file():
                return _read_manifest(path / name)
        return _read_class_folders(path)
    raise DatasetError(f"data not found: {path} (a folder with real/ and fake/ subfolders, or a manifest CSV)")


def _class_folders(root: Path) -> dict[str, list[Path]]:
    folders: dict[str, list[Path]] = defaultdict(list)
    for child in sorted(root.iterdir()):
        if child.is_dir() and child.name.lower() in CLASS_FOLDERS:
            folders[CLASS_FOLDERS[child.name.lower()]].append(child)
    return folders


def _read_class_folders(root: Path) -> list[FaceItem]:
    folders = _class_folders(root)
    if not folders:
        names = sorted(p.name for p in root.iterdir() if p.is_dir())
        raise DatasetError(
            f"{root}: no class subfolder; expected some of {sorted(CLASS_FOLDERS)} (any case), found {names}"
        )
    items = []
    for label in LABEL_NAMES:
        for folder in folders.get(label, []):
            for file in sorted(folder.rglob("*")):
                if file.is_file() and file.suffix.lower() in IMAGE_EXTENSIONS:
                    items.append(FaceItem(file.resolve(), label))
    if not items:
        raise DatasetError(f"{root}: no images ({', '.join(IMAGE_EXTENSIONS)}) in the class subfolders")
    return items


def _read_manifest(csv_path: Path, group_column: str = "source_video") -> list[FaceItem]:
    try:
        return _read_manifest_rows(csv_path, group_column)
    except UnicodeDecodeError:
        raise DatasetError(
            f"{csv_path} is not a manifest CSV (not text): expected a folder with real/ and fake/ subfolders of "
            "face images, or a CSV file,label[,source_video][,split]"
        ) from None


def _read_manifest_rows(csv_path: Path, group_column: str) -> list[FaceItem]:
    base = csv_path.resolve().parent
    items = []
    with open(csv_path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = [c for c in MANIFEST_REQUIRED if c not in (reader.fieldnames or [])]
        if group_column != "source_video" and group_column not in (reader.fieldnames or []):
            missing.append(group_column)
        if missing:
            raise DatasetError(
                f"{csv_path}: missing column(s) {missing}; expected file,label[,source_video][,split], "
                f"found {reader.fieldnames}"
            )
        for line_no, row in enumerate(reader, start=2):
            label = LABEL_ALIASES.get((row["label"] or "").strip().lower())
            if label is None:
                raise DatasetError(
                    f"{csv_path}:{line_no}: label {row['label']!r} is not one of {sorted(LABEL_ALIASES)}"
                )
            split_text = (row.get("split") or "").strip().lower()
            split = SPLIT_ALIASES.get(split_text) if split_text else None
            if split_text and split is None:
                raise DatasetError(
                    f"{csv_path}:{line_no}: split {row['split']!r} is not one of {sorted(SPLIT_ALIASES)}"
                )
            file = Path(row["file"])
            items.append(
                FaceItem(
                    file if file.is_absolute() else base / file,
                    label,
                    (row.get(group_column) or "").strip() or None,
                    split,
                )
            )
    if not items:
        raise DatasetError(f"{csv_path}: no rows")
    return items


def select_split(items: Sequence[FaceItem], split: str) -> list[FaceItem]:
    """The items of one manifest split (``train``/``val``/``test``)."""
    name = SPLIT_ALIASES.get(split.lower())
    if name is None:
        raise DatasetError(f"split must be one of {sorted(SPLIT_ALIASES)}, got {split!r}")
    if not any(item.split for item in items):
        raise DatasetError(f"--split {split}: the data has no split column")
    chosen = [item for item in items if item.split == name]
    if not chosen:
        raise DatasetError(f"no item in split {name!r}; splits present: {sorted({i.split for i in items if i.split})}")
    return chosen


def group_of(item: FaceItem) -> str:
    """The unit a split keeps together: the source video, or the image itself when unknown."""
    return item.source_video if item.source_video is not None else f"image:{item.source_path}"


def split_by_source_video(
    items: Sequence[FaceItem], val_fraction: float, seed: int
) -> tuple[list[FaceItem], list[FaceItem]]:
    """(train, val): whole source groups on one side, stratified by label, deterministic in ``seed``.

    A group is a source video, or any source id that a dataset names (an identity: FF++'s
    original ``NNN`` with every ``NNN_MMM`` made from it, or DFDC's original clip with its fakes).
    Groups that hold both labels (an identity's real and fake clips) are split first, as units,
    shuffled with ``seed`` and taken into validation until about ``val_fraction`` of all images
    are there (at least one such group stays in training). Then, for each label, the groups of
    that label alone are shuffled and taken until that label's images in validation reach about
    ``val_fraction`` (at least one group per label stays in training). Items without a source are
    their own group (a warning says the split cannot prevent leakage then).
    """
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    if any(item.source_video is None for item in items):
        log.warning(
            "some faces have no source_video: they are split one image at a time, so frames of one "
            "clip may land on both sides; use a manifest with a source_video column"
        )
    groups: dict[str, list[FaceItem]] = defaultdict(list)
    for item in items:
        groups[group_of(item)].append(item)
    mixed: list[str] = []
    by_label: dict[str, list[str]] = defaultdict(list)
    for name, members in groups.items():
        labels = {m.label for m in members}
        (mixed if len(labels) > 1 else by_label[members[0].label]).append(name)
    rng = random.Random(seed)
    val_groups = _take_groups(sorted(mixed), groups, val_fraction * len(items), rng)
    in_val = Counter(m.label for name in val_groups for m in groups[name])
    for label in LABEL_NAMES:
        names = sorted(by_label.get(label, []))
        n_label = sum(1 for item in items if item.label == label)
        val_groups |= _take_groups(names, groups, val_fraction * n_label - in_val[label], rng)
    train = [item for item in items if group_of(item) not in val_groups]
    val = [item for item in items if group_of(item) in val_groups]
    return train, val


def _take_groups(names: list[str], groups: dict[str, list[FaceItem]], target: float, rng: random.Random) -> set[str]:
    """Shuffle ``names`` and take groups until about ``target`` images are taken; the last
    group of the list always stays out (training keeps at least one)."""
    rng.shuffle(names)
    taken_names: set[str] = set()
    taken = 0
    for name in names[:-1]:
        if target <= 0 or (taken > 0 and taken + len(groups[name]) / 2 > target):
            break
        taken_names.add(name)
        taken += len(groups[name])
    return taken_names


def check_no_leak(train: Iterable[FaceItem], val: Iterable[FaceItem]) -> None:
    """Raise :class:`DatasetError` if a source video (or an image) is on both sides."""
    shared = {group_of(i) for i in train} & {group_of(i) for i in val}
    if shared:
        raise DatasetError(f"{len(shared)} source video(s) in both training and validation, e.g. {sorted(shared)[:3]}")


def summarize(items: Sequence[FaceItem]) -> dict:
    """Counts for logs and specs: images and source videos per label."""
    out: dict = {"images": len(items)}
    for label in LABEL_NAMES:
        chosen = [i for i in items if i.label == label]
        out[f"{label}_images"] = len(chosen)
        out[f"{label}_videos"] = len({i.source_video for i in chosen if i.source_video is not None})
    return out


def write_manifest(path: str | Path, parts: dict[str, Sequence[FaceItem]]) -> Path:
    """Write ``file,label,source_video,split`` for each named part, ``file`` relative to the CSV,
    so that ``evaluate CSV --split val`` reruns on exactly the same faces."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    base = path.resolve().parent
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["file", "label", "source_video", "split"])
        for split, items in parts.items():
            for item in items:
                rel = Path(relpath_posix(item.source_path, base))
                writer.writerow([rel.as_posix(), item.label, item.source_video or "", split])
    return path


def relpath_posix(target: Path, base: Path) -> str:
    """``target`` relative to ``base``, with forward slashes (absolute when there is no relative
    path, e.g. another drive on Windows)."""
    import os

    try:
        return Path(os.path.relpath(Path(target).resolve(), Path(base).resolve())).as_posix()
    except ValueError:
        return str(target)


def load_rgb(path: str | Path) -> np.ndarray:
    """Decode an image file to uint8 (H, W, 3) RGB with Pillow, as Keras' ``load_img`` does
    (same JPEG decoder, grey and RGBA converted to RGB)."""
    from PIL import Image

    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def load_crop_rgb(path: str | Path, size_px: int, interpolation: str, centre_fraction: float = 1.0) -> np.ndarray:
    """The model input for one face image: its centre ``centre_fraction`` of the side (1: the
    whole image; a face set framed wider than the model is re-framed this way) resized to uint8
    (size_px, size_px, 3) RGB with the shared :func:`pipeline.faces.crop.resize_rgb`."""
    from pipeline.faces.crop import resize_rgb

    rgb = load_rgb(path)
    if centre_fraction < 1.0:
        h, w = rgb.shape[:2]
        side_h, side_w = max(1, round(h * centre_fraction)), max(1, round(w * centre_fraction))
        top, left = (h - side_h) // 2, (w - side_w) // 2
        rgb = rgb[top : top + side_h, left : left + side_w]
    elif centre_fraction > 1.0:
        raise ValueError(f"centre_fraction must be <= 1 (a crop cannot be widened), got {centre_fraction}")
    return resize_rgb(rgb, size_px, interpolation)
