"""Where in a face crop the model saw manipulation: saliency maps (Grad-CAM for the Keras models, occlusion
for the others) and overlays.

Which method a scorer gets is its architecture's ``saliency`` in :mod:`pipeline.models.registry`
(:func:`saliency_method`); :func:`saliency_maps` is the one entry point and returns the same thing for
both: float32 (N, S, S) in [0, 1] per crop, so the evidence writers and the web app do not care which.

Method 1, for Meso-4 and MesoInception-4: **Grad-CAM** (Selvaraju et al. 2017) on the network's last
convolution. Grad-CAM was chosen over the alternatives because it fits a small CNN scored on a CPU:

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

Method 2, for the backbone family (a frozen ONNX backbone and a NumPy head,
:class:`pipeline.models.backbone_scorer.BackboneScorer`): **occlusion** (Zeiler & Fergus 2014,
"Visualizing and Understanding Convolutional Networks"). onnxruntime gives no gradients, and occlusion
needs none: only the scorer's ``logit`` (the uncalibrated fake logit). Each crop is cut into a
:data:`OCCLUSION_GRID` x :data:`OCCLUSION_GRID` grid (stride ``S / 7``: 32 px at 224 px); for each cell a
copy of the crop is greyed (value :data:`OCCLUSION_GREY`, which the EfficientNet-Lite scaling
``(x - 127) / 128`` maps to 0) over a square :data:`OCCLUSION_PATCH_CELLS` cells wide centred on that
cell, so neighbouring patches overlap by half. The 49 copies and the crop itself go through
``scorer.logit`` in one batch; each patch's evidence is ``ReLU(z_crop - z_occluded)`` (how much hiding it
lowered the fake logit; a patch whose hiding *raised* it counts as none, so it cannot cancel its
neighbour), accumulated on the half-cell grid (14 x 14) over every patch covering each half cell and
averaged by the number of patches covering it, then upsampled bilinearly to the crop size and divided by
its maximum, as for Grad-CAM. **Cost: 49 forward passes per crop** (plus the crop itself): about 1.4 s
per crop for EfficientNet-Lite0 at 224 px on one core of a 2-core machine (measured), against one pass
to score it, so it is made only for the few crops shown as evidence. The map is coarser than
Grad-CAM's (a 32 px cell at 224 px): it says which region of the face, not which pixels.

**Ensembles** (:class:`pipeline.models.ensemble.EnsembleScorer`): the ensemble's logit is
``mean_i z_fake_i / T_i`` (members calibrated with temperature ``T_i``). When every member takes
Grad-CAM, the ensemble's Grad-CAM is the sum over members of each member's linear map weighted by
``1 / (M T_i)``, taken before the ReLU and the normalisation. This is Grad-CAM of the number the
ensemble reports, with every member's share in proportion to its pull on that number; picking only the
member that "drove" the score would hide a disagreeing member, and averaging normalised maps would give
an unsure member the same weight as a confident one. When any member takes occlusion, the whole ensemble
does, on that same ensemble logit (members without ``logit`` give theirs as ``logit(p_fake)``, uncalibrated).

For Grad-CAM the crops are scaled as the scorer scales them (the spec's ``input_scale``, x/255) and the
forward pass is checked against :meth:`pipeline.models.meso4.MesoScorer.score_p_fake` by the
tests; occlusion hands uint8 crops to the scorer, which scales them itself. Models are never built
here: the scorer built once is passed in, and the gradient graph over its Keras model is made once per
scorer and kept while the scorer lives.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, cast

import numpy as np

from pipeline.models.scorer import Scorer
from pipeline.tf_import import import_tensorflow

if TYPE_CHECKING:
    from pipeline.models.ensemble import EnsembleScorer
    from pipeline.models.meso4 import MesoScorer

# Crops per gradient call; every call gets exactly this many (the last padded), so the graph is
# traced once per scorer whatever the number of crops.
SALIENCY_BATCH_SIZE = 16
# How much of the colour-mapped saliency an overlay shows (the rest is the crop).
OVERLAY_ALPHA = 0.45
# Occlusion (see the module docstring): a 7x7 grid of cells, each greyed over a patch 2 cells wide centred
# on it (so patches overlap by half), with the grey that the (x - 127) / 128 scaling maps to 0.
OCCLUSION_GRID = 7
OCCLUSION_PATCH_CELLS = 2
OCCLUSION_GREY = 127
SALIENCY_METHODS = ("grad-cam", "occlusion")

# One gradient graph per Keras scorer (Meso-4, MesoInception-4), kept while the scorer lives.
_GRAPHS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def keras_model(scorer: Scorer):
    """The Keras model inside a :class:`pipeline.models.meso4.MesoScorer` (Grad-CAM's scorers only; the
    backbone family has none and takes occlusion, see :func:`saliency_method`)."""
    model = getattr(scorer, "model", None)
    return model if model is not None else cast("MesoScorer", scorer)._model


def _ensemble(scorer: Scorer) -> EnsembleScorer | None:
    """``scorer`` as an ensemble when it is one (it has ``members``, and ``temperatures`` beside them: a
    :class:`pipeline.models.ensemble.EnsembleScorer` or anything shaped like one), else ``None``."""
    return cast("EnsembleScorer", scorer) if getattr(scorer, "members", None) is not None else None


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

    def __init__(self, scorer: Scorer):
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


def _graph_for(scorer: Scorer) -> _GradCamGraph:
    graph = _GRAPHS.get(scorer)
    if graph is None:
        graph = _GRAPHS[scorer] = _GradCamGraph(scorer)
    return graph


def model_input(scorer: Scorer, crops_rgb: np.ndarray) -> np.ndarray:
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


def fake_logits_and_maps(scorer: Scorer, crops_rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
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


def _normalise(evidence: np.ndarray) -> np.ndarray:
    """(N, S, S) evidence -> ReLU, divided by each map's maximum: float32 in [0, 1], all zeros where the
    map has no positive value."""
    cam = np.maximum(evidence, 0.0)
    peak = cam.reshape(len(cam), -1).max(axis=1)
    scale = np.divide(1.0, peak, out=np.zeros_like(peak), where=peak > 0)
    return np.clip(cam * scale[:, None, None], 0.0, 1.0).astype(np.float32)


def _has_keras_model(scorer: Scorer) -> bool:
    return getattr(scorer, "model", None) is not None or getattr(scorer, "_model", None) is not None


def saliency_method(scorer: Scorer) -> str:
    """How :func:`saliency_maps` explains ``scorer``: ``grad-cam`` or ``occlusion``.

    An ensemble takes Grad-CAM when every member does, else occlusion (of the ensemble's logit). Any
    other scorer takes the ``saliency`` of its spec's architecture in :mod:`pipeline.models.registry`;
    a scorer whose architecture is not registered takes occlusion when it has ``logit`` and no Keras
    model, else Grad-CAM."""
    from pipeline.models.registry import get_architecture, is_registered

    ensemble = _ensemble(scorer)
    if ensemble is not None:
        return "grad-cam" if all(saliency_method(m) == "grad-cam" for m in ensemble.members) else "occlusion"
    architecture = getattr(scorer.spec, "architecture", None)
    if architecture is not None and is_registered(architecture):
        return get_architecture(architecture).saliency
    return "occlusion" if hasattr(scorer, "logit") and not _has_keras_model(scorer) else "grad-cam"


def fake_logit_function(scorer: Scorer) -> Callable[[np.ndarray], np.ndarray]:
    """``f(crops_rgb uint8 (N, S, S, 3)) -> float64 (N,)``: the fake logit occlusion takes the
    difference of. A scorer's own ``logit`` (uncalibrated: the map is divided by its maximum, so a
    temperature would change nothing); for an ensemble the logit it reports, ``mean_i z_i / T_i``
    (the ensemble file's temperature or else the member's own, as
    :meth:`pipeline.models.ensemble.EnsembleScorer.member_p_fake` applies them); for a scorer with
    neither, ``logit(score_p_fake(crops, calibrated=False))``."""
    from pipeline.models.calibration import logit

    ensemble = _ensemble(scorer)
    if ensemble is not None:
        parts = [
            (fake_logit_function(m), t if t is not None else m.spec.temperature)
            for m, t in zip(ensemble.members, ensemble.temperatures)
        ]

        def mean_logit(crops: np.ndarray) -> np.ndarray:
            return np.asarray(sum(f(crops) / t for f, t in parts) / len(parts))

        return mean_logit
    if hasattr(scorer, "logit"):
        return scorer.logit
    return lambda crops: logit(scorer.score_p_fake(crops, calibrated=False))


def occlusion_windows(size_px: int) -> list[tuple[tuple[int, int, int, int], tuple[int, int, int, int]]]:
    """The occlusion patches of an ``size_px`` crop, row by row: ``OCCLUSION_GRID ** 2`` pairs of
    ``(y0, y1, x0, x1)`` (pixels, end excluded) and the same bounds on the half-cell grid
    (``2 * OCCLUSION_GRID`` half cells a side; edges rounded to whole pixels). Patch ``(i, j)`` is
    ``OCCLUSION_PATCH_CELLS`` cells wide, centred on cell ``(i, j)`` and clipped to the crop."""
    halves = 2 * OCCLUSION_GRID
    edges_px = np.rint(np.arange(halves + 1) * size_px / halves).astype(int)
    spans = []
    for i in range(OCCLUSION_GRID):  # cell i's centre is half-cell edge 2i + 1
        lo, hi = max(0, 2 * i + 1 - OCCLUSION_PATCH_CELLS), min(halves, 2 * i + 1 + OCCLUSION_PATCH_CELLS)
        spans.append((lo, hi))
    return [
        ((edges_px[r0], edges_px[r1], edges_px[c0], edges_px[c1]), (r0, r1, c0, c1))
        for r0, r1 in spans
        for c0, c1 in spans
    ]


def occlusion_maps(scorer: Scorer, crops_rgb: np.ndarray) -> np.ndarray:
    """Occlusion saliency of the fake logit for each crop (see the module docstring).

    ``scorer``: anything :func:`fake_logit_function` takes (a
    :class:`pipeline.models.backbone_scorer.BackboneScorer`, an ensemble, ...); ``crops_rgb``: uint8
    (N, S, S, 3) RGB. Per crop, one call of the logit on ``1 + OCCLUSION_GRID ** 2`` images (the crop,
    then its occluded copies). Returns float32 (N, S, S) in [0, 1]; all zeros for a crop where no patch
    lowered the logit."""
    crops_rgb = np.asarray(crops_rgb)
    size = crops_rgb.shape[1]
    fake_logit = fake_logit_function(scorer)
    windows = occlusion_windows(size)
    halves = 2 * OCCLUSION_GRID
    covered = np.zeros((halves, halves), dtype=np.float32)
    for _, (r0, r1, c0, c1) in windows:
        covered[r0:r1, c0:c1] += 1.0
    coarse = np.zeros((len(crops_rgb), halves, halves), dtype=np.float32)
    for n, crop in enumerate(crops_rgb):
        batch = np.repeat(crop[None], 1 + len(windows), axis=0)
        for k, ((y0, y1, x0, x1), _) in enumerate(windows, start=1):
            batch[k, y0:y1, x0:x1] = OCCLUSION_GREY
        z = np.asarray(fake_logit(batch), dtype=np.float64).reshape(-1)
        drop = np.maximum(z[0] - z[1:], 0.0)
        for d, (_, (r0, r1, c0, c1)) in zip(drop, windows):
            coarse[n, r0:r1, c0:c1] += d
    return _normalise(_upsample(coarse / covered, size))


def saliency_maps(scorer: Scorer, crops_rgb: np.ndarray) -> np.ndarray:
    """Saliency of the fake direction for each crop, by :func:`saliency_method`: Grad-CAM or occlusion.

    ``scorer``: a :class:`pipeline.models.meso4.MesoScorer` (Meso-4 or MesoInception-4: Grad-CAM), a
    :class:`pipeline.models.backbone_scorer.BackboneScorer` (occlusion, :func:`occlusion_maps`) or a
    :class:`pipeline.models.ensemble.EnsembleScorer` (members' linear Grad-CAM maps summed with weights
    ``1 / (M T_i)``, or occlusion of the ensemble's logit, see the module docstring), built once by the
    caller. ``crops_rgb``: uint8 (N, S, S, 3) RGB exactly as the scorer receives them, S =
    ``spec.input_size_px``. Returns float32 (N, S, S) in [0, 1], 1 where the crop pushed ``p_fake`` up
    most; all zeros for a crop with no positive evidence for "fake". Raises ``ValueError`` for crops of
    another shape.
    """
    size = scorer.spec.input_size_px
    crops_rgb = np.asarray(crops_rgb)
    if crops_rgb.ndim != 4 or crops_rgb.shape[1:] != (size, size, 3):
        raise ValueError(f"crops must be (N, {size}, {size}, 3), got {crops_rgb.shape}")
    if len(crops_rgb) == 0:
        return np.empty((0, size, size), dtype=np.float32)
    if saliency_method(scorer) == "occlusion":
        return occlusion_maps(scorer, crops_rgb)
    ensemble = _ensemble(scorer)
    if ensemble is None:
        linear = _upsample(fake_logits_and_maps(scorer, crops_rgb)[1], size)
    else:
        members = ensemble.members
        temperatures = [
            t if t is not None else member.spec.temperature for member, t in zip(members, ensemble.temperatures)
        ]
        linear = np.zeros((len(crops_rgb), size, size), dtype=np.float32)
        for member, temperature in zip(members, temperatures):
            linear += _upsample(fake_logits_and_maps(member, crops_rgb)[1], size) / (len(members) * temperature)
    return _normalise(linear)


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
