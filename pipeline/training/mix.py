"""Training on several face sets at once: stated mixing weights, per-source framing, splits by source.

A mix is a JSON file::

    {
      "crop_margin": 0.93,
      "sources": [
        {"name": "dfdc", "data": "../shared/data/dfdc_faces/faces.csv", "weight": 0.5,
         "crop_margin": 0.93, "group_column": "original_video"},
        {"name": "ffpp", "data": "/data/ffpp_faces/manifest.csv", "weight": 0.3, "crop_margin": 1.3},
        {"name": "mesonet", "data": "weights/meso4_scanner_v1_train/split.csv", "weight": 0.2,
         "crop_margin": 1.11}
      ]
    }

- ``crop_margin`` (top level): the framing the model is trained for and that its weights spec
  records, so the scanner crops that way: crop side / MTCNN box side.
- per source, ``crop_margin``: the framing of that set's crops, measured the same way (DFDC's
  release: about 0.93, tight; MesoNet's faces: about 1.11; ``extract_faces.py``: 1.3). Each face
  is centre-cropped to ``target / source`` of its side before resizing, so every source reaches
  the model framed alike. A source framed tighter than the target cannot be widened: refused.
- ``weight``: the share of training batches drawn from the source (normalised to sum 1);
  within a source, real and fake faces are drawn equally often (class balance by sampling).
- ``group_column``: the manifest column that names the split group (default ``source_video``).
  DFDC's fakes are made from a real clip: ``original_video`` keeps a real clip and its fakes on
  one side. Relative ``data`` paths are relative to the JSON file.
- Each source is split by its own groups (its manifest's ``split`` column if it has one, else
  :func:`pipeline.training.dataset.split_by_source_video` with the run's seed and fraction), so
  validation parts never share a source with training.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path

from pipeline.errors import ConfigError
from pipeline.settings import setting
from pipeline.training.dataset import DatasetError, FaceItem

# The framings the project knows, for reference (crop side / MTCNN box side, median of 60 faces
# measured with the scanner's MTCNN; see README "Training on several face sets").
DFDC_RELEASE_MARGIN = 0.93
MESONET_FACES_MARGIN = 1.11


@dataclasses.dataclass(frozen=True)
class FaceSource:
    """One face set of a mix (see the module docstring for the fields)."""

    name: str
    data: Path
    weight: float
    crop_margin: float
    group_column: str = "source_video"

    def __post_init__(self) -> None:
        if not self.name or not self.name.replace("_", "").replace("-", "").isalnum():
            raise ConfigError(f"source name must be letters, digits, - or _, got {self.name!r}")
        if not self.weight > 0:
            raise ConfigError(f"source {self.name}: weight must be > 0, got {self.weight}")
        setting("crop_margin").check(self.crop_margin, f"source {self.name}: crop_margin")


@dataclasses.dataclass(frozen=True)
class MixSpec:
    """A mix: the target framing and its sources, weights normalised to sum 1."""

    crop_margin: float
    sources: tuple[FaceSource, ...]

    def __post_init__(self) -> None:
        if not self.sources:
            raise ConfigError("a mix needs at least one source")
        names = [s.name for s in self.sources]
        if len(set(names)) != len(names):
            raise ConfigError(f"source names must be unique, got {names}")
        for source in self.sources:
            if source.crop_margin < self.crop_margin - 1e-9:
                raise ConfigError(
                    f"source {source.name} is framed at {source.crop_margin:g}, tighter than the "
                    f"target {self.crop_margin:g}: its crops cannot be widened"
                )

    @property
    def weights(self) -> dict[str, float]:
        total = sum(s.weight for s in self.sources)
        return {s.name: s.weight / total for s in self.sources}

    def crop_fraction(self, source: FaceSource) -> float:
        """The centre part of a ``source`` crop, as a fraction of its side, that has the target framing."""
        return self.crop_margin / source.crop_margin

    @classmethod
    def from_json(cls, path: str | Path) -> MixSpec:
        """Read a mix file. Raises :class:`DatasetError` naming the problem."""
        path = Path(path)
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            base = path.resolve().parent
            sources = tuple(
                FaceSource(
                    name=s["name"],
                    data=_resolve(base, s["data"]),
                    weight=float(s.get("weight", 1.0)),
                    crop_margin=float(s["crop_margin"]),
                    group_column=s.get("group_column", "source_video"),
                )
                for s in raw["sources"]
            )
            return cls(crop_margin=float(raw["crop_margin"]), sources=sources)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise DatasetError(f"invalid mix file {path}: {type(exc).__name__}: {exc}") from exc

    def to_json(self) -> dict:
        return {
            "crop_margin": self.crop_margin,
            "sources": [
                {
                    "name": s.name,
                    "data": str(s.data),
                    "weight": round(self.weights[s.name], 4),
                    "crop_margin": s.crop_margin,
                    "group_column": s.group_column,
                }
                for s in self.sources
            ],
        }


def _resolve(base: Path, data: str) -> Path:
    path = Path(data).expanduser()
    return path if path.is_absolute() else base / path


def is_mix_file(data: str | Path) -> bool:
    """Whether ``data`` names a mix (a ``.json`` file) rather than one face set."""
    return str(data).lower().endswith(".json")


@dataclasses.dataclass(frozen=True)
class SourceSplit:
    """One source's faces after its split: ``train`` and ``val`` lists of :class:`FaceItem`,
    and how the split was made."""

    source: FaceSource
    train: tuple[FaceItem, ...]
    val: tuple[FaceItem, ...]
    how: str


def split_mix(mix: MixSpec, val_fraction: float, seed: int) -> list[SourceSplit]:
    """Load and split every source (see the module docstring). Raises :class:`DatasetError` when
    a source is missing, empty, or a part lacks a class."""
    from pipeline.training.common import split_items
    from pipeline.training.dataset import load_faces

    out = []
    for source in mix.sources:
        items = load_faces(source.data, group_column=source.group_column)
        try:
            train, val, how = split_items(items, val_fraction, seed)
        except DatasetError as exc:
            raise DatasetError(f"source {source.name}: {exc}") from exc
        out.append(SourceSplit(source, tuple(train), tuple(val), how))
    return out


def tagged(splits: Sequence[SourceSplit], part: str) -> list[tuple[FaceSource, FaceItem]]:
    """Every face of one ``part`` (``train`` or ``val``) with its source, sources in order."""
    return [(s.source, item) for s in splits for item in getattr(s, part)]
