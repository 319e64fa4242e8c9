"""Ensembles: several weights files scored together and averaged in logit space, as one model.

An ensemble is a JSON file (``<name>.ensemble.json``) beside its members::

    {
      "name": "ensemble_v2",
      "members": [
        {"weights": "meso4_mix_v2.h5"},
        {"weights": "mesoinception4_mix_v2.h5", "temperature": 1.3}
      ],
      "threshold": 0.5,
      "provenance": "...", "license": "..."
    }

Each member is loaded like any weights file (known by sha256, or by its sidecar) and reports a
calibrated ``p_fake`` (its spec's ``temperature``; a ``temperature`` given in the ensemble file
replaces it, which is how files without a sidecar, such as MesoNet's, are calibrated). The
ensemble's ``p_fake`` is ``sigmoid(mean_i logit(p_fake_i))``: averaging logits, not
probabilities, keeps one confident member from being diluted into 0.5 by an unsure one, and an
ensemble of copies of one model scores exactly like that model. All members must share one input
contract (size, interpolation, crop framing): the scanner crops each face once.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np

from pipeline.errors import WeightsError
from pipeline.models.calibration import apply_temperature, logit, sigmoid
from pipeline.models.weights import WeightsSpec, sha256_file

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
        if self.temperature is not None and not self.temperature > 0:
            raise ValueError(f"member temperature must be > 0, got {self.temperature}")


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


class EnsembleScorer:
    """Scores crops with every member and averages their calibrated logits; quacks like
    :class:`pipeline.models.meso4.MesoScorer` (``spec``, ``name``, ``score_p_fake``).

    Build once per process with :meth:`load` (the factory does) and pass it in.
    """

    def __init__(
        self, members: list, temperatures: list[float | None], spec: WeightsSpec, weights_path: Path | None = None
    ):
        if len(members) != len(temperatures) or not members:
            raise ValueError("need one temperature (or None) per member, and at least one member")
        self.members = list(members)
        self.temperatures = list(temperatures)
        self.spec = spec
        self.weights_path = weights_path

    @property
    def name(self) -> str:
        return self.spec.name

    @classmethod
    def load(cls, path: str | Path, load_member) -> EnsembleScorer:
        """Load every member with ``load_member(weights_path)`` (the scorer loader the factory
        uses) and check they share one input contract. Raises :class:`WeightsError`."""
        _, members = read_ensemble(path)
        scorers = [load_member(m.weights) for m in members]
        spec = ensemble_spec(path, [s.spec for s in scorers])
        return cls(scorers, [m.temperature for m in members], spec, Path(path))

    def member_p_fake(self, crops_rgb: np.ndarray) -> np.ndarray:
        """Calibrated ``p_fake`` of every member: float64 (M, N)."""
        rows = []
        for scorer, temperature in zip(self.members, self.temperatures):
            if temperature is None:
                rows.append(scorer.score_p_fake(crops_rgb))
            else:  # the ensemble's temperature replaces the member's own
                raw = scorer.score_p_fake(crops_rgb, calibrated=False)
                rows.append(apply_temperature(raw, temperature))
        return np.stack(rows) if rows else np.empty((0, len(crops_rgb)))

    def score_p_fake(self, crops_rgb: np.ndarray, calibrated: bool = True) -> np.ndarray:
        """``p_fake`` float64 (N,) for uint8 (N, S, S, 3) crops: the sigmoid of the members' mean
        calibrated logit (``calibrated`` is accepted for the scorer interface; members are
        always calibrated, the ensemble adds no temperature of its own)."""
        crops_rgb = np.asarray(crops_rgb)
        if len(crops_rgb) == 0:
            return np.empty(0, dtype=np.float64)
        per_member = self.member_p_fake(crops_rgb)
        if len(self.members) == 1:
            return per_member[0]
        return sigmoid(logit(per_member).mean(axis=0))


def load_ensemble(path: str | Path) -> EnsembleScorer:
    """The registry's loader for ensembles: members loaded by :func:`pipeline.models.factory.load_scorer`."""
    from pipeline.models.factory import load_scorer

    return EnsembleScorer.load(path, load_scorer)


def weights_bundle(path: str | Path) -> tuple[str, dict[str, bytes]]:
    """Every file a weights path needs, as ``(main file name, {file name: bytes})``, to be
    written side by side into one folder elsewhere (a Dask worker): the file and its sidecar,
    or for an ensemble the ensemble file (rewritten to name its members by bare file names)
    and each member with its sidecar. A weights file whose spec names a ``backbone`` (a ``.npz``
    head, :mod:`pipeline.models.backbone_scorer`) brings that file too, under its bare name, and its
    sidecar is rewritten to name it so (the sidecar's sha256 is the head's, which is unchanged); a
    backbone shared by several members travels once. Raises :class:`WeightsError` for a sidecar that
    names a backbone file that is not there."""
    from pipeline.models.weights import sidecar_path, spec_for_weights

    path = Path(path)
    files: dict[str, bytes] = {}

    def add(name: str, content: bytes) -> str:
        """``name``, or ``name`` prefixed until it is free, for ``content`` (the same bytes share one name)."""
        shipped, k = name, 0
        while shipped in files and files[shipped] != content:
            k += 1
            shipped = f"backbone{k}_{name}"
        files[shipped] = content
        return shipped

    def with_sidecar(file: Path, name: str) -> None:
        files[name] = file.read_bytes()
        sidecar = sidecar_path(file)
        if not sidecar.is_file():
            return
        raw = sidecar.read_bytes()
        try:
            fields = json.loads(raw)
        except ValueError:  # shipped as it is: the worker's load reports it, as here
            fields = None
        if isinstance(fields, dict) and fields.get("backbone"):
            from pipeline.models.backbone_scorer import backbone_path

            backbone = backbone_path(file, spec_for_weights(file))
            fields["backbone"] = add(backbone.name, backbone.read_bytes())
            raw = json.dumps(fields, indent=2, sort_keys=True).encode()
        files[name + ".json"] = raw

    if not is_ensemble_file(path):
        with_sidecar(path, path.name)
        return path.name, files
    raw, members = read_ensemble(path)
    for k, (entry, member) in enumerate(zip(raw["members"], members)):
        name = f"member{k}_{member.weights.name}"
        with_sidecar(member.weights, name)
        entry["weights"] = name
    files[path.name] = json.dumps(raw).encode()
    return path.name, files
