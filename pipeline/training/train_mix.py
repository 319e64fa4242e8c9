"""Training on a mix of face sets (:mod:`pipeline.training.mix`), then calibration.

``python -m pipeline train MIX.json -o weights/NAME.h5 [--architecture mesoinception4]`` runs
this instead of the one-set training when DATA is a mix file:

1. **Split** each source by its own groups (no group on both sides), as one-set training does.
2. **Input**: one ``tf.data`` pipeline per (source, class): decode, centre-crop to the model's
   framing (``mix.crop_margin / source.crop_margin`` of the side), resize (the interpolation the
   scanner will use), cache in memory as uint8, shuffle, repeat; then
   ``sample_from_datasets`` draws from them with the stated source weights, each class half of
   its source's share (class balance by sampling, not by loss weights), augments (the one-set
   training's :func:`pipeline.training.common.augment_face`, whose zoom is the scale
   augmentation), batches and prefetches.
3. **Fit**: as one-set training (Adam, cosine decay, binary cross-entropy, best epoch by
   validation), the best epoch chosen by the *mean of the per-source* validation ROC AUCs.
4. **Calibrate** on the pooled validation faces: temperature scaling
   (:func:`pipeline.models.calibration.fit_temperature`), then the threshold that maximises
   balanced accuracy (the mean of the true-positive and true-negative rates, Youden's J) on the
   calibrated validation scores. Both go into the weights spec with the framing, so the
   scanner crops, calibrates and decides as validated.
5. **Write** the weights, the sidecar (per-source validation metrics and ECE before and after
   calibration, split, timings) and the report: ``history.csv``, curves, one split manifest per
   source (``split_<source>.csv``, for ``evaluate --split val``) and a reliability diagram.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from pipeline.models.weights import WeightsSpec, sha256_file, sidecar_path
from pipeline.training.common import (
    VAL_BATCH,
    EpochMonitor,
    TrainConfig,
    augment_face,
    clean_metrics,
    decoded_faces,
    initial_model,
    save_weights_h5,
    start_tensorflow,
    trained_spec,
    write_history,
)
from pipeline.training.dataset import DatasetError, relpath_posix, summarize, write_manifest
from pipeline.training.mix import MixSpec, SourceSplit, split_mix

log = logging.getLogger(__name__)

# Thresholds considered on validation: never so low or high that one class is always called.
THRESHOLD_RANGE = (0.05, 0.95)


def make_mix_dataset(splits: Sequence[SourceSplit], mix: MixSpec, config: TrainConfig):
    """The training stream: ``(x float32 (B, S, S, 3) in [0, 1], y (B,), weight (B,) = 1)``,
    endless, sources drawn with ``mix.weights`` and classes balanced within each source."""
    import tensorflow as tf

    parts, weights = [], []
    for k, split in enumerate(splits):
        fraction = mix.crop_fraction(split.source)
        for y in (0, 1):
            items = [item for item in split.train if item.y == y]
            if not items:
                raise DatasetError(f"source {split.source.name} has no {'fake' if y else 'real'} training faces")
            ds = decoded_faces(items, config.resize, fraction).cache()
            ds = ds.shuffle(len(items), seed=config.seed + 2 * k + y, reshuffle_each_iteration=True).repeat()
            parts.append(ds)
            weights.append(mix.weights[split.source.name] / 2.0)
    ds = tf.data.Dataset.sample_from_datasets(parts, weights=weights, seed=config.seed)
    ds = tf.data.Dataset.zip((ds, tf.data.Dataset.random(seed=config.seed).batch(2)))

    def prepare(pair, element_seed):
        rgb, y = pair
        x = tf.cast(rgb, tf.float32) / 255.0
        if config.augment is not None:
            x = augment_face(x, element_seed, config.augment)
        return x, y, tf.ones_like(y)

    ds = ds.map(prepare, num_parallel_calls=tf.data.AUTOTUNE)
    return ds.batch(config.batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)


def make_mix_val(splits: Sequence[SourceSplit], mix: MixSpec, config: TrainConfig):
    """Every validation face, sources in order, re-framed, cached: ``(x, y)`` batches."""
    import tensorflow as tf

    ds = None
    for split in splits:
        part = decoded_faces(split.val, config.resize, mix.crop_fraction(split.source))
        ds = part if ds is None else ds.concatenate(part)
    if ds is None:
        raise ValueError("a mix needs at least one source")
    ds = ds.cache().map(lambda rgb, y: (tf.cast(rgb, tf.float32) / 255.0, y))
    return ds.batch(VAL_BATCH).prefetch(tf.data.AUTOTUNE)


@dataclasses.dataclass(frozen=True)
class Calibration:
    """What was fitted on validation: the temperature, the threshold (on calibrated ``p_fake``)
    and how it was chosen."""

    temperature: float
    threshold: float
    rule: str


def choose_threshold(p_fake: np.ndarray, is_fake: np.ndarray) -> float:
    """The threshold in :data:`THRESHOLD_RANGE` with the best balanced accuracy on these scores
    (ties: the one nearest 0.5), rounded to 3 decimals. FAKE when ``p_fake >= threshold``."""
    p = np.asarray(p_fake, dtype=np.float64)
    y = np.asarray(is_fake, dtype=bool)
    candidates = np.unique(np.round(np.clip(p, *THRESHOLD_RANGE), 3))
    candidates = np.unique(np.r_[candidates, 0.5])
    best, best_score = 0.5, -1.0
    for t in candidates:
        predicted = p >= t
        tpr = predicted[y].mean() if y.any() else 0.0
        tnr = (~predicted[~y]).mean() if (~y).any() else 0.0
        score = (tpr + tnr) / 2.0
        if score > best_score + 1e-12 or (abs(score - best_score) <= 1e-12 and abs(t - 0.5) < abs(best - 0.5)):
            best, best_score = float(t), score
    return round(best, 3)


def calibrate(p_fake: np.ndarray, is_fake: np.ndarray) -> Calibration:
    """Temperature scaling, then the balanced-accuracy threshold, on validation scores."""
    from pipeline.models.calibration import apply_temperature, fit_temperature

    temperature = round(fit_temperature(p_fake, is_fake), 4)
    threshold = choose_threshold(apply_temperature(p_fake, temperature), is_fake)
    rule = (
        "temperature: minimum negative log-likelihood on the pooled validation faces; threshold: best "
        f"balanced accuracy (mean of TPR and TNR) of the calibrated validation scores, in {list(THRESHOLD_RANGE)}"
    )
    return Calibration(temperature, threshold, rule)


def per_source_metrics(splits: Sequence[SourceSplit], p_raw: np.ndarray, p_cal: np.ndarray, threshold: float) -> dict:
    """Per source: face metrics at ``threshold`` on calibrated scores (with per-source-group
    means), and the expected calibration error before and after calibration."""
    from pipeline.models.calibration import expected_calibration_error
    from pipeline.training.evaluate import summarize_scores

    out, start = {}, 0
    for split in splits:
        n = len(split.val)
        items = list(split.val)
        y = np.array([i.y for i in items])
        block = summarize_scores(items, p_cal[start : start + n], positive="fake", threshold=threshold)
        block["ece_uncalibrated"] = expected_calibration_error(p_raw[start : start + n], y)
        block["ece"] = expected_calibration_error(p_cal[start : start + n], y)
        out[split.source.name] = block
        start += n
    return out


def _trained_spec(config: TrainConfig, mix: MixSpec, sha256: str, init_spec, calibration: Calibration) -> WeightsSpec:
    """The one-set training's spec (:func:`pipeline.training.common.trained_spec`) with the mix's
    framing, the fitted calibration and the mix named in the provenance."""
    spec = trained_spec(config, sha256, init_spec)
    sources = ", ".join(f"{s.name} {w:.0%}" for s, w in zip(mix.sources, mix.weights.values()))
    return dataclasses.replace(
        spec,
        crop_margin=mix.crop_margin,
        temperature=calibration.temperature,
        threshold=calibration.threshold,
        provenance=spec.provenance.replace(f"on {config.data}", f"on the mix {config.data} ({sources})"),
    )


def prepare_mix(config: TrainConfig) -> tuple[MixSpec, list[SourceSplit]]:
    """Read and split the mix, start TensorFlow, write one split manifest per source. Raises
    :class:`DatasetError` before TensorFlow starts when a source is missing, empty or cannot
    be split."""
    mix = MixSpec.from_json(config.data)
    splits = split_mix(mix, config.val_fraction, config.seed)
    start_tensorflow(config.seed)
    config.run_dir.mkdir(parents=True, exist_ok=True)
    for split in splits:
        log.info(
            "source %s (weight %.2f, framing %.2f -> %.2f): training %s; validation %s",
            split.source.name,
            mix.weights[split.source.name],
            split.source.crop_margin,
            mix.crop_margin,
            summarize(split.train),
            summarize(split.val),
        )
        write_manifest(config.run_dir / f"split_{split.source.name}.csv", {"train": split.train, "val": split.val})
    return mix, splits


def fit_mix(config: TrainConfig, mix: MixSpec, splits: Sequence[SourceSplit]):
    """Build (or load) the network and fit it on the mix; returns ``(model holding the best
    epoch's weights, the monitor with the history and best validation scores, init spec,
    steps per epoch)``."""
    import keras

    model, init_spec = initial_model(config.init_weights, config.architecture)
    n_train = sum(len(s.train) for s in splits)
    steps = config.steps_per_epoch or max(1, n_train // config.batch_size)
    schedule = keras.optimizers.schedules.CosineDecay(
        config.learning_rate, decay_steps=steps * config.epochs, alpha=config.final_learning_rate_ratio
    )
    model.compile(optimizer=keras.optimizers.Adam(schedule), loss="binary_crossentropy", metrics=["accuracy"])
    val_items = [item for s in splits for item in s.val]
    groups = [s.source.name for s in splits for _ in s.val]
    val_ds = make_mix_val(splits, mix, config)
    monitor = EpochMonitor(model, val_ds, val_items, config.output, config.patience, groups, config.max_minutes)
    log.info(
        "training %s, %d epochs of %d steps (batch %d); %d validation faces",
        config.architecture,
        config.epochs,
        steps,
        config.batch_size,
        len(val_items),
    )
    model.fit(
        make_mix_dataset(splits, mix, config),
        epochs=config.epochs,
        steps_per_epoch=steps,
        callbacks=[monitor.callback()],
        verbose=0,
        shuffle=False,
    )
    model.set_weights(monitor.best_weights)
    return model, monitor, init_spec, steps


def training_section(config, mix, splits, init_spec, monitor, steps, calibration, metrics, files, seconds) -> dict:
    """The ``training`` section of the sidecar: data and mix, split per source, start, settings,
    calibration, epochs, timings, validation metrics pooled and per source, report files."""
    return {
        "data": str(config.data),
        "mix": mix.to_json(),
        "split": {
            "method": "per source, by its groups; " + "; ".join(f"{s.source.name}: {s.how}" for s in splits),
            "seed": config.seed,
            "val_fraction": config.val_fraction,
            "per_source": {s.source.name: {"train": summarize(s.train), "val": summarize(s.val)} for s in splits},
            "manifests": {
                s.source.name: relpath_posix(config.run_dir / f"split_{s.source.name}.csv", config.output.parent)
                for s in splits
            },
        },
        "init_weights": None if init_spec is None else {"name": init_spec.name, "sha256": init_spec.sha256},
        "config": {
            "architecture": config.architecture,
            "epochs": config.epochs,
            "batch_size": config.batch_size,
            "learning_rate": config.learning_rate,
            "steps_per_epoch": steps,
            "patience": config.patience,
            "schedule": f"cosine decay to {config.final_learning_rate_ratio:g} x over {config.epochs} epochs",
            "optimizer": "Adam",
            "loss": "binary cross-entropy; classes balanced by sampling per source",
            "augment": None if config.augment is None else dataclasses.asdict(config.augment),
        },
        "calibration": dataclasses.asdict(calibration),
        "epochs_run": len(monitor.rows),
        "best_epoch": monitor.best_epoch,
        "seconds_per_epoch": round(float(np.mean([r["train_s"] for r in monitor.rows])), 1),
        "seconds_total": round(seconds, 1),
        "cpu_count": os.cpu_count(),
        "val_metrics": clean_metrics(metrics["pooled"]),
        "val_metrics_per_source": clean_metrics(metrics["per_source"]),
        "report": {k: relpath_posix(config.run_dir / v, config.output.parent) for k, v in files.items()},
    }


def train_mix(config: TrainConfig) -> dict:
    """Run one mixed training (module docstring) and write weights, sidecar and report.
    Returns the sidecar's content. Raises :class:`DatasetError` before TensorFlow starts when a
    source is missing, empty or cannot be split."""
    from pipeline.models.calibration import apply_temperature
    from pipeline.training import plots
    from pipeline.training.evaluate import summarize_scores

    started = time.monotonic()
    mix, splits = prepare_mix(config)
    model, monitor, init_spec, steps = fit_mix(config, mix, splits)
    # calibrate on the pooled validation faces, then write weights, spec and report
    val_items = [item for s in splits for item in s.val]
    y_val = np.array([i.y for i in val_items])
    calibration = calibrate(monitor.best_p_fake, y_val)
    p_cal = apply_temperature(monitor.best_p_fake, calibration.temperature)
    save_weights_h5(model, config.output)
    spec = _trained_spec(config, mix, sha256_file(config.output), init_spec, calibration)
    metrics = {
        "pooled": summarize_scores(val_items, p_cal, positive="fake", threshold=calibration.threshold),
        "per_source": per_source_metrics(splits, monitor.best_p_fake, p_cal, calibration.threshold),
    }
    files = write_history(config.run_dir, monitor.rows)
    files["reliability"] = plots.plot_reliability(
        {"uncalibrated": (monitor.best_p_fake, y_val), f"T = {calibration.temperature:g}": (p_cal, y_val)},
        config.run_dir / "reliability.png",
    ).name
    sidecar = json.loads(spec.to_json())
    sidecar["training"] = training_section(
        config, mix, splits, init_spec, monitor, steps, calibration, metrics, files, time.monotonic() - started
    )
    sidecar_path(config.output).write_text(json.dumps(sidecar, indent=2) + "\n", encoding="utf-8")
    log.info(
        "wrote %s: best epoch %d of %d, %.0f s/epoch, T %.3f, threshold %.3f; validation AUC %s",
        config.output,
        monitor.best_epoch,
        len(monitor.rows),
        sidecar["training"]["seconds_per_epoch"],
        calibration.temperature,
        calibration.threshold,
        {k: round(v["roc_auc"], 4) for k, v in metrics["per_source"].items()},
    )
    return sidecar


def is_mix_training(data: str | Path) -> bool:
    from pipeline.training.mix import is_mix_file

    return is_mix_file(data)
