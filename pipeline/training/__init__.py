"""Datasets and models of our own: ``extract`` (face datasets from labelled clips, cropped as the
scanner crops), ``dataset`` (reading face sets, splits by source), ``train`` (one face set),
``mix`` and ``train_mix`` (several), ``common`` (what the two trainings share), ``evaluate``,
``metrics`` (scikit-learn plus EER and per-video means) and ``plots``."""
