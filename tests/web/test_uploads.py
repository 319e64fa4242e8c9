"""pipeline/web/uploads.py: display names, saving under a random name, and what a request must hold."""

from __future__ import annotations

import io
import os
import stat

import pytest
from werkzeug.datastructures import FileStorage
from werkzeug.exceptions import BadRequest

from pipeline.web.uploads import UploadRequest, display_name, save_upload, unlink_upload


@pytest.mark.parametrize(
    "filename, shown",
    [
        ("clip.mp4", "clip.mp4"),
        ("../../x.mp4", "x.mp4"),  # POSIX traversal: last component only
        ("..\\..\\x.mp4", "x.mp4"),  # Windows traversal
        ("/etc/passwd", "passwd"),  # absolute path
        ("..", "upload"),  # nothing left to show
        ("", "upload"),
        (None, "upload"),
        ("a\x00b\nc.mp4", "abc.mp4"),  # control characters dropped
        ("é" * 300 + ".mp4", "é" * 120),  # long names cut
    ],
)
def test_display_name_is_a_bare_name(filename, shown):
    assert display_name(filename) == shown


def test_save_upload_writes_a_private_file(tmp_path):
    path = tmp_path / "a.upload"
    save_upload(FileStorage(io.BytesIO(b"frames" * 1000), filename="clip.mp4"), path)
    assert path.read_bytes() == b"frames" * 1000
    assert stat.S_IMODE(path.stat().st_mode) == 0o600  # only the server reads it


@pytest.mark.parametrize(
    "existing",
    [
        "file",  # a name already taken is never overwritten
        "symlink",  # nor followed through a link someone planted
    ],
)
def test_save_upload_never_reuses_a_path(tmp_path, existing):
    target = tmp_path / "target"
    target.write_bytes(b"keep me")
    path = tmp_path / "a.upload"
    if existing == "file":
        path.write_bytes(b"keep me too")
    else:
        os.symlink(target, path)
    with pytest.raises(FileExistsError):
        save_upload(FileStorage(io.BytesIO(b"evil"), filename="x.mp4"), path)
    assert target.read_bytes() == b"keep me"


def test_save_upload_without_a_chosen_file_is_400(tmp_path):
    # what a browser sends when the form is submitted with no file: no name, no bytes
    with pytest.raises(BadRequest, match="No file was chosen"):
        save_upload(FileStorage(io.BytesIO(b""), filename=""), tmp_path / "a.upload")


def test_save_upload_keeps_an_empty_named_file(tmp_path):
    # a chosen but empty file is saved; the content check rejects it later, with a reason
    path = tmp_path / "a.upload"
    save_upload(FileStorage(io.BytesIO(b""), filename="empty.mp4"), path)
    assert path.read_bytes() == b""


def test_unlink_upload_tolerates_a_missing_file(tmp_path):
    path = tmp_path / "a.upload"
    path.write_bytes(b"x")
    unlink_upload(path)
    assert not path.exists()
    unlink_upload(path)  # already gone: no error


def test_large_bodies_spool_into_the_private_upload_folder(modelless_app, tmp_path):
    upload_dir = tmp_path / "uploads"
    seen = []

    class Spy(UploadRequest):
        def _get_file_stream(self, *args, **kwargs):
            stream = super()._get_file_stream(*args, **kwargs)
            seen.append(os.path.dirname(os.readlink(f"/proc/self/fd/{stream.fileno()}")))
            return stream

    modelless_app.request_class = Spy
    # above Werkzeug's in-memory limit (500 kB), below the app's 1 MB cap; not a media file
    body = {"file": (io.BytesIO(b"\0" * 600_000), "big.bin")}
    response = modelless_app.test_client().post("/api/v1/score", data=body, content_type="multipart/form-data")
    assert response.status_code == 415
    assert seen == [str(upload_dir)]
    assert list(upload_dir.iterdir()) == []  # the saved copy is gone again
