"""Link faces across sampled frames into tracks, one per person: by position within a shot,
checked and joined by what the face looks like.

Three steps (:func:`link_tracks`):

1. **Tracklets by position, within a shot.** Greedy matching of each sampled frame's boxes to
   the tracks seen in the last :data:`MAX_GAP_SAMPLES` samples, best affinity first (box
   overlap; else near centres of similar size; else, at a panning camera's 1 fps, far centres
   of very similar size). A link never crosses a cut (``cut_times_s``, found by ffmpeg's
   ``scdet`` in the decode, :mod:`pipeline.video.decode`): after a cut, a face at the same
   place may be someone else.
2. **Identity checks inside each tracklet** (only when an ``embed`` callback is given and the
   clip has more than one tracklet: one face in one shot is one person). Two people can trade
   places at an edit that no cut detector sees (the same studio behind both), so position
   alone can stitch two people into one track. Where a tracklet shares sampled frames with
   another face of a similar size (position never links faces more than 2x apart in size, so
   only such a person can take its place unseen), and one face either side, its first, last
   and middle faces are embedded (:mod:`pipeline.faces.identity`); wherever two neighbouring
   embedded faces are not the same person, the faces between them are bisected to find where
   the person changed, and the tracklet is split there. A tracklet never beside such a face is
   not checked.
3. **Tracklets joined into people.** Pieces of tracklets that never share a sampled frame and
   whose mean embeddings, or nearest embedded faces, are the same person (within
   :data:`pipeline.faces.identity.SAME_PERSON_MAX_DISTANCE`) are one person, closest first:
   the same person before and after a cut, or after leaving the picture for a while. A piece
   of one or two faces left alone between two pieces of one tracklet that are the same person
   (a turned head whose embedding was off) goes back to that person.

A static face (a photo on the wall, a poster, a TV picture) is recognised separately, by
:func:`is_static`.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Sequence

import numpy as np

from pipeline.faces.boxes import iou_xyxy
from pipeline.faces.identity import SAME_PERSON_MAX_DISTANCE, distance

MIN_LINK_IOU = 0.2
# A person may be missed for a sampled frame or two (blink, turn, blur) and keep their track.
MAX_GAP_SAMPLES = 8
# Boxes of one person sampled 0.5 s apart may not overlap after a fast move; centres within
# this fraction of the face size still link.
MAX_CENTER_SHIFT = 1.0
# At 1 fps a panning camera moves a face further than that. A face of similar size within this
# many face widths still links, at the lowest priority, so nearer candidates are matched first.
MAX_FAR_SHIFT = 3.0
MIN_FAR_SIZE_RATIO = 0.7
# Boxes whose sizes differ more than this (smaller / larger) are never linked by position.
MIN_LINK_SIZE_RATIO = 0.5
# Faces of a tracklet embedded before any bisection: first, last and evenly spaced between.
CHECKS_PER_TRACKLET = 3
# A piece of at most this many faces between two pieces of one person goes back to them (a
# turned head, a blurred frame); a longer one is someone else who took that place for a while.
MAX_REATTACH_FACES = 2

# A track is static (a still picture: a photo composited in, a freeze-frame, a poster before a
# fixed camera) when, over at least STATIC_MIN_FACES faces, its box centre never strays more
# than STATIC_MAX_SHIFT face sizes from where it usually is, its size never changes by more
# than STATIC_MAX_SIZE_CHANGE, and its thumbnail changes by at most STATIC_MAX_PIXEL_CHANGE
# (:func:`motion_stats`). Measured (``bench/identity_links.py``, 1 fps): people of the shared
# clips who hold still (LivePortrait driving clips d0, d13, d19: stabilised frontal heads) come
# down to shifts of 0.013-0.026 with changes of 0.19 and more; a framed photo filmed by the
# handheld camera of dfdc_yhffcuhhjy shifts 0.024 but changes as much as they do (exposure,
# blur), so it is NOT told apart and counts as a person; a face image composited into a real
# clip shifts under 0.005 and changes under 0.02. The limits sit between.
STATIC_MIN_FACES = 3
STATIC_MAX_SHIFT = 0.02
STATIC_MAX_SIZE_CHANGE = 0.05
STATIC_MAX_PIXEL_CHANGE = 0.08

Box = Sequence[float]
# embed(face indices) -> one embedding (128,) per face; indices count boxes in sample order.
Embed = Callable[[Sequence[int]], Sequence[np.ndarray]]


def _affinity(a: Box, b: Box) -> float:
    """IoU; else a small score for near centres of similar size; else a smaller one for far
    centres of very similar size; 0 means no link."""
    iou = iou_xyxy(a, b)
    if iou >= MIN_LINK_IOU:
        return iou
    size_a, size_b = max(a[2] - a[0], a[3] - a[1]), max(b[2] - b[0], b[3] - b[1])
    size_ratio = min(size_a, size_b) / max(size_a, size_b)
    if size_ratio < MIN_LINK_SIZE_RATIO:
        return 0.0
    dx = (a[0] + a[2] - b[0] - b[2]) / 2.0
    dy = (a[1] + a[3] - b[1] - b[3]) / 2.0
    shift = (dx * dx + dy * dy) ** 0.5 / max(size_a, size_b)
    if shift < MAX_CENTER_SHIFT:
        return 0.01 * (1.0 - shift / MAX_CENTER_SHIFT)
    if shift < MAX_FAR_SHIFT and size_ratio >= MIN_FAR_SIZE_RATIO:
        return 0.0001 * (1.0 - shift / MAX_FAR_SHIFT)
    return 0.0


def shot_numbers(timestamps_s: Sequence[float], cut_times_s: Sequence[float]) -> list[int]:
    """For each sample time, how many cuts come at or before it: samples with the same number
    are in the same shot. A cut at ``t`` is the first frame of the new shot, so a sample at
    ``t`` is in the new shot."""
    cuts = sorted(cut_times_s)
    return [bisect.bisect_right(cuts, t + 1e-6) for t in timestamps_s]


def _position_tracklets(boxes_per_sample: Sequence[Sequence[Box]], shots: Sequence[int]) -> list[list[int]]:
    """Step 1: a tracklet id per box (from 0, in order of first appearance)."""
    last_box: list[Box] = []
    last_seen: list[int] = []
    last_shot: list[int] = []
    ids_per_sample: list[list[int]] = []
    for sample, boxes in enumerate(boxes_per_sample):
        ids = [-1] * len(boxes)
        candidates = []
        for t, box_t in enumerate(last_box):
            if sample - last_seen[t] > MAX_GAP_SAMPLES or last_shot[t] != shots[sample]:
                continue
            for j, box in enumerate(boxes):
                score = _affinity(box_t, box)
                if score > 0:
                    candidates.append((score, t, j))
        used_tracks: set[int] = set()
        for _score, t, j in sorted(candidates, reverse=True):
            if t in used_tracks or ids[j] != -1:
                continue
            ids[j] = t
            used_tracks.add(t)
        for j, box in enumerate(boxes):
            if ids[j] == -1:
                ids[j] = len(last_box)
                last_box.append(box)
                last_seen.append(sample)
                last_shot.append(shots[sample])
            else:
                last_box[ids[j]] = box
                last_seen[ids[j]] = sample
        ids_per_sample.append(ids)
    return ids_per_sample


class _Embeddings:
    """Embeddings asked for once each, through the ``embed`` callback, in batches."""

    def __init__(self, embed: Embed):
        self._embed = embed
        self._known: dict[int, np.ndarray] = {}

    def get(self, faces: Sequence[int]) -> list[np.ndarray]:
        missing = [f for f in dict.fromkeys(faces) if f not in self._known]
        if missing:
            for face, vector in zip(missing, self._embed(missing)):
                self._known[face] = np.asarray(vector, dtype=np.float64)
        return [self._known[f] for f in faces]

    def known(self, faces: Sequence[int]) -> list[np.ndarray]:
        return [self._known[f] for f in faces if f in self._known]

    @property
    def n_embedded(self) -> int:
        return len(self._known)


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    return distance(a, b) <= SAME_PERSON_MAX_DISTANCE


def _contested_span(faces: Sequence[int], rivals: set[int]) -> tuple[int, int]:
    """The part of one tracklet (its face indices in time order) where position could have
    mixed two people up: from one face before its first face with a rival (another face of a
    similar size in the same sample, see :func:`_faces_with_rivals`) to one face after its last,
    as a slice ``(lo, hi)``; ``(0, 0)`` when it never has one (alone in the picture, a face at
    the same place is the same person unless a cut says otherwise, and cuts already end
    tracklets)."""
    shared = [k for k, face in enumerate(faces) if face in rivals]
    if not shared:
        return 0, 0
    return max(0, shared[0] - 1), min(len(faces), shared[-1] + 2)


def _faces_with_rivals(boxes_per_sample: Sequence[Sequence[Box]]) -> set[int]:
    """Face indices (boxes counted in sample order) that share their sample with another face
    of a similar size (at least :data:`MIN_LINK_SIZE_RATIO` of each other): only such a face's
    place can be taken by the other person without the linker seeing it, since position never
    links boxes of more different sizes."""
    out, face = set(), 0
    for boxes in boxes_per_sample:
        sizes = [max(b[2] - b[0], b[3] - b[1]) for b in boxes]
        for j, size in enumerate(sizes):
            similar = [k for k, other in enumerate(sizes) if min(size, other) >= MIN_LINK_SIZE_RATIO * max(size, other)]
            if len(similar) > 1:  # itself and another
                out.add(face + j)
        face += len(boxes)
    return out


def _split_points(faces: Sequence[int], embeddings: _Embeddings) -> list[int]:
    """Step 2 for one tracklet (its face indices in time order): the positions ``k`` where the
    person changes between ``faces[k - 1]`` and ``faces[k]``, ascending."""
    n = len(faces)
    if n < 2:
        return []
    checks = sorted({round(i * (n - 1) / (CHECKS_PER_TRACKLET - 1)) for i in range(CHECKS_PER_TRACKLET)})
    embeddings.get([faces[k] for k in checks])
    splits: list[int] = []

    def bisect_between(lo: int, hi: int) -> None:
        a, b = embeddings.get([faces[lo], faces[hi]])
        if _same(a, b):
            return
        if hi == lo + 1:
            splits.append(hi)
            return
        mid = (lo + hi) // 2
        bisect_between(lo, mid)
        bisect_between(mid, hi)

    for lo, hi in zip(checks, checks[1:]):
        bisect_between(lo, hi)
    return sorted(splits)


def link_tracks(
    boxes_per_sample: Sequence[Sequence[Box]],
    *,
    timestamps_s: Sequence[float] | None = None,
    cut_times_s: Sequence[float] = (),
    embed: Embed | None = None,
) -> list[list[int]]:
    """Give every box a track id (see the module docstring for the three steps).

    ``boxes_per_sample[i]`` holds the ``xyxy`` boxes of sampled frame ``i`` in time order;
    ``timestamps_s[i]`` its time (needed with ``cut_times_s``: the times in seconds where a new
    shot starts); ``embed``, called with face indices (counting boxes in sample order, then box
    order), returns their embeddings: without it, tracks follow position alone. Returns the
    same nesting with an int track id per box; ids count from 0 in order of first appearance.
    """
    if cut_times_s and timestamps_s is None:
        raise ValueError("cut_times_s needs timestamps_s")
    if timestamps_s is not None and len(timestamps_s) != len(boxes_per_sample):
        raise ValueError(f"got {len(boxes_per_sample)} samples but {len(timestamps_s)} timestamps")
    shots = shot_numbers(timestamps_s, cut_times_s) if timestamps_s is not None else [0] * len(boxes_per_sample)
    tracklet_ids = _position_tracklets(boxes_per_sample, shots)
    flat = [t for ids in tracklet_ids for t in ids]
    sample_of = [s for s, ids in enumerate(tracklet_ids) for _ in ids]
    n_tracklets = max(flat, default=-1) + 1
    if embed is None or n_tracklets < 2:
        return tracklet_ids

    embeddings = _Embeddings(embed)
    members: list[list[int]] = [[] for _ in range(n_tracklets)]
    for face, t in enumerate(flat):
        members[t].append(face)
    rivals = _faces_with_rivals(boxes_per_sample)
    pieces_of_tracklet: list[list[list[int]]] = []
    for faces in members:
        pieces, start = [], 0
        lo, hi = _contested_span(faces, rivals)
        for k in _split_points(faces[lo:hi], embeddings):
            pieces.append(faces[start : lo + k])
            start = lo + k
        pieces.append(faces[start:])
        pieces_of_tracklet.append(pieces)
    people = _join_pieces([p for pieces in pieces_of_tracklet for p in pieces], sample_of, embeddings)

    person_of_face = {}
    for person, faces in enumerate(people):
        for face in faces:
            person_of_face[face] = person
    _reattach_sandwiched(pieces_of_tracklet, person_of_face, sample_of)
    order: dict[int, int] = {}  # renumber by first appearance
    for face in range(len(flat)):
        order.setdefault(person_of_face[face], len(order))
    out, face = [], 0
    for ids in tracklet_ids:
        out.append([order[person_of_face[face + j]] for j in range(len(ids))])
        face += len(ids)
    return out


def _reattach_sandwiched(
    pieces_of_tracklet: Sequence[Sequence[Sequence[int]]], person_of_face: dict[int, int], sample_of: Sequence[int]
) -> None:
    """A short piece (at most :data:`MAX_REATTACH_FACES` faces) that position linked between two
    pieces of one tracklet which both turned out to be the same person is that person too (a
    turned head, a blurred frame: its embedding was off, its place was not), unless that person
    is already in one of its samples."""
    for pieces in pieces_of_tracklet:
        for before, middle, after in zip(pieces, pieces[1:], pieces[2:]):
            person = person_of_face[before[-1]]
            if len(middle) > MAX_REATTACH_FACES:
                continue
            if person_of_face[after[0]] != person or person_of_face[middle[0]] == person:
                continue
            taken = {sample_of[f] for f, p in person_of_face.items() if p == person}
            if not taken & {sample_of[f] for f in middle}:
                for face in middle:
                    person_of_face[face] = person


def _join_pieces(pieces: list[list[int]], sample_of: Sequence[int], embeddings: _Embeddings) -> list[list[int]]:
    """Step 3: pieces of tracklets joined into people, closest pair first, when they never
    share a sample and either their mean embeddings (noise averages out) or their nearest
    embedded faces (a turned head in one piece does not keep it apart) are the same person; two
    people stay over the limit both ways on the case clips (nearest faces 0.51 and more). A
    piece that could join another (they share no sample) has its first, middle and last faces
    embedded first."""
    groups = [list(p) for p in pieces if p]
    samples = [{sample_of[f] for f in g} for g in groups]
    for i, g in enumerate(groups):
        if any(not samples[i] & other for j, other in enumerate(samples) if j != i):
            # it could be someone else's piece: its first, middle and last faces decide, not one odd face
            embeddings.get(sorted({g[0], g[len(g) // 2], g[-1]}))
    while True:
        vectors = [np.asarray(embeddings.known(g)) for g in groups]
        if any(len(v) == 0 for v in vectors):  # pieces that can join nothing were not embedded
            keep = [i for i, v in enumerate(vectors) if len(v)]
            done = [sorted(groups[i]) for i, v in enumerate(vectors) if not len(v)]
            return done + _join_pieces([groups[i] for i in keep], sample_of, embeddings)
        samples = [{sample_of[f] for f in g} for g in groups]
        best = None
        for i in range(len(groups)):
            for j in range(i + 1, len(groups)):
                if samples[i] & samples[j]:
                    continue
                nearest = float(np.min(np.linalg.norm(vectors[i][:, None, :] - vectors[j][None, :, :], axis=2)))
                d = min(nearest, distance(vectors[i].mean(axis=0), vectors[j].mean(axis=0)))
                if d <= SAME_PERSON_MAX_DISTANCE and (best is None or d < best[0]):
                    best = (d, i, j)
        if best is None:
            return [sorted(g) for g in groups]
        _, i, j = best
        groups[i] = groups[i] + groups[j]
        del groups[j]


def motion_stats(boxes: Sequence[Box], thumbnails: Sequence[np.ndarray]) -> tuple[float, float, float]:
    """How much one track's faces move and change, over its faces in time order: (largest
    distance of a box centre from the median centre, in median face sizes; (largest - smallest
    size) / median size; median mean-absolute change of the 32 px grey thumbnail between
    neighbouring faces, blurred and brought to zero mean and unit contrast, ``inf`` without
    thumbnails)."""
    b = np.asarray(boxes, dtype=np.float64)
    sizes = np.maximum(b[:, 2] - b[:, 0], b[:, 3] - b[:, 1])
    size = float(np.median(sizes))
    centres = np.stack([(b[:, 0] + b[:, 2]) / 2.0, (b[:, 1] + b[:, 3]) / 2.0], axis=1)
    shift = float(np.linalg.norm(centres - np.median(centres, axis=0), axis=1).max() / size)
    size_change = float((sizes.max() - sizes.min()) / size)
    if len(thumbnails) != len(boxes) or len(boxes) < 2:
        return shift, size_change, float("inf")
    import cv2

    # blurred (a pixel of box jitter is not a change), then to zero mean and unit contrast
    # (exposure drifting over a picture is not the picture changing)
    thumbs = np.asarray([cv2.GaussianBlur(t.astype(np.float64), (0, 0), 1.0) for t in thumbnails])
    thumbs = (thumbs - thumbs.mean(axis=(1, 2), keepdims=True)) / (thumbs.std(axis=(1, 2), keepdims=True) + 1.0)
    change = float(np.median(np.abs(np.diff(thumbs, axis=0)).mean(axis=(1, 2))))
    return shift, size_change, change


def is_static(boxes: Sequence[Box], thumbnails: Sequence[np.ndarray]) -> bool:
    """Whether one track's faces (``xyxy`` boxes in time order, and the
    :func:`pipeline.faces.identity.thumbnail` of each) never move nor change
    (:func:`motion_stats` within :data:`STATIC_MAX_SHIFT`, :data:`STATIC_MAX_SIZE_CHANGE` and
    :data:`STATIC_MAX_PIXEL_CHANGE`): a photo on the wall, a poster, a picture on a screen.
    Needs at least :data:`STATIC_MIN_FACES` faces."""
    if len(boxes) < STATIC_MIN_FACES:
        return False
    shift, size_change, change = motion_stats(boxes, thumbnails)
    return shift <= STATIC_MAX_SHIFT and size_change <= STATIC_MAX_SIZE_CHANGE and change <= STATIC_MAX_PIXEL_CHANGE
