#!/usr/bin/env python3
"""The two comparators of ``bench_speed.py``, usable in process or as whole processes.

  naive   (a) the straightforward loop: OpenCV reads every frame, the frames our sampler picks
          go to the ``mtcnn`` package's MTCNN as it comes (eager, full frame, default settings),
          and every face gets its own Meso-4 ``predict`` call
  decode  (b) the floor: ffmpeg delivering the same sampled frames to Python, nothing else

    python bench/baselines.py naive CLIP... --weights W [--fps 5] [--max-frames 100]
    python bench/baselines.py decode CLIP... [--fps 5] [--max-frames 100]

As a whole process it prints one JSON line per clip (seconds, frames, faces) and one for the
start-up, so ``bench_speed.py`` can time it like ``score_videos.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipeline.faces.crop import crop_face_rgb
from pipeline.video.decode import iter_frames, sampling_fps
from pipeline.video.probe import probe_video


def sampled_frame_indices(path: str, fps: float, max_frames: int) -> set[int]:
    """The frame numbers our sampler picks (ffmpeg ``fps`` filter, ``round=up``)."""
    info = probe_video(path)
    rate = sampling_fps(info, fps, max_frames)
    return {int(np.ceil(k / rate * info.fps - 1e-9)) for k in range(max_frames) if k / rate <= (info.duration_s or 0)}


def load_naive_models(weights: str):
    """MTCNN exactly as the package ships it (eager) and a plain Keras Meso-4."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from mtcnn import MTCNN

    from pipeline.models.meso4 import build_meso4

    model = build_meso4()
    model.load_weights(weights)
    return MTCNN(), model


def naive_loop(path: str, fps: float, max_frames: int, mtcnn, meso4, min_confidence: float = 0.9) -> dict:
    """(a) on one clip; returns seconds, sampled frames and faces."""
    import cv2

    started = time.perf_counter()
    wanted = sampled_frame_indices(path, fps, max_frames)
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
                if face["confidence"] < min_confidence:
                    continue
                x, y, w, h = face["box"]
                crop = crop_face_rgb(rgb, (x, y, x + w, y + h)).astype(np.float32) / 255.0
                meso4.predict(crop[None], verbose=0)
                n_faces += 1
        index += 1
    cap.release()
    return {"clip": path, "seconds": time.perf_counter() - started, "frames": n_frames, "faces": n_faces}


def decode_only(path: str, fps: float, max_frames: int) -> dict:
    """(b) on one clip: the sampled frames as our scanner gets them, and nothing else."""
    started = time.perf_counter()
    info = probe_video(path)
    rate = sampling_fps(info, fps, max_frames)
    n = sum(1 for _ in iter_frames(path, info, sample_fps=rate, max_frames=max_frames))
    return {"clip": path, "seconds": time.perf_counter() - started, "frames": n, "faces": 0}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("which", choices=("naive", "decode"))
    ap.add_argument("clips", nargs="*")
    ap.add_argument("--weights")
    ap.add_argument("--fps", type=float, default=1.0)
    ap.add_argument("--max-frames", type=int, default=40)
    args = ap.parse_args(argv)
    started = time.perf_counter()
    if args.which == "naive":
        if not args.weights:
            ap.error("naive needs --weights")
        models = load_naive_models(args.weights)
    print(json.dumps({"startup_s": time.perf_counter() - started}), flush=True)
    for clip in args.clips:
        if args.which == "naive":
            result = naive_loop(clip, args.fps, args.max_frames, *models)
        else:
            result = decode_only(clip, args.fps, args.max_frames)
        print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
