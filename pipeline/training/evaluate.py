"""Metrics, plots and a short report of Meso-4 weights on labelled face crops (the library behind
``python -m pipeline evaluate``, whose command line is :mod:`pipeline.cli.evaluate`).

DATA is a class-folder tree or a manifest CSV (see :mod:`pipeline.training.dataset`). Every image is
a face crop already framed by the dataset builder and is scored whole, as the model expects: resized
to the weights' input size with the chosen interpolation (default: the weights' spec), RGB, x/255,
in batches. The model comes from :func:`pipeline.models.factory.load_models` and the threshold from
:func:`pipeline.models.factory.resolve_threshold` (explicit, else the weights spec's), as for every
command. Written to REPORT_DIR:

* ``metrics.json``: n, positive, threshold, tp/tn/fp/fn, accuracy, precision, recall, F1, ROC AUC,
  EER, ... at image level, and under ``video`` the same on the mean ``p_fake`` per source video
  (when the data names source videos);
* ``scores.csv``: one row per image (``p_fake``, 1 = fake); ``skipped.csv`` for unreadable images;
  ``videos.csv``: one row per source video (faces, mean ``p_fake``, decision), when known;
* ``confusion_matrix.png``, ``roc.png``, ``score_histogram.png``, ``reliability.png`` (each bin's
  point annotated with its count) and ``report.md`` (the metrics, a row per source video, the
  reliability bins as a table: range, count, mean ``p_fake``, fraction of fakes).

The decision rule is the scanner's: FAKE when ``p_fake >= threshold``. ``positive`` only picks
which class counts as positive for TP/precision/recall/F1; with ``real`` positive the ranking
score is ``1 - p_fake``. ROC AUC always comes from the continuous scores.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import logging
import math
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from pipeline.errors import ConfigError
from pipeline.faces.crop import RESIZE_INTERPOLATIONS
from pipeline.models.factory import resolve_threshold
from pipeline.models.scorer import Scorer
from pipeline.report.evaluation import write_faces_report_md
from pipeline.scan.records import CsvRow
from pipeline.settings import check, setting
from pipeline.training.dataset import LABEL_NAMES, DatasetError, FaceItem, load_crop_rgb, load_faces, select_split
from pipeline.training.metrics import binary_report, confusion_from_predictions, roc_curve, video_means

log = logging.getLogger("pipeline.training.evaluate")

POSITIVE_CLASSES = ("fake", "real")
SCORE_BATCH = 64
# the keys every metrics block carries (metrics.json and the weights sidecar), in this order
METRIC_KEYS = (
    "n",
    "positive",
    "threshold",
    "tp",
    "tn",
    "fp",
    "fn",
    "accuracy",
    "precision",
    "recall",
    "f1",
    "roc_auc",
    "eer",
)


@dataclasses.dataclass(frozen=True)
class EvaluateConfig:
    """One evaluation, flag for flag. ``weights`` ``None``: the scanner's default weights (see
    :func:`pipeline.models.weights.resolve_weights`; ``download`` allows its last step, fetching
    MesoNet's file). ``resize``/``threshold`` ``None``: the weights' spec. ``split``: only that
    split of a manifest. ``batch_size``: faces decoded and scored per step. ``faces_crop_margin``:
    the framing of the face images (crop side / MTCNN box side: 1.3 for ``extract_faces.py``,
    about 1.11 for MesoNet's faces, 0.93 for DFDC's release); each is centre-cropped to the
    weights spec's ``crop_margin`` before scoring, so the model sees faces framed as it was
    trained. ``None``: the images are scored whole."""

    data: Path
    report_dir: Path
    weights: Path | None = None
    positive: str = "fake"
    resize: str | None = None
    threshold: float | None = None
    split: str | None = None
    batch_size: int = SCORE_BATCH
    download: bool = True
    faces_crop_margin: float | None = None

    def __post_init__(self) -> None:
        if self.faces_crop_margin is not None:
            setting("crop_margin").check(self.faces_crop_margin, "faces_crop_margin")
        if self.positive not in POSITIVE_CLASSES:
            raise ConfigError(f"positive must be one of {POSITIVE_CLASSES}, got {self.positive!r}")
        if self.resize is not None and self.resize not in RESIZE_INTERPOLATIONS:
            raise ConfigError(f"resize must be one of {RESIZE_INTERPOLATIONS}, got {self.resize!r}")
        if self.threshold is not None:
            check("threshold", self.threshold)
        check("batch_size", self.batch_size)


@dataclasses.dataclass(frozen=True)
class ScoreRow(CsvRow):
    """One scored image of ``scores.csv``. ``file`` as found under DATA; ``predicted`` at the threshold."""

    file: str
    label: str
    source_video: str
    split: str
    p_fake: float
    predicted: str


# -- scoring -------------------------------------------------------------------------------------


def score_faces(
    scorer: Scorer,
    items: Sequence[FaceItem],
    interpolation: str,
    *,
    batch_size: int = SCORE_BATCH,
    centre_fraction: float = 1.0,
) -> tuple[list[FaceItem], np.ndarray, list[tuple[FaceItem, str]]]:
    """Score every face with ``scorer`` (a :class:`pipeline.models.meso4.MesoScorer`).

    Returns ``(scored_items, p_fake, skipped)``: ``p_fake`` float64 (N,) aligned with
    ``scored_items``; an unreadable image is logged and listed in ``skipped`` with the reason,
    and the rest go on. ``centre_fraction``: the centre part of each image scored (re-framing).
    """
    size = scorer.spec.input_size_px
    scored: list[FaceItem] = []
    skipped: list[tuple[FaceItem, str]] = []
    outputs: list[np.ndarray] = []
    started = time.monotonic()
    for start in range(0, len(items), batch_size):
        chunk = items[start : start + batch_size]
        batch_items, crops = load_crops(chunk, size, interpolation, skipped, centre_fraction)
        if crops:
            outputs.append(scorer.score_p_fake(np.stack(crops)))
            scored.extend(batch_items)
        done = min(start + batch_size, len(items))
        if done == len(items) or (start // batch_size) % 20 == 19:
            log.info("scored %d/%d faces (%.0f s)", done, len(items), time.monotonic() - started)
    p_fake = np.concatenate(outputs) if outputs else np.empty(0, dtype=np.float64)
    return scored, p_fake, skipped


def load_crops(
    items: Sequence[FaceItem],
    size_px: int,
    interpolation: str,
    skipped: list[tuple[FaceItem, str]],
    centre_fraction: float = 1.0,
) -> tuple[list[FaceItem], list[np.ndarray]]:
    """``(readable items, their uint8 (size_px, size_px, 3) RGB inputs)``; an unreadable image
    (missing, truncated, not an image) is logged and appended to ``skipped`` with the reason."""
    loaded, crops = [], []
    for item in items:
        try:
            crops.append(load_crop_rgb(item.source_path, size_px, interpolation, centre_fraction))
        except (OSError, ValueError) as exc:
            log.warning("skipped %s: %s", item.source_path, exc)
            skipped.append((item, str(exc).splitlines()[0] if str(exc) else type(exc).__name__))
            continue
        loaded.append(item)
    return loaded, crops


# -- metrics -------------------------------------------------------------------------------------


def metrics_block(labels: Sequence[str], p_fake: np.ndarray, *, positive: str = "fake", threshold: float = 0.5) -> dict:
    """The metrics of one set of labelled ``p_fake`` scores with ``positive`` as positive class.

    Decision rule: FAKE when ``p_fake >= threshold`` (the scanner's). ``eer_threshold`` is given
    back on the ``p_fake`` scale too."""
    if positive not in POSITIVE_CLASSES:
        raise ValueError(f"positive must be one of {POSITIVE_CLASSES}, got {positive!r}")
    p_fake = np.asarray(p_fake, dtype=np.float64)
    is_fake = np.array([label == "fake" for label in labels], dtype=bool)
    predicted_fake = p_fake >= threshold
    if positive == "fake":
        y, score, predicted = is_fake, p_fake, predicted_fake
    else:
        y, score, predicted = ~is_fake, 1.0 - p_fake, ~predicted_fake
    report = binary_report(y.astype(int), score, threshold, predicted=predicted)
    eer_t = report.pop("eer_threshold")
    block = {"positive": positive, **report}
    block["threshold"] = float(threshold)
    block["eer_threshold_p_fake"] = None if eer_t is None else (eer_t if positive == "fake" else 1.0 - eer_t)
    ordered = {k: block[k] for k in METRIC_KEYS}
    ordered.update({k: v for k, v in block.items() if k not in ordered})
    return ordered


def summarize_scores(
    items: Sequence[FaceItem], p_fake: np.ndarray, *, positive: str = "fake", threshold: float = 0.5
) -> dict:
    """Image-level metrics with the expected calibration error of ``p_fake`` (``ece``, 10 bins),
    plus ``video`` (mean p_fake per source video) when videos are known."""
    from pipeline.models.calibration import expected_calibration_error

    out = metrics_block([i.label for i in items], p_fake, positive=positive, threshold=threshold)
    out["ece"] = expected_calibration_error(p_fake, [i.label == "fake" for i in items]) if len(items) else None
    names, labels, means = video_means(items, p_fake)
    if names:
        out["video"] = metrics_block(labels, means, positive=positive, threshold=threshold)
        out["video"]["faces_without_source_video"] = sum(1 for i in items if i.source_video is None)
    return out


# -- report --------------------------------------------------------------------------------------


def _relative(path: Path, base: Path) -> str:
    try:
        return path.relative_to(base).as_posix()
    except ValueError:
        return str(path)


def write_scores_csv(path: Path, items: Sequence[FaceItem], p_fake: np.ndarray, threshold: float, base: Path) -> Path:
    """``scores.csv``: one :class:`ScoreRow` per scored face, ``file`` relative to ``base``."""
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=ScoreRow.columns())
        writer.writeheader()
        for item, p in zip(items, p_fake):
            row = ScoreRow(
                _relative(item.source_path, base),
                item.label,
                item.source_video or "",
                item.split or "",
                round(float(p), 6),
                "fake" if p >= threshold else "real",
            )
            writer.writerow(dataclasses.asdict(row))
    return path


def write_skipped_csv(path: Path, skipped: Sequence[tuple[FaceItem, str]], base: Path) -> Path:
    """``skipped.csv``: ``file,reason`` for each unreadable image, ``file`` relative to ``base``."""
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["file", "reason"])
        writer.writerows((_relative(item.source_path, base), reason) for item, reason in skipped)
    return path


def _ranked(positive: str, is_fake: np.ndarray, p_fake: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(y, score)`` with ``positive`` as class 1: ``(is_fake, p_fake)`` or ``(~is_fake, 1 - p_fake)``."""
    return (is_fake, p_fake) if positive == "fake" else (~is_fake, 1.0 - p_fake)


def _roc_curves(items: Sequence[FaceItem], p_fake: np.ndarray, metrics: dict) -> dict:
    """``label -> (fpr, tpr, auc)`` for the faces and, when known, the videos (mean ``p_fake``);
    a level whose AUC is undefined (one class) is left out."""
    positive = metrics["positive"]
    curves = {}
    if metrics.get("roc_auc") is not None:
        y, score = _ranked(positive, np.array([i.label == "fake" for i in items], dtype=bool), p_fake)
        fpr, tpr, _ = roc_curve(y.astype(int), score)
        curves[f"faces, n={len(items)}"] = (fpr, tpr, metrics["roc_auc"])
    video = metrics.get("video")
    if video and video.get("roc_auc") is not None:
        _, labels, means = video_means(items, p_fake)
        vy, vscore = _ranked(positive, np.array([lab == "fake" for lab in labels], dtype=bool), means)
        fpr, tpr, _ = roc_curve(vy.astype(int), vscore)
        curves[f"videos (mean p_fake), n={len(labels)}"] = (fpr, tpr, video["roc_auc"])
    return curves


def write_plots(report_dir: Path, items: Sequence[FaceItem], p_fake: np.ndarray, metrics: dict) -> dict[str, str]:
    """confusion_matrix.png, roc.png (image and video level, when defined) and
    score_histogram.png in ``report_dir``; returns ``plot key -> file name``."""
    from pipeline.training import plots

    positive = metrics["positive"]
    negative = "real" if positive == "fake" else "fake"
    threshold = metrics["threshold"]
    is_fake = np.array([i.label == "fake" for i in items], dtype=bool)
    y, _ = _ranked(positive, is_fake, p_fake)
    predicted = (p_fake >= threshold) if positive == "fake" else (p_fake < threshold)
    matrix = confusion_from_predictions(y.astype(int), predicted).matrix()
    files = {
        "confusion_matrix": plots.plot_confusion_matrix(
            matrix,
            [negative, positive],
            report_dir / "confusion_matrix.png",
            title=f"Faces, positive = {positive}, FAKE if p_fake >= {threshold:g}",
        )
    }
    curves = _roc_curves(items, p_fake, metrics)
    if curves:
        files["roc"] = plots.plot_roc(curves, report_dir / "roc.png", title=f"ROC, positive = {positive}")
    files["score_histogram"] = plots.plot_score_histograms(
        p_fake, is_fake, report_dir / "score_histogram.png", threshold=threshold
    )
    files["reliability"] = plots.plot_reliability(
        {"faces": (p_fake, is_fake)}, report_dir / "reliability.png", title="Faces: reliability"
    )
    return {k: v.name for k, v in files.items()}


def reliability_table(p_fake: np.ndarray, is_fake: np.ndarray, n_bins: int = 10) -> list[dict]:
    """The reliability diagram's bins as rows: ``bin`` (``[0.1, 0.2)``, the last one closed),
    ``low``, ``high``, ``n``, ``mean_p_fake`` and ``fraction_fake`` (``None`` for an empty bin);
    the counts sum to ``len(p_fake)``."""
    from pipeline.models.calibration import reliability_bins

    bins = reliability_bins(p_fake, is_fake, n_bins)
    digits = max(1, math.ceil(math.log10(n_bins)))  # 10 bins: 0.1, 20 bins: 0.05
    rows = []
    for k, n in enumerate(bins.counts):
        low, high = bins.edges[k], bins.edges[k + 1]
        rows.append(
            {
                "bin": f"[{low:.{digits}f}, {high:.{digits}f}{']' if k == n_bins - 1 else ')'}",
                "low": low,
                "high": high,
                "n": n,
                "mean_p_fake": bins.mean_p_fake[k] if n else None,
                "fraction_fake": bins.fraction_fake[k] if n else None,
            }
        )
    return rows


def video_rows(items: Sequence[FaceItem], p_fake: np.ndarray, threshold: float) -> list[dict]:
    """One row per source video (as :func:`pipeline.training.metrics.video_means` groups them):
    ``source_video``, ``label``, ``faces``, ``mean_p_fake`` and ``predicted`` (``fake`` when the
    mean is at or above ``threshold``); ``[]`` when no face names its source video."""
    names, labels, means = video_means(items, p_fake)
    faces: dict[tuple[str, str], int] = {}
    for item in items:
        if item.source_video is not None:
            key = (item.source_video, item.label)
            faces[key] = faces.get(key, 0) + 1
    return [
        {
            "source_video": name,
            "label": label,
            "faces": n,
            "mean_p_fake": round(float(mean), 6),
            "predicted": "fake" if mean >= threshold else "real",
        }
        for name, label, mean, n in zip(names, labels, means, faces.values())
    ]


def write_videos_csv(path: Path, rows: Sequence[dict]) -> Path:
    """``videos.csv``: the rows of :func:`video_rows`."""
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=["source_video", "label", "faces", "mean_p_fake", "predicted"])
        writer.writeheader()
        writer.writerows(rows)
    return path


def json_safe(value):
    """``value`` with non-finite floats as ``None`` and NumPy scalars as Python numbers, for JSON."""
    if isinstance(value, (np.floating, np.integer)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def write_report(
    config: EvaluateConfig,
    items: Sequence[FaceItem],
    p_fake: np.ndarray,
    skipped: Sequence[tuple[FaceItem, str]],
    metrics: dict,
) -> dict:
    """Write every file of the report into ``config.report_dir`` (created); returns ``metrics``
    with ``reliability`` (:func:`reliability_table`) and ``plots`` (key -> file name) added, as
    written to ``metrics.json``. File names in the CSVs are relative to DATA's folder. Raises
    ``OSError`` when the folder is not writable."""
    report_dir = Path(config.report_dir)
    report_dir.mkdir(parents=True, exist_ok=True)
    data_path = Path(config.data)
    base = (data_path.parent if data_path.is_file() else data_path).resolve()
    write_scores_csv(report_dir / "scores.csv", items, p_fake, metrics["threshold"], base)
    if skipped:
        write_skipped_csv(report_dir / "skipped.csv", skipped, base)
    videos = video_rows(items, p_fake, metrics["threshold"])
    if videos:
        write_videos_csv(report_dir / "videos.csv", videos)
    is_fake = np.array([i.label == "fake" for i in items], dtype=bool)
    metrics = {**metrics, "reliability": reliability_table(p_fake, is_fake)}
    metrics["plots"] = write_plots(report_dir, items, p_fake, metrics)
    (report_dir / "metrics.json").write_text(json.dumps(json_safe(metrics), indent=2) + "\n", encoding="utf-8")
    write_faces_report_md(report_dir / "report.md", metrics, metrics["plots"], videos)
    return metrics


# -- one evaluation ------------------------------------------------------------------------------


def load_items(config: EvaluateConfig) -> list[FaceItem]:
    """The labelled faces of ``config.data`` (only ``config.split`` when given). Raises
    :class:`pipeline.training.dataset.DatasetError` before any model is loaded."""
    items = load_faces(config.data)
    return select_split(items, config.split) if config.split else items


def load_scorer(config: EvaluateConfig) -> Scorer:
    """The scorer of ``config.weights`` (or the default weights), from the one model factory; no
    detector (the faces are cropped already). Raises ``FileNotFoundError`` or
    :class:`pipeline.errors.WeightsError`."""
    from pipeline.models.factory import ModelSpec, load_models

    return load_models(ModelSpec(weights=config.weights, download=config.download), with_detector=False).scorer


def run_facts(
    config: EvaluateConfig, scorer: Scorer, scored: Sequence[FaceItem], n_skipped: int, interpolation: str
) -> dict:
    """What was evaluated, for ``metrics.json``: data, split, resize, the decision rule, the
    weights (path, name, sha256, output, the crop framing they expect) and faces per label."""
    weights_path = scorer.weights_path
    return {
        "skipped": n_skipped,
        "data": str(config.data),
        "split": config.split,
        "resize": interpolation,
        "threshold_rule": "FAKE when p_fake >= threshold",
        "weights": {
            "path": str(weights_path) if weights_path else None,
            "name": scorer.spec.name,
            "sha256": scorer.spec.sha256,
            "output": scorer.spec.output,
            "crop_margin": scorer.spec.crop_margin,
        },
        "labels": {name: sum(1 for i in scored if i.label == name) for name in LABEL_NAMES},
    }


def evaluate(config: EvaluateConfig, scorer: Scorer | None = None) -> dict:
    """Run one evaluation and write the report; returns the metrics dict written to metrics.json.

    ``scorer`` (a :class:`pipeline.models.meso4.MesoScorer`, or anything with ``spec``,
    ``name``, ``weights_path`` and ``score_p_fake``) may be passed in, built once by the caller;
    otherwise :func:`load_scorer` builds it. The interpolation is ``config.resize``, else the
    weights spec's; the threshold ``config.threshold``, else the weights spec's
    (:func:`pipeline.models.factory.resolve_threshold`). Raises ``DatasetError`` (bad data, or no
    readable image), ``FileNotFoundError``/``WeightsError`` (weights), ``OSError`` (report folder).
    """
    # 1. the data, so that a bad folder or split fails before TensorFlow starts
    items = load_items(config)
    # 2. the model and the two settings its spec owns unless given
    scorer = load_scorer(config) if scorer is None else scorer
    interpolation = config.resize or scorer.spec.resize_interpolation
    threshold = resolve_threshold(config.threshold, scorer.spec)
    log.info("evaluating %s on %d faces of %s (resize %s)", scorer.name, len(items), config.data, interpolation)
    # 3. score, 4. measure, 5. write
    fraction = 1.0 if config.faces_crop_margin is None else min(1.0, scorer.spec.crop_margin / config.faces_crop_margin)
    scored, p_fake, skipped = score_faces(
        scorer, items, interpolation, batch_size=config.batch_size, centre_fraction=fraction
    )
    if not scored:
        raise DatasetError(f"no readable image in {config.data} ({len(skipped)} skipped)")
    metrics = summarize_scores(scored, p_fake, positive=config.positive, threshold=threshold)
    metrics.update(run_facts(config, scorer, scored, len(skipped), interpolation))
    return write_report(config, scored, p_fake, skipped, metrics)
