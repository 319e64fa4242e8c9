"""Find the ffmpeg executable: the system one when present, else the one ``imageio-ffmpeg`` ships."""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess

from pipeline.errors import FfmpegNotFoundError

FFMPEG_ENV_VAR = "DEEPFAKE_SCANNER_FFMPEG"


@functools.lru_cache(maxsize=1)
def ffmpeg_exe() -> str:
    """Path of the ffmpeg binary to run.

    Order: ``$DEEPFAKE_SCANNER_FFMPEG``, ``ffmpeg`` on ``PATH``, the static binary of the
    ``imageio-ffmpeg`` wheel (so a machine with only pip packages works).
    """
    explicit = os.environ.get(FFMPEG_ENV_VAR)
    if explicit:
        if not os.access(explicit, os.X_OK):
            raise FfmpegNotFoundError(f"${FFMPEG_ENV_VAR}={explicit!r} is not an executable file")
        return explicit
    on_path = shutil.which("ffmpeg")
    if on_path:
        return on_path
    try:
        import imageio_ffmpeg
    except ImportError as exc:  # pragma: no cover - install_requires has it
        raise FfmpegNotFoundError(
            "no ffmpeg found: not on PATH and the imageio-ffmpeg package is not installed"
        ) from exc
    return imageio_ffmpeg.get_ffmpeg_exe()


@functools.lru_cache(maxsize=1)
def ffmpeg_filters() -> frozenset[str]:
    """Names of the filters the ffmpeg of :func:`ffmpeg_exe` has (``ffmpeg -filters``); empty
    when it cannot be asked. Builds differ: ``zscale`` needs libzimg, ``libplacebo`` Vulkan."""
    try:
        proc = subprocess.run(
            [ffmpeg_exe(), "-hide_banner", "-nostdin", "-filters"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return frozenset()
    text = proc.stdout.decode("utf-8", errors="replace")
    return frozenset(re.findall(r"^\s*[.A-Z|]{2,3}\s+(\w+)\s", text, flags=re.MULTILINE))
