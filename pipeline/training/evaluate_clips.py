"""Clip-level evaluation: run the scanner on labelled clips and measure its ``p_fake`` per clip.

``python -m pipeline evaluate CLIPS -o REPORT_DIR`` where CLIPS is a folder with ``real/`` and
``fake/`` subfolders of video clips (anywhere below them; other folders such as ``unlabeled/``
are skipped), or a CSV ``path,label`` (paths relative to the CSV). The clips go through the
scanner exactly as ``score_videos.py`` runs it (same models from the factory, same sampling,
detector, crop framing, calibration and aggregation); then, as for faces:

- ``clips.csv``: the scanner's row per clip (resumable: rerunning skips clips already scored),
  ``faces.csv``: one row per scored face;
- ``scores.csv``: ``video_path, label, status, p_fake, predicted`` per clip;
- ``metrics.json``: clip ROC AUC and EER, the confusion matrix at the threshold, accuracy,
  precision, recall, F1, the expected calibration error, the clips without a score (no face,
  decode error) by status and label, and what was run (weights, threshold, scan settings);
- ``roc.png``, ``score_histogram.png``, ``confusion_matrix.png``, ``reliability.png`` (each bin's
  point annotated with its count);
- ``report.md``: the metrics, one row per clip (file, true label, ``p_fake``, the scanner's label,
  status, faces scored) and the reliability bins as a table (range, clips, mean ``p_fake``,
  fraction of fakes; also ``reliability`` in ``metrics.json``).

Clips without a ``p_fake`` are reported, not guessed: they are left out of the metrics and
counted in ``unscored``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.report.evaluation import write_clips_report_md
from pipeline.scan.analyze import ScanConfig
from pipeline.training.dataset import DatasetError

log = logging.getLogger(__name__)

VIDEO_CSV_COLUMNS = ("path", "label")


@dataclasses.dataclass(frozen=True)
class LabelledClip:
    """One clip to evaluate: its path and ``real``/``fake``."""

    path: str
    label: str


def is_clip_data(data: str | Path) -> bool:
    """Whether ``data`` holds clips (a folder whose ``real/``/``fake/`` hold video files, or a CSV
    with ``path,label`` columns) rather than face images."""
    from pipeline.video.discover import iter_videos

    path = Path(data)
    if path.is_file() and path.suffix.lower() == ".csv":
        with open(path, newline="", encoding="utf-8", errors="replace") as f:  # not text: not clips
            header = f.readline().strip().split(",")
        return set(VIDEO_CSV_COLUMNS) <= set(header) and "file" not in header
    if path.is_dir():
        for child in path.iterdir():
            if child.is_dir() and child.name.lower() in ("real", "fake"):
                if next(iter(iter_videos([str(child)])), None) is not None:
                    return True
    return False


def find_clips(data: str | Path) -> list[LabelledClip]:
    """The labelled clips of ``data`` (see the module docstring), in a stable order. Raises
    :class:`DatasetError` when there are none, or only one label."""
    from pipeline.training.extract import find_sources

    try:
        sources = find_sources(data, ("real", "fake"))
    except (ValueError, FileNotFoundError) as exc:
        raise DatasetError(str(exc)) from exc
    clips = [LabelledClip(str(s.path), s.label) for s in sources]
    if not clips:
        raise DatasetError(
            f"no labelled clips in {data}: expected real/ and fake/ folders of videos, or a CSV path,label"
        )
    if len({c.label for c in clips}) < 2:
        log.warning("%s holds only %s clips: ROC AUC is undefined", data, clips[0].label)
    return clips


def evaluate_clips(data: str | Path, report_dir: str | Path, models, config: ScanConfig, *, workers: int = 1) -> dict:
    """Score the clips of ``data`` with ``models`` (a :class:`pipeline.models.factory.LoadedModels`
    or a ``ModelSpec``) and ``config`` (its threshold resolved), write the report into
    ``report_dir`` and return the metrics written to ``metrics.json``. Raises
    :class:`DatasetError` (no clips), ``OSError`` (report folder)."""
    from pipeline.scan.batch import ResumeMismatchError, check_resume_settings, run_batch
    from pipeline.scan.provenance import run_settings
    from pipeline.training.evaluate import json_safe, metrics_block, reliability_table

    clips = find_clips(data)
    report_dir = Path(report_dir)
    report_dir.mkdir(parents=True, exist_ok=True)
    overwrite = False
    try:  # a report folder is resumed only when made the same way (model, threshold, sampling, ...)
        check_resume_settings(report_dir / "clips.csv", run_settings(models, config))
    except ResumeMismatchError as exc:
        log.warning("%s; scoring every clip afresh", str(exc).split(": pass --overwrite")[0])
        overwrite = True
    run_batch(
        [c.path for c in clips],
        report_dir / "clips.csv",
        config=config,
        models=models,
        faces_csv=report_dir / "faces.csv",
        workers=workers,
        overwrite=overwrite,
    )
    rows = _read_rows(report_dir / "clips.csv", clips)
    scored = rows[rows["p_fake"].notna()]
    labels = scored["label"].tolist()
    p_fake = scored["p_fake"].to_numpy(dtype=np.float64)
    metrics = metrics_block(labels, p_fake, positive="fake", threshold=config.threshold) if len(scored) else {}
    metrics.update(_calibration(labels, p_fake))
    metrics["reliability"] = reliability_table(p_fake, np.array([lab == "fake" for lab in labels], dtype=bool))
    metrics.update(_run_facts(data, models, config, rows))
    out = rows[["video_path", "label", "status", "p_fake"]].copy()
    verdict = np.where(out["p_fake"] >= config.threshold, "fake", "real")
    out["predicted"] = np.where(out["p_fake"].isna(), "", verdict)
    out.to_csv(report_dir / "scores.csv", index=False)
    metrics["plots"] = _write_plots(report_dir, labels, p_fake, metrics) if len(scored) else {}
    (report_dir / "metrics.json").write_text(json.dumps(json_safe(metrics), indent=2) + "\n", encoding="utf-8")
    write_clips_report_md(report_dir / "report.md", metrics, rows, data)
    return metrics


def _read_rows(clips_csv: Path, clips: list[LabelledClip]) -> pd.DataFrame:
    """The scanner's rows joined to the labels (``label``; the scanner's own is ``scanner_label``),
    in the clips' order."""
    from pipeline.scan.records import display_path

    rows = pd.read_csv(clips_csv, keep_default_na=False, dtype={"video_path": str, "status": str, "label": str})
    rows["p_fake"] = pd.to_numeric(rows["p_fake"], errors="coerce")
    rows["n_faces"] = pd.to_numeric(rows["n_faces"], errors="coerce").fillna(0).astype(int)
    rows = rows.rename(columns={"label": "scanner_label"})
    label_of = {display_path(c.path): c.label for c in clips}
    rows = rows[rows["video_path"].isin(label_of)].copy()
    rows["label"] = rows["video_path"].map(label_of)
    order = {display_path(c.path): k for k, c in enumerate(clips)}
    return rows.sort_values("video_path", key=lambda s: s.map(order)).reset_index(drop=True)


def _calibration(labels: list[str], p_fake: np.ndarray) -> dict:
    from pipeline.models.calibration import expected_calibration_error

    if not labels:
        return {"ece": None}
    return {"ece": expected_calibration_error(p_fake, np.array([lab == "fake" for lab in labels]))}


def _run_facts(data, models, config: ScanConfig, rows: pd.DataFrame) -> dict:
    from pipeline.models.factory import LoadedModels, resolve_model

    # a spec's weights are read without TensorFlow: a run whose clips all failed loaded none
    spec = models.scorer.spec if isinstance(models, LoadedModels) else resolve_model(models)[1]
    unscored = rows[rows["p_fake"].isna()]
    return {
        "unit": "clip",
        "data": str(data),
        "clips": int(len(rows)),
        "labels": dict(Counter(rows["label"])),
        "unscored": {
            f"{status}/{label}": int(n)
            for (status, label), n in Counter(zip(unscored["status"], unscored["label"])).items()
        },
        "threshold": config.threshold,
        "threshold_rule": "FAKE when p_fake >= threshold",
        "scan": {"fps": config.fps, "max_frames": config.max_frames, "aggregation": config.aggregation},
        "weights": None
        if spec is None
        else {
            "name": spec.name,
            "sha256": spec.sha256,
            "architecture": spec.architecture,
            "crop_margin": spec.crop_margin,
            "temperature": spec.temperature,
        },
    }


def _write_plots(report_dir: Path, labels: list[str], p_fake: np.ndarray, metrics: dict) -> dict[str, str]:
    from pipeline.training import plots
    from pipeline.training.metrics import roc_curve

    is_fake = np.array([lab == "fake" for lab in labels])
    files = {}
    if len(set(labels)) == 2:
        fpr, tpr, _ = roc_curve(is_fake.astype(int), p_fake)
        files["roc"] = plots.plot_roc(
            {"clips": (fpr, tpr, metrics["roc_auc"])}, report_dir / "roc.png", title="Clips: ROC"
        ).name
    files["score_histogram"] = plots.plot_score_histograms(
        p_fake,
        is_fake,
        report_dir / "score_histogram.png",
        threshold=metrics["threshold"],
        title="Clips: p_fake per class",
        unit="clips",
    ).name
    matrix = np.array([[metrics["tn"], metrics["fp"]], [metrics["fn"], metrics["tp"]]])
    files["confusion_matrix"] = plots.plot_confusion_matrix(
        matrix,
        ["real", "fake"],
        report_dir / "confusion_matrix.png",
        title=f"Clips, FAKE if p_fake >= {metrics['threshold']:g}",
    ).name
    files["reliability"] = plots.plot_reliability(
        {"clips": (p_fake, is_fake)}, report_dir / "reliability.png", title="Clips: reliability"
    ).name
    return files
