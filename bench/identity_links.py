#!/usr/bin/env python3
"""People, not positions: what the tracker's constants rest on, and what it costs.

    python bench/identity_links.py ../shared/data/videos ../shared/cases [--out bench/results/identity_links.json]

For every clip (1 fps, 40-frame cap, the default model and detector):

- **cuts**: the highest ``scdet`` score of the clip (ffmpeg, the same filter the decode runs)
  and the cuts found at :data:`pipeline.video.decode.CUT_SCORE_THRESHOLD`;
- **identity**: within each position tracklet of a single-shot clip, the distances between its
  faces' dlib embeddings (same person), and on the two-person case clips the distances across
  the two people (people known by side of the frame, and for the swap clip by side and time);
- **static**: :func:`pipeline.faces.tracks.motion_stats` of every track with 3 faces or more;
- **cost**: wall time of the decode with and without ``scdet`` (best of 3), and the scan's
  ``identity_s`` (aligning every face, embedding those the tracker asks about) and
  ``embedded_faces``, next to the whole scan's time.

Generated clips with known cuts are added (``--no-generated`` to skip): three shots of three
shared clips, a mirror cut, a jump cut within one clip.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipeline.faces.identity import distance
from pipeline.video.discover import iter_videos
from pipeline.video.ffmpeg_bin import ffmpeg_exe

TWO_PEOPLE_CASES = ("two_people_swap_places_at_cut.mp4", "two_people_side_by_side.mp4", "smaller_person_is_fake.mp4")

_SCORE_RE = re.compile(r"lavfi\.scd\.score=(\S+)")


def max_cut_score(path: Path) -> float:
    """The highest scdet score between consecutive frames of ``path`` (full resolution)."""
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "scd.txt"
        subprocess.run(
            [ffmpeg_exe(), "-nostdin", "-v", "error", "-i", str(path), "-an", "-vf",
             f"scdet=t=0,metadata=print:file={log}", "-f", "null", "-"],
            check=True,
        )  # fmt: skip
        scores = [float(m.group(1)) for m in _SCORE_RE.finditer(log.read_text())]
    return max(scores, default=0.0)


def decode_seconds(path: Path, with_cuts: bool) -> float:
    from pipeline.video.decode import iter_frames, sampling_fps
    from pipeline.video.probe import probe_video

    info = probe_video(path)
    best = np.inf
    for _ in range(3):
        started = time.perf_counter()
        for _frame in iter_frames(
            path, info, sample_fps=sampling_fps(info, 1.0, 40), max_frames=40, cut_times_s=[] if with_cuts else None
        ):
            pass
        best = min(best, time.perf_counter() - started)
    return float(best)


def generated_clips(shared_videos: Path, folder: Path) -> list[Path]:
    real = shared_videos / "real"
    f = ffmpeg_exe()
    three = folder / "three_shots.mp4"
    parts = "".join(
        f"[{i}:v]trim=0:3,setpts=PTS-STARTPTS,scale=1280:720,setsar=1,fps=25[v{i}];" for i in range(3)
    )  # fmt: skip
    subprocess.run(
        [f, "-nostdin", "-y", "-v", "error", "-i", str(real / "ffpp_original_004.mp4"), "-i",
         str(real / "ffpp_original_519.mp4"), "-i", str(real / "ffpp_original_634.mp4"), "-filter_complex",
         parts + "[v0][v1][v2]concat=n=3:v=1[v]", "-map", "[v]", "-c:v", "libx264", "-crf", "20", str(three)],
        check=True,
    )  # fmt: skip
    out = [three]
    for name, second in (("mirror_cut.mp4", "trim=3:6,setpts=PTS-STARTPTS,hflip"),
                         ("jump_cut_same.mp4", "trim=8:11,setpts=PTS-STARTPTS")):  # fmt: skip
        path = folder / name
        subprocess.run(
            [f, "-nostdin", "-y", "-v", "error", "-i", str(real / "ffpp_original_634.mp4"), "-filter_complex",
             f"[0:v]split[x][y];[x]trim=0:3,setpts=PTS-STARTPTS[a];[y]{second}[b];[a][b]concat=n=2:v=1[v]",
             "-map", "[v]", "-c:v", "libx264", "-crf", "20", str(path)],
            check=True,
        )  # fmt: skip
        out.append(path)
    return out


def _person_of(faces, width: int, swap: bool) -> list[bool]:
    """For the two-person case clips: which person each face is (left of centre, and for the
    swap clip the other way round from sample 3, the cut at 3 s)."""
    out = []
    for sample, box in faces:
        left = (box[0] + box[2]) / 2 < width / 2
        out.append(left if not (swap and sample >= 3) else not left)
    return out


def measure_clip(path: Path, models, config, report: dict) -> dict:
    from pipeline.scan.analyze import score_video
    from pipeline.scan.face_loop import FaceLoop
    from pipeline.video.decode import iter_frames, sampling_fps
    from pipeline.video.probe import probe_video

    detector, describer = models.detector, models.detector.describer
    info = probe_video(path)
    cuts: list[float] = []
    frames: dict = {}
    it = iter_frames(path, info, sample_fps=sampling_fps(info, 1.0, 40), max_frames=40, cut_times_s=cuts)
    loop = FaceLoop(_keeping(it, frames), detector, describer=describer, cut_times_s=cuts)
    faces = [(item.frame.sample_index, face.box_xyxy) for batch in loop for item in batch for face in item.faces]
    ids = loop.track_ids()
    vectors = describer.embed([describer.chip(frames[s], box) for s, box in faces]) if faces else []
    frames.clear()
    per_sample: dict = {}
    for s, _ in faces:
        per_sample[s] = per_sample.get(s, 0) + 1
    pairs = [(i, j) for i in range(len(faces)) for j in range(i + 1, len(faces))]
    if not cuts and all(n == 1 for n in per_sample.values()):  # one person at a time, one shot
        report["same_person"].extend(distance(vectors[i], vectors[j]) for i, j in pairs if ids[i] == ids[j])
    if path.name in TWO_PEOPLE_CASES:
        person = _person_of(faces, info.width, path.name.startswith("two_people_swap"))
        same = [distance(vectors[i], vectors[j]) for i, j in pairs if person[i] == person[j]]
        other = [distance(vectors[i], vectors[j]) for i, j in pairs if person[i] != person[j]]
        report["two_people"][path.name] = {"same_max": round(max(same), 3), "different_min": round(min(other), 3)}
    motion = {str(t): [round(v, 3) for v in stats] for t, stats in loop.motion().items() if ids.count(t) >= 3}
    timings: dict = {}
    started = time.perf_counter()
    row = score_video(path, detector, models.scorer, config, timings=timings).row
    entry = {
        "max_cut_score": round(max_cut_score(path), 2),
        "cuts_s": cuts,
        "tracks": len(set(ids)),
        "motion": motion,
        "scan_s": round(time.perf_counter() - started, 3),
        "identity_s": round(timings.get("identity_s", 0.0), 3),
        "embedded_faces": timings.get("embedded_faces", 0),
        "n_faces": row.n_faces,
    }
    if max(info.width, info.height) >= 1280:
        entry["decode_s"] = round(decode_seconds(path, False), 3)
        entry["decode_with_cuts_s"] = round(decode_seconds(path, True), 3)
    return entry


def _keeping(frames_it, store: dict):
    for frame in frames_it:
        store[frame.sample_index] = frame.rgb
        yield frame


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("inputs", nargs="+")
    ap.add_argument("--out", default=None, help="write the figures as JSON here")
    ap.add_argument("--no-generated", action="store_true")
    args = ap.parse_args(argv)

    from pipeline.models.factory import ModelSpec, load_models
    from pipeline.scan.analyze import ScanConfig, score_video

    models = load_models(ModelSpec())
    detector = models.detector
    config = ScanConfig(threshold=models.threshold)
    clips = [Path(p) for p in iter_videos(args.inputs)]
    tmp = tempfile.TemporaryDirectory()
    if not args.no_generated:
        clips += generated_clips(Path(args.inputs[0]), Path(tmp.name))
    score_video(clips[0], detector, models.scorer, config)  # warm-up

    report: dict = {"clips": {}, "same_person": [], "two_people": {}}
    for path in clips:
        entry = measure_clip(path, models, config, report)
        report["clips"][path.name] = entry
        print(path.name, json.dumps(entry), flush=True)
    same = np.asarray(report["same_person"])
    report["same_person"] = {
        "pairs": len(same),
        **{f"p{q}": round(float(np.percentile(same, q)), 3) for q in (50, 95, 99)},
        "max": round(float(same.max()), 3),
    }
    print(json.dumps({k: report[k] for k in ("same_person", "two_people")}, indent=1))
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
