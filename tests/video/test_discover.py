"""pipeline/video/discover.py: finding video files under the inputs a user names."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pipeline.video import discover
from pipeline.video.animated import is_animated_image, is_animated_image_name
from pipeline.video.discover import is_video_name, iter_videos, missing_inputs


def touch(root: Path, *names: str) -> None:
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")


def relative(paths, root: Path) -> list[str]:
    return [os.path.relpath(p, root) for p in paths]


@pytest.mark.parametrize(
    "name, expected",
    [
        ("clip.mp4", True),  # common container
        ("CLIP.MP4", True),  # upper case
        ("Clip.MoV", True),  # mixed case
        ("archive.mp4.zip", False),  # only the last extension counts
        ("notes.txt", False),  # not a video
        ("README", False),  # no extension
        (".mp4", False),  # a hidden file named like an extension has no extension
        ("stream.m2ts", True),  # broadcast transport stream
    ],
)
def test_is_video_name(name, expected):
    assert is_video_name(name) is expected


def test_walk_is_recursive_filtered_and_sorted(tmp_path):
    touch(tmp_path, "b.mp4", "A.MKV", "a.mp4", "notes.txt", "a/z.avi", "a/deep/er/x.webm", "a/deep/thumb.jpg")
    found = list(iter_videos([tmp_path]))
    # names sorted by code point at each level, depth first: "a" < "a.mp4" < "b.mp4"; "A.MKV" first
    assert relative(found, tmp_path) == ["A.MKV", "a/deep/er/x.webm", "a/z.avi", "a.mp4", "b.mp4"]
    assert all(isinstance(p, str) for p in found)
    assert list(iter_videos([tmp_path])) == found  # stable from run to run


@pytest.mark.parametrize(
    "name",
    [
        "notes.txt",  # a named file is taken whatever its extension
        "no_extension",  # even without one
        "clip.mp4",  # and of course with one
    ],
)
def test_file_named_directly_is_kept(tmp_path, name):
    touch(tmp_path, name)
    assert list(iter_videos([tmp_path / name])) == [str(tmp_path / name)]


def test_inputs_keep_their_order_and_each_path_appears_once(tmp_path):
    touch(tmp_path, "d/a.mp4", "d/b.mp4", "e/c.mp4", "x.txt")
    inputs = [tmp_path / "e", tmp_path / "x.txt", tmp_path / "d", str(tmp_path / "d" / "a.mp4"), tmp_path / "e"]
    assert relative(iter_videos(inputs), tmp_path) == ["e/c.mp4", "x.txt", "d/a.mp4", "d/b.mp4"]


def test_iter_videos_is_lazy(tmp_path):
    touch(tmp_path, "a.mp4", "b.mp4")
    videos = iter_videos([tmp_path])
    assert iter(videos) is videos  # a generator: a huge tree is not listed before work starts
    assert relative([next(videos)], tmp_path) == ["a.mp4"]


def test_symlink_loop_does_not_hang_and_yields_each_file_once(tmp_path):
    touch(tmp_path, "top.mp4", "sub/inner.mp4", "other/x.mp4")
    (tmp_path / "sub" / "loop").symlink_to(tmp_path, target_is_directory=True)  # back to an ancestor
    (tmp_path / "sub" / "self").symlink_to(tmp_path / "sub", target_is_directory=True)  # to itself
    (tmp_path / "alias").symlink_to(tmp_path / "other", target_is_directory=True)  # a second way into "other"
    found = relative(iter_videos([tmp_path]), tmp_path)
    # "alias" sorts before "other", so the file is reached (once) through the link
    assert found == ["alias/x.mp4", "sub/inner.mp4", "top.mp4"]


def test_broken_symlink_with_a_video_name_is_reported_not_lost(tmp_path):
    touch(tmp_path, "ok.mp4")
    (tmp_path / "gone.mp4").symlink_to(tmp_path / "missing.mp4")
    (tmp_path / "gone.txt").symlink_to(tmp_path / "missing.txt")  # not a video name: ignored
    assert relative(iter_videos([tmp_path]), tmp_path) == ["gone.mp4", "ok.mp4"]


def test_unreadable_folder_is_skipped_with_a_warning(tmp_path, monkeypatch, caplog):
    # root reads any folder regardless of its mode, so make listing it fail the way EACCES would
    touch(tmp_path, "a.mp4", "locked/secret.mp4", "z.mp4")
    locked = str(tmp_path / "locked")
    real_scandir = os.scandir

    def scandir(path):
        if os.fspath(path) == locked:
            raise PermissionError(13, "Permission denied", locked)
        return real_scandir(path)

    monkeypatch.setattr(discover.os, "scandir", scandir)
    assert relative(iter_videos([tmp_path]), tmp_path) == ["a.mp4", "z.mp4"]
    assert "skipping folder" in caplog.text and "Permission denied" in caplog.text


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root can list a chmod 000 folder")
def test_chmod_000_folder_is_skipped(tmp_path):
    touch(tmp_path, "a.mp4", "locked/secret.mp4")
    (tmp_path / "locked").chmod(0)
    try:
        assert relative(iter_videos([tmp_path]), tmp_path) == ["a.mp4"]
    finally:
        (tmp_path / "locked").chmod(0o755)


def test_empty_folder_and_no_inputs_yield_nothing(tmp_path):
    (tmp_path / "empty").mkdir()
    assert list(iter_videos([tmp_path / "empty"])) == []
    assert list(iter_videos([])) == []


def test_missing_inputs(tmp_path):
    touch(tmp_path, "here.mp4")
    (tmp_path / "dangling.mp4").symlink_to(tmp_path / "nowhere.mp4")
    inputs = [
        tmp_path / "here.mp4",  # exists
        tmp_path,  # a folder exists
        tmp_path / "gone.mp4",  # missing
        str(tmp_path / "no" / "such" / "dir"),  # missing folder, given as str
        tmp_path / "dangling.mp4",  # a dangling link exists as a name: reported later, per clip
    ]
    assert missing_inputs(inputs) == [str(tmp_path / "gone.mp4"), str(tmp_path / "no" / "such" / "dir")]


# --- animated images are clips (pipeline/video/animated.py) ----------------------------------


def write_image(path: Path, n_frames: int, image_format: str | None = None) -> Path:
    """A small image of ``n_frames`` frames (an animation when more than one), 0.2 s each."""
    frames = [Image.fromarray(np.full((24, 32, 3), 40 * i, np.uint8)) for i in range(n_frames)]
    path.parent.mkdir(parents=True, exist_ok=True)
    if n_frames == 1:
        frames[0].save(path, format=image_format)
    else:
        frames[0].save(path, format=image_format, save_all=True, append_images=frames[1:], duration=200, loop=0)
    return path


@pytest.mark.parametrize(
    "name, n_frames, image_format, expected",
    [
        ("a.gif", 3, "GIF", True),  # animated GIF
        ("a.webp", 3, "WEBP", True),  # animated WebP
        ("a.png", 3, "PNG", True),  # APNG, named as PNGs usually are
        ("a.apng", 3, "PNG", True),  # APNG under its own extension
        ("s.gif", 1, "GIF", False),  # one frame: a still image
        ("s.webp", 1, "WEBP", False),
        ("s.png", 1, "PNG", False),
        ("s.jpg", 1, "JPEG", False),  # a format that cannot be animated
        ("p.tiff", 3, "TIFF", False),  # multi-page TIFF: pages of a document, not an animation
    ],
)
def test_is_animated_image(tmp_path, name, n_frames, image_format, expected):
    assert is_animated_image(write_image(tmp_path / name, n_frames, image_format)) is expected


@pytest.mark.parametrize(
    "content",
    [
        b"",  # empty
        b"GIF89a",  # a GIF header and nothing else
        b"this is text named like an image",
    ],
)
def test_is_animated_image_on_files_that_are_no_image(tmp_path, content):
    path = tmp_path / "x.gif"
    path.write_bytes(content)
    assert is_animated_image(path) is False


def test_is_animated_image_raises_os_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        is_animated_image(tmp_path / "missing.gif")


@pytest.mark.parametrize(
    "name, expected",
    [("a.gif", True), ("A.GIF", True), ("a.WebP", True), ("a.png", True), ("a.apng", True), ("a.jpg", False)],
)
def test_is_animated_image_name(name, expected):
    assert is_animated_image_name(name) is expected


def test_walk_finds_animated_images_and_skips_still_ones(tmp_path):
    touch(tmp_path, "clip.mp4", "notes.txt")
    write_image(tmp_path / "anim.gif", 3)
    write_image(tmp_path / "sub" / "anim.webp", 3)
    write_image(tmp_path / "sub" / "anim.png", 3)
    write_image(tmp_path / "Anim.APNG", 3, "PNG")
    write_image(tmp_path / "still.gif", 1)
    write_image(tmp_path / "sub" / "still.webp", 1)
    write_image(tmp_path / "sub" / "photo.png", 1)
    write_image(tmp_path / "photo.jpg", 1)
    (tmp_path / "noise.gif").write_bytes(bytes(range(256)))  # not an image at all
    found = relative(iter_videos([tmp_path]), tmp_path)
    # a folder of still photos gives no rows; every animation is a clip
    assert found == ["Anim.APNG", "anim.gif", "clip.mp4", "sub/anim.png", "sub/anim.webp"]


def test_still_image_named_directly_is_still_taken(tmp_path):
    # a named file is the user's choice: the scanner reports a still image as a decode_error row
    path = write_image(tmp_path / "still.gif", 1)
    assert list(iter_videos([path])) == [str(path)]


def test_unreadable_image_is_skipped_with_a_warning(tmp_path, monkeypatch, caplog):
    write_image(tmp_path / "a.gif", 3)
    write_image(tmp_path / "locked.gif", 3)
    real = discover.is_animated_image

    def is_animated_or_denied(path):
        if path.endswith("locked.gif"):
            raise PermissionError(13, "Permission denied", path)
        return real(path)

    monkeypatch.setattr(discover, "is_animated_image", is_animated_or_denied)
    assert relative(iter_videos([tmp_path]), tmp_path) == ["a.gif"]
    assert "locked.gif" in caplog.text and "Permission denied" in caplog.text
