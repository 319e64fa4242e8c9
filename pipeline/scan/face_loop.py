"""The scanner's face loop: a clip's frames -> detection and selection -> faces per frame.

One loop serves everything that needs the faces of a clip: the scanner
(:func:`pipeline.scan.analyze.analyze_faces` crops and scores what it yields), the web app's
still images (through the scanner), and the dataset builder
(:mod:`pipeline.training.extract` crops and filters what it yields, with no scorer). So a face
in a dataset is found, selected, tracked and cropped exactly as the scanner does it.

Frames are detected in batches of ``DetectorConfig.batch_size`` by a
:class:`pipeline.faces.follow.FaceFollower` (whole frames, or regions around known faces in
between full-frame checks, selection by the detector config's thresholds). The loop keeps no
frame past its batch, only the boxes (and, given a
:class:`pipeline.faces.identity.FaceDescriber`, each face's aligned chip and grey thumbnail),
from which :meth:`FaceLoop.track_ids` links the tracks once the clip is done
(:func:`pipeline.faces.tracks.link_tracks`: by position within shots, checked and joined by
face embeddings) and :meth:`FaceLoop.static_tracks` says which tracks never move nor change.
"""

from __future__ import annotations

import dataclasses
import itertools
import time
from collections.abc import Iterator

from pipeline.faces.boxes import FaceBox
from pipeline.faces.detector import Detector
from pipeline.faces.follow import FaceFollower
from pipeline.faces.identity import FaceDescriber, thumbnail
from pipeline.faces.tracks import is_static, link_tracks, motion_stats
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


# Aligned chips wait for the tracker as JPEG (about 7 KB instead of 66 KB raw): a clip sampled
# densely keeps thousands. Measured on ffpp_original_634: the embedding of a quality-95 JPEG chip
# is within 0.025 of the raw chip's (the same-person limit is 0.45).
CHIP_JPEG_QUALITY = 95


def _pack(chip_rgb) -> bytes:
    import cv2

    ok, data = cv2.imencode(".jpg", chip_rgb[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, CHIP_JPEG_QUALITY])
    if not ok:  # pragma: no cover - cv2 encodes any uint8 image
        raise ValueError("could not encode a face chip")
    return data.tobytes()


def _unpack(data: bytes):
    import cv2
    import numpy as np

    chip = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if chip is None:  # pragma: no cover - _pack encoded it
        raise ValueError("could not decode a face chip")
    return np.ascontiguousarray(chip[:, :, ::-1])


class FaceLoop:
    """One clip's faces, a detection batch at a time; build one per clip and iterate it once.

    ``frames``: the clip's sampled frames in time order (e.g. from
    :func:`pipeline.video.decode.iter_frames`). ``detector``: MTCNN with the detection and
    selection settings (its ``config``). ``timings``, if given, accumulates ``decode_wait_s``
    (waiting for frames the read-ahead thread did not have ready), ``detect_s`` and, with a
    ``describer``, ``identity_s`` (aligning faces, and embedding those the tracker asks about).
    ``cut_times_s``: where new shots start, in seconds; read when the tracks are linked, so it
    may be a list that the decoder fills while the clip streams past
    (:func:`pipeline.video.decode.iter_frames`' ``cut_times_s``). Without a ``describer``,
    tracks follow position within shots alone and no track is found static.

    Iterating yields one ``list[FrameFaces]`` per detection batch (so a caller can act at the
    same batch boundaries whatever it does per face). Afterwards: ``n_frames`` (frames seen),
    ``follower.stats`` (frames by how they were searched), ``follower.selection`` (faces
    confident / dropped as too small), :meth:`track_ids`, :meth:`static_tracks` and
    ``n_embedded`` (faces the tracker embedded).
    """

    def __init__(
        self,
        frames: Iterator[Frame],
        detector: Detector,
        *,
        timings: dict[str, float] | None = None,
        describer: FaceDescriber | None = None,
        cut_times_s: list[float] | None = None,
    ):
        self._frames = frames
        self._batch_size = detector.config.batch_size
        self._timings = timings if timings is not None else {}
        self._describer = describer
        self._cut_times_s = cut_times_s if cut_times_s is not None else []
        self._boxes_per_sample: list[list[tuple[float, float, float, float]]] = []
        self._timestamps_s: list[float] = []
        self._chips: list = []
        self._thumbnails: list = []
        self._track_ids: list[int] | None = None
        self.follower = FaceFollower(detector)
        self.n_frames = 0
        self.n_embedded = 0

    def __iter__(self) -> Iterator[list[FrameFaces]]:
        chunks = batched(self._frames, self._batch_size)
        while True:
            started = time.perf_counter()
            chunk = next(chunks, None)
            add_elapsed(self._timings, "decode_wait_s", started)
            if chunk is None:
                return
            started = time.perf_counter()
            detections = self.follower.detect([f.rgb for f in chunk], [f.schedule_s for f in chunk])
            add_elapsed(self._timings, "detect_s", started)
            self.n_frames += len(chunk)
            self._boxes_per_sample.extend([face.box_xyxy for face in faces] for faces in detections)
            self._timestamps_s.extend(f.timestamp_s for f in chunk)
            if self._describer is not None:
                started = time.perf_counter()
                for frame, faces in zip(chunk, detections):
                    for face in faces:
                        self._chips.append(_pack(self._describer.chip(frame.rgb, face.box_xyxy)))
                        self._thumbnails.append(thumbnail(frame.rgb, face.box_xyxy))
                add_elapsed(self._timings, "identity_s", started)
            yield [FrameFaces(frame, tuple(faces)) for frame, faces in zip(chunk, detections)]

    def track_ids(self) -> list[int]:
        """A track id per face yielded, in the order yielded (frame by frame, best first within
        a frame); ids count from 0 in order of first appearance. Call it once the loop is done
        (linking is done once, then remembered)."""
        if self._track_ids is None:
            started = time.perf_counter()
            embed = self._embed if self._describer is not None else None
            linked = link_tracks(
                self._boxes_per_sample, timestamps_s=self._timestamps_s, cut_times_s=self._cut_times_s, embed=embed
            )
            self._track_ids = list(itertools.chain.from_iterable(linked))
            if embed is not None:
                add_elapsed(self._timings, "identity_s", started)
        return self._track_ids

    def _embed(self, faces):
        self.n_embedded += len(faces)
        return self._describer.embed([_unpack(self._chips[f]) for f in faces])

    def _faces_by_track(self) -> dict[int, tuple[list, list]]:
        """Per track id, its faces' boxes and thumbnails in time order (empty without a
        ``describer``: no thumbnails were kept)."""
        if self._describer is None:
            return {}
        boxes = (box for sample in self._boxes_per_sample for box in sample)
        out: dict[int, tuple[list, list]] = {}
        for track, box, thumb in zip(self.track_ids(), boxes, self._thumbnails):
            track_boxes, track_thumbs = out.setdefault(track, ([], []))
            track_boxes.append(box)
            track_thumbs.append(thumb)
        return out

    def motion(self) -> dict[int, tuple[float, float, float]]:
        """Per track id, :func:`pipeline.faces.tracks.motion_stats` (empty without a
        ``describer``): what :meth:`static_tracks` decides on."""
        return {track: motion_stats(*faces) for track, faces in self._faces_by_track().items()}

    def static_tracks(self) -> set[int]:
        """The ids of tracks whose faces never move nor change
        (:func:`pipeline.faces.tracks.is_static`): empty without a ``describer``."""
        return {track for track, faces in self._faces_by_track().items() if is_static(*faces)}
