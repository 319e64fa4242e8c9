"""The scanner: ``analyze`` (one clip: probe, decode, faces, crops, scores, one row), ``face_loop``
(the detect-select-track loop shared with the dataset builder), ``aggregate`` (face scores to
one ``p_fake`` per clip), ``records`` (the output rows), ``sink`` (resumable CSV), ``batch``
(many clips into one output) and ``engines`` (what scores them: in this process, a pool of
processes, or a Dask cluster, behind one interface)."""
