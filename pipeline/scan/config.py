"""The settings of a scan, in one frozen object that the command line, the web app, worker
processes and Dask workers all read (ranges from :mod:`pipeline.settings`)."""

from __future__ import annotations

import dataclasses

from pipeline.errors import ConfigError
from pipeline.scan.aggregate import AGGREGATION_NAMES, DEFAULT_AGGREGATION
from pipeline.scan.decision import LEARNED, ClipDecision
from pipeline.scan.notes import EVIDENCE_RULE_TEXT
from pipeline.settings import check_fields
from pipeline.video.decode import sparse_decode_enabled


@dataclasses.dataclass(frozen=True)
class ScanConfig:
    """Settings of a scan; the CLI maps its flags onto these one to one.

    ``fps``: frames sampled per second of video; ``max_frames``: cap per clip (long clips are
    sampled evenly at a lower rate); ``threshold``: ``p_fake`` at or above which the label is
    FAKE, the value already resolved once by :func:`pipeline.models.factory.resolve_threshold`
    (explicit, else the weights spec's, else 0.5); ``aggregation``: name in
    :data:`pipeline.scan.aggregate.AGGREGATION_NAMES`; ``timeout_s``: time budget per clip (status
    ``timeout``); ``decision``: the learned clip-level model (aggregation ``learned``,
    :mod:`pipeline.scan.decision`), from the weights spec; ``uncertain_below``: with it, the label is
    UNCERTAIN for ``uncertain_below <= p_fake < threshold`` (``None``: one cut, FAKE or REAL);
    ``sparse_decode``: skip non-reference frames where samples are far apart
    (:func:`pipeline.video.decode.skips_frames`; its default, from
    :func:`pipeline.video.decode.sparse_decode_enabled`, is read when the config is made).
    The detector's settings are not here: they belong to
    :class:`pipeline.faces.detect.DetectorConfig` (carried by
    :attr:`pipeline.models.factory.ModelSpec.detector`), and the scan reads them from the
    detector it is given. Raises :class:`pipeline.errors.ConfigError` (a ``ValueError``) for a
    value outside its range (:data:`pipeline.settings.SETTINGS`).
    """

    fps: float = 1.0
    max_frames: int = 40
    threshold: float = 0.5
    aggregation: str = DEFAULT_AGGREGATION
    timeout_s: float | None = 900.0
    decision: ClipDecision | None = None
    uncertain_below: float | None = None
    sparse_decode: bool = dataclasses.field(default_factory=sparse_decode_enabled)

    def __post_init__(self) -> None:
        check_fields(
            self,
            "fps",
            "max_frames",
            "threshold",
            "timeout_s",
            "uncertain_below",
            optional=("timeout_s", "uncertain_below"),
        )
        if self.aggregation not in AGGREGATION_NAMES:
            raise ConfigError(f"aggregation must be one of {sorted(AGGREGATION_NAMES)}, got {self.aggregation!r}")
        if self.aggregation == LEARNED and self.decision is None:
            raise ConfigError("aggregation 'learned' needs a model whose spec carries a clip_decision")
        if self.uncertain_below is not None and not self.uncertain_below <= self.threshold:
            raise ConfigError(f"uncertain_below must be in (0, threshold], got {self.uncertain_below}")

    @classmethod
    def for_model(
        cls, weights_spec, *, threshold: float | None = None, aggregation: str | None = None, **settings
    ) -> ScanConfig:
        """The scan of a model, its labelling settled by one rule: ``aggregation`` ``None`` takes ``learned``
        when the spec carries a clip decision marked ``is_default``, else :data:`DEFAULT_AGGREGATION`.
        Under ``learned``, an explicit ``threshold`` (``--threshold``) is one cut, FAKE or REAL; without it,
        the decision's two thresholds, with UNCERTAIN between. Otherwise the threshold is ``threshold``, else the spec's
        (:func:`pipeline.models.factory.resolve_threshold`). ``settings``: the other fields. Raises
        :class:`ConfigError` for ``learned`` with a model that has no clip decision."""
        from pipeline.models.factory import resolve_threshold

        raw = getattr(weights_spec, "clip_decision", None)
        decision = ClipDecision.from_json(raw) if raw else None
        if aggregation is None:
            aggregation = LEARNED if decision is not None and decision.is_default else DEFAULT_AGGREGATION
        if aggregation == LEARNED:
            if decision is None:
                name = getattr(weights_spec, "name", "this model")
                raise ConfigError(f"aggregation 'learned' needs a model with a clip decision; {name} has none")
            if threshold is not None:
                return cls(threshold=threshold, aggregation=aggregation, decision=decision, **settings)
            return cls(
                threshold=decision.fake_at,
                aggregation=aggregation,
                decision=decision,
                uncertain_below=decision.real_below,
                **settings,
            )
        return cls(threshold=resolve_threshold(threshold, weights_spec), aggregation=aggregation, **settings)

    @property
    def label_rule(self) -> str:
        """How labels are made from ``p_fake``, in one line (the ``label_rule`` column): the cuts,
        then the little-face-evidence rule (note ``little_face_evidence``,
        :func:`pipeline.scan.notes.little_face_evidence`)."""
        if self.uncertain_below is not None and self.decision is not None:
            cuts = self.decision.rule_text
        elif self.uncertain_below is not None:
            cuts = f"FAKE at p_fake >= {self.threshold:g}, REAL under {self.uncertain_below:g}, UNCERTAIN between"
        else:
            cuts = f"FAKE at p_fake >= {self.threshold:g}, else REAL"
        return f"{cuts}; {EVIDENCE_RULE_TEXT}"
