"""The house may move, the rows may not: the shared clips and the field cases scanned by the
command line (default model and settings, with faces and people) give the same rows, field for
field, as the golden file written before the code was restructured (timings apart).

Re-write the golden file only for a change meant to move rows (a new model, a new rule), and
say so in the commit:  ``python -m tests.integration.test_same_rows --write``."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
GOLDEN = REPO / "tests" / "golden" / "shared_clips_rows.json"
# Fields that measure time or name the run, not the clip's result.
NOT_COMPARED = {"elapsed_s", "tool_version", "scan_settings"}

pytestmark = pytest.mark.slow  # the real models on 47 real clips, about 90 s


def scan_rows(videos: Path, cases: Path, out: Path) -> dict[str, dict[str, list[dict[str, str]]]]:
    """Clip, face and person rows of a scan of ``videos`` and ``cases`` by ``score_videos.py``,
    keyed by output kind then by the clip's path relative to its folder's parent; cells as text."""
    out.mkdir(parents=True, exist_ok=True)
    outputs = {"clips": out / "clips.csv", "faces": out / "faces.csv", "tracks": out / "tracks.csv"}
    command = [sys.executable, str(REPO / "score_videos.py"), str(videos), str(cases), "-q", "--overwrite"]
    command += ["-o", str(outputs["clips"]), "--faces-csv", str(outputs["faces"])]
    command += ["--tracks-csv", str(outputs["tracks"])]
    subprocess.run(command, check=True, cwd=REPO, timeout=900)
    roots = (videos.parent, cases.parent)
    result: dict[str, dict[str, list[dict[str, str]]]] = {}
    for kind, path in outputs.items():
        per_clip: dict[str, list[dict[str, str]]] = {}
        with open(path, newline="", encoding="utf-8") as f:
            for row in csv.DictReader(f):
                clip = Path(row["video_path"])
                key = next(str(clip.relative_to(r)) for r in roots if clip.is_relative_to(r))
                cells = {k: v for k, v in row.items() if k not in NOT_COMPARED and k != "video_path"}
                per_clip.setdefault(key, []).append(cells)
        result[kind] = dict(sorted(per_clip.items()))
    return result


def test_the_rows_of_the_shared_clips_have_not_moved(shared_data, shared_cases, tmp_path):
    golden = json.loads(GOLDEN.read_text())
    now = scan_rows(shared_data / "videos", shared_cases, tmp_path)
    for kind in ("clips", "tracks", "faces"):
        assert sorted(now[kind]) == sorted(golden[kind]), kind
        for clip, rows in golden[kind].items():
            assert len(now[kind][clip]) == len(rows), (kind, clip)
            for n, (was, row) in enumerate(zip(rows, now[kind][clip])):
                moved = {k: (was.get(k), row.get(k)) for k in sorted(set(was) | set(row)) if was.get(k) != row.get(k)}
                assert not moved, f"{kind} row {n} of {clip} moved: {moved}"


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        sys.exit("usage: python -m tests.integration.test_same_rows --write")
    import tempfile

    shared = REPO.parent / "shared"
    with tempfile.TemporaryDirectory() as tmp:
        rows = scan_rows(shared / "data" / "videos", shared / "cases", Path(tmp))
    GOLDEN.write_text(json.dumps(rows, indent=0, sort_keys=True) + "\n")
    print(f"wrote {GOLDEN}: {sum(len(v) for v in rows['clips'].values())} clips")
