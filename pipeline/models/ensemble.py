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

The file itself (its members, the spec it stands for) is read by :mod:`pipeline.models.ensemble_file`;
the scorer is built, its members loaded, by :func:`pipeline.models.factory.load_ensemble`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from pipeline.models.calibration import apply_temperature, logit, sigmoid
from pipeline.models.ensemble_file import ensemble_spec, is_ensemble_file, read_ensemble
from pipeline.models.scorer import Scorer
from pipeline.models.spec import WeightsSpec


class EnsembleScorer:
    """Scores crops with every member and averages their calibrated logits; quacks like
    :class:`pipeline.models.meso4.MesoScorer` (``spec``, ``name``, ``score_p_fake``).

    Build once per process with :meth:`load` (the factory does) and pass it in.
    """

    def __init__(
        self,
        members: Sequence[Scorer],
        temperatures: Sequence[float | None],
        spec: WeightsSpec,
        weights_path: Path | None = None,
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
    def load(cls, path: str | Path, load_member: Callable[[Path], Scorer]) -> EnsembleScorer:
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
