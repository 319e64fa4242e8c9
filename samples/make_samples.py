#!/usr/bin/env python3
"""Regenerate the sample clips in this folder (nothing here comes from ../shared).

- ``astronaut_pan.mp4``: NASA's public-domain portrait of Eileen Collins (shipped with
  scikit-image as ``skimage.data.astronaut()``) panned across a 1280x720 frame: a real face.
- ``astronaut_portrait_rot90.mp4``: the same as a 720x1280 portrait phone clip, stored
  sideways with rotation metadata, as phones do.
- ``testcard_no_face.mp4``: ffmpeg's ``testsrc2`` pattern: decodes fine, has no face.

    pip install scikit-image && python samples/make_samples.py
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # run as a script from anywhere: the repository's tests.helpers

from tests.helpers import make_face_clip, make_lavfi_clip  # noqa: E402 - after the path set-up above


def main() -> int:
    make_face_clip(HERE / "astronaut_pan.mp4", duration_s=4.0)
    make_face_clip(HERE / "astronaut_portrait_rot90.mp4", duration_s=3.0, size_wh=(720, 1280), rotate_display_deg=90)
    make_lavfi_clip(HERE / "testcard_no_face.mp4", size="640x360", duration_s=3.0)
    for path in sorted(HERE.glob("*.mp4")):
        print(f"{path.name}: {path.stat().st_size // 1024} KiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
