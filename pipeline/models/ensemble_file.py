"""The ensemble file format (``<name>.ensemble.json``, see :mod:`pipeline.models.ensemble`): its
members and the spec it stands for, read without loading any model.

Below :mod:`pipeline.models.weights` (whose :func:`~pipeline.models.weights.spec_for_weights`
gives an ensemble file this spec) and :mod:`pipeline.models.ensemble` (the scorer).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from pipeline.errors import WeightsError
from pipeline.models.spec import WeightsSpec, sha256_file
from pipeline.settings import check

ENSEMBLE_SUFFIX = ".ensemble.json"


def is_ensemble_file(path: str | Path) -> bool:
    return str(path).lower().endswith(ENSEMBLE_SUFFIX)


@dataclasses.dataclass(frozen=True)
class EnsembleMember:
    """One member: its weights file (absolute) and an optional temperature that replaces the
    one in the member's own spec."""

    weights: Path
    temperature: float | None = None

    def __post_init__(self) -> None:
        if self.temperature is not None:
            check("temperature", self.temperature)


def read_ensemble(path: str | Path) -> tuple[dict, tuple[EnsembleMember, ...]]:
    """The ensemble file's fields and its members (paths resolved against the file's folder).
    Raises :class:`WeightsError` for an unreadable file, no members, or a missing member."""
    path = Path(path)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        members = tuple(EnsembleMember(_resolve(path, m["weights"]), m.get("temperature")) for m in raw["members"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise WeightsError(f"invalid ensemble file {path}: {type(exc).__name__}: {exc}") from exc
    if len(members) < 1:
        raise WeightsError(f"ensemble file {path} lists no members")
    for member in members:
        if not member.weights.is_file():
            raise WeightsError(f"ensemble {path}: member weights not found: {member.weights}")
    return raw, members


def _resolve(ensemble_path: Path, weights: str) -> Path:
    candidate = Path(weights).expanduser()
    return candidate if candidate.is_absolute() else ensemble_path.resolve().parent / candidate


def ensemble_spec(path: str | Path, member_specs: list[WeightsSpec]) -> WeightsSpec:
    """The ensemble's own spec: its name and threshold, the members' shared input contract, and
    the sha256 of the ensemble file. Raises :class:`WeightsError` if members disagree on the
    input contract."""
    raw, _ = read_ensemble(path)
    contract = {(s.input_size_px, s.resize_interpolation, s.crop_margin) for s in member_specs}
    if len(contract) != 1:
        raise WeightsError(
            f"ensemble {path}: members differ in input size, interpolation or crop framing: {sorted(contract)}"
        )
    size, interpolation, margin = contract.pop()
    try:
        return WeightsSpec(
            name=raw.get("name") or Path(path).name[: -len(ENSEMBLE_SUFFIX)],
            architecture="ensemble",
            sha256=sha256_file(path),
            output="p_fake",
            input_size_px=size,
            resize_interpolation=interpolation,
            crop_margin=margin,
            threshold=float(raw.get("threshold", 0.5)),
            provenance=raw.get("provenance", "") or "ensemble of " + ", ".join(s.name for s in member_specs),
            license=raw.get("license", ""),
        )
    except ValueError as exc:
        raise WeightsError(f"invalid ensemble file {path}: {exc}") from exc
