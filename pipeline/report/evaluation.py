"""The evaluation reports in Markdown (``report.md`` of ``python -m pipeline evaluate``): on faces
(:func:`write_faces_report_md`) and on clips through the scanner (:func:`write_clips_report_md`),
from the metrics the evaluation computed (:mod:`pipeline.training.evaluate`,
:mod:`pipeline.training.evaluate_clips`), with a row per source video or clip and the reliability bins."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

# rows of a per-video or per-clip table in report.md at most (all are in the report's CSV)
MAX_REPORT_ROWS = 200


def format_metric(value) -> str:
    """A metric for a report or a log line: 3 decimals, ``n/a`` when undefined."""
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def md_cell(value) -> str:
    """A value for a Markdown table cell: numbers as :func:`format_metric`, ``|`` escaped,
    empty and missing values as ``-``."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value == "":
        return "-"
    return format_metric(value).replace("|", "\\|")


def reliability_md(rows: Sequence[dict], unit: str) -> list[str]:
    """The lines of the reliability bins' Markdown table (:func:`reliability_table`), ``unit``
    (``faces``, ``clips``) naming the count column."""
    lines = [f"| p_fake bin | {unit} | mean p_fake | fraction fake |", "|---|---|---|---|"]
    for row in rows:
        lines.append(f"| {row['bin']} | {row['n']} | {md_cell(row['mean_p_fake'])} | {md_cell(row['fraction_fake'])} |")
    total = sum(row["n"] for row in rows)
    used = [row for row in rows if row["n"]]
    mean = sum(row["n"] * row["mean_p_fake"] for row in used) / total if total else None
    fraction = sum(row["n"] * row["fraction_fake"] for row in used) / total if total else None
    lines.append(f"| all | {total} | {md_cell(mean)} | {md_cell(fraction)} |")
    return lines


def capped_note(shown: int, total: int, csv_name: str) -> list[str]:
    """The line under a table cut at :data:`MAX_REPORT_ROWS` rows (none when it is whole)."""
    return [] if shown == total else ["", f"The first {shown} of {total} rows; all of them are in `{csv_name}`."]


def clip_name(video_path: str, data) -> str:
    """A clip's path as the table shows it: relative to the data folder (or the CSV's) when below it."""
    import os

    base = Path(data)
    base = base.parent if base.is_file() else base
    try:  # absolute, not resolved: a clip linked in from elsewhere keeps its place under the folder
        return Path(os.path.abspath(video_path)).relative_to(os.path.abspath(base)).as_posix()
    except ValueError:
        return video_path


def write_clips_report_md(path: Path, metrics: dict, rows, data) -> None:
    """``report.md`` of ``evaluate`` on clips: what was evaluated, the metrics, a row per clip
    (``rows``: a DataFrame of the clips with ``video_path``, ``label``, ``p_fake``, ``scanner_label``,
    ``status`` and ``n_faces``; at most :data:`MAX_REPORT_ROWS`), the reliability bins and the plots."""
    weights = metrics.get("weights") or {}
    lines = [
        "# Clip-level evaluation",
        "",
        f"- data: `{metrics['data']}`: {metrics['clips']} clips {metrics['labels']}",
        f"- weights: {weights.get('name')} ({weights.get('architecture')}, crop framing "
        f"{weights.get('crop_margin')}, temperature {weights.get('temperature')})",
        f"- scan: {metrics['scan']}; decision: FAKE when p_fake >= {metrics['threshold']:g}",
        f"- clips without a p_fake (left out): {metrics['unscored'] or 'none'}",
        "",
        "| metric | clips |",
        "|---|---|",
    ]
    for key in ("n", "tp", "tn", "fp", "fn", "accuracy", "precision", "recall", "f1", "roc_auc", "eer", "ece"):
        if key in metrics:
            lines.append(f"| {key} | {format_metric(metrics[key])} |")
    shown = rows.head(MAX_REPORT_ROWS)
    lines += [
        "",
        "## Per clip",
        "",
        "label: the scanner's verdict; faces: faces scored.",
        "",
        "| clip | true label | p_fake | label | status | faces |",
        "|---|---|---|---|---|---|",
    ]
    for row in shown.itertuples():
        lines.append(
            f"| {md_cell(clip_name(row.video_path, data))} | {row.label} | {md_cell(row.p_fake)} | "
            f"{md_cell(row.scanner_label)} | {md_cell(row.status)} | {row.n_faces} |"
        )
    lines += capped_note(len(shown), len(rows), "scores.csv")
    if metrics.get("n"):
        lines += [
            "",
            "## Reliability bins",
            "",
            "Scored clips per equal-width bin of p_fake, their mean p_fake and the fraction of them that are "
            "fake (the points of the reliability diagram).",
            "",
            *reliability_md(metrics["reliability"], "clips"),
        ]
    for key, name in metrics.get("plots", {}).items():
        lines += ["", f"## {key}", "", f"![{key}]({name})"]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def write_faces_report_md(
    path: Path, metrics: dict, plots_written: dict[str, str], videos: Sequence[dict] = ()
) -> Path:
    """``report.md``: what was evaluated, a table of faces (and videos) metrics, a row per source
    video (``videos``: :func:`pipeline.training.evaluate.video_rows`, at most :data:`MAX_REPORT_ROWS`),
    the reliability bins (``metrics["reliability"]``) and the plots."""
    rows = ["tp", "tn", "fp", "fn", "accuracy", "precision", "recall", "f1", "roc_auc", "eer", "ece"]
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
        lines.append(
            f"| {key} | {format_metric(metrics[key])} |" + (f" {format_metric(video.get(key))} |" if video else "")
        )
    lines += ["", "ROC AUC and EER come from the continuous scores; the other figures from the threshold.", ""]
    if videos:
        shown = videos[:MAX_REPORT_ROWS]
        lines += [
            "## Per source video",
            "",
            f"Mean p_fake of each source video's faces; predicted: fake when the mean >= {metrics['threshold']:g}.",
            "",
            "| source video | true label | faces | mean p_fake | predicted |",
            "|---|---|---|---|---|",
        ]
        for row in shown:
            lines.append(
                f"| {md_cell(row['source_video'])} | {row['label']} | {row['faces']} | "
                f"{md_cell(row['mean_p_fake'])} | {row['predicted']} |"
            )
        lines += [*capped_note(len(shown), len(videos), "videos.csv"), ""]
    if metrics.get("reliability"):
        lines += [
            "## Reliability bins",
            "",
            "Faces per equal-width bin of p_fake, their mean p_fake and the fraction of them that are fake "
            "(the points of the reliability diagram).",
            "",
            *reliability_md(metrics["reliability"], "faces"),
            "",
        ]
    titles = {
        "confusion_matrix": "Confusion matrix",
        "roc": "ROC",
        "score_histogram": "Scores per class",
        "reliability": "Reliability (calibration)",
    }
    for key, name in plots_written.items():
        lines += [f"## {titles.get(key, key)}", "", f"![{titles.get(key, key)}]({name})", ""]
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def summary_text(metrics: dict) -> str:
    """One line for the log: faces (and videos) scored, accuracy and ROC AUC."""
    video = metrics.get("video")
    return (
        f"{metrics['n']} faces: accuracy {format_metric(metrics['accuracy'])}, ROC AUC "
        f"{format_metric(metrics['roc_auc'])} (positive {metrics['positive']})"
        + (f"; {video['n']} videos: ROC AUC {format_metric(video['roc_auc'])}" if video else "")
    )
