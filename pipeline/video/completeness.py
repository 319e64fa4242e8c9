"""How much of a clip a decode saw, and whether that is all of it.

A row must never claim more than was decoded. The decode's frames can stop before the clip's
stated end for reasons that say nothing about the clip's content:

- the file is cut short (a download that stopped: the header still states the whole length,
  the data ends early), found by one pass over the packets the file really holds
  (:func:`pipeline.video.probe.packets_end_s`);
- ffmpeg was stopped from outside (a signal) or gave up on damaged data while the video's
  packets go on;

and for one that does: the video stream itself ends before the file (audio that runs on), which
is the whole clip. Only the first two make a clip ``partial``; the packet passes run only when the
frames stop short, so a complete clip costs nothing more.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

from pipeline.video.decode import DecodeReport
from pipeline.video.probe import VideoInfo, packets_end_s

log = logging.getLogger(__name__)

# The frames may stop this much before the clip's stated end and the clip still count as seen
# whole (seconds; the last sample already stands for one sampling interval).
PARTIAL_TOLERANCE_S = 1.0


@dataclasses.dataclass(frozen=True)
class Coverage:
    """What a decode covered. ``covered_s``: seconds from the first sample to the end of the last
    one's interval (capped at the clip's end); ``reached_end``: the samples reached the end of the
    clip's video; ``reason``: why they stopped short of it for a cause outside the clip (cut file,
    stopped decoder, damaged data), in plain words, "decoded 1.0 s of 10.0 s: ..."; ``""`` when whole."""

    covered_s: float
    reached_end: bool
    reason: str = ""

    @property
    def partial(self) -> bool:
        """The clip was seen in part only (:attr:`reason` says why)."""
        return bool(self.reason)


def _decoded_span(info: VideoInfo, sample_fps: float, report: DecodeReport) -> tuple[float, float]:
    """(first sample's time, end of the last sample's interval), seconds from the file's start."""
    interval_s = 1.0 / sample_fps if sample_fps > 0 else 0.0
    if report.first_timestamp_s is None or report.last_timestamp_s is None:
        start_s, end_s = 0.0, report.n_frames * interval_s
    else:
        start_s, end_s = report.first_timestamp_s, report.last_timestamp_s + interval_s
    if info.duration_s:
        end_s = min(end_s, info.duration_s)
    return start_s, end_s


def check_coverage(
    path: str | Path, info: VideoInfo, sample_fps: float, report: DecodeReport, *, max_frames: int
) -> Coverage:
    """How much of the clip ``report``'s decode covered (:class:`Coverage`). Without a known
    duration the clip reached its end when the decoder ran out of frames before ``max_frames``
    (and was not stopped); with one, when the samples end within :data:`PARTIAL_TOLERANCE_S` of
    it, or when the file's own packets show that the video stream ends where they do (audio runs
    on). Otherwise the clip is partial: stopped from outside, cut short, or damaged past where
    decoding could go on."""
    start_s, end_s = _decoded_span(info, sample_fps, report)
    covered_s = round(max(0.0, end_s - start_s), 3)
    seen = f"decoded {covered_s:.1f} s"
    if not info.duration_s:
        if report.stopped_by:
            return Coverage(covered_s, False, f"{seen} before the decoder was stopped by {report.stopped_by}")
        return Coverage(covered_s, report.n_frames < max_frames)
    duration_s = info.duration_s
    if end_s >= duration_s - PARTIAL_TOLERANCE_S:
        return Coverage(covered_s, True)

    def partial(why: str) -> Coverage:
        return Coverage(covered_s, False, f"{seen} of {duration_s:.1f} s: {why}")

    if report.stopped_by:
        return partial(f"the decoder was stopped by {report.stopped_by}")
    data_end_s = packets_end_s(path, "0")
    if data_end_s is not None and data_end_s < duration_s - PARTIAL_TOLERANCE_S:
        return partial("the file ends before the length its header states (cut short, e.g. an unfinished download)")
    video_end_s = packets_end_s(path, f"0:{info.stream_index}")
    if video_end_s is not None and video_end_s > end_s + PARTIAL_TOLERANCE_S:
        why = f": {report.errors}" if report.errors else ""
        return partial(f"decoding stopped at {end_s:.1f} s while the video goes on to {video_end_s:.1f} s{why}")
    if video_end_s is None or data_end_s is None:
        log.warning("%s: the frames end at %.1f s of %.1f s and the packets could not be read", path, end_s, duration_s)
        return partial("the frames end early and the file could not be checked")
    log.info(
        "%s: the video ends at %.1f s, the file (audio) at %.1f s: the whole video was seen", path, end_s, data_end_s
    )
    return Coverage(covered_s, True)
