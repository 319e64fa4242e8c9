"""Train Meso-4 on labelled face crops and write weights the scanner loads (the library behind
``python -m pipeline train``, whose command line is :mod:`pipeline.cli.train`).

1. **Split** by source video, stratified by label (:func:`pipeline.training.dataset.split_by_source_video`),
   or the manifest's own ``split`` column when it has one; no source video on both sides.
2. **Input**: a ``tf.data`` pipeline: decode (Pillow, as Keras' ``load_img``) and resize with the
   shared :func:`pipeline.faces.crop.resize_rgb` (the interpolation the scanner will use, recorded in
   the spec), cache, shuffle, augment, batch, prefetch. Augmentation in the spirit of MesoNet
   (zoom, small rotation, horizontal flip, brightness, hue) plus blur and JPEG re-compression,
   since the cues are mesoscopic and video is compressed. All random ops are stateless, seeded
   per element from ``seed``, so a run is repeatable.
3. **Fit**: Adam with a cosine learning-rate decay, binary cross-entropy on ``p_fake`` (1 = fake),
   classes weighted to balance. After each epoch the validation faces are scored; the weights
   with the best validation ROC AUC are kept (written to the output as a checkpoint), and
   training stops after ``patience`` epochs without improvement.
4. **Write**: the weights as a Keras-2-layout ``.h5`` (loaded by layer order, like the MesoNet
   files), its spec sidecar ``<weights>.json`` (output ``p_fake``, input size, resize
   interpolation and crop framing, sha256, data, split, validation metrics), and in the report
   folder ``history.csv``, ``accuracy.png``, ``loss.png``, ``auc.png`` and ``split.csv`` (rerun
   ``evaluate split.csv --split val``).

``init_weights`` starts from another Meso-4 file (fine-tuning); a file whose output is P(real),
like MesoNet's, has its last layer negated so that the model outputs ``p_fake`` from step one.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
from collections.abc import Sequence

import numpy as np

from pipeline.models.weights import WeightsSpec, sha256_file, sidecar_path
from pipeline.training.common import (
    INPUT_SIZE_PX,
    TRAINABLE_ARCHITECTURES,
    TRAINED_THRESHOLD,
    VAL_BATCH,
    AugmentConfig,
    EpochMonitor,
    TrainConfig,
    augment_face,
    clean_metrics,
    decoded_faces,
    initial_model,
    save_weights_h5,
    split_items,
    start_tensorflow,
    trained_spec,
    write_history,
)
from pipeline.training.dataset import FaceItem, load_faces, relpath_posix, summarize, write_manifest

# The settings and the pieces shared with the mixed training live in pipeline.training.common;
# they are imported from here too, as ever.
__all__ = [
    "INPUT_SIZE_PX",
    "TRAINABLE_ARCHITECTURES",
    "TRAINED_THRESHOLD",
    "VAL_BATCH",
    "AugmentConfig",
    "FitResult",
    "TrainConfig",
    "augment_face",
    "balanced_class_weights",
    "decoded_faces",
    "fit_model",
    "initial_model",
    "make_dataset",
    "save_weights_h5",
    "split_items",
    "start_tensorflow",
    "train",
    "trained_spec",
    "training_record",
    "write_history",
]

log = logging.getLogger("pipeline.training.train")


# -- input pipeline of one face set ---------------------------------------------------------------


def make_dataset(
    items: Sequence[FaceItem],
    *,
    interpolation: str,
    batch_size: int,
    training: bool,
    seed: int = 0,
    augment: AugmentConfig | None = None,
    class_weights: dict[int, float] | None = None,
):
    """``tf.data`` pipeline over ``items``: decode + resize (once, then cached in memory), and for
    training: shuffle (reshuffled each epoch), repeat, augment, per-face class weight. Elements
    are ``(x float32 (B, S, S, 3) in [0, 1], y float32 (B,) 1 = fake[, weight (B,)])``."""
    import tensorflow as tf

    autotune = tf.data.AUTOTUNE
    ds = decoded_faces(items, interpolation).cache()
    if not training:
        return ds.map(lambda rgb, y: (tf.cast(rgb, tf.float32) / 255.0, y)).batch(batch_size).prefetch(autotune)
    weights = class_weights or {0: 1.0, 1: 1.0}
    ds = ds.shuffle(len(items), seed=seed, reshuffle_each_iteration=True).repeat()
    ds = tf.data.Dataset.zip((ds, tf.data.Dataset.random(seed=seed).batch(2)))

    def prepare(pair, element_seed):
        rgb, y = pair
        x = tf.cast(rgb, tf.float32) / 255.0
        if augment is not None:
            x = augment_face(x, element_seed, augment)
        w = tf.where(y > 0.5, weights[1], weights[0])
        return x, y, w

    return ds.map(prepare, num_parallel_calls=autotune).batch(batch_size, drop_remainder=True).prefetch(autotune)


def balanced_class_weights(items: Sequence[FaceItem]) -> dict[int, float]:
    """Weights that give each class the same total: n / (2 n_class)."""
    n = len(items)
    counts = {y: sum(1 for i in items if i.y == y) for y in (0, 1)}
    return {y: n / (2.0 * c) if c else 1.0 for y, c in counts.items()}


@dataclasses.dataclass(frozen=True)
class FitResult:
    """What :func:`fit_model` leaves: ``rows`` (one dict per epoch, as ``history.csv``), the best
    epoch (1-based), the best epoch's validation ``p_fake`` float64 (N_val,), the class weights
    and the steps per epoch used."""

    rows: list[dict]
    best_epoch: int
    best_p_fake: np.ndarray
    class_weights: dict[int, float]
    steps_per_epoch: int


def fit_model(model, config: TrainConfig, train_items: Sequence[FaceItem], val_items: Sequence[FaceItem]) -> FitResult:
    """Compile and fit ``model`` (Adam, cosine decay, class-weighted binary cross-entropy), keep
    the best epoch's weights by validation ROC AUC (checkpointed to ``config.output``), and leave
    ``model`` holding them."""
    import keras

    class_weights = balanced_class_weights(train_items)
    train_ds = make_dataset(
        train_items,
        interpolation=config.resize,
        batch_size=config.batch_size,
        training=True,
        seed=config.seed,
        augment=config.augment,
        class_weights=class_weights,
    )
    val_ds = make_dataset(val_items, interpolation=config.resize, batch_size=VAL_BATCH, training=False)
    steps = config.steps_per_epoch or max(1, len(train_items) // config.batch_size)
    schedule = keras.optimizers.schedules.CosineDecay(
        config.learning_rate, decay_steps=steps * config.epochs, alpha=config.final_learning_rate_ratio
    )
    model.compile(optimizer=keras.optimizers.Adam(schedule), loss="binary_crossentropy", metrics=["accuracy"])
    monitor = EpochMonitor(model, val_ds, val_items, config.output, config.patience, max_minutes=config.max_minutes)
    log.info(
        "training %d epochs of %d steps (batch %d) on %d faces; %d validation faces",
        config.epochs,
        steps,
        config.batch_size,
        len(train_items),
        len(val_items),
    )
    model.fit(
        train_ds, epochs=config.epochs, steps_per_epoch=steps, callbacks=[monitor.callback()], verbose=0, shuffle=False
    )  # the dataset shuffles itself, seeded
    assert monitor.best_p_fake is not None, "every epoch is validated, and there is at least one"
    model.set_weights(monitor.best_weights)
    return FitResult(monitor.rows, monitor.best_epoch, monitor.best_p_fake, class_weights, steps)


def training_record(
    config: TrainConfig,
    split: tuple[list[FaceItem], list[FaceItem], str],
    init_spec: WeightsSpec | None,
    fit: FitResult,
    val_metrics: dict,
    plot_files: dict[str, str],
    seconds_total: float,
) -> dict:
    """The ``training`` section of the sidecar: data, split, start, settings, epochs, timings,
    versions, validation metrics and the report files (paths relative to the weights)."""
    import keras
    import tensorflow as tf

    train_items, val_items, how = split
    run_dir = config.run_dir
    return {
        "data": str(config.data),
        "split": {
            "method": how,
            "seed": config.seed,
            "val_fraction": config.val_fraction,
            "train": summarize(train_items),
            "val": summarize(val_items),
            "val_source_videos": sorted({i.source_video for i in val_items if i.source_video}),
            "manifest": relpath_posix(run_dir / "split.csv", config.output.parent),
        },
        "init_weights": None if init_spec is None else {"name": init_spec.name, "sha256": init_spec.sha256},
        "config": {
            "epochs": config.epochs,
            "batch_size": config.batch_size,
            "learning_rate": config.learning_rate,
            "schedule": f"cosine decay to {config.final_learning_rate_ratio:g} x over {config.epochs} epochs",
            "optimizer": "Adam",
            "loss": "binary cross-entropy, classes weighted to balance",
            "class_weights": fit.class_weights,
            "steps_per_epoch": fit.steps_per_epoch,
            "patience": config.patience,
            "augment": None if config.augment is None else dataclasses.asdict(config.augment),
        },
        "epochs_run": len(fit.rows),
        "best_epoch": fit.best_epoch,
        "seconds_per_epoch": round(float(np.mean([r["train_s"] for r in fit.rows])), 1),
        "seconds_total": round(seconds_total, 1),
        "cpu_count": os.cpu_count(),
        "versions": {"tensorflow": tf.__version__, "keras": keras.__version__},
        "val_metrics": clean_metrics(val_metrics),
        "report": {k: relpath_posix(run_dir / v, config.output.parent) for k, v in plot_files.items()},
    }


def train(config: TrainConfig) -> dict:
    """Run one training and write weights, sidecar and report. Returns the sidecar's content.

    Raises :class:`pipeline.training.dataset.DatasetError` (bad data or split, before TensorFlow
    starts), ``FileNotFoundError``/:class:`pipeline.errors.WeightsError` (``init_weights``)."""
    from pipeline.training.evaluate import summarize_scores
    from pipeline.training.mix import is_mix_file

    if is_mix_file(config.data):  # several face sets: pipeline.training.train_mix
        from pipeline.training.train_mix import train_mix

        return train_mix(config)
    started = time.monotonic()
    # 1. data and split: data errors surface before TensorFlow starts
    split = split_items(load_faces(config.data), config.val_fraction, config.seed)
    train_items, val_items, how = split
    start_tensorflow(config.seed)
    log.info("split %s: training %s; validation %s", how, summarize(train_items), summarize(val_items))
    config.run_dir.mkdir(parents=True, exist_ok=True)
    write_manifest(config.run_dir / "split.csv", {"train": train_items, "val": val_items})
    # 2. fit, keeping the best epoch
    model, init_spec = initial_model(config.init_weights, config.architecture)
    fit = fit_model(model, config, train_items, val_items)
    # 3. the weights, their spec sidecar and the report
    save_weights_h5(model, config.output)
    spec = trained_spec(config, sha256_file(config.output), init_spec)
    metrics = summarize_scores(val_items, fit.best_p_fake, positive="fake", threshold=spec.threshold)
    plot_files = write_history(config.run_dir, fit.rows)
    sidecar = json.loads(spec.to_json())
    sidecar["training"] = training_record(
        config, split, init_spec, fit, metrics, plot_files, time.monotonic() - started
    )
    sidecar_path(config.output).write_text(json.dumps(sidecar, indent=2) + "\n", encoding="utf-8")
    log.info(
        "wrote %s (sha256 %s...) and %s; best epoch %d of %d: validation AUC faces %.4f, videos %s; %.0f s/epoch",
        config.output,
        spec.sha256[:16],
        sidecar_path(config.output).name,
        fit.best_epoch,
        len(fit.rows),
        metrics["roc_auc"],
        metrics.get("video", {}).get("roc_auc"),
        sidecar["training"]["seconds_per_epoch"],
    )
    return sidecar
