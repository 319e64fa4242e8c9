"""Find the video files under the inputs a user names: files with a video extension, and
animated images (GIF, WebP, APNG with more than one frame: see :mod:`pipeline.video.animated`)."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from pipeline.video.animated import is_animated_image, is_animated_image_name

log = logging.getLogger(__name__)

VIDEO_EXTENSIONS = frozenset(
    {
        ".mp4",
        ".m4v",
        ".mov",
        ".avi",
        ".mkv",
        ".webm",
        ".mpg",
        ".mpeg",
        ".mpe",
        ".m2v",
        ".ts",
        ".mts",
        ".m2ts",
        ".wmv",
        ".flv",
        ".3gp",
        ".3g2",
        ".ogv",
        ".vob",
        ".mxf",
        ".asf",
        ".f4v",
    }
)


def is_video_name(name: str) -> bool:
    """True when the file name has a video extension (case-insensitive)."""
    return os.path.splitext(name)[1].lower() in VIDEO_EXTENSIONS


def _walk_sorted(root: str, seen_dirs: set[tuple[int, int]]) -> Iterator[str]:
    """Depth-first, names sorted, following directory symlinks once each (no loops)."""
    try:
        st = os.stat(root)
    except OSError as exc:
        log.warning("skipping %s: %s", root, exc.strerror or exc)
        return
    key = (st.st_dev, st.st_ino)
    if key in seen_dirs:
        log.warning("skipping %s: already visited (symlink loop or duplicate)", root)
        return
    seen_dirs.add(key)
    try:
        with os.scandir(root) as it:
            entries = sorted(it, key=lambda e: e.name)
    except OSError as exc:
        log.warning("skipping folder %s: %s", root, exc.strerror or exc)
        return
    for entry in entries:
        try:
            is_dir = entry.is_dir(follow_symlinks=True)
            is_file = not is_dir and entry.is_file(follow_symlinks=True)
        except OSError:
            is_dir = is_file = False
        if is_dir:
            yield from _walk_sorted(entry.path, seen_dirs)
        elif is_file and is_video_name(entry.name):
            yield entry.path
        elif is_file and is_animated_image_name(entry.name) and _is_animated_file(entry.path):
            yield entry.path
        elif not is_dir and not is_file and is_video_name(entry.name):
            # Broken symlink or unreadable entry with a video name: report it rather than lose it.
            yield entry.path


def _is_animated_file(path: str) -> bool:
    """:func:`is_animated_image`, with a file that cannot be opened skipped with a warning
    (an image name, unlike a video name, most likely holds a still photo)."""
    try:
        return is_animated_image(path)
    except OSError as exc:
        log.warning("skipping %s: %s", path, exc.strerror or exc)
        return False


def iter_videos(inputs: Iterable[str | Path]) -> Iterator[str]:
    """Video paths under ``inputs``, lazily, in a stable order (names sorted at each level).

    A file named directly is taken whatever its extension; folders are walked recursively and
    only files with a video extension are kept, and ``.gif``, ``.webp``, ``.png`` and ``.apng``
    files that hold more than one frame (animated images are clips; their header is read to
    tell, see :mod:`pipeline.video.animated`). Each path is yielded once.
    """
    seen_dirs: set[tuple[int, int]] = set()
    seen_files: set[str] = set()
    for item in inputs:
        item = os.fspath(item)
        if os.path.isdir(item):
            paths = _walk_sorted(item, seen_dirs)
        else:
            paths = iter([item])
        for path in paths:
            if path not in seen_files:
                seen_files.add(path)
                yield path


def is_clip_file(path: str | Path) -> bool:
    """True when ``path`` is a file the walk of a folder would take as a clip: a video name
    (:func:`is_video_name`) or an animated image. A file that cannot be read is ``False``."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        return False
    if is_video_name(path):
        return True
    return is_animated_image_name(path) and _is_animated_file(path)


def missing_inputs(inputs: Iterable[str | Path]) -> list[str]:
    """Inputs that do not exist (a usage error, reported before any work)."""
    return [os.fspath(i) for i in inputs if not os.path.lexists(i)]
