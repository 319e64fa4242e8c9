"""Faces in frames: ``boxes`` (our box type, ``xyxy`` pixels), ``detect`` (MTCNN: every face),
``detector`` (the :class:`~pipeline.faces.detector.Detector` protocol: what every detector offers),
``select`` (confidence and size rules), ``follow`` (search around known faces between whole-frame
checks), ``crop`` (the square crop shared by the scanner and the dataset builder), ``tracks``
(faces linked into one track per person), ``pose`` and ``quality`` (dataset filters).
Depends on :mod:`pipeline.video` only through frame records."""
