"""The scanner's face loop: a clip's frames -> detection and selection -> faces per frame.

One loop serves everything that needs the faces of a clip: the scanner
(:func:`pipeline.scan.analyze.analyze_faces` crops and scores what it yields), the web app's
still images (through the scanner), and the dataset builder
(:mod:`pipeline.training.extract` crops and filters what it yields, with no scorer). So a face
in a dataset is found, selected, tracked and cropped exactly as the scanner does it.

Frames are detected in batches of ``DetectorConfig.batch_size`` by a
:class:`pipeline.faces.follow.FaceFollower` (whole frames, or regions around known faces in
between full-frame checks, selection by the detector config's thresholds). The loop keeps no
frame past its batch, only the boxes, from which :meth:`FaceLoop.track_ids` links the tracks
once the clip is done (:func:`pipeline.faces.tracks.link_tracks`).
"""

from __future__ import annotations

import dataclasses
import itertools
import time
from collections.abc import Iterator

from pipeline.faces.boxes import FaceBox
from pipeline.faces.detect import FaceDetector
from pipeline.faces.follow import FaceFollower
from pipeline.faces.tracks import link_tracks
from pipeline.video.decode import Frame


@dataclasses.dataclass(frozen=True)
class FrameFaces:
    """One sampled frame and the faces selected in it: full-resolution pixels, best first;
    ``()`` when none."""

    frame: Frame
    faces: tuple[FaceBox, ...] = ()


def batched(frames: Iterator[Frame], n: int) -> Iterator[list[Frame]]:
    """Frames in lists of ``n`` (the last one shorter)."""
    while chunk := list(itertools.islice(frames, n)):
        yield chunk


def add_elapsed(timings: dict[str, float], key: str, started_s: float) -> None:
    """Add the seconds since ``started_s`` (a ``time.perf_counter()`` value) to ``timings[key]``."""
    timings[key] = timings.get(key, 0.0) + time.perf_counter() - started_s


class FaceLoop:
    """One clip's faces, a detection batch at a time; build one per clip and iterate it once.

    ``frames``: the clip's sampled frames in time order (e.g. from
    :func:`pipeline.video.decode.iter_frames`). ``detector``: MTCNN with the detection and
    selection settings (its ``config``). ``timings``, if given, accumulates ``decode_wait_s``
    (waiting for frames the read-ahead thread did not have ready) and ``detect_s``.

    Iterating yields one ``list[FrameFaces]`` per detection batch (so a caller can act at the
    same batch boundaries whatever it does per face). Afterwards: ``n_frames`` (frames seen),
    ``follower.stats`` (frames by how they were searched), ``follower.selection`` (faces
    confident / dropped as too small) and :meth:`track_ids`.
    """

    def __init__(self, frames: Iterator[Frame], detector: FaceDetector, *, timings: dict[str, float] | None = None):
        self._frames = frames
        self._batch_size = detector.config.batch_size
        self._timings = timings if timings is not None else {}
        self._boxes_per_sample: list[list[tuple[float, float, float, float]]] = []
        self.follower = FaceFollower(detector)
        self.n_frames = 0

    def __iter__(self) -> Iterator[list[FrameFaces]]:
        chunks = batched(self._frames, self._batch_size)
        while True:
            started = time.perf_counter()
            chunk = next(chunks, None)
            add_elapsed(self._timings, "decode_wait_s", started)
            if chunk is None:
                return
            started = time.perf_counter()
            detections = self.follower.detect([f.rgb for f in chunk], [f.timestamp_s for f in chunk])
            add_elapsed(self._timings, "detect_s", started)
            self.n_frames += len(chunk)
            self._boxes_per_sample.extend([face.box_xyxy for face in faces] for faces in detections)
            yield [FrameFaces(frame, tuple(faces)) for frame, faces in zip(chunk, detections)]

    def track_ids(self) -> list[int]:
        """A track id per face yielded so far, in the order yielded (frame by frame, best
        first within a frame); ids count from 0 in order of first appearance."""
        return list(itertools.chain.from_iterable(link_tracks(self._boxes_per_sample)))
