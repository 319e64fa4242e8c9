"""Meso-4 (MesoNet, Afchar et al. 2018) and the scorer that turns face crops into ``p_fake``."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeline.errors import WeightsError
from pipeline.models.weights import WeightsSpec, spec_for_weights
from pipeline.tf_import import import_tensorflow

MESO4_PARAMS = 28_073
# Crops per Meso-4 call. Every call gets exactly this many (the last batch is padded), so the
# model is traced once and memory is the same for a clip with 3 faces or 3,000: a batch of 16
# scores about 460 crops/s on 2 cores (64: 540/s, but 210 MB more memory).
SCORE_BATCH_SIZE = 16


def build_meso4(input_size_px: int = 256):
    """Meso-4 exactly as in MesoNet: four Conv(ReLU, same) -> BatchNorm -> MaxPool blocks
    (8@3x3 /2, 8@5x5 /2, 16@5x5 /2, 16@5x5 /4), Flatten, Dropout 0.5, Dense 16, LeakyReLU 0.1,
    Dropout 0.5, Dense 1 sigmoid. 28,073 parameters. Layer order matches the MesoNet ``.h5``
    files, which are loaded by order."""
    import_tensorflow()
    import keras
    from keras import layers

    inputs = keras.Input(shape=(input_size_px, input_size_px, 3))
    x = inputs
    for filters, kernel, pool in ((8, 3, 2), (8, 5, 2), (16, 5, 2), (16, 5, 4)):
        x = layers.Conv2D(filters, (kernel, kernel), padding="same", activation="relu")(x)
        x = layers.BatchNormalization()(x)
        x = layers.MaxPooling2D(pool_size=(pool, pool), padding="same")(x)
    x = layers.Flatten()(x)
    x = layers.Dropout(0.5)(x)
    x = layers.Dense(16)(x)
    x = layers.LeakyReLU(negative_slope=0.1)(x)
    x = layers.Dropout(0.5)(x)
    outputs = layers.Dense(1, activation="sigmoid")(x)
    return keras.Model(inputs, outputs, name="meso4")


def build_model(architecture: str, input_size_px: int = 256):
    """The Keras model an architecture name in a weights spec stands for (``meso4`` or ``mesoinception4``
    of :mod:`pipeline.models.registry`; the other registered families are not Keras networks)."""
    if architecture == "meso4":
        return build_meso4(input_size_px)
    if architecture == "mesoinception4":
        from pipeline.models.mesoinception import build_mesoinception4

        return build_mesoinception4(input_size_px)
    if architecture == "ensemble":
        raise WeightsError("an ensemble is not one network: load it with pipeline.models.factory.load_scorer")
    raise WeightsError(
        f"architecture {architecture!r} is not a Keras network built here; this module builds: meso4, mesoinception4"
    )


def load_weights_into(model, architecture: str, path: Path) -> None:
    """Load ``path`` into ``model``: Keras 3 ``.weights.h5``, or a Keras 2 ``.h5`` (Meso-4 by
    layer order, as the MesoNet files and ours are written; MesoInception-4 by layer name,
    since Keras 2 stored its branches in another order). Raises :class:`WeightsError`."""
    try:
        if architecture == "mesoinception4" and not str(path).endswith(".weights.h5"):
            from pipeline.models.mesoinception import load_keras2_h5_by_name

            load_keras2_h5_by_name(model, path)
        else:
            model.load_weights(str(path))
    except WeightsError:
        raise
    except Exception as exc:  # h5py/keras raise many types for a wrong file
        from pipeline.models.registry import display_name

        shown = display_name(architecture)
        raise WeightsError(f"{path} is not loadable as {shown} weights: {exc}") from exc


class MesoScorer:
    """Scores face crops with Meso-4 and reports ``p_fake`` whatever the file's own polarity.

    Build once per process with :meth:`load` and pass it in.
    """

    def __init__(self, model, spec: WeightsSpec, weights_path: Path | None = None):
        tf = import_tensorflow()
        self._model = model
        self.spec = spec
        self.weights_path = weights_path
        size = spec.input_size_px
        self._predict = tf.function(
            lambda crops: model(crops, training=False),
            input_signature=[tf.TensorSpec((SCORE_BATCH_SIZE, size, size, 3), tf.float32)],
        )

    @property
    def name(self) -> str:
        return self.spec.name

    @classmethod
    def load(cls, weights_path: str | Path) -> MesoScorer:
        """Build the architecture ``weights_path``'s spec names (Meso-4 or MesoInception-4) and
        load the file (:func:`load_weights_into`). Raises :class:`WeightsError` if the file does
        not fit that architecture."""
        path = Path(weights_path)
        spec = spec_for_weights(path)
        model = build_model(spec.architecture, spec.input_size_px)
        load_weights_into(model, spec.architecture, path)
        return cls(model, spec, path)

    def score_p_fake(self, crops_rgb: np.ndarray, calibrated: bool = True) -> np.ndarray:
        """``p_fake`` for a stack of crops.

        ``crops_rgb``: uint8 (N, S, S, 3) RGB, S = ``spec.input_size_px``. Returns float64 (N,)
        in [0, 1], calibrated with the spec's ``temperature`` unless ``calibrated`` is False
        (temperature 1 changes nothing). One model call per ``SCORE_BATCH_SIZE`` crops, the last
        one padded.
        """
        from pipeline.faces.crop import check_crops

        size = self.spec.input_size_px
        crops_rgb = check_crops(crops_rgb, size)
        if len(crops_rgb) == 0:
            return np.empty(0, dtype=np.float64)
        outputs = []
        for start in range(0, len(crops_rgb), SCORE_BATCH_SIZE):
            chunk = crops_rgb[start : start + SCORE_BATCH_SIZE]
            batch = np.zeros((SCORE_BATCH_SIZE, size, size, 3), dtype=np.float32)
            np.divide(chunk, 255.0, out=batch[: len(chunk)], dtype=np.float32)
            p_out = np.asarray(self._predict(batch), dtype=np.float64).reshape(-1)
            outputs.append(p_out[: len(chunk)])
        p = np.clip(np.concatenate(outputs), 0.0, 1.0)
        p_fake = 1.0 - p if self.spec.output == "p_real" else p
        if calibrated and self.spec.temperature != 1.0:
            from pipeline.models.calibration import apply_temperature

            p_fake = apply_temperature(p_fake, self.spec.temperature)
        return p_fake
