"""Animated images (GIF, WebP, APNG): the one rule for when an image file is a clip.

**An image file with more than one frame is a clip; with one frame it is a still image.** The
command line and the web app both follow it:

- a clip is decoded by ffmpeg like any video: its ``gif``, ``webp_anim`` and ``apng`` demuxers
  give each frame its own display time, so sampling by timestamp sees what a browser shows
  (GIF delays under 2/100 s play as 1/10 s, as browsers play them); a GIF is played once,
  whatever its loop count. ffmpeg decodes animated WebP from version 8 on (the ffmpeg of the
  ``imageio-ffmpeg`` wheel is 9);
- a still image is scored as an image by the web app, and is a ``decode_error`` ("a still image")
  for the command line, which scores clips;
- folders walked by the command line yield animated ``.gif``, ``.webp``, ``.png`` and ``.apng``
  files only (:func:`is_animated_image`, a look at the file's header and frame count), so a
  folder of still photos gives no error rows.

Multi-page TIFF is a document, not an animation: it stays a still image (its first page).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)

# Pillow's names of the formats that can hold an animation ffmpeg plays ("PNG" covers APNG).
ANIMATED_IMAGE_FORMATS = ("GIF", "WEBP", "PNG")
# File extensions worth opening when a folder is walked (lower case).
ANIMATED_IMAGE_EXTENSIONS = frozenset({".gif", ".webp", ".png", ".apng"})


def is_animated_image_name(name: str) -> bool:
    """True when the file name has an extension of an image format that can be animated
    (:data:`ANIMATED_IMAGE_EXTENSIONS`, case-insensitive); the content decides the rest."""
    return os.path.splitext(name)[1].lower() in ANIMATED_IMAGE_EXTENSIONS


def is_animated(image) -> bool:
    """True when an open Pillow image is a GIF, WebP or APNG with more than one frame.

    Pillow learns this from the header (APNG's frame count, WebP's demuxer) or by skipping to
    the second frame without decoding it (GIF), so it costs no decoding of pixels.
    """
    return image.format in ANIMATED_IMAGE_FORMATS and bool(getattr(image, "is_animated", False))


def is_animated_image(path: str | Path) -> bool:
    """True when the file at ``path`` is an animated GIF, WebP or APNG (:func:`is_animated`).

    A file that is not one of these formats, or not an image at all, is ``False``; so is one
    Pillow cannot read (damaged, or a canvas past Pillow's decompression-bomb limit), with a
    warning naming the file and the reason, since a clip in it would be missed. OS errors
    (missing file, permission denied) are raised.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path, formats=ANIMATED_IMAGE_FORMATS) as image:
            return is_animated(image)
    except UnidentifiedImageError:
        return False
    except (Image.DecompressionBombError, SyntaxError, ValueError, EOFError) as exc:
        log.warning("skipping %s: cannot tell whether it is an animated image: %s", path, exc)
        return False
    except OSError as exc:
        if isinstance(exc, (FileNotFoundError, PermissionError, IsADirectoryError)):
            raise
        log.warning("skipping %s: cannot tell whether it is an animated image: %s", path, exc)
        return False
