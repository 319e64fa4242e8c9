"""pipeline/scan/jsonl.py and the batch's JSON Lines output: same fields, resume, torn tail, nested faces."""

from __future__ import annotations

import json

import pytest

from pipeline.scan.jsonl import JsonlSink, is_jsonl, read_jsonl_done_keys, read_objects, row_object
from pipeline.scan.notes import EVIDENCE_RULE_TEXT
from pipeline.scan.records import FaceRow, VideoRow


def _row(name: str, **fields) -> VideoRow:
    return VideoRow(video_path=name, status="no_face", elapsed_s=0.5, **fields)


@pytest.mark.parametrize("name, expected", [("a.jsonl", True), ("A.JSONL", True), ("a.ndjson", True), ("a.csv", False)])
def test_is_jsonl(name, expected):
    assert is_jsonl(name) is expected


def test_row_object_has_every_field_in_json_types():
    row = VideoRow(video_path='a "b"\n<c>.mp4', status="ok", p_fake=0.1234567, label="REAL", reached_end=True)
    obj = json.loads(json.dumps(row_object(row)))
    assert list(obj) == VideoRow.columns()
    assert obj["p_fake"] == 0.123457 and obj["reached_end"] is True and obj["fps"] is None
    assert obj["video_path"] == 'a "b"\n<c>.mp4'  # no spreadsheet escape in JSON


def test_sink_appends_resumes_and_cuts_a_torn_line(tmp_path):
    out = tmp_path / "scores.jsonl"
    with JsonlSink(out, VideoRow.columns(), resume=False) as sink:
        sink.write(_row("a.mp4"))
        sink.write(_row("b.mp4"))
    with open(out, "a") as f:  # a run killed mid-line
        f.write('{"video_path": "c.mp4", "sta')
    assert read_jsonl_done_keys(out, "video_path") == {"a.mp4", "b.mp4"}
    with JsonlSink(out, VideoRow.columns(), resume=True) as sink:
        sink.write(_row("c.mp4"))
    lines = out.read_text().splitlines()
    assert [json.loads(line)["video_path"] for line in lines] == ["a.mp4", "b.mp4", "c.mp4"]


def test_an_uncertain_row_keeps_its_label_band_and_rule_through_a_resume(tmp_path):
    from pipeline.scan.analyze import ScanConfig

    config = ScanConfig(aggregation="track_max", threshold=0.7, uncertain_below=0.4)
    row = VideoRow(
        "a.mp4",
        "ok",
        p_fake=0.55,
        label="UNCERTAIN",
        threshold=0.7,
        uncertain_below=0.4,
        label_rule=config.label_rule,
    )
    obj = row_object(row)
    assert (obj["label"], obj["threshold"], obj["uncertain_below"]) == ("UNCERTAIN", 0.7, 0.4)
    assert obj["label_rule"] == f"FAKE at p_fake >= 0.7, REAL under 0.4, UNCERTAIN between; {EVIDENCE_RULE_TEXT}"
    assert list(obj).index("uncertain_below") == list(obj).index("threshold") + 1
    out = tmp_path / "scores.jsonl"
    with JsonlSink(out, VideoRow.columns(), resume=False) as sink:
        sink.write(row)
    with JsonlSink(out, VideoRow.columns(), resume=True) as sink:  # written by this version: resumed
        sink.write(_row("b.mp4", threshold=0.7, uncertain_below=0.4, label_rule=config.label_rule))
    first, second = read_objects(out)
    assert first == obj and second["uncertain_below"] == 0.4 and second["label"] == ""
    # a file written before these fields: refused, not appended to with a second layout
    older = tmp_path / "older.jsonl"
    older.write_text(json.dumps({k: v for k, v in obj.items() if k not in ("label_rule", "uncertain_below")}) + "\n")
    with (
        pytest.raises(ValueError, match="has fields.*use --overwrite"),
        JsonlSink(older, VideoRow.columns(), resume=True),
    ):
        pass


def test_sink_refuses_a_file_with_other_fields(tmp_path):
    out = tmp_path / "scores.jsonl"
    out.write_text('{"video_path": "a.mp4", "status": "ok"}\n')
    with pytest.raises(ValueError, match="has fields"), JsonlSink(out, VideoRow.columns(), resume=True):
        pass
    out.write_text("not json\n")
    with pytest.raises(ValueError, match="not JSON"):
        read_objects(out)


def test_sink_nests_faces_when_asked(tmp_path):
    out = tmp_path / "scores.jsonl"
    face = FaceRow("a.mp4", 3, 0.12, 1, 1.0, 2.0, 30.0, 40.0, 0.99, 0.7, 39.0, 101.5, 0.41, 52.3, 1.08)
    with JsonlSink(out, VideoRow.columns(), resume=False, faces=True) as sink:
        sink.write(_row("a.mp4"), faces=[face])
    (obj,) = read_objects(out)
    assert obj["faces"] == [
        dict(
            frame_index=3,
            timestamp_s=0.12,
            track_id=1,
            x1=1.0,
            y1=2.0,
            x2=30.0,
            y2=40.0,
            det_confidence=0.99,
            p_fake=0.7,
            face_px=39.0,
            brightness=101.5,
            noise_sigma=0.41,
            sharpness=52.3,
            blockiness=1.08,
        )
    ]


def test_batch_writes_jsonl_resumes_it_and_checks_its_settings(tmp_path, clip_dir, detector, scorer):
    from pipeline.models.factory import LoadedModels
    from pipeline.scan.analyze import ScanConfig
    from pipeline.scan.batch import ResumeMismatchError, run_batch

    models = LoadedModels(detector, scorer, scorer.weights_path, 0.5)
    paths = [str(clip_dir / "face.mp4"), str(clip_dir / "noface.mp4"), str(clip_dir / "empty.mp4")]
    out = tmp_path / "scores.jsonl"
    summary = run_batch(paths, out, config=ScanConfig(), models=models, progress=False, nest_faces=True)
    assert summary.scored == 3
    objects = {o["video_path"]: o for o in read_objects(out)}
    face = objects[str(clip_dir / "face.mp4")]
    assert face["status"] == "ok" and len(face["faces"]) == face["n_faces"] > 0
    assert face["max_face_p_fake"] == max(f["p_fake"] for f in face["faces"])
    assert objects[str(clip_dir / "empty.mp4")]["status"] == "decode_error"
    assert all(o["threshold"] == 0.5 and o["model"] == scorer.name for o in objects.values())

    first = out.read_bytes()
    again = run_batch(paths, out, config=ScanConfig(), models=models, progress=False, nest_faces=True)
    assert (again.scored, again.skipped) == (0, 3)
    assert out.read_bytes() == first
    with pytest.raises(ResumeMismatchError, match="threshold 0.5 -> 0.6"):
        run_batch(paths, out, config=ScanConfig(threshold=0.6), models=models, progress=False)


def test_a_resume_keeps_faces_nested_or_not_as_the_file_has_them(tmp_path):
    out = tmp_path / "scores.jsonl"
    with JsonlSink(out, VideoRow.columns(), resume=False, faces=True) as sink:
        sink.write(_row("a.mp4"), faces=[])
    with pytest.raises(ValueError, match="nests each clip's faces; resume it with --nest-faces"):
        with JsonlSink(out, VideoRow.columns(), resume=True, faces=False):
            pass
    with JsonlSink(out, VideoRow.columns(), resume=True, faces=True) as sink:
        sink.write(_row("b.mp4"), faces=[])
    assert [o["faces"] for o in read_objects(out)] == [[], []]


def test_a_clips_object_says_its_verdict_and_caveats_in_the_webs_words_and_still_resumes(tmp_path):
    from pipeline.report.explain import row_explanation
    from pipeline.report.notes import NOTES

    row = VideoRow(
        "cut.mp4",
        "partial",
        p_fake=0.7,
        label="UNCERTAIN",
        notes="little_face_evidence",
        threshold=0.5,
        n_frames=3,
        frames_sampled=3,
        frames_with_faces=1,
        covered_s=1.0,
        reached_end=False,
        duration_s=10.0,
        error="decoded 1.0 s of 10.0 s: the file ends before the length its header states",
    )
    out = tmp_path / "scores.jsonl"
    with JsonlSink(out, VideoRow.columns(), resume=False) as sink:
        sink.write(row, explanation=row_explanation(row))
    (obj,) = read_objects(out)
    assert obj["verdict_text"].startswith("Faces were found in only 1 of the 3 sampled frames")
    kinds = [c["kind"] for c in obj["caveats"]]
    assert kinds == ["little_face_evidence", "partial_coverage"]
    assert obj["caveats"][0]["text"] == NOTES["little_face_evidence"].sentence()
    assert "decoded 1.0 s of 10.0 s" in obj["caveats"][1]["text"]
    with JsonlSink(out, VideoRow.columns(), resume=True) as sink:  # the extra keys are not fields
        sink.write(_row("b.mp4"))
    assert read_jsonl_done_keys(out, "video_path") == {"cut.mp4", "b.mp4"}
