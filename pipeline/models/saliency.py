"""Where in a face crop Meso-4 saw manipulation: Grad-CAM saliency maps and overlays.

Method: **Grad-CAM** (Selvaraju et al. 2017) on the network's last convolution. Grad-CAM was chosen
over the alternatives because it fits a small CNN scored on a CPU:

- one forward and one backward pass per batch of crops (occlusion or RISE need tens to hundreds of
  forward passes per crop; SmoothGrad and Integrated Gradients need 20-50 backward passes);
- it is class-discriminative: it follows the *fake* direction only, where plain input gradients
  mix evidence for both classes and are mostly high-frequency noise on a network that reads
  mesoscopic texture;
- the last convolution of Meso-4 (``16@5x5`` on a 32x32 grid for a 256 px crop, before the last
  BatchNorm and the /4 pooling) and of MesoInception-4 (same shape) still keep an 8 px cell,
  fine enough to tell an eye from a mouth or the face border.

The map of a crop is ``ReLU(sum_k alpha_k A_k)`` with ``A_k`` the k-th feature map of the last
``Conv2D`` and ``alpha_k`` the spatial mean of ``d z_fake / d A_k``, where ``z_fake`` is the
network's **fake logit**: the pre-sigmoid output of its last ``Dense`` layer, negated for weights
whose sigmoid is P(real) (the MesoNet files, ``spec.output == "p_real"``), so the map always shows
what pushed ``p_fake`` up. The logit is taken rather than the probability because the sigmoid's
gradient vanishes on confident crops (p near 0 or 1), which are exactly the ones a person looks at.
The map is upsampled bilinearly to the crop size and divided by its maximum, so it is in [0, 1]
per crop; a crop with no positive evidence for "fake" gets an all-zero map.

**Ensembles** (:class:`pipeline.models.ensemble.EnsembleScorer`): the ensemble's logit is
``mean_i z_fake_i / T_i`` (members calibrated with temperature ``T_i``), so its Grad-CAM is the
sum over members of each member's linear map weighted by ``1 / (M T_i)``, taken before the ReLU
and the normalisation. This is Grad-CAM of the number the ensemble reports, with every member's
share in proportion to its pull on that number; picking only the member that "drove" the score
would hide a disagreeing member, and averaging normalised maps would give an unsure member the
same weight as a confident one.

The crops are scaled as the scorer scales them (the spec's ``input_scale``, x/255) and the
forward pass is checked against :meth:`pipeline.models.meso4.MesoScorer.score_p_fake` by the
tests. Models are never built here: the scorer built once is passed in, and the gradient graph
over its Keras model is made once per scorer and kept while the scorer lives.
"""

from __future__ import annotations

import weakref

import numpy as np

from pipeline.tf_import import import_tensorflow

# Crops per gradient call; every call gets exactly this many (the last padded), so the graph is
# traced once per scorer whatever the number of crops.
SALIENCY_BATCH_SIZE = 16
# How much of the colour-mapped saliency an overlay shows (the rest is the crop).
OVERLAY_ALPHA = 0.45

# One gradient graph per Meso-4 scorer, kept while the scorer lives.
_GRAPHS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def keras_model(scorer):
    """The Keras model inside a :class:`pipeline.models.meso4.MesoScorer`."""
    model = getattr(scorer, "model", None)
    return model if model is not None else scorer._model


def last_conv_layer(model):
    """The last ``Conv2D`` layer of ``model`` (in layer order): ``conv2d_3`` of Meso-4,
    ``conv2d_16`` of MesoInception-4. Raises ``ValueError`` when the model has none."""
    import keras

    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    if not convs:
        raise ValueError(f"model {model.name!r} has no Conv2D layer to take Grad-CAM on")
    return convs[-1]


def _output_dense_layer(model):
    """The last ``Dense`` layer: one unit, whose pre-activation is the logit."""
    import keras

    denses = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    if not denses or denses[-1].units != 1:
        raise ValueError(f"model {model.name!r} does not end in a one-unit Dense layer")
    return denses[-1]


class _GradCamGraph:
    """Grad-CAM of one Meso-4 / MesoInception-4 scorer: a traced function from a batch of
    scaled crops to (fake logit (B,), linear Grad-CAM map (B, h, w)) at the last convolution's
    resolution (before ReLU, so ensemble members can be summed)."""

    def __init__(self, scorer):
        tf = import_tensorflow()
        import keras

        model = keras_model(scorer)
        conv, dense = last_conv_layer(model), _output_dense_layer(model)
        # A view over the same layers and weights (no new weights): the last convolution's
        # output and the input of the output layer, whose logit is computed below.
        features = keras.Model(model.inputs, [conv.output, dense.input], name=f"{model.name}_gradcam")
        sign = -1.0 if scorer.spec.output == "p_real" else 1.0
        size = scorer.spec.input_size_px

        def gradcam(batch):
            with tf.GradientTape() as tape:
                conv_maps, penultimate = features(batch, training=False)
                tape.watch(conv_maps)
                z_fake = sign * (tf.matmul(penultimate, dense.kernel) + dense.bias)[:, 0]
            grads = tape.gradient(z_fake, conv_maps)  # (B, h, w, K)
            alpha = tf.reduce_mean(grads, axis=(1, 2), keepdims=True)  # (B, 1, 1, K)
            return z_fake, tf.reduce_sum(alpha * conv_maps, axis=-1)

        self.fn = tf.function(
            gradcam, input_signature=[tf.TensorSpec((SALIENCY_BATCH_SIZE, size, size, 3), tf.float32)]
        )


def _graph_for(scorer) -> _GradCamGraph:
    graph = _GRAPHS.get(scorer)
    if graph is None:
        graph = _GRAPHS[scorer] = _GradCamGraph(scorer)
    return graph


def model_input(scorer, crops_rgb: np.ndarray) -> np.ndarray:
    """``crops_rgb`` uint8 (N, S, S, 3) as the network takes them: float32, scaled as the
    weights spec says (``input_scale`` "x/255", the one scaling a spec may hold). Raises
    ``ValueError`` for another shape than (N, S, S, 3), S = ``spec.input_size_px``."""
    crops_rgb = np.asarray(crops_rgb)
    size = scorer.spec.input_size_px
    if crops_rgb.ndim != 4 or crops_rgb.shape[1:] != (size, size, 3):
        raise ValueError(f"crops must be (N, {size}, {size}, 3), got {crops_rgb.shape}")
    if scorer.spec.input_scale != "x/255":
        raise ValueError(f"unsupported input_scale {scorer.spec.input_scale!r}; supported: 'x/255'")
    return np.divide(crops_rgb, 255.0, dtype=np.float32)


def fake_logits_and_maps(scorer, crops_rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For one Meso-4 / MesoInception-4 scorer: the uncalibrated fake logit of each crop,
    float64 (N,) (``sigmoid`` of it is ``score_p_fake(crops, calibrated=False)``), and the
    linear Grad-CAM maps before ReLU, float32 (N, h, w) at the last convolution's grid (32x32
    for 256 px crops)."""
    tf = import_tensorflow()
    scaled = model_input(scorer, crops_rgb)
    fn = _graph_for(scorer).fn
    logits, maps = [], []
    for start in range(0, len(scaled), SALIENCY_BATCH_SIZE):
        chunk = scaled[start : start + SALIENCY_BATCH_SIZE]
        batch = np.zeros((SALIENCY_BATCH_SIZE, *scaled.shape[1:]), dtype=np.float32)
        batch[: len(chunk)] = chunk
        z, cam = fn(tf.constant(batch))
        logits.append(np.asarray(z, dtype=np.float64)[: len(chunk)])
        maps.append(np.asarray(cam, dtype=np.float32)[: len(chunk)])
    if not logits:
        return np.empty(0, dtype=np.float64), np.empty((0, 0, 0), dtype=np.float32)
    return np.concatenate(logits), np.concatenate(maps)


def _upsample(maps: np.ndarray, size_px: int) -> np.ndarray:
    """(N, h, w) -> (N, size_px, size_px) bilinear (cv2, half-pixel centres)."""
    import cv2

    return np.stack([cv2.resize(m, (size_px, size_px), interpolation=cv2.INTER_LINEAR) for m in maps]).astype(
        np.float32
    )


def saliency_maps(scorer, crops_rgb: np.ndarray) -> np.ndarray:
    """Grad-CAM saliency of the fake direction for each crop.

    ``scorer``: a :class:`pipeline.models.meso4.MesoScorer` (Meso-4 or MesoInception-4) or a
    :class:`pipeline.models.ensemble.EnsembleScorer` (members' linear maps summed with weights
    ``1 / (M T_i)``, see the module docstring), built once by the caller. ``crops_rgb``: uint8
    (N, S, S, 3) RGB exactly as the scorer receives them, S = ``spec.input_size_px``. Returns
    float32 (N, S, S) in [0, 1], 1 where the crop pushed ``p_fake`` up most; all zeros for a crop
    with no positive evidence for "fake". Raises ``ValueError`` for crops of another shape.
    """
    size = scorer.spec.input_size_px
    crops_rgb = np.asarray(crops_rgb)
    if crops_rgb.ndim != 4 or crops_rgb.shape[1:] != (size, size, 3):
        raise ValueError(f"crops must be (N, {size}, {size}, 3), got {crops_rgb.shape}")
    if len(crops_rgb) == 0:
        return np.empty((0, size, size), dtype=np.float32)
    members = getattr(scorer, "members", None)
    if members is None:
        linear = _upsample(fake_logits_and_maps(scorer, crops_rgb)[1], size)
    else:
        temperatures = [
            t if t is not None else member.spec.temperature for member, t in zip(members, scorer.temperatures)
        ]
        linear = np.zeros((len(crops_rgb), size, size), dtype=np.float32)
        for member, temperature in zip(members, temperatures):
            linear += _upsample(fake_logits_and_maps(member, crops_rgb)[1], size) / (len(members) * temperature)
    cam = np.maximum(linear, 0.0)
    peak = cam.reshape(len(cam), -1).max(axis=1)
    scale = np.divide(1.0, peak, out=np.zeros_like(peak), where=peak > 0)
    return np.clip(cam * scale[:, None, None], 0.0, 1.0).astype(np.float32)


def overlay_saliency(crop_rgb: np.ndarray, saliency: np.ndarray, *, alpha: float = OVERLAY_ALPHA) -> np.ndarray:
    """The crop with its saliency map drawn over it in the "jet" colour map (blue = none, red =
    most), blended ``alpha`` map to ``1 - alpha`` crop.

    ``crop_rgb``: uint8 (S, S, 3) RGB; ``saliency``: float (S, S) in [0, 1] (from
    :func:`saliency_maps`). Returns uint8 (S, S, 3) RGB. Raises ``ValueError`` when the shapes
    do not match or ``alpha`` is outside [0, 1].
    """
    from matplotlib import colormaps

    crop_rgb = np.asarray(crop_rgb)
    saliency = np.asarray(saliency, dtype=np.float32)
    if crop_rgb.ndim != 3 or crop_rgb.shape[2] != 3 or saliency.shape != crop_rgb.shape[:2]:
        raise ValueError(f"need crop (H, W, 3) and saliency (H, W), got {crop_rgb.shape} and {saliency.shape}")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    heat_rgb = colormaps["jet"](np.clip(saliency, 0.0, 1.0))[..., :3] * 255.0
    blended = (1.0 - alpha) * crop_rgb.astype(np.float32) + alpha * heat_rgb
    return np.clip(np.rint(blended), 0, 255).astype(np.uint8)
