"""The batch report (:mod:`pipeline.report.html`, ``python -m pipeline report``): counts, order,
escaping of hostile paths, threshold handling, the evidence budget and JSON Lines input.

:func:`make_batch` builds a whole batch (scores CSV written by the scanner's own sink, faces CSV,
and an evidence folder in the ``--evidence-dir`` format with small Pillow JPEGs); the browser test
and ``bench/report_size.py`` use it too.
"""

from __future__ import annotations

import base64
import csv
import dataclasses
import hashlib
import io
import json
import random
import re
from pathlib import Path

import pytest
from PIL import Image

from pipeline.cli.report import main
from pipeline.report.html import (
    EVIDENCE_COLUMNS,
    EVIDENCE_INDEX,
    TABLE_COLUMNS,
    ClipRecord,
    ReportConfig,
    ReportError,
    band_from_rule,
    histogram_svg,
    json_for_script,
    read_scores,
    render_report,
    resolve_threshold,
    worst_first,
    write_report,
)
from pipeline.scan.analyze import ScanConfig
from pipeline.scan.records import FaceRow, VideoRow, counts_text, label_for
from pipeline.scan.sink import CsvSink

THRESHOLD = 0.477
PROVENANCE = dict(
    model="meso4_mix_v2",
    model_sha256="ab" * 32,
    threshold=THRESHOLD,
    aggregation="track_max",
    scan_settings="fps=1;max_frames=40;detect_long_side_px=480",
    tool_version="0.2.0",
)
HOSTILE_PATHS = [
    "clips/</script><script>window.pwned=1</script>.mp4",
    "clips/quote\"and'apostrophe.mp4",
    "clips/new\nline.mp4",
    "clips/<!--comment <img src=x onerror=alert(1)>.mp4",
    "clips/&amp;entity&lt;.mp4",
    "clips/line\u2028separator.mp4",
    '=HYPERLINK("http://evil").mp4',
]


# --- fixtures: a batch of clips, as the scanner and its --evidence-dir write them ---------------


def ok_row(path: str, p_fake: float, threshold: float = THRESHOLD, **extra) -> VideoRow:
    fields = {**PROVENANCE, "threshold": threshold, **extra}
    return VideoRow(
        video_path=path,
        status="ok",
        p_fake=p_fake,
        label=label_for(p_fake, threshold, extra.get("uncertain_below")),
        n_frames=10,
        n_faces=10,
        n_tracks=1,
        duration_s=10.0,
        **fields,
    )


def failed_row(path: str, status: str) -> VideoRow:
    return VideoRow(video_path=path, status=status, error=f"{status} here", **PROVENANCE)


def write_scores_csv(path: Path, rows) -> Path:
    with CsvSink(path, VideoRow.columns(), resume=False, lock=False) as sink:
        sink.write_many(rows)
    return path


def write_jsonl(path: Path, rows) -> Path:
    path.write_text("".join(json.dumps(dataclasses.asdict(r)) + "\n" for r in rows), encoding="utf-8")
    return path


def jpeg_bytes(size_wh: tuple[int, int], seed: int) -> bytes:
    """A small JPEG with some texture (so it is not trivially tiny)."""
    rng = random.Random(seed)
    image = Image.new("RGB", size_wh, (rng.randrange(256), rng.randrange(256), rng.randrange(256)))
    pixels = image.load()
    for _ in range(size_wh[0] * size_wh[1] // 8):
        pixels[rng.randrange(size_wh[0]), rng.randrange(size_wh[1])] = (rng.randrange(256), 0, rng.randrange(256))
    buf = io.BytesIO()
    image.save(buf, format="JPEG", quality=80)
    return buf.getvalue()


def write_evidence(
    evidence_dir: Path,
    clips: dict[str, list[tuple[str, int | None, float, float]]],
    frame_wh: tuple[int, int] = (160, 90),
    crop_wh: tuple[int, int] = (64, 64),
) -> Path:
    """An ``--evidence-dir`` folder: per clip, ``(kind, track_id, timestamp_s, p_fake)`` images
    (frames ``frame_wh``, crops ``crop_wh`` pixels), named as the scanner names them, listed in
    ``evidence.csv``."""
    evidence_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for n, (video_path, images) in enumerate(clips.items()):
        stem = f"clip{n}"
        for i, (kind, track_id, timestamp_s, p_fake) in enumerate(images):
            if kind == "frame":
                name = f"{stem}__frame_t{timestamp_s:.1f}.jpg"
                data = jpeg_bytes(frame_wh, seed=n * 100 + i)
            else:
                name = f"{stem}__crop{i}_track{track_id}_t{timestamp_s:.1f}_p{p_fake:.3f}.jpg"
                data = jpeg_bytes(crop_wh, seed=n * 100 + i)
            (evidence_dir / name).write_bytes(data)
            rows.append([video_path, name, kind, "" if track_id is None else track_id, timestamp_s, p_fake])
    with open(evidence_dir / EVIDENCE_INDEX, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(EVIDENCE_COLUMNS)
        writer.writerows(rows)
    return evidence_dir


def write_faces_csv(path: Path, clips: dict[str, dict[int, list[tuple[float, float]]]]) -> Path:
    rows = [
        FaceRow(video_path, round(t * 30), t, track_id, 10.0, 10.0, 90.0, 90.0, 0.99, p)
        for video_path, tracks in clips.items()
        for track_id, points in tracks.items()
        for t, p in points
    ]
    with CsvSink(path, FaceRow.columns(), resume=False, lock=False) as sink:
        sink.write_many(rows)
    return path


def make_batch(root: Path, n_clips: int, *, evidence_clips: int = 50, seed: int = 0, **image_sizes) -> dict[str, Path]:
    """A scanned batch of ``n_clips``: ``scores.csv`` (about 90 % ok, the rest no_face,
    decode_error, timeout, error; the hostile paths included), ``faces.csv`` and ``evidence/``
    for the ``evidence_clips`` worst FAKE clips (a boxed frame and 4 crops of 2 people each;
    ``image_sizes``: ``frame_wh``/``crop_wh`` as :func:`write_evidence` takes them)."""
    root.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    rows = []
    for i in range(n_clips):
        path = HOSTILE_PATHS[i] if i < len(HOSTILE_PATHS) else f"batch/part{i % 37:02d}/clip_{i:05d}.mp4"
        roll = rng.random()
        if roll < 0.90 or i < len(HOSTILE_PATHS):
            rows.append(ok_row(path, round(rng.betavariate(1.2, 2.0), 6)))
        else:
            status = ("no_face", "decode_error", "timeout", "error")[int((roll - 0.90) / 0.025)]
            rows.append(failed_row(path, status))
    scores = write_scores_csv(root / "scores.csv", rows)
    fakes = [r for r in sorted(rows, key=lambda r: -(r.p_fake or -1)) if r.label == "FAKE"][:evidence_clips]
    images, series = {}, {}
    for r in fakes:
        images[r.video_path] = [("frame", None, 2.0, r.p_fake)] + [
            ("crop", track, 1.0 + k, min(1.0, r.p_fake + 0.01 * k)) for track in (0, 1) for k in range(2)
        ]
        series[r.video_path] = {
            track: [(float(t), max(0.0, min(1.0, r.p_fake - 0.2 * track + 0.05 * (t % 3)))) for t in range(6)]
            for track in (0, 1)
        }
    evidence = write_evidence(root / "evidence", images, **image_sizes)
    faces = write_faces_csv(root / "faces.csv", series)
    return {"scores": scores, "faces": faces, "evidence": evidence}


def page_data(page: str) -> dict:
    """The JSON the page's script reads."""
    match = re.search(r'<script type="application/json" id="report-data">(.*?)</script>', page, re.S)
    assert match, "no data block"
    return json.loads(match.group(1))


def render(records, **config) -> tuple[str, object]:
    return render_report(records, ReportConfig(Path("scores.csv"), Path("report.html"), **config))


# --- order and counts ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "records, expected",
    [
        # scored clips by p_fake descending
        ([("a", "ok", 0.2), ("b", "ok", 0.9), ("c", "ok", 0.5)], ["b", "c", "a"]),
        # unscored clips after every scored one, even a p_fake of 0
        ([("x", "error", None), ("a", "ok", 0.0), ("n", "no_face", None)], ["a", "n", "x"]),
        # unscored clips by status order (no_face, decode_error, timeout, error), then path
        ([("z", "timeout", None), ("b", "no_face", None), ("a", "no_face", None), ("d", "decode_error", None)],
         ["a", "b", "d", "z"]),
        # ties keep file order
        ([("first", "ok", 0.7), ("second", "ok", 0.7)], ["first", "second"]),
    ],
)  # fmt: skip
def test_worst_first(records, expected):
    clips = [ClipRecord(p, s, p_fake=v, label="" if v is None else label_for(v, 0.5)) for p, s, v in records]
    assert [c.video_path for c in worst_first(clips)] == expected


def test_counts_order_and_table(tmp_path):
    rows = [
        ok_row("real.mp4", 0.1),
        ok_row("fake.mp4", 0.93),
        ok_row("edge.mp4", THRESHOLD),
        failed_row("broken.mp4", "decode_error"),
        failed_row("empty.mp4", "no_face"),
        failed_row("empty2.mp4", "no_face"),
    ]
    scores = write_scores_csv(tmp_path / "scores.csv", rows)
    summary = write_report(ReportConfig(scores, tmp_path / "report.html"))
    assert summary.n_clips == 6
    assert summary.status_counts == {"ok": 3, "partial": 0, "no_face": 2, "decode_error": 1, "timeout": 0, "error": 0}
    assert summary.label_counts == {"FAKE": 2, "REAL": 1, "(none)": 3}
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert re.search(r'data-count="status:no_face"><dt>no_face</dt><dd>2</dd>', page)
    assert re.search(r'data-count="label:FAKE"><dt>FAKE</dt><dd>2</dd>', page)
    data = page_data(page)
    assert [r[1] for r in data["rows"]] == ["fake.mp4", "edge.mp4", "real.mp4", "empty.mp4", "empty2.mp4", "broken.mp4"]
    assert [r[0] for r in data["rows"]] == [1, 2, 3, 4, 5, 6]
    assert data["rows"][0][2:5] == ["ok", 0.93, "FAKE"] and data["rows"][3][3] is None
    assert data["page_size"] == 100
    # provenance in the header
    for value in ("meso4_mix_v2", "ab" * 32, "track_max", "fps=1;max_frames=40", "0.2.0", "0.477"):
        assert value in page
    assert "Rows differ" not in page and 'class="differs"' not in page and 'class="note"' not in page


def test_histogram_bins_and_threshold():
    svg = histogram_svg([0.0, 0.01, 0.49, 0.5, 0.99, 1.0], threshold=0.5, bins=20)
    titles = re.findall(r"<title>([0-9.]+)-[0-9.]+: (\d+) clips</title>", svg)
    counts = {lo: int(n) for lo, n in titles}
    assert counts["0.00"] == 2 and counts["0.45"] == 1 and counts["0.50"] == 1 and counts["0.95"] == 2
    assert sum(counts.values()) == 6
    assert svg.count('class="bar fake"') == 10 and svg.count('class="bar real"') == 10
    assert 'class="threshold"' in svg and "threshold 0.5" in svg


# --- hostile paths ---------------------------------------------------------------------------------


def test_json_for_script_cannot_close_the_element():
    text = json_for_script({"p": "</script><!--<script>&\u2028\u2029"})
    assert "<" not in text and ">" not in text and "&" not in text and "\u2028" not in text
    assert json.loads(text) == {"p": "</script><!--<script>&\u2028\u2029"}


def test_hostile_paths_stay_text(tmp_path):
    batch = make_batch(tmp_path, 40, evidence_clips=40)
    summary = write_report(
        ReportConfig(
            batch["scores"], tmp_path / "report.html", evidence_dir=batch["evidence"], faces_csv=batch["faces"]
        )
    )
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    # exactly our two script elements: the data block and the code, nothing injected
    assert page.count("<script") == 2 and page.count("</script>") == 2
    assert "<img src=x" not in page and "<!--" not in page
    assert "onerror=alert(1)" in page.replace("&lt;img src=x ", "")  # present only as escaped text
    # the table's data reads back exactly (the CSV's formula escape undone)
    paths = {r[1] for r in page_data(page)["rows"]}
    assert set(HOSTILE_PATHS) <= paths
    # hostile clips flagged FAKE get evidence sections with their path escaped
    fakes = [r for r in read_scores(batch["scores"]) if r.video_path in HOSTILE_PATHS and r.label == "FAKE"]
    assert fakes and summary.evidence_clips >= len(fakes)
    for clip in fakes:
        assert f'<code class="path">{_html_escape(clip.video_path)}</code>' in page


def _html_escape(text: str) -> str:
    import html

    return html.escape(text, quote=True)


def test_content_security_policy_allows_only_the_inline_assets(tmp_path):
    scores = write_scores_csv(tmp_path / "scores.csv", [ok_row("a.mp4", 0.9)])
    write_report(ReportConfig(scores, tmp_path / "r.html"))
    page = (tmp_path / "r.html").read_text(encoding="utf-8")
    csp = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', page).group(1)
    script = re.search(r"<script>(.*?)</script>", page, re.S).group(1)
    style = re.search(r"<style>(.*?)</style>", page, re.S).group(1)
    digest = lambda text: base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()  # noqa: E731
    assert "default-src &#x27;none&#x27;" in csp and "img-src data:" in csp
    assert f"sha256-{digest(script)}" in csp and f"sha256-{digest(style)}" in csp
    assert "http://" not in page.replace("http://evil", "") and "https://" not in page


# --- threshold ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "thresholds, flag, expected, note",
    [
        # every row records the same: it is used, no note
        ([0.477, 0.477], None, 0.477, None),
        # rows differ: the most common, with a note listing each
        ([0.5, 0.477, 0.477], None, 0.477, "Rows differ in threshold: 0.477 (2 clips), 0.5 (1 clips)"),
        # an older CSV without the column: 0.5 with a note
        ([None, None], None, 0.5, "records no threshold; 0.5 is assumed"),
        # ... or the flag
        ([None], 0.6, 0.6, "records no threshold; --threshold 0.6 is used"),
        # the flag does not override what the rows record
        ([0.477], 0.6, 0.477, "--threshold 0.6 is not used"),
        # some rows record none
        ([0.477, None], None, 0.477, "1 rows record no threshold"),
    ],
)
def test_resolve_threshold(thresholds, flag, expected, note):
    records = [ClipRecord(f"{i}.mp4", "ok", 0.5, "FAKE", threshold=t) for i, t in enumerate(thresholds)]
    threshold, notes = resolve_threshold(records, flag)
    assert threshold == expected
    if note is None:
        assert notes == []
    else:
        assert any(note in n for n in notes), notes


def test_old_csv_without_threshold_column(tmp_path):
    scores = tmp_path / "old.csv"
    scores.write_text("video_path,status,p_fake,label\na.mp4,ok,0.7,FAKE\nb.mp4,no_face,,\n", encoding="utf-8")
    summary = write_report(ReportConfig(scores, tmp_path / "r.html", threshold=0.65))
    page = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert summary.threshold == 0.65 and "threshold 0.65" in page
    assert "This file records no threshold; --threshold 0.65 is used." in page
    assert page.count("not recorded") == 6  # model, sha256, aggregation, label rule, settings, version
    assert "not recorded:</span> FAKE when p_fake &ge; 0.65, else REAL" in page  # the rule drawn, in words


def test_differing_thresholds_are_said(tmp_path):
    rows = [ok_row("a.mp4", 0.49, threshold=0.477), ok_row("b.mp4", 0.49, threshold=0.5)]
    scores = write_scores_csv(tmp_path / "scores.csv", rows)
    write_report(ReportConfig(scores, tmp_path / "r.html"))
    page = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert "Rows differ in threshold" in page and 'class="differs">2 different' in page


# --- evidence -----------------------------------------------------------------------------------


def test_evidence_only_for_flagged_clips_within_limits(tmp_path):
    rows = [ok_row("worst.mp4", 0.99), ok_row("second.mp4", 0.9), ok_row("third.mp4", 0.8), ok_row("real.mp4", 0.1)]
    scores = write_scores_csv(tmp_path / "scores.csv", rows)
    crops = [("crop", 0, float(t), 0.5 + 0.05 * t) for t in range(6)]
    evidence = write_evidence(
        tmp_path / "evidence",
        {
            "worst.mp4": [("frame", None, 1.0, 0.99), *crops],  # 7 images: 3 over the per-clip limit of 4
            "second.mp4": [("frame", None, 1.0, 0.9), *crops[:2]],
            "third.mp4": [("frame", None, 1.0, 0.8)],  # beyond evidence_clips=2: not shown at all
            "real.mp4": [("frame", None, 1.0, 0.1)],  # REAL: never embedded
        },
    )
    config = ReportConfig(scores, tmp_path / "r.html", evidence_dir=evidence, evidence_clips=2, images_per_clip=4)
    summary = write_report(config)
    page = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert summary.evidence_clips == 2 and summary.embedded_images == 4 + 3
    assert summary.left_out == {"over the per-clip limit": 3}
    assert page.count("data:image/jpeg;base64,") == 7
    assert 'id="ev-1"' in page and 'id="ev-2"' in page and 'id="ev-3"' not in page
    assert "2 of 3 FAKE clips shown here" in page and "3 over the per-clip limit" in page
    # the frame comes first, then the crops by p_fake descending
    worst = page[page.index('id="ev-1"') : page.index('id="ev-2"')]
    captions = re.findall(r"<figcaption>(.*?)</figcaption>", worst)
    assert captions[0].startswith("boxed frame") and "p_fake 0.750" in captions[1] and "p_fake 0.650" in captions[3]
    # the table links the clips with evidence
    evidence_at = [c[0] for c in TABLE_COLUMNS].index("evidence")
    assert [r[evidence_at] for r in page_data(page)["rows"]] == [1, 2, None, None]  # the evidence column


def test_evidence_budget_and_bad_files(tmp_path):
    rows = [ok_row(f"f{i}.mp4", 0.9 - i / 100) for i in range(4)]
    scores = write_scores_csv(tmp_path / "scores.csv", rows)
    evidence = write_evidence(tmp_path / "evidence", {f"f{i}.mp4": [("frame", None, 1.0, 0.9)] for i in range(4)})
    frame_size = max(p.stat().st_size for p in evidence.glob("*.jpg"))
    with open(evidence / EVIDENCE_INDEX, "a", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        (tmp_path / "secret.jpg").write_bytes(jpeg_bytes((8, 8), 1))
        writer.writerow(["f0.mp4", "../secret.jpg", "crop", 0, 1.0, 0.95])  # outside the folder
        writer.writerow(["f0.mp4", str(tmp_path / "secret.jpg"), "crop", 0, 1.0, 0.94])  # absolute
        writer.writerow(["f0.mp4", "gone.jpg", "crop", 0, 1.0, 0.93])  # missing
        (evidence / "fake.jpg").write_bytes(b"<svg onload=alert(1)>")
        writer.writerow(["f0.mp4", "fake.jpg", "crop", 0, 1.0, 0.92])  # not a JPEG
    config = ReportConfig(scores, tmp_path / "r.html", evidence_dir=evidence, evidence_budget_bytes=2 * frame_size)
    summary = write_report(config)
    assert summary.embedded_images == 2 and summary.embedded_bytes <= 2 * frame_size
    assert summary.left_out == {
        "over the size budget": 2,
        "outside the evidence folder": 2,
        "missing": 1,
        "not a JPEG": 1,
    }
    page = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert "2 over the size budget" in page and "onload" not in page
    assert base64.b64encode((tmp_path / "secret.jpg").read_bytes()).decode() not in page


def test_a_tight_budget_shows_every_flagged_clip_first(tmp_path):
    rows = [ok_row(f"f{i}.mp4", 0.9 - i / 100) for i in range(3)]
    scores = write_scores_csv(tmp_path / "scores.csv", rows)
    images = [("frame", 0, 1.0, 0.9), ("crop", 0, 1.0, 0.9), ("crop", 0, 2.0, 0.8), ("crop", 0, 3.0, 0.7)]
    evidence = write_evidence(tmp_path / "evidence", {f"f{i}.mp4": images for i in range(3)})
    index = list(csv.DictReader((evidence / EVIDENCE_INDEX).read_text(encoding="utf-8").splitlines()))
    size = {r["file"]: (evidence / r["file"]).stat().st_size for r in index}
    # room for the frame and the worst crop of each clip, not for a third image of any
    first_round = sum(size[r["file"]] for r in index if r["kind"] == "frame" or r["timestamp_s"] == "1.0")
    budget = first_round + min(size.values()) - 1
    summary = write_report(
        ReportConfig(scores, tmp_path / "r.html", evidence_dir=evidence, evidence_budget_bytes=budget)
    )
    assert summary.embedded_images == 6 and summary.embedded_bytes == first_round
    assert summary.left_out == {"over the size budget": 6}
    page = (tmp_path / "r.html").read_text(encoding="utf-8")
    for rank in (1, 2, 3):
        section = page[page.index(f'id="ev-{rank}"') :].split("</section>")[0]
        assert section.count("<img ") == 2 and "Images left out: 2 over the size budget" in section


def test_score_over_time_per_person(tmp_path):
    batch = make_batch(tmp_path, 30, evidence_clips=3)
    write_report(ReportConfig(batch["scores"], tmp_path / "r.html", faces_csv=batch["faces"], evidence_clips=3))
    page = (tmp_path / "r.html").read_text(encoding="utf-8")
    first = page[page.index('id="ev-1"') : page.index('id="ev-2"')]
    assert first.count('<svg class="chart-svg series"') == 1
    assert first.count('<circle class="series-dot') == 12  # 2 people x 6 faces
    assert first.count('<polyline class="series-line') == 2 and "person 0: mean" in first
    assert "No evidence folder was given" in page


def test_evidence_index_matches_the_scanners():
    evidence = pytest.importorskip("pipeline.scan.evidence")
    assert tuple(evidence.EvidenceRow.columns()) == EVIDENCE_COLUMNS
    assert evidence.EVIDENCE_INDEX_NAME == EVIDENCE_INDEX and evidence.EVIDENCE_KINDS == ("crop", "frame")


def test_evidence_index_is_required(tmp_path):
    scores = write_scores_csv(tmp_path / "scores.csv", [ok_row("a.mp4", 0.9)])
    (tmp_path / "ev").mkdir()
    with pytest.raises(ReportError, match="has no evidence.csv"):
        write_report(ReportConfig(scores, tmp_path / "r.html", evidence_dir=tmp_path / "ev"))


# --- JSON Lines ---------------------------------------------------------------------------------


def test_jsonl_reads_like_csv(tmp_path):
    rows = [ok_row(p, round(0.1 + 0.1 * i, 6)) for i, p in enumerate(HOSTILE_PATHS)]
    rows.append(failed_row("bad.mp4", "timeout"))
    from_csv = read_scores(write_scores_csv(tmp_path / "scores.csv", rows))
    from_jsonl = read_scores(write_jsonl(tmp_path / "scores.jsonl", rows))
    assert from_jsonl == from_csv
    assert from_jsonl[-1].status == "timeout" and from_jsonl[0].threshold == THRESHOLD


def test_the_scanners_jsonl_with_nested_faces(tmp_path):
    jsonl = pytest.importorskip("pipeline.scan.jsonl")
    rows = [ok_row("fake.mp4", 0.8), ok_row("real.mp4", 0.2), failed_row("gone.mp4", "decode_error")]
    faces = [
        FaceRow("fake.mp4", i, float(i), track, 0, 0, 50, 50, 0.99, 0.6 + 0.1 * track)
        for i in range(4)
        for track in (0, 1)
    ]
    path = tmp_path / "scores.jsonl"
    with jsonl.JsonlSink(path, VideoRow.columns(), resume=False, lock=False, faces=True) as sink:
        sink.write(rows[0], faces)
        sink.write(rows[1], [])
        sink.write(rows[2], [])
    summary = write_report(ReportConfig(path, tmp_path / "r.html"))
    assert summary.status_counts["decode_error"] == 1 and summary.label_counts["FAKE"] == 1
    page = (tmp_path / "r.html").read_text(encoding="utf-8")
    section = page[page.index('id="ev-1"') :]
    assert section.count('<circle class="series-dot') == 8 and "person 1: mean 0.700" in section


def test_jsonl_torn_last_line_is_skipped_but_a_bad_middle_line_is_refused(tmp_path):
    path = write_jsonl(tmp_path / "scores.jsonl", [ok_row("a.mp4", 0.6), ok_row("b.mp4", 0.2)])
    with open(path, "a", encoding="utf-8") as f:
        f.write('{"video_path": "c.mp4", "sta')
    assert [r.video_path for r in read_scores(path)] == ["a.mp4", "b.mp4"]
    path.write_text('{"video_path": "a.mp4", "status": "ok"}\nnot json\n{"video_path": "b.mp4", "status": "ok"}\n')
    with pytest.raises(ReportError, match=r"scores.jsonl:2 is not JSON"):
        read_scores(path)


# --- the UNCERTAIN band -------------------------------------------------------------------------

BAND = ScanConfig(aggregation="track_max", threshold=0.7, uncertain_below=0.4)


def band_row(path: str, p_fake: float, config: ScanConfig = BAND) -> VideoRow:
    """An ok row labelled as the scanner labels it under ``config``'s two thresholds."""
    return ok_row(
        path,
        p_fake,
        threshold=config.threshold,
        uncertain_below=config.uncertain_below,
        label_rule=config.label_rule,
    )


def band_batch() -> list[VideoRow]:
    return [
        band_row("fake.mp4", 0.9),
        band_row("unsure_high.mp4", 0.65),
        band_row("unsure_low.mp4", 0.45),
        band_row("real.mp4", 0.1),
        dataclasses.replace(
            failed_row("broken.mp4", "decode_error"), threshold=0.7, uncertain_below=0.4, label_rule=BAND.label_rule
        ),
    ]


@pytest.mark.parametrize("suffix, write", [(".csv", write_scores_csv), (".jsonl", write_jsonl)])
def test_uncertain_clips_are_counted_styled_and_listed_apart_from_the_flagged(tmp_path, suffix, write):
    scores = write(tmp_path / f"scores{suffix}", band_batch())
    summary = write_report(ReportConfig(scores, tmp_path / "report.html"))
    assert summary.label_counts == {"FAKE": 1, "UNCERTAIN": 2, "REAL": 1, "(none)": 1}
    assert summary.threshold == 0.7 and summary.uncertain_below == 0.4
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    # the count, in its own colour
    assert re.search(
        r'<div class="count label-UNCERTAIN" data-count="label:UNCERTAIN"><dt>UNCERTAIN</dt><dd>2</dd>', page
    )
    assert ".label-UNCERTAIN dd { color: var(--uncertain); }" in page
    assert "UNCERTAIN when p_fake is between the two thresholds" in page
    # the table: the rows say UNCERTAIN, the script gives them their class, the filter offers the label
    data = page_data(page)
    assert [(r[1], r[4]) for r in data["rows"][:4]] == [
        ("fake.mp4", "FAKE"),
        ("unsure_high.mp4", "UNCERTAIN"),
        ("unsure_low.mp4", "UNCERTAIN"),
        ("real.mp4", "REAL"),
    ]
    assert "UNCERTAIN: true" in page and "tr.UNCERTAIN td.label" in page
    assert '<option value="UNCERTAIN">UNCERTAIN (2)</option>' in page
    # the histogram: both thresholds, the bars between them in the uncertain colour
    svg = page[page.index('<svg class="chart-svg histogram"') : page.index("</svg>")]
    assert 'class="threshold threshold-low"' in svg and "REAL under 0.4" in svg and "FAKE at 0.7" in svg
    assert svg.count('class="bar uncertain"') == 6  # bins 0.40-0.45 ... 0.65-0.70
    assert "FAKE at p_fake &ge; 0.7, REAL under 0.4; the bars between are UNCERTAIN" in page
    # the rule, stated once, in the run's card
    assert page.count(html_escape(BAND.label_rule)) == 1
    provenance = page[page.index('id="provenance"') : page.index('id="counts"')]
    assert "<dt>label rule</dt>" in provenance and html_escape(BAND.label_rule) in provenance
    assert "<code>0.7</code> and <code>0.4</code>" in provenance
    assert 'class="differs"' not in page and 'class="note"' not in page  # one run, one rule: nothing to warn of
    # flagged means FAKE only; the UNCERTAIN clips are listed apart, worst first, without evidence
    assert "1 of 1 FAKE clips shown here" in page and page.count('class="card evidence"') == 1
    uncertain = page[page.index('id="uncertain"') :]
    assert "2 clips are UNCERTAIN (p_fake between 0.4 and 0.7)" in uncertain
    assert re.findall(r'<li><span class="rank">#(\d+)</span> <code class="path">([^<]*)</code>', uncertain) == [
        ("2", "unsure_high.mp4"),
        ("3", "unsure_low.mp4"),
    ]
    assert '<span class="tag tag-uncertain">0.650 UNCERTAIN</span>' in uncertain


def test_a_long_uncertain_list_stops_and_points_at_the_table(monkeypatch):
    from pipeline.report import html as report

    monkeypatch.setattr(report, "UNCERTAIN_LISTED", 1)
    page, _ = render(read_scores_of(band_batch()))
    uncertain = page[page.index('id="uncertain"') :]
    assert "1 listed, worst first (at most 1); choose label UNCERTAIN in the table for all." in uncertain
    assert uncertain.count("<li>") == 1 and "unsure_high.mp4" in uncertain and "unsure_low.mp4" not in uncertain
    one, _ = render(read_scores_of([band_row("a.mp4", 0.5)]))
    assert "1 clip is UNCERTAIN (p_fake between 0.4 and 0.7)" in one


def test_the_command_says_the_label_counts(tmp_path, caplog):
    import logging

    scores = write_scores_csv(tmp_path / "scores.csv", band_batch())
    with caplog.at_level(logging.INFO):
        assert main([str(scores), "-o", str(tmp_path / "r.html")]) == 0
    assert "5 clips (ok 4 (FAKE 1, UNCERTAIN 2, REAL 1), decode_error 1), 1 flagged with evidence" in caplog.text


def html_escape(text: str) -> str:
    import html

    return html.escape(text, quote=True)


def test_one_cut_rows_show_no_uncertain_label_nor_band(tmp_path):
    one_cut = ScanConfig(aggregation="track_max", threshold=0.7)
    rows = [band_row("a.mp4", 0.9, one_cut), band_row("b.mp4", 0.5, one_cut)]
    summary = write_report(ReportConfig(write_scores_csv(tmp_path / "s.csv", rows), tmp_path / "r.html"))
    assert summary.label_counts == {"FAKE": 1, "REAL": 1} and summary.uncertain_below is None
    page = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert 'data-count="label:UNCERTAIN"' not in page and 'id="uncertain"' not in page
    assert 'class="threshold threshold-low"' not in page and "threshold 0.7" in page
    assert html_escape("FAKE at p_fake >= 0.7, else REAL") in page  # the rows' rule, stated


def test_a_band_is_read_from_the_label_rule_of_rows_written_before_its_column(tmp_path):
    from pipeline.scan.decision import FEATURES, ClipDecision

    decision = ClipDecision(
        mean=(0.0,) * len(FEATURES),
        scale=(1.0,) * len(FEATURES),
        coef=(0.0,) * len(FEATURES),
        intercept=0.0,
        fake_at=0.712,
        real_below=0.301,
        fpr_target=0.05,
        miss_target=0.05,
        chosen_on="106 FF++ c23 clips",
    )
    assert band_from_rule(decision.rule_text) == 0.301
    assert band_from_rule(BAND.label_rule) == 0.4
    assert band_from_rule("FAKE at p_fake >= 0.6, else REAL") is None and band_from_rule("") is None
    rule = decision.rule_text.replace('"', '""')
    scores = tmp_path / "scores.csv"
    scores.write_text(
        "video_path,status,p_fake,label,threshold,label_rule\n"
        f'a.mp4,ok,0.5,UNCERTAIN,0.712,"{rule}"\n'
        f'b.mp4,ok,0.2,REAL,0.712,"{rule}"\n',
        encoding="utf-8",
    )
    summary = write_report(ReportConfig(scores, tmp_path / "r.html"))
    assert summary.uncertain_below == 0.301 and summary.label_counts["UNCERTAIN"] == 1
    assert "REAL under 0.301" in (tmp_path / "r.html").read_text(encoding="utf-8")


def test_rows_that_differ_in_the_band_are_said():
    other = ScanConfig(aggregation="track_max", threshold=0.7, uncertain_below=0.3)
    one_cut = ScanConfig(aggregation="track_max", threshold=0.7)
    records = read_scores_of([band_row("a.mp4", 0.5), band_row("b.mp4", 0.5), band_row("c.mp4", 0.5, other)])
    page, summary = render(records + read_scores_of([band_row("d.mp4", 0.5, one_cut)]))
    assert summary.uncertain_below == 0.4
    assert "Rows differ in the lower threshold (REAL under): 0.4 (2 clips), 0.3 (1 clips)" in page
    assert "1 rows were labelled with one cut (FAKE or REAL, no UNCERTAIN band)" in page


def read_scores_of(rows) -> list[ClipRecord]:
    from pipeline.report.html import _record

    return [_record(dataclasses.asdict(r), "test") for r in rows]


def test_histogram_draws_the_band():
    svg = histogram_svg([0.1, 0.5, 0.9], threshold=0.7, bins=10, uncertain_below=0.4)
    assert svg.count('class="bar real"') == 4 and svg.count('class="bar uncertain"') == 3
    assert svg.count('class="bar fake"') == 3
    assert "REAL under 0.4" in svg and "FAKE at 0.7" in svg and "threshold 0.7" not in svg
    assert 'aria-label="histogram of p_fake over 3 scored clips; FAKE at 0.7, REAL under 0.4, UNCERTAIN between"' in svg


# --- the command --------------------------------------------------------------------------------


def test_command_writes_the_page(tmp_path, capsys):
    batch = make_batch(tmp_path, 25, evidence_clips=5)
    out = tmp_path / "report.html"
    argv = [str(batch["scores"]), "-o", str(out), "--evidence-dir", str(batch["evidence"]), "--faces-csv"]
    assert main([*argv, str(batch["faces"]), "--images-per-clip", "2", "-q"]) == 0
    page = out.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and page.count("data:image/jpeg;base64,") == 2 * 5


@pytest.mark.parametrize(
    "content, name, message",
    [
        # no such file
        (None, "missing.csv", "scores file .*missing.csv not found"),
        # a CSV of something else
        ("file,label\na.jpg,fake\n", "faces.csv", "is not a scores CSV: no column video_path, status"),
        # not a scores file type
        ("x", "scores.txt", "a scores file ends in one of"),
        # a bad number
        ("video_path,status,p_fake,label\na.mp4,ok,high,FAKE\n", "s.csv", r"s.csv:2: p_fake 'high' is not a number"),
        # a p_fake outside [0, 1]
        ("video_path,status,p_fake,label\na.mp4,ok,1.5,FAKE\n", "s.csv", r"p_fake 1.5 is outside \[0, 1\]"),
        # a header only
        ("video_path,status\n", "s.csv", "holds no clip rows"),
        # binary garbage
        (b"\x00\xff\xfe" * 100, "s.csv", "is not a scores CSV"),
    ],
)
def test_bad_input_is_one_line_exit_2(tmp_path, capsys, content, name, message):
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content, encoding="utf-8")
    assert main([str(path), "-o", str(tmp_path / "r.html")], prog="report") == 2
    err = capsys.readouterr().err
    assert err.startswith("report: error: ") and err.count("\n") == 1 and re.search(message, err), err
    assert not (tmp_path / "r.html").exists()


def test_output_folder_or_missing_evidence_is_exit_2(tmp_path, capsys):
    scores = write_scores_csv(tmp_path / "scores.csv", [ok_row("a.mp4", 0.9)])
    assert main([str(scores), "-o", str(tmp_path)], prog="report") == 2
    assert "is a folder" in capsys.readouterr().err
    assert main([str(scores), "-o", str(tmp_path / "r.html"), "--evidence-dir", str(tmp_path / "no")]) == 2
    assert "evidence folder" in capsys.readouterr().err
    assert main([str(scores), "-o", str(tmp_path / "nowhere" / "r.html")], prog="report") == 2
    assert "nowhere does not exist" in capsys.readouterr().err


def test_the_summary_counts_labels_under_ok_as_the_scan_does(tmp_path):
    """A partial clip's label is not counted under ``ok`` (the report said "ok 3 (... UNCERTAIN 2, REAL 2)")."""
    partial = dataclasses.replace(
        ok_row("cut.mp4", 0.3), status="partial", label="UNCERTAIN", covered_s=1.0, reached_end=False
    )
    rows = [ok_row("a.mp4", 0.2), ok_row("b.mp4", 0.3), ok_row("c.mp4", 0.9), partial]
    summary = write_report(ReportConfig(write_scores_csv(tmp_path / "s.csv", rows), tmp_path / "r.html"))
    assert summary.ok_label_counts == {"REAL": 2, "FAKE": 1}
    assert summary.label_counts["UNCERTAIN"] == 1  # the page's label card counts every row
    assert counts_text(summary.status_counts, summary.ok_label_counts) == "ok 3 (FAKE 1, REAL 2), partial 1"


def test_the_table_says_in_how_many_frames_faces_were_seen_and_the_notes_in_the_webs_words(tmp_path):
    from pipeline.report.notes import NOTES

    rows = [
        ok_row(
            "clips/caption.mp4",
            0.6,
            frames_sampled=9,
            frames_with_faces=2,
            notes="little_face_evidence;outside_validated_range",
            quality_outside="noise_sigma;sharpness",
        ),
        ok_row("clips/plain.mp4", 0.2, frames_sampled=10, frames_with_faces=10),
    ]
    page = render(read_scores(write_scores_csv(tmp_path / "s.csv", rows)))[0]
    keys = [c[0] for c in TABLE_COLUMNS]
    by_clip = {r[keys.index("video_path")]: r for r in page_data(page)["rows"]}
    caption, plain = by_clip["clips/caption.mp4"], by_clip["clips/plain.mp4"]
    assert caption[keys.index("seen")] == "2 of 9" and plain[keys.index("seen")] == "10 of 10"
    notes = caption[keys.index("notes")]
    assert notes.startswith("The verdict rests on few faces") and NOTES["little_face_evidence"].do in notes
    assert "(here: noise_sigma, sharpness)" in notes and plain[keys.index("notes")] == ""


def test_a_note_code_this_version_does_not_know_is_refused_naming_it(tmp_path):
    path = write_scores_csv(tmp_path / "s.csv", [ok_row("a.mp4", 0.2)])
    lines = path.read_text().splitlines()
    header = lines[0].split(",")
    cells = lines[1].split(",")
    cells[header.index("notes")] = "made_up_note"
    path.write_text("\n".join([lines[0], ",".join(cells)]) + "\n")
    with pytest.raises(ReportError, match=r"notes \['made_up_note'\] are not codes this version knows"):
        read_scores(path)


def test_the_notes_of_a_jsonl_scores_file_are_its_caveats_in_full(tmp_path):
    from pipeline.report.explain import row_explanation
    from pipeline.scan.jsonl import JsonlSink

    row = ok_row("clips/turned.mp4", 0.8, rotation_guess_deg=90, frames_sampled=10, frames_with_faces=10)
    out = tmp_path / "s.jsonl"
    with JsonlSink(out, VideoRow.columns(), resume=False) as sink:
        sink.write(row, explanation=row_explanation(row))
    page = render(read_scores(out))[0]
    keys = [c[0] for c in TABLE_COLUMNS]
    (shown,) = page_data(page)["rows"]
    assert shown[keys.index("notes")].startswith("The faces were found only with the frames turned 90°")
