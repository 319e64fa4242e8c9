"""``python -m pipeline evaluate``: metrics, plots and a short report of Meso-4 weights on labelled faces.

    python -m pipeline evaluate DATA --weights W -o REPORT_DIR [--positive fake|real] [--resize nearest|area|bilinear]

DATA is a class-folder tree or a manifest CSV (see :mod:`pipeline.training.dataset`). Every image is
scored whole, as the model expects: resized to the weights' input size with the chosen
interpolation (default: the weights' spec), RGB, x/255, in batches. Written to REPORT_DIR:

* ``metrics.json``: n, positive, threshold, tp/tn/fp/fn, accuracy, precision, recall, F1, ROC AUC,
  EER, ... at image level, and under ``video`` the same on the mean ``p_fake`` per source video
  (when the data names source videos);
* ``scores.csv``: one row per image (``p_fake``, 1 = fake);
* ``confusion_matrix.png``, ``roc.png``, ``score_histogram.png`` and ``report.md``.

The decision rule is the scanner's: FAKE when ``p_fake >= threshold``. ``--positive`` only picks
which class counts as positive for TP/precision/recall/F1; with ``real`` positive the ranking
score is ``1 - p_fake``. ROC AUC always comes from the continuous scores.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import logging
import math
import time
from collections import OrderedDict
from pathlib import Path
from typing import Sequence

import numpy as np

from pipeline.cli.common import fail, start_logging
from pipeline.faces.crop import RESIZE_INTERPOLATIONS
from pipeline.training.dataset import LABEL_NAMES, FaceItem
from pipeline.scan.records import CsvRow

log = logging.getLogger("pipeline.training.evaluate")

POSITIVE_CLASSES = ("fake", "real")
SCORE_BATCH = 64
# the keys every metrics block carries (metrics.json and the weights sidecar), in this order
METRIC_KEYS = ("n", "positive", "threshold", "tp", "tn", "fp", "fn", "accuracy", "precision", "recall", "f1",
               "roc_auc", "eer")


@dataclasses.dataclass(frozen=True)
class EvaluateConfig:
    """One evaluation, flag for flag. ``resize``/``threshold`` ``None``: the weights' spec."""

    data: Path
    report_dir: Path
    weights: Path | None = None
    positive: str = "fake"
    resize: str | None = None
    threshold: float | None = None
    split: str | None = None
    batch_size: int = SCORE_BATCH

    def __post_init__(self) -> None:
        if self.positive not in POSITIVE_CLASSES:
            raise ValueError(f"positive must be one of {POSITIVE_CLASSES}, got {self.positive!r}")
        if self.resize is not None and self.resize not in RESIZE_INTERPOLATIONS:
            raise ValueError(f"resize must be one of {RESIZE_INTERPOLATIONS}, got {self.resize!r}")
        if self.threshold is not None and not 0.0 < self.threshold < 1.0:
            raise ValueError(f"threshold must be in (0, 1), got {self.threshold}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")


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


def score_faces(scorer, items: Sequence[FaceItem], interpolation: str, *, batch_size: int = SCORE_BATCH
                ) -> tuple[list[FaceItem], np.ndarray, list[tuple[FaceItem, str]]]:
    """Score every face with ``scorer`` (a :class:`pipeline.models.meso4.MesoScorer`).

    Returns ``(scored_items, p_fake, skipped)``: ``p_fake`` float64 (N,) aligned with
    ``scored_items``; an unreadable image is logged and listed in ``skipped`` with the reason,
    and the rest go on.
    """
    from pipeline.training.dataset import load_crop_rgb

    size = scorer.spec.input_size_px
    scored: list[FaceItem] = []
    skipped: list[tuple[FaceItem, str]] = []
    outputs: list[np.ndarray] = []
    started = time.monotonic()
    for start in range(0, len(items), batch_size):
        crops, batch_items = [], []
        for item in items[start:start + batch_size]:
            try:
                crops.append(load_crop_rgb(item.source_path, size, interpolation))
            except (OSError, ValueError) as exc:  # missing, truncated or not an image
                log.warning("skipped %s: %s", item.source_path, exc)
                skipped.append((item, str(exc).splitlines()[0] if str(exc) else type(exc).__name__))
                continue
            batch_items.append(item)
        if crops:
            outputs.append(scorer.score_p_fake(np.stack(crops)))
            scored.extend(batch_items)
        done = min(start + batch_size, len(items))
        if done == len(items) or (start // batch_size) % 20 == 19:
            log.info("scored %d/%d faces (%.0f s)", done, len(items), time.monotonic() - started)
    p_fake = np.concatenate(outputs) if outputs else np.empty(0, dtype=np.float64)
    return scored, p_fake, skipped


# -- metrics -------------------------------------------------------------------------------------


def video_means(items: Sequence[FaceItem], p_fake: np.ndarray) -> tuple[list[str], list[str], np.ndarray]:
    """Per source video (items without one are left out): ``(names, labels, mean p_fake)``, in
    order of first appearance. The mean is MesoNet's video rule, as the scanner's ``mean``."""
    sums: OrderedDict[str, list] = OrderedDict()
    for item, p in zip(items, p_fake):
        if item.source_video is None:
            continue
        entry = sums.setdefault(item.source_video, [item.label, 0.0, 0])
        if entry[0] != item.label:
            raise ValueError(f"source video {item.source_video!r} holds both labels")
        entry[1] += float(p)
        entry[2] += 1
    names = list(sums)
    labels = [sums[n][0] for n in names]
    means = np.array([sums[n][1] / sums[n][2] for n in names], dtype=np.float64)
    return names, labels, means


def metrics_block(labels: Sequence[str], p_fake: np.ndarray, *, positive: str = "fake", threshold: float = 0.5) -> dict:
    """The metrics of one set of labelled ``p_fake`` scores with ``positive`` as positive class.

    Decision rule: FAKE when ``p_fake >= threshold`` (the scanner's). ``eer_threshold`` is given
    back on the ``p_fake`` scale too."""
    from pipeline.training.metrics import binary_report

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


def summarize_scores(items: Sequence[FaceItem], p_fake: np.ndarray, *, positive: str = "fake",
                     threshold: float = 0.5) -> dict:
    """Image-level metrics, plus ``video`` (mean p_fake per source video) when videos are known."""
    out = metrics_block([i.label for i in items], p_fake, positive=positive, threshold=threshold)
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
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=ScoreRow.columns())
        writer.writeheader()
        for item, p in zip(items, p_fake):
            row = ScoreRow(_relative(item.source_path, base), item.label, item.source_video or "", item.split or "",
                           round(float(p), 6), "fake" if p >= threshold else "real")
            writer.writerow(dataclasses.asdict(row))
    return path


def write_plots(report_dir: Path, items: Sequence[FaceItem], p_fake: np.ndarray, metrics: dict) -> dict[str, str]:
    """confusion_matrix.png, roc.png (image and video level) and score_histogram.png."""
    from pipeline.training import plots
    from pipeline.training.metrics import confusion_from_predictions, roc_curve

    positive = metrics["positive"]
    negative = "real" if positive == "fake" else "fake"
    threshold = metrics["threshold"]
    is_fake = np.array([i.label == "fake" for i in items], dtype=bool)

    def ranked(labels_fake: np.ndarray, p: np.ndarray):
        return (labels_fake, p) if positive == "fake" else (~labels_fake, 1.0 - p)

    y, score = ranked(is_fake, p_fake)
    predicted = (p_fake >= threshold) if positive == "fake" else (p_fake < threshold)
    matrix = confusion_from_predictions(y.astype(int), predicted).matrix()
    files = {"confusion_matrix": plots.plot_confusion_matrix(
        matrix, [negative, positive], report_dir / "confusion_matrix.png",
        title=f"Faces, positive = {positive}, FAKE if p_fake >= {threshold:g}")}
    curves = {}
    if metrics.get("roc_auc") is not None:
        fpr, tpr, _ = roc_curve(y.astype(int), score)
        curves[f"faces, n={len(items)}"] = (fpr, tpr, metrics["roc_auc"])
    video = metrics.get("video")
    if video and video.get("roc_auc") is not None:
        _, labels, means = video_means(items, p_fake)
        vy, vscore = ranked(np.array([lab == "fake" for lab in labels]), means)
        fpr, tpr, _ = roc_curve(vy.astype(int), vscore)
        curves[f"videos (mean p_fake), n={len(labels)}"] = (fpr, tpr, video["roc_auc"])
    if curves:
        files["roc"] = plots.plot_roc(curves, report_dir / "roc.png", title=f"ROC, positive = {positive}")
    files["score_histogram"] = plots.plot_score_histograms(p_fake, is_fake, report_dir / "score_histogram.png",
                                                           threshold=threshold)
    return {k: v.name for k, v in files.items()}


def _fmt(value) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def write_report_md(path: Path, metrics: dict, plots_written: dict[str, str]) -> Path:
    rows = ["tp", "tn", "fp", "fn", "accuracy", "precision", "recall", "f1", "roc_auc", "eer"]
    video = metrics.get("video")
    lines = [
        "# Evaluation report",
        "",
        f"- data: `{metrics['data']}`" + (f" (split `{metrics['split']}`)" if metrics.get("split") else ""),
        f"- weights: `{metrics['weights']['path']}` ({metrics['weights']['name']}, sha256 "
        f"{metrics['weights']['sha256'][:16]}...)",
        f"- resize: `{metrics['resize']}`; decision: FAKE when p_fake >= {metrics['threshold']:g}; "
        f"positive class: **{metrics['positive']}**",
        f"- faces scored: {metrics['n']}"
        + (f", skipped (unreadable): {metrics['skipped']}" if metrics["skipped"] else ""),
        "",
        "| metric | faces |" + (" videos (mean p_fake) |" if video else ""),
        "|---|---|" + ("---|" if video else ""),
        f"| n | {metrics['n']} |" + (f" {video['n']} |" if video else ""),
    ]
    for key in rows:
        lines.append(f"| {key} | {_fmt(metrics[key])} |" + (f" {_fmt(video[key])} |" if video else ""))
    lines += ["", "ROC AUC and EER come from the continuous scores; the other figures from the threshold.", ""]
    titles = {"confusion_matrix": "Confusion matrix", "roc": "ROC", "score_histogram": "Scores per class"}
    for key, name in plots_written.items():
        lines += [f"## {titles.get(key, key)}", "", f"![{titles.get(key, key)}]({name})", ""]
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def _json_safe(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def evaluate(config: EvaluateConfig, scorer=None) -> dict:
    """Run one evaluation and write the report; returns the metrics dict written to metrics.json.

    ``scorer`` may be passed in (built once by the caller); otherwise it is loaded from
    ``config.weights`` or the scanner's default weights."""
    from pipeline.training.dataset import DatasetError, load_faces, select_split

    items = load_faces(config.data)
    if config.split:
        items = select_split(items, config.split)
    if scorer is None:
        from pipeline.models.meso4 import MesoScorer
        from pipeline.models.weights import resolve_weights

        scorer = MesoScorer.load(resolve_weights(config.weights))
    interpolation = config.resize or scorer.spec.resize_interpolation
    threshold = scorer.spec.threshold if config.threshold is None else config.threshold
    log.info("evaluating %s on %d faces of %s (resize %s)", scorer.name, len(items), config.data, interpolation)
    scored, p_fake, skipped = score_faces(scorer, items, interpolation, batch_size=config.batch_size)
    if not scored:
        raise DatasetError(f"no readable image in {config.data} ({len(skipped)} skipped)")
    metrics = summarize_scores(scored, p_fake, positive=config.positive, threshold=threshold)
    weights_path = scorer.weights_path
    metrics.update({
        "skipped": len(skipped),
        "data": str(config.data),
        "split": config.split,
        "resize": interpolation,
        "threshold_rule": "FAKE when p_fake >= threshold",
        "weights": {"path": str(weights_path) if weights_path else None, "name": scorer.spec.name,
                    "sha256": scorer.spec.sha256, "output": scorer.spec.output},
        "labels": {name: sum(1 for i in scored if i.label == name) for name in LABEL_NAMES},
    })
    report_dir = Path(config.report_dir)
    report_dir.mkdir(parents=True, exist_ok=True)
    data_path = Path(config.data)
    base = (data_path.parent if data_path.is_file() else data_path).resolve()
    write_scores_csv(report_dir / "scores.csv", scored, p_fake, threshold, base)
    if skipped:
        with open(report_dir / "skipped.csv", "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(["file", "reason"])
            writer.writerows((_relative(item.source_path, base), reason) for item, reason in skipped)
    metrics["plots"] = write_plots(report_dir, scored, p_fake, metrics)
    (report_dir / "metrics.json").write_text(json.dumps(_json_safe(metrics), indent=2) + "\n", encoding="utf-8")
    write_report_md(report_dir / "report.md", metrics, metrics["plots"])
    return metrics


# -- command line --------------------------------------------------------------------------------


def build_parser(prog: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog, description="Metrics, plots and a report of Meso-4 weights on labelled face crops "
                               "(p_fake, 1 = fake; FAKE when p_fake >= threshold).")
    p.add_argument("data", metavar="DATA", help="folder with real/ and fake/ (or Real/ and DeepFake/) subfolders, "
                                                "or a manifest CSV file,label[,source_video][,split]")
    p.add_argument("-o", "--output", dest="report_dir", required=True, metavar="REPORT_DIR",
                   help="folder for metrics.json, scores.csv, plots and report.md")
    p.add_argument("--weights", metavar="PATH", help="Meso-4 weights (default: the scanner's default model)")
    p.add_argument("--positive", choices=POSITIVE_CLASSES, default="fake",
                   help="positive class for TP/precision/recall/F1 (default: fake)")
    p.add_argument("--resize", choices=RESIZE_INTERPOLATIONS, default=None,
                   help="interpolation to the model's input size (default: the weights' spec)")
    p.add_argument("--threshold", type=float, default=None, help="FAKE when p_fake >= T (default: the weights' spec)")
    p.add_argument("--split", default=None, help="only this split of a manifest with a split column (train/val/test)")
    p.add_argument("--batch-size", type=int, default=SCORE_BATCH, help="faces per model call")
    p.add_argument("-q", "--quiet", action="store_true", help="warnings and errors only")
    return p



def main(argv: list[str] | None = None, prog: str = "python -m pipeline evaluate") -> int:
    """Exit 0 with the report written; 2 with a one-line message for usage errors (missing data
    or weights, unknown weights, bad split, unwritable report folder)."""
    args = build_parser(prog).parse_args(argv)
    start_logging(args.quiet)
    from pipeline.training.dataset import DatasetError
    from pipeline.errors import WeightsError

    try:
        config = EvaluateConfig(data=Path(args.data), report_dir=Path(args.report_dir),
                                weights=Path(args.weights) if args.weights else None, positive=args.positive,
                                resize=args.resize, threshold=args.threshold, split=args.split,
                                batch_size=args.batch_size)
    except ValueError as exc:
        return fail(prog, str(exc))
    report_dir = config.report_dir
    if report_dir.exists() and not report_dir.is_dir():
        return fail(prog, f"report folder {report_dir} is a file")
    try:
        metrics = evaluate(config)
    except (FileNotFoundError, WeightsError, DatasetError) as exc:
        return fail(prog, str(exc))
    except OSError as exc:
        return fail(prog, f"cannot write the report to {report_dir}: {exc}")
    video = metrics.get("video")
    log.info("%d faces: accuracy %s, ROC AUC %s (positive %s)%s; report in %s", metrics["n"], _fmt(metrics["accuracy"]),
             _fmt(metrics["roc_auc"]), metrics["positive"],
             f"; {video['n']} videos: ROC AUC {_fmt(video['roc_auc'])}" if video else "", report_dir)
    return 0
