#!/usr/bin/env python3
"""Speed of the scanner against a straightforward loop and against decoding alone.

For every clip, on the same sampled frames:
  ours    score_video: ffmpeg-sampled frames, MTCNN on a 640 px copy in batches, Meso-4 batched
  naive   (a) read every frame with OpenCV, MTCNN on the full frame, one Meso-4 predict per face
  decode  (b) ffmpeg delivering the same sampled frames and nothing else (the floor)
Times are per clip with the models already loaded (start-up is printed once, separately), and
the share of our time spent decoding / detecting / scoring. Then whole processes of
``score_videos.py`` (start-up included) with --workers 1 and 2, with the peak RSS.

    python bench/bench_speed.py --weights ../shared/data/weights/mesonet/Meso4_DF.h5 \\
        ../shared/data/videos/*/dfdc_*.mp4 [--fps 5] [--long] [--no-naive]

``--long`` adds a 5-minute 1080p clip made by looping a 1080p clip (in a temporary folder).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from measure import run_scanner  # noqa: E402

from pipeline.crop import crop_face_rgb  # noqa: E402
from pipeline.decode import iter_frames, sampling_fps  # noqa: E402
from pipeline.detect import DetectorConfig  # noqa: E402
from pipeline.probe import probe_video  # noqa: E402
from pipeline.scan import ScanConfig, score_video  # noqa: E402


def make_long_clip(source: Path, out: Path, minutes: float = 5.0) -> Path:
    from pipeline.ffmpeg_bin import ffmpeg_exe

    info = probe_video(source)
    loops = int(np.ceil(minutes * 60 / info.duration_s)) - 1
    subprocess.run([ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", "-stream_loop", str(loops),
                    "-i", str(source), "-c", "copy", "-an", str(out)], check=True)
    return out


def decode_only(path: str, config: ScanConfig) -> tuple[float, int]:
    started = time.perf_counter()
    info = probe_video(path)
    rate = sampling_fps(info, config.fps, config.max_frames)
    n = sum(1 for _ in iter_frames(path, info, sample_fps=rate, max_frames=config.max_frames))
    return time.perf_counter() - started, n


def naive(path: str, config: ScanConfig, mtcnn, keras_model) -> tuple[float, int, int]:
    """The straightforward loop, restricted to the frames our sampler picks."""
    import cv2

    started = time.perf_counter()
    info = probe_video(path)
    rate = sampling_fps(info, config.fps, config.max_frames)
    wanted = {int(np.floor(k / rate * info.fps + 1e-9)) for k in range(config.max_frames)
              if k / rate <= (info.duration_s or 0)}
    cap = cv2.VideoCapture(path)
    index = n_frames = n_faces = 0
    while True:
        ok, bgr = cap.read()
        if not ok:
            break
        if index in wanted:
            rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            n_frames += 1
            for face in mtcnn.detect_faces(rgb):
                if face["confidence"] < config.detector.min_confidence:
                    continue
                x, y, w, h = face["box"]
                crop = crop_face_rgb(rgb, (x, y, x + w, y + h)).astype(np.float32) / 255.0
                keras_model.predict(crop[None], verbose=0)
                n_faces += 1
        index += 1
    cap.release()
    return time.perf_counter() - started, n_frames, n_faces


def whole_process(paths: list[str], weights: str, extra: list[str]) -> tuple[float, float]:
    wall, rss, _ = run_scanner(paths, weights, extra)
    return wall, rss


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("clips", nargs="*")
    ap.add_argument("--weights", required=True)
    ap.add_argument("--fps", type=float, default=ScanConfig().fps)
    ap.add_argument("--max-frames", type=int, default=ScanConfig().max_frames)
    ap.add_argument("--detect-size", type=int, default=DetectorConfig().detect_long_side_px)
    ap.add_argument("--pyramid-scale", type=float, default=DetectorConfig().pyramid_scale)
    ap.add_argument("--long", action="store_true", help="add a generated 5-minute 1080p clip")
    ap.add_argument("--no-naive", action="store_true", help="skip the straightforward loop (slow)")
    ap.add_argument("--no-process", action="store_true", help="skip the whole-process runs")
    args = ap.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    config = ScanConfig(fps=args.fps, max_frames=args.max_frames,
                        detector=DetectorConfig(detect_long_side_px=args.detect_size, pyramid_scale=args.pyramid_scale))
    clips = list(args.clips)
    tmp = tempfile.TemporaryDirectory()
    if args.long:
        source = next((c for c in clips if probe_video(c).height == 1080), clips[0])
        clips.append(str(make_long_clip(Path(source), Path(tmp.name) / "long_5min_1080p.mp4")))

    started = time.perf_counter()
    from pipeline.detect import FaceDetector
    from pipeline.model import MesoScorer

    detector = FaceDetector.create(config.detector)
    scorer = MesoScorer.load(args.weights)
    score_video(clips[0], detector, scorer, config)  # warm-up: traces the models once
    print(f"start-up in process (models + warm-up clip): {time.perf_counter() - started:.1f} s")

    header = (f"{'clip':34s} {'WxH':>9s} {'dur_s':>6s} {'frames':>6s} {'faces':>5s} {'ours_s':>7s} "
              f"{'clip_s/s':>8s} {'fr/s':>6s} {'faces/s':>7s} {'dec%':>5s} {'det%':>5s} {'sco%':>5s} "
              f"{'decode_s':>8s} {'naive_s':>8s} {'ours/naive':>10s} {'ours/dec':>8s}")
    print(f"sampling: --fps {config.fps:g} --max-frames {config.max_frames}; detection at {args.detect_size} px, "
          f"pyramid {args.pyramid_scale}")
    print(header)
    totals = np.zeros(3)
    for clip in clips:
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        row = score_video(clip, detector, scorer, config, timings=timings).row
        ours = time.perf_counter() - t0
        dec, n_dec = decode_only(clip, config)
        detect_s, score_s = timings.get("detect_s", 0.0), timings.get("score_s", 0.0)
        decode_share = max(0.0, ours - detect_s - score_s - timings.get("crop_s", 0.0))
        nv = float("nan")
        if not args.no_naive:
            nv, _, _ = naive(clip, config, detector._mtcnn, scorer._model)
        totals += (ours, dec, 0 if np.isnan(nv) else nv)
        print(f"{Path(clip).name[:34]:34s} {row.width}x{row.height:<4d} {row.duration_s or 0:6.1f} "
              f"{row.n_frames:6d} {row.n_faces:5d} {ours:7.2f} {(row.duration_s or 0) / ours:8.2f} "
              f"{row.n_frames / ours:6.2f} {row.n_faces / ours:7.2f} {100 * decode_share / ours:5.0f} "
              f"{100 * detect_s / ours:5.0f} {100 * score_s / ours:5.0f} {dec:8.2f} {nv:8.2f} "
              f"{nv / ours:10.1f} {ours / dec:8.2f}")
    print(f"{'total':34s} {'':>9s} {'':>6s} {'':>6s} {'':>5s} {totals[0]:7.2f} {'':>8s} {'':>6s} {'':>7s} "
          f"{'':>5s} {'':>5s} {'':>5s} {totals[1]:8.2f} {totals[2]:8.2f}")
    # "dec%" is what is left of our time after detection, crops and scoring: decoding that the
    # read-ahead thread did not hide, plus probing.
    if not args.no_process:
        extra = ["--fps", str(config.fps), "--max-frames", str(config.max_frames), "--detect-size",
                 str(args.detect_size), "--pyramid-scale", str(args.pyramid_scale)]
        for workers in (1, 2):
            wall, rss = whole_process(clips, args.weights, extra + ["--workers", str(workers)])
            print(f"whole process, --workers {workers}: {wall:.1f} s for {len(clips)} clips "
                  f"(start-up included), peak RSS of the main process {rss:.0f} MiB")
        for clip in clips[-1:]:
            wall, rss = whole_process([clip], args.weights, extra)
            print(f"whole process on {Path(clip).name}: {wall:.1f} s, peak RSS {rss:.0f} MiB")
    tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
