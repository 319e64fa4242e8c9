"""JSON Lines output: one JSON object per clip, the same fields as the CSV row, appended and
flushed as each clip finishes, with the same resume, torn-tail repair and lock as the CSV
(:class:`JsonlSink` is a :class:`pipeline.scan.sink.CsvSink` that writes JSON instead).

Chosen by the output's extension (``-o scores.jsonl``). Values are JSON types: numbers,
``true``/``false``, ``null`` for empty; text is written as is (no spreadsheet escape: JSON is
not opened by spreadsheets). With ``faces``, each object also holds a ``faces`` list of the
clip's face rows (the columns of ``faces.csv`` without ``video_path``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from pathlib import Path

from pipeline.errors import ResumeMismatchError, output_error
from pipeline.scan.sink import CsvSink

log = logging.getLogger(__name__)

JSONL_SUFFIXES = (".jsonl", ".ndjson")


def is_jsonl(path: str | Path) -> bool:
    """True when ``path`` names a JSON Lines file (``.jsonl`` or ``.ndjson``, any case)."""
    return Path(path).suffix.lower() in JSONL_SUFFIXES


# Keys of a clip's object beyond its row's fields: its faces (--nest-faces) and its verdict in words.
EXTRA_KEYS = ("faces", "verdict_text", "caveats")


def row_object(row, faces: Sequence | None = None, explanation: dict | None = None) -> dict:
    """The JSON object of one clip row (a record of :mod:`pipeline.scan.records`: every field by
    name, :meth:`~pipeline.scan.records.CsvRow.to_json`); with ``explanation``
    (:func:`pipeline.report.explain.row_explanation`), its ``verdict_text`` and ``caveats``; with
    ``faces`` (face rows), a ``faces`` list of their objects but ``video_path``."""
    obj = row.to_json()
    if explanation is not None:
        obj.update(verdict_text=explanation["verdict_text"], caveats=explanation["caveats"])
    if faces is not None:
        obj["faces"] = [face.to_json(without=("video_path",)) for face in faces]
    return obj


def _complete_lines_end(data: bytes) -> int:
    """Byte offset just past the last complete line (JSON text never holds a raw newline)."""
    return data.rfind(b"\n") + 1


def read_objects(path: str | Path) -> list[dict]:
    """The objects of the complete lines of a JSON Lines file (a torn last line is ignored);
    empty when the file is missing or empty. Raises ``ValueError`` for a line that is not a JSON
    object (not an output of this tool)."""
    path = Path(path)
    if not path.exists() or path.stat().st_size == 0:
        return []
    data = path.read_bytes()
    objects = []
    for number, line in enumerate(data[: _complete_lines_end(data)].splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ResumeMismatchError(f"{path} line {number} is not JSON ({exc.msg}); use --overwrite") from exc
        if not isinstance(obj, dict):
            raise ResumeMismatchError(f"{path} line {number} is not a JSON object; use --overwrite")
        objects.append(obj)
    return objects


def _text(value) -> str:
    """A JSON value as the CSV readers give it back (so settings compare the same way)."""
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)
    return str(value)


def read_jsonl_header(path: str | Path) -> list[str]:
    """The field names of the first object (empty when there is none)."""
    objects = read_objects(path)
    return [k for k in objects[0] if k not in EXTRA_KEYS] if objects else []


def read_jsonl_done_keys(path: str | Path, key: str) -> set[str]:
    """Values of ``key`` over the complete lines. Raises ``ValueError`` when an object lacks it."""
    done = set()
    for obj in read_objects(path):
        if key not in obj:
            raise ResumeMismatchError(f"{path} is not an output of this tool (no {key!r} field); use --overwrite")
        done.add(str(obj[key]))
    return done


def read_jsonl_column_values(path: str | Path, columns: Sequence[str]) -> set[tuple[str, ...]]:
    """The distinct values of ``columns`` (as text tuples) over the complete lines; objects
    lacking one of them are skipped."""
    return {tuple(_text(obj[c]) for c in columns) for obj in read_objects(path) if all(c in obj for c in columns)}


class JsonlSink(CsvSink):
    """Context-managed JSON Lines writer for one dataclass type, with :class:`CsvSink`'s lock,
    resume (a torn last line is cut off; existing objects must carry the same fields) and
    flush-per-row. ``faces=True``: :meth:`write` takes the clip's face rows and nests them."""

    def __init__(self, path: str | Path, columns: list[str], *, resume: bool, lock: bool = True, faces: bool = False):
        super().__init__(path, columns, resume=resume, lock=lock)
        self.nest_faces = faces

    def _open(self) -> None:
        exists = self.path.exists() and self.path.stat().st_size > 0
        if self._resume and exists:
            data = self.path.read_bytes()
            end = _complete_lines_end(data)
            if end != len(data):
                with open(self.path, "rb+") as f:
                    f.truncate(end)
                log.warning("%s: dropped a torn last line left by an interrupted run", self.path)
            objects = read_objects(self.path)
            header = [k for k in objects[0] if k not in EXTRA_KEYS] if objects else []
            if header and header != self.columns:
                raise ResumeMismatchError(f"{self.path} has fields {header}, expected {self.columns}; use --overwrite")
            if objects and ("faces" in objects[0]) != self.nest_faces:
                had = "nests" if "faces" in objects[0] else "does not nest"
                raise ResumeMismatchError(
                    f"{self.path} {had} each clip's faces; resume it "
                    f"{'with' if 'faces' in objects[0] else 'without'} --nest-faces, or use --overwrite"
                )
            self._file = open(self.path, "a", encoding="utf-8", errors="surrogateescape")
        else:
            self._file = open(self.path, "w", encoding="utf-8", errors="surrogateescape")
            self._sync()

    def write(self, row, faces: Sequence | None = None, explanation: dict | None = None) -> None:
        """Append one clip's object (with ``faces`` nested when the sink was made with
        ``faces=True``, and its ``explanation`` in words) and flush it to disk."""
        self._write_objects([row_object(row, faces if self.nest_faces else None, explanation)])

    def write_many(self, rows: Iterable) -> None:
        """Append rows (no faces) and flush them to disk once."""
        self._write_objects([row_object(row) for row in rows])

    def _write_objects(self, objects: list[dict]) -> None:
        start = self._out.tell()
        try:
            for obj in objects:
                # one complete line per write call: a kill can tear only the line being written
                self._out.write(json.dumps(obj, ensure_ascii=False, allow_nan=False) + "\n")
            self._sync()
        except OSError as exc:
            self._cut_back(start)
            raise output_error(self.path, exc) from exc
