"""A small head on backbone features: standardise, then a multilayer perceptron, out comes the fake logit.

A head file is a NumPy ``.npz`` with ``mean`` and ``scale`` (F,) (the training features' standardisation) and
per layer ``W<k>`` (in, out) and ``b<k>`` (out,), ReLU between layers, one output unit: the logit of
``p_fake`` (1 = fake). It is fitted on cached features (:mod:`pipeline.training.train_head`, scikit-learn's
``MLPClassifier`` or ``LogisticRegression``) and run here in NumPy: nothing but the backbone needs a runtime.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from pipeline.errors import WeightsError


@dataclasses.dataclass(frozen=True, eq=False)
class Head:
    """Standardisation (``mean``, ``scale``: float32 (F,)) and layers (``weights[k]``: (in, out), ``biases[k]``:
    (out,)); the last layer has one output."""

    mean: np.ndarray
    scale: np.ndarray
    weights: tuple[np.ndarray, ...]
    biases: tuple[np.ndarray, ...]

    def __post_init__(self) -> None:
        if not self.weights or len(self.weights) != len(self.biases):
            raise ValueError("a head needs at least one layer and one bias per layer")
        width = self.mean.shape[0]
        if self.scale.shape != (width,):
            raise ValueError(f"scale must be ({width},), got {self.scale.shape}")
        for k, (w, b) in enumerate(zip(self.weights, self.biases)):
            if w.ndim != 2 or w.shape[0] != width or b.shape != (w.shape[1],):
                raise ValueError(f"layer {k}: weights {w.shape} and bias {b.shape} do not follow width {width}")
            width = w.shape[1]
        if width != 1:
            raise ValueError(f"the last layer must have one output (the fake logit), got {width}")

    @property
    def n_features(self) -> int:
        return int(self.mean.shape[0])

    def logit(self, features: np.ndarray) -> np.ndarray:
        """The fake logit, float64 (N,), of float (N, F) features."""
        x = (np.asarray(features, dtype=np.float32) - self.mean) / self.scale
        for k, (w, b) in enumerate(zip(self.weights, self.biases)):
            x = x @ w + b
            if k < len(self.weights) - 1:
                np.maximum(x, 0.0, out=x)
        return x[:, 0].astype(np.float64)

    def save(self, path: str | Path) -> None:
        arrays = {"mean": self.mean, "scale": self.scale}
        for k, (w, b) in enumerate(zip(self.weights, self.biases)):
            arrays[f"W{k}"], arrays[f"b{k}"] = w, b
        with open(path, "wb") as f:
            # numpy's stub types savez's allow_pickle keyword, so a **dict of arrays could seem to fill it
            np.savez(f, **{k: np.asarray(v, dtype=np.float32) for k, v in arrays.items()})  # type: ignore[arg-type]

    @classmethod
    def load(cls, path: str | Path) -> Head:
        """Read a head file. Raises :class:`WeightsError` for a file that is not one."""
        try:
            with np.load(path, allow_pickle=False) as data:
                layers = sorted(int(k[1:]) for k in data.files if k.startswith("W"))
                return cls(
                    data["mean"].astype(np.float32),
                    data["scale"].astype(np.float32),
                    tuple(data[f"W{k}"].astype(np.float32) for k in layers),
                    tuple(data[f"b{k}"].astype(np.float32) for k in layers),
                )
        except (OSError, KeyError, ValueError) as exc:
            raise WeightsError(f"{path} is not a head file (mean, scale, W0, b0, ...): {exc}") from exc

    @classmethod
    def from_sklearn(cls, mean: np.ndarray, scale: np.ndarray, model) -> Head:
        """From a fitted scikit-learn ``MLPClassifier`` (ReLU) or ``LogisticRegression`` whose classes are 0/1."""
        if hasattr(model, "coefs_"):
            if getattr(model, "activation", "relu") != "relu":
                raise ValueError("only ReLU MLPs are supported")
            weights, biases = tuple(model.coefs_), tuple(model.intercepts_)
        else:
            weights, biases = (model.coef_.T,), (model.intercept_,)
        f32 = lambda a: np.asarray(a, dtype=np.float32)  # noqa: E731
        return cls(f32(mean), f32(scale), tuple(f32(w) for w in weights), tuple(f32(b) for b in biases))
