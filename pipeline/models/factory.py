"""The one place the heavy models are built: MTCNN, the scorer, and TensorFlow's threads.

Read timm's ``create_model`` + ``pretrained_cfg``: a frozen :class:`ModelSpec` says *what* to
load (weights, detector settings, an explicit threshold, threads), :func:`resolve_model` finds
the weights file and its :class:`~pipeline.models.weights.WeightsSpec` without importing
TensorFlow (so a command line can reject bad weights before any work), and
:func:`load_models` imports TensorFlow, sets its threads and returns a :class:`LoadedModels`.
Every engine (in-process, pool workers, Dask workers), the web app, ``extract`` and
``evaluate`` call it; nothing else constructs a detector or a scorer.

The threshold has one rule, applied here for every command: an explicit value, else the
weights spec's own (which defaults to 0.5), see :func:`resolve_threshold`.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.errors import ConfigError
from pipeline.faces.detect import DetectorConfig
from pipeline.faces.detector import Detector
from pipeline.models.scorer import Scorer
from pipeline.models.weights import WeightsSpec, resolve_weights, spec_for_weights
from pipeline.settings import check_fields

if TYPE_CHECKING:
    from pipeline.faces.detect import FaceDetector
    from pipeline.models.ensemble import EnsembleScorer

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """What to load.

    ``weights``: a weights file; ``None`` resolves the default in
    :func:`pipeline.models.weights.resolve_weights`' order (``download`` allows its last step).
    ``detector``: MTCNN settings, the only owner of them. ``threshold``: ``p_fake`` at or above
    which a clip is FAKE; ``None`` takes the weights spec's. ``intra_op_threads``: TensorFlow's
    intra-op threads (``None``: TensorFlow's default, all cores); pool workers set it so that
    ``N`` processes share the cores instead of each taking all of them.
    """

    weights: str | Path | None = None
    download: bool = True
    detector: DetectorConfig = DetectorConfig()
    threshold: float | None = None
    intra_op_threads: int | None = None

    def __post_init__(self) -> None:
        check_fields(self, "threshold", optional=("threshold",))
        if self.intra_op_threads is not None and self.intra_op_threads < 1:
            raise ConfigError(f"intra_op_threads must be >= 1, got {self.intra_op_threads}")

    def with_weights(self, weights_path: str | Path) -> ModelSpec:
        """The same spec pinned to one resolved file (what is sent to worker processes, so every
        worker loads exactly the file the parent checked and never downloads)."""
        return dataclasses.replace(self, weights=str(weights_path), download=False)


@dataclasses.dataclass(frozen=True)
class LoadedModels:
    """What :func:`load_models` built: ``detector`` (a
    :class:`pipeline.faces.detect.FaceDetector`, ``None`` when not asked for), ``scorer`` (what
    :func:`load_scorer` gives: any architecture of :mod:`pipeline.models.registry`), the weights file, and
    the threshold resolved once."""

    detector: Detector | None
    scorer: Scorer
    weights_path: Path
    threshold: float

    def __post_init__(self) -> None:
        check_fields(self, "threshold")

    @property
    def weights_spec(self) -> WeightsSpec:
        return self.scorer.spec


def resolve_threshold(explicit: float | None, weights_spec: WeightsSpec | None) -> float:
    """The decision threshold, by one rule: ``explicit``, else the weights spec's, else 0.5."""
    if explicit is not None:
        return float(explicit)
    if weights_spec is not None:
        return float(weights_spec.threshold)
    return 0.5


def neutral_p_fake(scorer: Scorer) -> float:
    """The ``p_fake`` that says nothing either way for ``scorer``'s weights: the threshold its
    spec was calibrated to (0.5 when it has none). Scores of small faces are pulled toward it
    (:mod:`pipeline.scan.aggregate`); it never depends on a ``--threshold`` given for labels."""
    spec = getattr(scorer, "spec", None)
    return resolve_threshold(None, spec if getattr(spec, "threshold", None) is not None else None)


def resolve_model(spec: ModelSpec) -> tuple[Path, WeightsSpec]:
    """The weights file and its spec, without TensorFlow. Raises ``FileNotFoundError`` (no file
    anywhere; the message lists every place tried) or :class:`pipeline.errors.WeightsError`
    (unknown or unreadable file)."""
    weights_path = resolve_weights(spec.weights, download=spec.download)
    return weights_path, spec_for_weights(weights_path)


def worker_spec(models: ModelSpec | LoadedModels, workers: int | None = None) -> ModelSpec:
    """What a worker process (a pool worker, a Dask worker) loads: ``models`` as a spec pinned
    to one resolved file and never downloading (:meth:`ModelSpec.with_weights`), so every worker
    loads exactly the file checked here. A :class:`LoadedModels` gives its file, its detector's
    settings and its threshold.

    ``workers``: processes that share this machine's cores; each then gets
    ``os.cpu_count() // workers`` (at least 1) intra-op threads unless the spec sets them.
    ``None`` (workers on other machines) leaves the spec's threads as they are.
    Raises ``FileNotFoundError`` or :class:`pipeline.errors.WeightsError` as
    :func:`resolve_model` does, ``ValueError`` for models loaded without a detector.
    """
    if isinstance(models, LoadedModels):
        if models.detector is None:
            raise ValueError("workers need models loaded with a detector (with_detector=True)")
        spec = ModelSpec(
            weights=str(models.weights_path),
            download=False,
            detector=models.detector.config,
            threshold=models.threshold,
        )
    else:
        spec = models.with_weights(resolve_model(models)[0])
    if workers is not None and spec.intra_op_threads is None:
        spec = dataclasses.replace(spec, intra_op_threads=max(1, (os.cpu_count() or 1) // max(1, workers)))
    return spec


def configure_tensorflow(intra_op_threads: int | None) -> None:
    """Import TensorFlow (without Keras' optional imports) and set its thread pools once.

    TensorFlow refuses new thread settings after its runtime started; that is logged, not
    raised, since the models still work (a Dask worker that restarts its plugin hits this).
    """
    from pipeline.tf_import import import_tensorflow

    tf = import_tensorflow()
    if intra_op_threads is None:
        return
    try:
        tf.config.threading.set_intra_op_parallelism_threads(intra_op_threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:
        log.debug("TensorFlow already initialised; keeping its thread settings")


def load_models(spec: ModelSpec = ModelSpec(), *, with_detector: bool = True) -> LoadedModels:
    """Build the scorer (and MTCNN unless ``with_detector`` is False) once, for this process.

    Raises ``FileNotFoundError`` or :class:`pipeline.errors.WeightsError` as
    :func:`resolve_model` does, and ``WeightsError`` when the file does not load into the
    architecture its spec names.
    """
    weights_path, weights_spec = resolve_model(spec)
    configure_tensorflow(spec.intra_op_threads)
    scorer = load_scorer(weights_path, threads=spec.intra_op_threads)
    detector = load_detector(spec.detector) if with_detector else None
    return LoadedModels(detector, scorer, weights_path, resolve_threshold(spec.threshold, weights_spec))


def load_scorer(weights_path: str | Path, *, threads: int | None = None) -> Scorer:
    """The scorer for one resolved weights file, by the architecture its spec names in
    :mod:`pipeline.models.registry`: a :class:`pipeline.models.meso4.MesoScorer` (Meso-4,
    MesoInception-4), a :class:`pipeline.models.backbone_scorer.BackboneScorer` (a frozen backbone and
    its head) or, for a ``*.ensemble.json`` file, a :class:`pipeline.models.ensemble.EnsembleScorer`
    whose members are loaded the same way (:func:`load_ensemble`). Raises :class:`pipeline.errors.WeightsError`."""
    from pipeline.models.registry import create_scorer

    return create_scorer(spec_for_weights(weights_path).architecture, weights_path, threads=threads)


def load_ensemble(path: str | Path) -> EnsembleScorer:
    """The registry's loader for ensembles: a :class:`pipeline.models.ensemble.EnsembleScorer` whose
    members are loaded by :func:`load_scorer`. Raises :class:`pipeline.errors.WeightsError`."""
    from pipeline.models.ensemble import EnsembleScorer

    return EnsembleScorer.load(path, load_scorer)


def load_detector(config: DetectorConfig = DetectorConfig(), *, intra_op_threads: int | None = None) -> FaceDetector:
    """MTCNN and the face embedding that tracks people (the dataset builder needs no scorer): a
    :class:`pipeline.faces.detect.FaceDetector` with ``config``, its networks compiled, and
    its ``describer`` (:func:`pipeline.faces.identity.load_describer`, dlib's weights from the
    ``face_recognition_models`` package)."""
    configure_tensorflow(intra_op_threads)
    from pipeline.faces.detect import FaceDetector, build_mtcnn
    from pipeline.faces.identity import load_describer

    return FaceDetector(build_mtcnn(), config, load_describer())
