"""MesoInception-4 (MesoNet, Afchar et al. 2018) and a loader for MesoNet's Keras 2 files by layer name.

The architecture, as in the paper and MesoNet's ``classifiers.py``: two Inception blocks, each
four parallel branches concatenated on channels, then Meso-4's last two conv blocks and head:

- Inception(a=1, b=4, c=4, d=2) -> BatchNorm -> MaxPool 2, then Inception(2, 4, 4, 2) -> BatchNorm
  -> MaxPool 2. Branch a: 1x1 conv; b: 1x1 then 3x3; c: 1x1 then 3x3 with dilation 2; d: 1x1
  then 3x3 with dilation 3 (ReLU, same padding everywhere).
- Conv 16@5x5 -> BatchNorm -> MaxPool 2, Conv 16@5x5 -> BatchNorm -> MaxPool 4.
- Flatten, Dropout 0.5, Dense 16, LeakyReLU 0.1, Dropout 0.5, Dense 1 sigmoid.

Input (N, 256, 256, 3) RGB scaled x/255; 28,725 parameters.
"""

from __future__ import annotations

from pathlib import Path

from pipeline.errors import WeightsError
from pipeline.tf_import import import_tensorflow

MESOINCEPTION4_PARAMS = 28_725


def build_mesoinception4(input_size_px: int = 256):
    """MesoInception-4 with layers named as Keras 2 named MesoNet's (``conv2d_1`` ..
    ``conv2d_16``, ``batch_normalization_1`` .. ``_4``, ``dense_1``/``_2``) in the order MesoNet
    created them, so :func:`load_keras2_h5_by_name` can fill it from ``MesoInception_*.h5``."""
    import_tensorflow()
    import keras
    from keras import layers

    counters = {"conv2d": 0, "batch_normalization": 0, "dense": 0}

    def name(kind: str) -> str:
        counters[kind] += 1
        return f"{kind}_{counters[kind]}"

    def conv(filters: int, kernel: int, x, dilation: int = 1):
        return layers.Conv2D(
            filters, (kernel, kernel), padding="same", activation="relu", dilation_rate=dilation, name=name("conv2d")
        )(x)

    def inception(x, a: int, b: int, c: int, d: int):
        x1 = conv(a, 1, x)
        x2 = conv(b, 3, conv(b, 1, x))
        x3 = conv(c, 3, conv(c, 1, x), dilation=2)
        x4 = conv(d, 3, conv(d, 1, x), dilation=3)
        return layers.Concatenate(axis=-1)([x1, x2, x3, x4])

    inputs = keras.Input(shape=(input_size_px, input_size_px, 3))
    x = inputs
    for a, b, c, d in ((1, 4, 4, 2), (2, 4, 4, 2)):
        x = inception(x, a, b, c, d)
        x = layers.BatchNormalization(name=name("batch_normalization"))(x)
        x = layers.MaxPooling2D(pool_size=(2, 2), padding="same")(x)
    for pool in (2, 4):
        x = conv(16, 5, x)
        x = layers.BatchNormalization(name=name("batch_normalization"))(x)
        x = layers.MaxPooling2D(pool_size=(pool, pool), padding="same")(x)
    x = layers.Flatten()(x)
    x = layers.Dropout(0.5)(x)
    x = layers.Dense(16, name=name("dense"))(x)
    x = layers.LeakyReLU(negative_slope=0.1)(x)
    x = layers.Dropout(0.5)(x)
    outputs = layers.Dense(1, activation="sigmoid", name=name("dense"))(x)
    return keras.Model(inputs, outputs, name="mesoinception4")


def load_keras2_h5_by_name(model, path: str | Path) -> None:
    """Fill ``model`` from a Keras 2 HDF5 file matching layers by *name*, not by order.

    Keras 2 wrote MesoInception's layers in an order (by graph depth, branches interleaved) that
    differs from the order Keras 3 lists them, so loading by order would put weights into the
    wrong branches; names are unambiguous. Every layer of ``model`` that has weights must be in
    the file with the same shapes. Raises :class:`WeightsError` naming the first mismatch.
    """
    import h5py
    import numpy as np

    path = Path(path)
    try:
        with h5py.File(path, "r") as f:
            group = f["model_weights"] if "model_weights" in f else f
            stored = {}
            for layer_name in group.attrs.get("layer_names", []):
                layer_name = layer_name.decode() if isinstance(layer_name, bytes) else layer_name
                names = [
                    n.decode() if isinstance(n, bytes) else n for n in group[layer_name].attrs.get("weight_names", [])
                ]
                stored[layer_name] = [np.asarray(group[layer_name][n]) for n in names]
    except (OSError, KeyError) as exc:
        raise WeightsError(f"{path} is not a Keras 2 HDF5 weights file: {exc}") from exc
    for layer in model.layers:
        if not layer.weights:
            continue
        if layer.name not in stored:
            raise WeightsError(f"{path} has no layer {layer.name!r}; it holds {sorted(stored)}")
        values = stored[layer.name]
        expected = [tuple(w.shape) for w in layer.weights]
        if [v.shape for v in values] != expected:
            raise WeightsError(
                f"{path}: layer {layer.name} has shapes {[v.shape for v in values]}, expected {expected}"
            )
        layer.set_weights(values)
