"""PNG figures for evaluation and training reports (matplotlib, Agg backend: no display needed).

Every function takes plain arrays, writes one PNG and returns its path.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

DPI = 110


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI, bbox_inches="tight")
    _pyplot().close(fig)
    return path


def plot_confusion_matrix(matrix: np.ndarray, class_names: Sequence[str], path: str | Path, *, title: str = "") -> Path:
    """Heatmap of a 2x2 confusion matrix (rows = true class, columns = predicted class, in the
    order of ``class_names``), each cell annotated with its count and its share of the row."""
    plt = _pyplot()
    matrix = np.asarray(matrix)
    row_sums = matrix.sum(axis=1, keepdims=True)
    shares = np.divide(matrix, row_sums, out=np.zeros(matrix.shape, dtype=float), where=row_sums > 0)
    fig, ax = plt.subplots(figsize=(4.6, 4.0))
    image = ax.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="share of true class")
    for i in range(matrix.shape[0]):
        for j in range(matrix.shape[1]):
            ax.text(
                j,
                i,
                f"{matrix[i, j]}\n{shares[i, j]:.1%}",
                ha="center",
                va="center",
                color="white" if shares[i, j] > 0.5 else "black",
            )
    ax.set_xticks(range(len(class_names)), [f"pred. {c}" for c in class_names])
    ax.set_yticks(range(len(class_names)), [f"true {c}" for c in class_names])
    ax.set_title(title or "Confusion matrix")
    return _save(fig, path)


def plot_roc(curves: Mapping[str, tuple[np.ndarray, np.ndarray, float]], path: str | Path, *, title: str = "") -> Path:
    """ROC curves, one per entry ``label -> (fpr, tpr, auc)``, with the AUC in the legend."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(4.6, 4.4))
    for label, (fpr, tpr, auc) in curves.items():
        ax.plot(fpr, tpr, lw=1.6, label=f"{label} (AUC {auc:.3f})")
    ax.plot([0, 1], [0, 1], ls="--", lw=0.8, color="grey", label="chance")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title(title or "ROC")
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def plot_score_histograms(
    p_fake: np.ndarray,
    is_fake: np.ndarray,
    path: str | Path,
    *,
    threshold: float = 0.5,
    title: str = "",
    unit: str = "faces",
) -> Path:
    """Histograms of ``p_fake`` for real and for fake faces on shared bins, with the threshold."""
    plt = _pyplot()
    p_fake = np.asarray(p_fake, dtype=float)
    is_fake = np.asarray(is_fake, dtype=bool)
    bins = np.linspace(0.0, 1.0, 41)
    fig, ax = plt.subplots(figsize=(5.6, 3.6))
    ax.hist(p_fake[~is_fake], bins=bins, alpha=0.6, color="tab:green", label=f"real (n={int((~is_fake).sum())})")
    ax.hist(p_fake[is_fake], bins=bins, alpha=0.6, color="tab:red", label=f"fake (n={int(is_fake.sum())})")
    ax.axvline(threshold, color="black", ls="--", lw=1, label=f"threshold {threshold:g}")
    ax.set_xlabel("p_fake (1 = fake)")
    ax.set_ylabel(unit)
    ax.yaxis.get_major_locator().set_params(integer=True)
    ax.set_title(title or "Scores per class")
    ax.legend(fontsize=8)
    return _save(fig, path)


def plot_history(
    epochs: Sequence[int], series: Mapping[str, Sequence[float]], path: str | Path, *, ylabel: str, title: str = ""
) -> Path:
    """Training curves: one line per named series (e.g. ``train``/``val``) over epochs."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.6, 3.6))
    for label, values in series.items():
        ax.plot(list(epochs), list(values), marker="o", ms=3, lw=1.4, label=label)
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    ax.set_title(title or ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


def plot_reliability(
    series: Mapping[str, tuple[np.ndarray, np.ndarray]], path: str | Path, *, n_bins: int = 10, title: str = ""
) -> Path:
    """Reliability diagram: for each named ``(p_fake, is_fake)`` pair, the observed fraction of
    fakes against the mean ``p_fake`` in equal-width bins, each point annotated with its bin's
    count (``n=12``), with the expected calibration error and the total count in the legend;
    the diagonal is perfect calibration."""
    from pipeline.models.calibration import expected_calibration_error, reliability_bins

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(4.8, 4.4))
    ax.plot([0, 1], [0, 1], color="grey", ls="--", lw=1, label="perfectly calibrated")
    for label, (p_fake, is_fake) in series.items():
        bins = reliability_bins(p_fake, is_fake, n_bins)
        used = [k for k, c in enumerate(bins.counts) if c]
        ece = expected_calibration_error(p_fake, is_fake, n_bins)
        (line,) = ax.plot(
            [bins.mean_p_fake[k] for k in used],
            [bins.fraction_fake[k] for k in used],
            marker="o",
            ms=4,
            lw=1.4,
            label=f"{label} (ECE {ece:.3f}, n={sum(bins.counts)})",
        )
        for k in used:  # the count beside each point, kept inside the axes
            x, y = bins.mean_p_fake[k], bins.fraction_fake[k]
            ax.annotate(
                f"n={bins.counts[k]}",
                (x, y),
                textcoords="offset points",
                xytext=(0, -12 if y > 0.9 else 6),
                ha="right" if x > 0.97 else "left" if x < 0.03 else "center",
                fontsize=7,
                color=line.get_color(),
                bbox={"boxstyle": "round,pad=0.1", "fc": "white", "ec": "none", "alpha": 0.7},
            )
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("mean p_fake in the bin")
    ax.set_ylabel("fraction of fakes in the bin")
    ax.set_title(title or "Reliability")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.14))  # below: never over a point
    return _save(fig, path)
