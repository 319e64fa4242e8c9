"""The scanner: ``analyze`` (one clip: probe, decode, faces, crops, scores, one row), ``face_loop``
(the detect-select-track loop shared with the dataset builder), ``aggregate`` (face scores to
one ``p_fake`` per clip), ``records`` (the output rows), ``sink`` (resumable CSV), ``batch``
(many clips, in-process or a pool of processes) and ``dask_engine`` (the same on a Dask cluster)."""
