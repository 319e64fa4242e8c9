"""Train a head on cached backbone features: minutes on 2 cores instead of hours of CNN training.

1. **Features**: every face of every source of a mix (:mod:`pipeline.training.mix`; each source's manifest
   carries its ``split``) through the frozen backbone, as ``views`` views (view 0 as is, the others
   augmented), from the cache (:mod:`pipeline.training.features`), computing what is missing.
2. **Fit**: standardise on the training features, then scikit-learn's ``MLPClassifier`` (ReLU, Adam, L2
   ``alpha``) or, with no hidden layer, ``LogisticRegression``. Every source weighs its share in the mix, and within a
   source real and fake weigh the same (sample weights), whatever their counts: a head fitted on one source
   learns that source's look (issue 24: a DFDC-only head scored 0.28-0.35 on MesoNet faces).
3. **Validate per source** on view 0 of its validation faces: face AUC, ECE, and AUC on the augmented views
   (how the number holds up under compression, blur, noise and darkness).
4. **Calibrate**: one temperature on the validation logits with equal weight per source and class
   (:func:`pipeline.models.calibration.fit_temperature` on a balanced resample).
5. **Write** the head (:mod:`pipeline.models.head`) and its spec sidecar, which names the backbone file.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import logging
import os
import time
from pathlib import Path
from typing import cast

import numpy as np

from pipeline.errors import ConfigError
from pipeline.models.calibration import expected_calibration_error, sigmoid
from pipeline.training.features import CachedFace, build_cache, cache_dir_for, load_cached
from pipeline.training.metrics import roc_auc

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class HeadConfig:
    """``hidden``: hidden layer widths (empty: logistic regression); ``alpha``: L2 penalty (MLP) or ``1 / C``
    (logistic); ``views``: views per face in the cache (training uses them all); ``max_iter``: epochs of
    Adam at most (early stopping on 10 % of the training faces); ``seed``; ``pca_dims``: the standardised
    features are projected on their first principal components (randomised PCA of the training features) before
    the head, which makes an MLP fit 5x cheaper; the projection is folded into the head's first layer, so the
    head file is the same kind (``None``: no projection; none either when the training rows are no more than
    ``pca_dims``)."""

    hidden: tuple[int, ...] = (256,)
    alpha: float = 1e-2
    views: int = 4
    max_iter: int = 60
    seed: int = 0
    pca_dims: int | None = 512

    def __post_init__(self) -> None:
        if any(h < 1 for h in self.hidden):
            raise ConfigError(f"hidden widths must be >= 1, got {self.hidden}")
        if not self.alpha > 0:
            raise ConfigError(f"alpha must be > 0, got {self.alpha}")
        if not 1 <= self.views <= 16:
            raise ConfigError(f"views must be in [1, 16], got {self.views}")
        if self.pca_dims is not None and self.pca_dims < 1:
            raise ConfigError(f"pca_dims must be >= 1 or None, got {self.pca_dims}")


@dataclasses.dataclass
class SourceFeatures:
    """One source's cached features: ``faces`` (the cache's list), ``views[v]`` float32 (N, F)."""

    name: str
    faces: list[CachedFace]
    views: list[np.ndarray]

    def part(self, split: str) -> np.ndarray:
        return np.array([f.split == split for f in self.faces])

    @property
    def y(self) -> np.ndarray:
        return np.array([f.y for f in self.faces], dtype=np.int64)


def mix_faces(mix) -> dict[str, list[tuple[CachedFace, Path]]]:
    """Every face of every source of ``mix`` (a :class:`pipeline.training.mix.MixSpec`) with its image, keyed
    in the cache by ``<parent folder>/<file name>``. Each source's manifest must give a ``split``
    (``train``/``val``) per face: splits are made once, by group, when the set is built."""
    from pipeline.training.dataset import DatasetError, load_faces

    out = {}
    for source in mix.sources:
        items = load_faces(source.data, group_column=source.group_column)
        missing = sum(1 for i in items if i.split not in ("train", "val"))
        if missing:
            raise DatasetError(f"source {source.name}: {missing} faces without a train/val split in {source.data}")
        out[source.name] = [
            (
                # every face has a train/val split: checked above
                CachedFace(
                    f"{i.source_path.parent.name}/{i.source_path.name}",
                    i.label,
                    i.source_video or "",
                    cast(str, i.split),
                ),
                i.source_path,
            )
            for i in items
        ]
    return out


def cached_features(mix, backbone, cache_root: str | Path, config: HeadConfig, *, deadline: float | None = None):
    """Build what is missing of the cache for ``mix`` and load it: {source: :class:`SourceFeatures`}."""
    folder = cache_dir_for(cache_root, backbone.info.sha256, mix.crop_margin)
    sources = {s.name: s for s in mix.sources}
    out = {}
    for name, faces in mix_faces(mix).items():
        stats = build_cache(
            cache_root,
            name,
            faces,
            backbone,
            source_margin=sources[name].crop_margin,
            crop_margin=mix.crop_margin,
            views=config.views,
            seed=config.seed,
            deadline=deadline,
        )
        log.info("feature cache %s: %s", name, stats)
        listed, view0 = load_cached(folder, name, 0)
        out[name] = SourceFeatures(
            name, listed, [view0] + [load_cached(folder, name, v)[1] for v in range(1, config.views)]
        )
    return out


def balanced_weights(source_ids: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Sample weights giving every (source, class) cell the same total weight; mean weight 1."""
    weights = np.zeros(len(y), dtype=np.float64)
    cells = {(s, c) for s, c in zip(source_ids.tolist(), y.tolist())}
    for s, c in cells:
        mask = (source_ids == s) & (y == c)
        weights[mask] = 1.0 / mask.sum()
    return weights * (len(y) / weights.sum())


def fit_head(features: dict[str, SourceFeatures], config: HeadConfig, source_weights: dict[str, float] | None = None):
    """Fit one head on the training faces of every source (all views). Returns a
    :class:`pipeline.models.head.Head` (uncalibrated) and the seconds it took."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier

    from pipeline.models.head import Head

    xs, ys, ids = [], [], []
    for k, source in enumerate(features.values()):
        train = source.part("train")
        for view in source.views:
            xs.append(view[train])
            ys.append(source.y[train])
            ids.append(np.full(int(train.sum()), k))
    x, y, source_ids = np.concatenate(xs), np.concatenate(ys), np.concatenate(ids)
    mean = x.mean(axis=0)
    scale = x.std(axis=0) + 1e-3
    x = (x - mean) / scale
    weights = balanced_weights(source_ids, y)
    if source_weights:  # the mix's stated shares: a source's cells weigh its share instead of 1 / n_sources
        share = np.array([source_weights.get(name, 0.0) for name in features]) * len(features)
        weights = weights * share[source_ids]
        weights *= len(weights) / weights.sum()
    start = time.monotonic()
    projection = None
    # PCA needs more rows than components: a training set that small is cheap to fit without it
    if config.pca_dims is not None and config.pca_dims < min(x.shape[1], len(x)):
        from sklearn.decomposition import PCA

        rng = np.random.default_rng(config.seed)
        sample = x[rng.choice(len(x), min(len(x), 20_000), replace=False)]
        pca = PCA(n_components=config.pca_dims, svd_solver="randomized", random_state=config.seed).fit(sample)
        projection = pca.components_.T.astype(np.float32)  # (F, D); the features are centred already
        x = (x - pca.mean_.astype(np.float32)) @ projection
        mean = mean + pca.mean_.astype(np.float32) * scale  # fold PCA's centring into the standardisation
    if config.hidden:
        model = MLPClassifier(
            hidden_layer_sizes=config.hidden,
            alpha=config.alpha,
            batch_size=512,
            learning_rate_init=1e-3,
            max_iter=config.max_iter,
            early_stopping=True,
            validation_fraction=0.1,
            n_iter_no_change=6,
            random_state=config.seed,
        )
    else:
        model = LogisticRegression(C=1.0 / config.alpha, max_iter=2000)
    model.fit(x, y, sample_weight=weights)
    if hasattr(model, "coefs_"):
        layers, biases = list(model.coefs_), list(model.intercepts_)
    else:
        layers, biases = [model.coef_.T], [model.intercept_]
    if projection is not None:
        layers[0] = projection @ layers[0]
    f32 = [np.asarray(a, dtype=np.float32) for a in layers]
    head = Head(
        mean.astype(np.float32),
        scale.astype(np.float32),
        tuple(f32),
        tuple(np.asarray(b, dtype=np.float32) for b in biases),
    )
    return head, time.monotonic() - start


def validate_head(head, features: dict[str, SourceFeatures], temperature: float = 1.0) -> dict:
    """Per source, on the validation faces: face AUC and ECE on view 0 (calibrated with ``temperature``), the
    AUC of the augmented views, and counts."""
    out = {}
    for name, source in features.items():
        val = source.part("val")
        y = source.y[val]
        p = sigmoid(head.logit(source.views[0][val]) / temperature)
        out[name] = {
            "faces": int(val.sum()),
            "fake": int(y.sum()),
            "auc": round(roc_auc(y, p), 4),
            "ece": round(expected_calibration_error(p, y), 4),
            "auc_augmented_views": [round(roc_auc(y, head.logit(v[val])), 4) for v in source.views[1:]],
        }
    return out


def fit_balanced_temperature(head, features: dict[str, SourceFeatures]) -> float:
    """One temperature fitted on the validation logits of every source, each (source, class) cell weighing the
    same (a cell is resampled to the largest cell's size with a fixed seed)."""
    from pipeline.models.calibration import fit_temperature

    cells = []
    for source in features.values():
        val = source.part("val")
        z = head.logit(source.views[0][val])
        y = source.y[val]
        for c in (0, 1):
            if (y == c).any():
                cells.append((z[y == c], c))
    size = max(len(z) for z, _ in cells)
    rng = np.random.default_rng(0)
    zs = np.concatenate([rng.choice(z, size) for z, _ in cells])
    ys = np.concatenate([np.full(size, c) for _, c in cells])
    return fit_temperature(sigmoid(zs), ys)


def write_head_model(
    output: str | Path,
    head,
    backbone,
    mix,
    *,
    temperature: float,
    threshold: float,
    metrics: dict,
    config: HeadConfig,
    seconds: dict,
    architecture: str,
    license_text: str,
    extra: dict | None = None,
) -> Path:
    """Write ``output`` (the head ``.npz``) and its sidecar ``output.json``, the backbone named relative to it."""
    from pipeline.models.weights import sha256_file, sidecar_path

    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    head.save(output)
    backbone_rel = os.path.relpath(backbone.path.resolve(), output.resolve().parent)
    spec = {
        "name": output.name[: -len(".npz")],
        "architecture": architecture,
        "sha256": sha256_file(output),
        "output": "p_fake",
        "input_size_px": backbone.info.input_size_px,
        "input_scale": backbone.info.input_scale,
        "color_order": "rgb",
        "resize_interpolation": "area",
        "crop_margin": mix.crop_margin,
        "temperature": round(float(temperature), 4),
        "threshold": round(float(threshold), 4),
        "backbone": backbone_rel,
        "backbone_sha256": backbone.info.sha256,
        "provenance": (
            f"head fitted with pipeline/training/train_head.py on cached {backbone.info.name} features of the mix "
            f"{', '.join(s.name for s in mix.sources)} ({datetime.date.today().isoformat()}); backbone: "
            + backbone.info.provenance
        ),
        "license": license_text,
        "url": None,
        "training": {
            "config": dataclasses.asdict(config),
            "mix": _mix_json(mix, output.parent),
            "metrics_per_source": metrics,
            "seconds": seconds,
            "cpu_count": os.cpu_count(),
            **(extra or {}),
        },
    }
    sidecar_path(output).write_text(json.dumps(spec, indent=2, sort_keys=True) + "\n")
    return output


def _mix_json(mix, base: Path) -> dict:
    raw = mix.to_json()
    for source in raw["sources"]:
        source["data"] = os.path.relpath(Path(source["data"]).resolve(), base.resolve())
    return raw


def face_logits(
    head, features: dict[str, SourceFeatures], split: str = "val"
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{source: (fake logits, labels)} of view 0 of one split."""
    out = {}
    for name, source in features.items():
        part = source.part(split)
        out[name] = (head.logit(source.views[0][part]), source.y[part])
    return out


def train_head_model(
    mix_path: str | Path,
    output: str | Path,
    *,
    backbone_path: str | Path,
    cache_root: str | Path,
    config: HeadConfig = HeadConfig(),
    max_minutes: float | None = None,
    license_text: str = "",
) -> dict:
    """The whole run of ``python -m pipeline train MIX.json --architecture effnet-lite0-head``: cache what is
    missing (within ``max_minutes``; a cache left incomplete raises ``FileNotFoundError`` naming the missing
    chunk, and the next run resumes it), fit, calibrate, choose the face threshold (best balanced accuracy of
    the pooled validation faces), validate per source and write ``output`` and its sidecar.
    Returns the per-source metrics."""
    from pipeline.models.backbone import OnnxBackbone
    from pipeline.training.mix import MixSpec
    from pipeline.training.train_mix import choose_threshold

    started = time.monotonic()
    deadline = None if max_minutes is None else started + 60.0 * max_minutes
    mix = MixSpec.from_json(mix_path)
    backbone = OnnxBackbone.load(backbone_path)
    features = cached_features(mix, backbone, cache_root, config, deadline=deadline)
    cached_s = time.monotonic() - started
    head, fit_s = fit_head(features, config, mix.weights)
    temperature = fit_balanced_temperature(head, features)
    zs, ys = [], []
    for source in features.values():
        val = source.part("val")
        zs.append(head.logit(source.views[0][val]))
        ys.append(source.y[val])
    p_val = sigmoid(np.concatenate(zs) / temperature)
    threshold = choose_threshold(p_val, np.concatenate(ys))
    metrics = validate_head(head, features, temperature)
    write_head_model(
        output,
        head,
        backbone,
        mix,
        temperature=temperature,
        threshold=threshold,
        metrics=metrics,
        config=config,
        seconds={"cache": round(cached_s, 1), "fit": round(fit_s, 1)},
        architecture="effnet-lite0-head",
        license_text=license_text,
    )
    log.info("wrote %s: temperature %.3f, threshold %.3f, per source %s", output, temperature, threshold, metrics)
    return metrics


__all__ = [
    "HeadConfig",
    "SourceFeatures",
    "balanced_weights",
    "cached_features",
    "face_logits",
    "fit_balanced_temperature",
    "fit_head",
    "mix_faces",
    "train_head_model",
    "validate_head",
    "write_head_model",
]
