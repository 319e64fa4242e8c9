"""Models: ``spec`` (each file's spec: input contract, crop framing, output meaning, threshold,
calibration), ``weights`` (where files are found, and the spec of each), ``ensemble_file`` (the
ensemble file format), ``registry`` (every architecture a spec may name and how it is loaded),
``scorer`` (the :class:`~pipeline.models.scorer.Scorer` protocol: what every scorer offers),
``meso4`` (Meso-4 and the scorer that reports ``p_fake``), ``mesoinception`` (MesoInception-4),
``backbone`` / ``head`` / ``backbone_scorer`` (a frozen ONNX backbone with a NumPy head),
``ensemble``, ``saliency`` (Grad-CAM or occlusion maps), ``calibration`` (temperature scaling,
ECE), and ``factory``: the one place MTCNN and the scorers are built."""
