"""What the one-set training (:mod:`pipeline.training.train`) and the mixed one
(:mod:`pipeline.training.train_mix`) share: the run's settings (:class:`TrainConfig`,
:class:`AugmentConfig`), the split of one face set (:func:`split_items`, also per source of a mix,
:mod:`pipeline.training.mix`), the decoded and augmented faces, the network to start from and its
Keras-2-layout weights file, the per-epoch monitor and its history, and the trained weights' spec.

Below both trainings and the mix: nothing here imports them.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime
import logging
import math
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from pipeline.atomic import atomic_path
from pipeline.errors import ConfigError
from pipeline.faces.crop import CROP_MARGIN, DEFAULT_RESIZE, RESIZE_INTERPOLATIONS
from pipeline.models.weights import WeightsSpec
from pipeline.settings import check
from pipeline.training.dataset import DatasetError, FaceItem, check_no_leak, load_crop_rgb, split_by_source_video

# Training's log lines keep the name they have always had, one-set or mixed.
log = logging.getLogger("pipeline.training.train")

INPUT_SIZE_PX = 256
# A trained model's decision threshold until someone calibrates it: the weights spec's default.
TRAINED_THRESHOLD = 0.5
# Networks `train` builds from scratch or fine-tunes (pipeline.models.meso4.build_model).
TRAINABLE_ARCHITECTURES = ("meso4", "mesoinception4")
VAL_BATCH = 64


@dataclasses.dataclass(frozen=True)
class AugmentConfig:
    """Random changes to each training face; probabilities are per face.

    The geometric step resamples (bilinear), which softens the texture Meso-4 reads, so it is
    applied to only part of the faces."""

    geometric_p: float = 0.5
    zoom_range: float = 0.15  # scale drawn from [1 - z, 1 + z]; > 1 zooms in
    rotation_deg: float = 10.0
    flip_p: float = 0.5
    brightness_delta: float = 0.08  # added to [0, 1] pixels
    hue_delta: float = 0.03  # share of the hue circle
    saturation_range: float = 0.15
    blur_p: float = 0.2
    blur_sigma_px: tuple[float, float] = (0.4, 1.2)
    jpeg_p: float = 0.3
    jpeg_quality: tuple[int, int] = (55, 95)


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """One training run, flag for flag. ``report_dir`` ``None``: ``<output without .h5>_train/``.

    ``resize``: interpolation of the faces to the model's input; ``crop_margin``: crop side / the
    detector's box side of the training faces (the dataset builder's framing, 1.3). Both are
    written into the weights spec, which makes the scanner prepare faces the same way.
    """

    data: Path
    output: Path
    epochs: int = 30
    batch_size: int = 32
    learning_rate: float = 1e-3
    final_learning_rate_ratio: float = 0.02
    val_fraction: float = 0.2
    seed: int = 0
    patience: int = 6
    init_weights: Path | None = None
    resize: str = DEFAULT_RESIZE
    crop_margin: float = CROP_MARGIN
    architecture: str = "meso4"
    augment: AugmentConfig | None = AugmentConfig()
    steps_per_epoch: int | None = None
    report_dir: Path | None = None
    name: str | None = None
    license: str = ""
    max_minutes: float | None = None

    def __post_init__(self) -> None:
        if self.resize not in RESIZE_INTERPOLATIONS:
            raise ConfigError(f"resize must be one of {RESIZE_INTERPOLATIONS}, got {self.resize!r}")
        check("crop_margin", self.crop_margin)  # the range WeightsSpec accepts
        if self.architecture not in TRAINABLE_ARCHITECTURES:
            raise ConfigError(f"architecture must be one of {TRAINABLE_ARCHITECTURES}, got {self.architecture!r}")
        if not str(self.output).endswith(".h5") or str(self.output).endswith(".weights.h5"):
            raise ConfigError(f"output must be a .h5 file (Keras 2 layout, not .weights.h5), got {self.output}")
        for name in ("epochs", "batch_size", "patience"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not 0.0 < self.val_fraction < 1.0:
            raise ConfigError(f"val_fraction must be in (0, 1), got {self.val_fraction}")
        if self.max_minutes is not None and not self.max_minutes > 0:
            raise ConfigError(f"max_minutes must be > 0, got {self.max_minutes}")
        if self.steps_per_epoch is not None and self.steps_per_epoch < 1:
            raise ConfigError(f"steps_per_epoch must be >= 1, got {self.steps_per_epoch}")
        if not self.learning_rate > 0 or not 0 < self.final_learning_rate_ratio <= 1:
            raise ConfigError(
                f"learning rate {self.learning_rate} (final ratio {self.final_learning_rate_ratio}) "
                "must be > 0 (ratio in (0, 1])"
            )

    @property
    def run_dir(self) -> Path:
        return self.report_dir if self.report_dir is not None else self.output.with_name(self.output.stem + "_train")

    @property
    def spec_name(self) -> str:
        return self.name or self.output.stem


# -- split ---------------------------------------------------------------------------------------


def split_items(
    items: Sequence[FaceItem], val_fraction: float, seed: int
) -> tuple[list[FaceItem], list[FaceItem], str]:
    """(train, val, how): the manifest's ``split`` column when present (``test`` rows left out),
    else by source video, stratified by label. Raises when a source video is on both sides."""
    if any(item.split for item in items):
        train = [i for i in items if i.split == "train"]
        val = [i for i in items if i.split == "val"]
        if not train:
            raise DatasetError(f"the manifest's split column has no train rows ({len(val)} val)")
        left_out = len(items) - len(train) - len(val)
        how = "manifest split column" + (f" ({left_out} test/unsplit faces left out)" if left_out else "")
        if not val:  # e.g. the dataset builder had too few videos to split: split its train rows here
            train, val = split_by_source_video(train, val_fraction, seed)
            how += f"; no val rows, so train rows split by source video, {val_fraction:g} to validation, seed {seed}"
    else:
        train, val = split_by_source_video(items, val_fraction, seed)
        how = f"by source video, stratified by label, {val_fraction:g} of each label's faces to validation, seed {seed}"
    check_no_leak(train, val)
    for part, name in ((train, "training"), (val, "validation")):
        if len({i.label for i in part}) < 2:
            raise DatasetError(f"the {name} part holds only {sorted({i.label for i in part})}; need real and fake")
    return train, val, how


# -- input pipeline ------------------------------------------------------------------------------


def _gaussian_blur(image, sigma):
    """Separable Gaussian blur of a float (H, W, 3) image, 7-tap kernel, reflected borders."""
    import tensorflow as tf

    radius = 3
    x = tf.range(-radius, radius + 1, dtype=tf.float32)
    kernel = tf.exp(-0.5 * tf.square(x / sigma))
    kernel = kernel / tf.reduce_sum(kernel)
    padded = tf.pad(image[None], [[0, 0], [radius, radius], [radius, radius], [0, 0]], mode="REFLECT")
    kx = tf.tile(tf.reshape(kernel, (1, -1, 1, 1)), (1, 1, 3, 1))
    ky = tf.tile(tf.reshape(kernel, (-1, 1, 1, 1)), (1, 1, 3, 1))
    out = tf.nn.depthwise_conv2d(padded, kx, strides=(1, 1, 1, 1), padding="VALID")
    out = tf.nn.depthwise_conv2d(out, ky, strides=(1, 1, 1, 1), padding="VALID")
    return out[0]


def _zoom_rotate(image, scale, angle_rad):
    """Zoom by ``scale`` (> 1 enlarges) and rotate by ``angle_rad`` about the centre, bilinear,
    reflected borders; the output keeps the input size."""
    import tensorflow as tf

    size = tf.cast(tf.shape(image)[0], tf.float32)
    centre = (size - 1.0) / 2.0
    # output pixel p samples input c + M (p - c), M = R(angle) / scale
    cos, sin = tf.cos(angle_rad) / scale, tf.sin(angle_rad) / scale
    transform = tf.stack(
        [cos, -sin, centre - cos * centre + sin * centre, sin, cos, centre - sin * centre - cos * centre, 0.0, 0.0]
    )
    out = tf.raw_ops.ImageProjectiveTransformV3(
        images=image[None],
        transforms=transform[None],
        output_shape=tf.shape(image)[:2],
        fill_value=0.0,
        interpolation="BILINEAR",
        fill_mode="REFLECT",
    )
    return out[0]


def augment_face(image, seed, config: AugmentConfig):
    """One random variant of a float32 (S, S, 3) face in [0, 1]; ``seed`` int64 (2,) makes it
    repeatable. Order: zoom/rotate, flip, colour, blur, JPEG (compression comes last in a video)."""
    import tensorflow as tf

    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), num=12)

    def uniform(i, low=0.0, high=1.0):
        return tf.random.stateless_uniform((), seeds[i], low, high)

    if config.geometric_p > 0:
        scale = uniform(1, 1.0 - config.zoom_range, 1.0 + config.zoom_range)
        angle = uniform(2, -config.rotation_deg, config.rotation_deg) * (math.pi / 180.0)
        image = tf.cond(uniform(0) < config.geometric_p, lambda: _zoom_rotate(image, scale, angle), lambda: image)
    if config.flip_p > 0:
        image = tf.cond(uniform(3) < config.flip_p, lambda: tf.image.flip_left_right(image), lambda: image)
    if config.brightness_delta > 0:
        image = tf.image.stateless_random_brightness(image, config.brightness_delta, seeds[4])
    if config.saturation_range > 0:
        image = tf.image.stateless_random_saturation(
            image, 1.0 - config.saturation_range, 1.0 + config.saturation_range, seeds[5]
        )
    if config.hue_delta > 0:
        image = tf.image.stateless_random_hue(image, config.hue_delta, seeds[6])
    image = tf.clip_by_value(image, 0.0, 1.0)
    if config.blur_p > 0:
        sigma = uniform(8, *config.blur_sigma_px)
        image = tf.cond(uniform(7) < config.blur_p, lambda: _gaussian_blur(image, sigma), lambda: image)
    if config.jpeg_p > 0:
        low, high = config.jpeg_quality
        image = tf.cond(
            uniform(9) < config.jpeg_p,
            lambda: tf.image.stateless_random_jpeg_quality(image, low, high, seeds[10]),
            lambda: image,
        )
    image = tf.clip_by_value(image, 0.0, 1.0)
    image.set_shape((INPUT_SIZE_PX, INPUT_SIZE_PX, 3))
    return image


def decoded_faces(items: Sequence[FaceItem], interpolation: str, centre_fraction: float = 1.0):
    """``tf.data`` of ``(uint8 (S, S, 3), y float32)`` per face: decoded, re-framed to the centre
    ``centre_fraction`` of the side (1: whole) and resized with the scanner's ``resize_rgb``, in
    parallel. Shared by the one-set and the mixed training; callers cache it."""
    import tensorflow as tf

    paths = [str(item.source_path) for item in items]
    labels = np.array([item.y for item in items], dtype=np.float32)

    def decode(path):
        name = path.decode() if isinstance(path, bytes) else str(path)
        return load_crop_rgb(name, INPUT_SIZE_PX, interpolation, centre_fraction)

    def load(path, y):
        rgb = tf.numpy_function(decode, [path], tf.uint8, stateful=False)
        rgb.set_shape((INPUT_SIZE_PX, INPUT_SIZE_PX, 3))
        return rgb, y

    return tf.data.Dataset.from_tensor_slices((paths, labels)).map(load, num_parallel_calls=tf.data.AUTOTUNE)


# -- model and weights files ---------------------------------------------------------------------


def initial_model(init_weights: str | Path | None, architecture: str = "meso4"):
    """The network that outputs ``p_fake``: fresh (seeded), or loaded from ``init_weights`` with
    the last layer negated when that file outputs P(real) (sigmoid(-z) = 1 - sigmoid(z)).

    ``architecture``: ``meso4`` or ``mesoinception4``. The file and its spec are resolved as
    every command resolves weights (:func:`pipeline.models.factory.resolve_model`, never
    downloading) and loaded as the scorer loads them
    (:func:`pipeline.models.meso4.load_weights_into`). Returns ``(model, spec or None)``. Raises
    ``FileNotFoundError`` or :class:`pipeline.errors.WeightsError` (unknown file, another
    architecture or input size, or not loadable)."""
    from pipeline.errors import WeightsError
    from pipeline.models.factory import ModelSpec, resolve_model
    from pipeline.models.meso4 import build_model, load_weights_into

    model = build_model(architecture, INPUT_SIZE_PX)
    if init_weights is None:
        return model, None
    weights_path, spec = resolve_model(ModelSpec(weights=init_weights, download=False))
    if (spec.architecture, spec.input_size_px) != (architecture, INPUT_SIZE_PX):
        raise WeightsError(
            f"{weights_path} holds {spec.architecture} weights for {spec.input_size_px} px inputs; "
            f"training fine-tunes {architecture} at {INPUT_SIZE_PX} px"
        )
    load_weights_into(model, spec.architecture, weights_path)
    if spec.output == "p_real":
        head = model.layers[-1]
        kernel, bias = head.get_weights()
        head.set_weights([-kernel, -bias])
    return model, spec


def save_weights_h5(model, path: str | Path) -> Path:
    """Write ``model``'s weights in the Keras 2 HDF5 layout (``layer_names``, one group per layer
    with ``weight_names``), the layout of the MesoNet files, so :meth:`MesoScorer.load` reads it
    by layer order. Keras 3's own ``save_weights`` only writes ``.weights.h5``. Atomic: a
    partial file never lands at ``path``."""
    import h5py
    import keras

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp_path, h5py.File(tmp_path, "w") as f:
        f.attrs["backend"] = "tensorflow"
        f.attrs["keras_version"] = keras.__version__
        f.attrs["layer_names"] = np.array([layer.name.encode() for layer in model.layers])
        for layer in model.layers:
            group = f.create_group(layer.name)
            # the order Keras' legacy loader expects: trainable, then non-trainable
            variables = list(layer.trainable_weights) + list(layer.non_trainable_weights)
            names = [f"{layer.name}/{v.name}:0" for v in variables]
            group.attrs["weight_names"] = np.array([n.encode() for n in names])
            for name, variable in zip(names, variables):
                group.create_dataset(name, data=np.asarray(variable.numpy()))
    return path


# -- fitting -------------------------------------------------------------------------------------


class EpochMonitor:
    """After each epoch: score the validation faces, log, keep the best weights by ROC AUC,
    checkpoint them, and stop after ``patience`` epochs without improvement."""

    def __init__(
        self,
        model,
        val_ds,
        val_items: Sequence[FaceItem],
        output: Path,
        patience: int,
        groups: Sequence[str] | None = None,
        max_minutes: float | None = None,
    ):
        self.model = model
        # a time budget: no epoch starts once it is spent (the run then ends as after early
        # stopping: best weights kept, spec and report written)
        self.deadline_s = None if max_minutes is None else time.monotonic() + 60.0 * max_minutes
        # the face set of each validation face (a training mix): the best epoch is the one with
        # the best mean of the per-set AUCs, so no set is drowned by a larger one
        self.groups = None if groups is None or len(set(groups)) < 2 else np.asarray(groups)
        self.val_ds = val_ds
        self.val_items = list(val_items)
        self.val_y = np.array([i.y for i in val_items], dtype=np.float64)
        self.output = output
        self.patience = patience
        self.best_auc = -math.inf
        self.best_epoch = 0
        self.best_weights: list | None = None
        self.best_p_fake: np.ndarray | None = None
        self.wait = 0
        self.rows: list[dict] = []
        self._epoch_started = 0.0

    def callback(self):
        import keras

        monitor = self

        class MonitorCallback(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                monitor._epoch_started = time.monotonic()

            def on_epoch_end(self, epoch, logs=None):
                monitor.epoch_end(epoch, logs or {})

        return MonitorCallback()

    def epoch_end(self, epoch: int, logs: dict) -> None:
        from pipeline.training.metrics import roc_auc, video_means

        train_s = time.monotonic() - self._epoch_started
        started = time.monotonic()
        p_fake = np.asarray(self.model.predict(self.val_ds, verbose=0), dtype=np.float64).reshape(-1)
        p = np.clip(p_fake, 1e-7, 1 - 1e-7)  # Keras' epsilon: comparable with the training loss
        val_loss = float(-np.mean(self.val_y * np.log(p) + (1 - self.val_y) * np.log(1 - p)))
        val_accuracy = float(np.mean((p_fake >= 0.5) == (self.val_y == 1)))
        val_auc = roc_auc(self.val_y.astype(int), p_fake)
        per_group = {}
        if self.groups is not None:
            for name in dict.fromkeys(self.groups.tolist()):
                mask = self.groups == name
                per_group[f"val_auc_{name}"] = roc_auc(self.val_y[mask].astype(int), p_fake[mask])
            val_auc = float(np.nanmean(list(per_group.values())))
        _, video_labels, video_p = video_means(self.val_items, p_fake)
        video_auc = roc_auc([int(lab == "fake") for lab in video_labels], video_p) if video_labels else float("nan")
        lr = float(np.asarray(self.model.optimizer.learning_rate))
        row = {
            "epoch": epoch + 1,
            "loss": float(logs.get("loss", math.nan)),
            "accuracy": float(logs.get("accuracy", math.nan)),
            "val_loss": val_loss,
            "val_accuracy": val_accuracy,
            "val_auc": val_auc,
            "val_video_auc": video_auc,
            **per_group,
            "learning_rate": lr,
            "train_s": round(train_s, 1),
            "val_s": round(time.monotonic() - started, 1),
        }
        self.rows.append(row)
        improved = val_auc > self.best_auc + 1e-6
        if improved:
            self.best_auc, self.best_epoch, self.wait = val_auc, epoch + 1, 0
            self.best_weights = [w.copy() for w in self.model.get_weights()]
            self.best_p_fake = p_fake
            save_weights_h5(self.model, self.output)
        else:
            self.wait += 1
            if self.wait >= self.patience:
                self.model.stop_training = True
        if self.deadline_s is not None and time.monotonic() + row["train_s"] + row["val_s"] > self.deadline_s:
            self.model.stop_training = True  # the next epoch would end past the time budget
            log.info("time budget: stopping after epoch %d", epoch + 1)
        log.info(
            "epoch %d: loss %.4f acc %.3f | val loss %.4f acc %.3f AUC %.4f video AUC %.4f | lr %.2e | %.0f s%s",
            epoch + 1,
            row["loss"],
            row["accuracy"],
            val_loss,
            val_accuracy,
            val_auc,
            video_auc,
            lr,
            train_s,
            " *best*" if improved else ("; early stop" if self.model.stop_training else ""),
        )
        if per_group:
            log.info("epoch %d: %s", epoch + 1, ", ".join(f"{k} {v:.4f}" for k, v in per_group.items()))


def write_history(run_dir: Path, rows: Sequence[dict]) -> dict[str, str]:
    """history.csv plus accuracy.png, loss.png and auc.png (training vs validation)."""
    from pipeline.training import plots

    run_dir.mkdir(parents=True, exist_ok=True)
    with open(run_dir / "history.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    epochs = [r["epoch"] for r in rows]
    files = {
        "history": "history.csv",
        "accuracy": plots.plot_history(
            epochs,
            {"training (augmented)": [r["accuracy"] for r in rows], "validation": [r["val_accuracy"] for r in rows]},
            run_dir / "accuracy.png",
            ylabel="accuracy",
        ).name,
        "loss": plots.plot_history(
            epochs,
            {
                "training (augmented, class-weighted)": [r["loss"] for r in rows],
                "validation": [r["val_loss"] for r in rows],
            },
            run_dir / "loss.png",
            ylabel="binary cross-entropy",
        ).name,
        "auc": plots.plot_history(
            epochs,
            {
                "validation faces": [r["val_auc"] for r in rows],
                "validation videos (mean p_fake)": [r["val_video_auc"] for r in rows],
            },
            run_dir / "auc.png",
            ylabel="ROC AUC",
        ).name,
    }
    return files


def start_tensorflow(seed: int) -> None:
    """Import TensorFlow and make the run repeatable: seeds, deterministic kernels and an ordered
    ``tf.data`` (process-wide from here on)."""
    import keras

    from pipeline.tf_import import import_tensorflow

    tf = import_tensorflow()
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def trained_spec(config: TrainConfig, sha256: str, init_spec: WeightsSpec | None) -> WeightsSpec:
    """The spec of the weights written: output ``p_fake``, the input contract of this training
    (size, resize interpolation, crop framing) and its provenance."""
    init_text = f", fine-tuned from {init_spec.name} ({init_spec.sha256[:16]}...)" if init_spec else ", from scratch"
    return WeightsSpec(
        name=config.spec_name,
        architecture=config.architecture,
        sha256=sha256,
        output="p_fake",
        input_size_px=INPUT_SIZE_PX,
        resize_interpolation=config.resize,
        crop_margin=config.crop_margin,
        threshold=TRAINED_THRESHOLD,
        provenance=f"trained with `python -m pipeline train` on {config.data}{init_text}, "
        f"{datetime.date.today().isoformat()}; see the training section",
        license=config.license,
    )


def clean_metrics(value):
    """``value`` (numbers, dicts, lists) ready for a sidecar's JSON: floats rounded to 6 places,
    non-finite ones ``None``."""
    if isinstance(value, float):
        return None if not math.isfinite(value) else round(value, 6)
    if isinstance(value, dict):
        return {k: clean_metrics(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean_metrics(v) for v in value]
    return value
