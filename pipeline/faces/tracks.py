"""Link faces across sampled frames into tracks, one per person, by box overlap."""

from __future__ import annotations

from collections.abc import Sequence

from pipeline.faces.boxes import iou_xyxy

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


def _affinity(a: Sequence[float], b: Sequence[float]) -> float:
    """IoU; else a small score for near centres of similar size; else a smaller one for far
    centres of very similar size; 0 means no link."""
    iou = iou_xyxy(a, b)
    if iou >= MIN_LINK_IOU:
        return iou
    size_a, size_b = max(a[2] - a[0], a[3] - a[1]), max(b[2] - b[0], b[3] - b[1])
    size_ratio = min(size_a, size_b) / max(size_a, size_b)
    if size_ratio < 0.5:
        return 0.0
    dx = (a[0] + a[2] - b[0] - b[2]) / 2.0
    dy = (a[1] + a[3] - b[1] - b[3]) / 2.0
    shift = (dx * dx + dy * dy) ** 0.5 / max(size_a, size_b)
    if shift < MAX_CENTER_SHIFT:
        return 0.01 * (1.0 - shift / MAX_CENTER_SHIFT)
    if shift < MAX_FAR_SHIFT and size_ratio >= MIN_FAR_SIZE_RATIO:
        return 0.0001 * (1.0 - shift / MAX_FAR_SHIFT)
    return 0.0


def link_tracks(boxes_per_sample: Sequence[Sequence[Sequence[float]]]) -> list[list[int]]:
    """Give every box a track id.

    ``boxes_per_sample[i]`` holds the ``xyxy`` boxes of sampled frame ``i`` in time order.
    Returns the same nesting with an int track id per box; ids count from 0 in order of first
    appearance. Greedy matching, best affinity first, against each track's last box, for
    tracks seen within :data:`MAX_GAP_SAMPLES` samples.
    """
    last_box: list[Sequence[float]] = []
    last_seen: list[int] = []
    ids_per_sample: list[list[int]] = []
    for sample, boxes in enumerate(boxes_per_sample):
        ids = [-1] * len(boxes)
        candidates = []
        for t, box_t in enumerate(last_box):
            if sample - last_seen[t] > MAX_GAP_SAMPLES:
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
            else:
                last_box[ids[j]] = box
                last_seen[ids[j]] = sample
        ids_per_sample.append(ids)
    return ids_per_sample
