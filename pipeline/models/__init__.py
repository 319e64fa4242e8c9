"""Models: ``weights`` (each file's spec: input contract, crop framing, output meaning,
threshold, calibration; where files are found), ``meso4`` (Meso-4 and the scorer that reports
``p_fake``), ``mesoinception`` (MesoInception-4), ``calibration`` (temperature scaling, ECE), and
``factory``: the one place MTCNN and the scorers are built."""
