"""pipeline/scan/records.py: output rows validate themselves; CSV columns come from the dataclasses."""

from __future__ import annotations

import dataclasses
import math

import pytest

from pipeline.scan.aggregate import summarize_tracks
from pipeline.scan.notes import EVIDENCE_RULE_TEXT
from pipeline.scan.records import (
    LABELS,
    STATUSES,
    FaceRow,
    TrackRow,
    VideoRow,
    counts_text,
    face_columns,
    label_for,
    labels_in_use,
)

VIDEO_CONTRACT = [
    "video_path",
    "status",
    "p_fake",
    "label",
    "notes",
    "n_frames",
    "frames_sampled",
    "frames_with_faces",
    "n_faces",
    "n_tracks",
    "n_tracks_counted",
    "verdict_track_id",
    "n_cuts",
    "duration_s",
    "fps",
    "width",
    "height",
    "aggregation",
    "model",
    "elapsed_s",
    "error",
]
TRACK_CONTRACT = [
    "video_path",
    "track_id",
    "n_faces",
    "frames_with_faces",
    "frames_sampled",
    "first_timestamp_s",
    "last_timestamp_s",
    "median_face_px",
    "mean_p_fake",
    "max_p_fake",
    "counted",
    "reason",
    "static",
    "size_weight",
    "verdict_score",
    "sets_verdict",
]
FACE_CONTRACT = [
    "video_path",
    "frame_index",
    "timestamp_s",
    "track_id",
    "x1",
    "y1",
    "x2",
    "y2",
    "det_confidence",
    "p_fake",
    "face_px",
    "brightness",
    "noise_sigma",
    "sharpness",
    "blockiness",
]


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(status="ok", p_fake=0.0, label="REAL"),  # lower edge of p_fake
        dict(status="ok", p_fake=1.0, label="FAKE"),  # upper edge of p_fake
        dict(status="no_face"),  # a clip without faces is a normal row with no score
        dict(status="decode_error", error="moov atom not found"),  # failures say why
        dict(status="timeout", error="took longer than 600 s"),
        dict(status="error", error="RuntimeError: boom"),
    ],
)
def test_video_row_accepts_valid_rows(kwargs):
    row = VideoRow(video_path="clips/a.mp4", **kwargs)
    assert (row.status, row.p_fake, row.label) == (kwargs["status"], kwargs.get("p_fake"), kwargs.get("label", ""))
    assert row.status in STATUSES


@pytest.mark.parametrize(
    "kwargs, message",
    [
        # an ok row must have a score
        (dict(status="ok", label="FAKE"), r"an ok row needs p_fake in \[0, 1\], got None"),
        # p_fake above 1
        (dict(status="ok", p_fake=1.2, label="FAKE"), r"an ok row needs p_fake in \[0, 1\], got 1.2"),
        # p_fake below 0
        (dict(status="ok", p_fake=-0.01, label="REAL"), r"got -0.01"),
        # NaN is not a score
        (dict(status="ok", p_fake=math.nan, label="REAL"), r"got nan"),
        # an ok row must have a label
        (
            dict(status="ok", p_fake=0.3),
            r"a row with a verdict \(ok\) needs label in \('FAKE', 'UNCERTAIN', 'REAL'\), got ''",
        ),
        # labels are upper case
        (dict(status="ok", p_fake=0.3, label="real"), r"got 'real'"),
        # no silent score on a failed clip
        (dict(status="no_face", p_fake=0.5), r"a no_face row carries no p_fake or label, got 0.5, ''"),
        # nor a label
        (dict(status="decode_error", label="REAL"), r"a decode_error row carries no p_fake or label, got None, 'REAL'"),
        # unknown status, listing the valid ones
        (
            dict(status="OK", p_fake=0.3, label="REAL"),
            r"status must be one of \('ok', 'partial', 'no_face', .*\), got 'OK'",
        ),
        (dict(status="skipped"), r"got 'skipped'"),
    ],
)
def test_video_row_rejects_invalid_rows(kwargs, message):
    with pytest.raises(ValueError, match=message):
        VideoRow(video_path="clips/a.mp4", **kwargs)


def test_video_row_is_frozen():
    row = VideoRow(video_path="a.mp4", status="no_face")
    with pytest.raises(dataclasses.FrozenInstanceError):
        row.status = "ok"


@pytest.mark.parametrize(
    "row_type, contract",
    [
        (VideoRow, VIDEO_CONTRACT),  # the per-clip CSV
        (FaceRow, FACE_CONTRACT),  # the per-face CSV
        (TrackRow, TRACK_CONTRACT),  # the per-track CSV (--tracks-csv)
    ],
)
def test_columns_contain_the_contract_in_order(row_type, contract):
    columns = row_type.columns()
    assert columns == [f.name for f in dataclasses.fields(row_type)]
    assert len(set(columns)) == len(columns)
    # the contract columns appear in this relative order; other columns may sit between them
    assert [c for c in columns if c in contract] == contract
    assert columns[0] == "video_path"


def test_face_row_columns_are_exactly_the_contract():
    assert FaceRow.columns() == FACE_CONTRACT


@pytest.mark.parametrize(
    "p_fake, ok",
    [
        (0.0, True),  # lower edge
        (1.0, True),  # upper edge
        (1.0001, False),  # just above
        (-0.5, False),  # negative
        (math.nan, False),  # NaN
    ],
)
def test_face_row_p_fake_range(p_fake, ok):
    make = lambda: FaceRow("a.mp4", 3, 1.5, 0, 1.0, 2.0, 30.0, 40.0, 0.99, p_fake)  # noqa: E731
    if ok:
        assert make().p_fake == p_fake
    else:
        with pytest.raises(ValueError, match=r"p_fake must be in \[0, 1\]"):
            make()


@pytest.mark.parametrize(
    "p_fake, threshold, expected",
    [
        (0.5, 0.5, "FAKE"),  # exactly at the threshold counts as FAKE
        (0.4999999, 0.5, "REAL"),  # just below
        (0.0, 0.0, "FAKE"),  # threshold 0: everything is FAKE
        (1.0, 1.0, "FAKE"),  # threshold 1: only certain fakes
        (0.9999, 1.0, "REAL"),
    ],
)
def test_label_for_threshold_edge(p_fake, threshold, expected):
    assert label_for(p_fake, threshold) == expected
    assert expected in LABELS


@pytest.mark.parametrize(
    "args, expected",
    [
        # rounding: time to 0.1 ms, boxes to 0.1 px, confidence to 5 decimals
        (
            (12, 1.234567, (10.04, 20.06, 110.0, 130.55), 0.9876543),
            dict(frame_index=12, timestamp_s=1.2346, x1=10.0, y1=20.1, x2=110.0, y2=130.6, det_confidence=0.98765),
        ),
        # values already round stay as they are
        (
            (0, 0.0, (0.0, 0.0, 1.0, 1.0), 1.0),
            dict(frame_index=0, timestamp_s=0.0, x1=0.0, y1=0.0, x2=1.0, y2=1.0, det_confidence=1.0),
        ),
    ],
)
def test_face_columns_round_one_way(args, expected):
    assert face_columns(*args) == expected


def test_face_columns_reject_a_box_that_is_not_four_numbers():
    with pytest.raises(ValueError, match="box_xyxy must hold 4 numbers .* got 3"):
        face_columns(0, 0.0, (1.0, 2.0, 3.0), 0.9)


def test_face_row_from_a_scored_face_is_the_one_builder():
    from pipeline.scan.analyze import ScoredFace

    face = ScoredFace(
        sample_index=2,
        frame_index=50,
        timestamp_s=2.0000004,
        track_id=1,
        box_xyxy=(100.04, 50.0, 200.0, 170.26),
        det_confidence=0.999991,
        p_fake=0.12345678,
    )
    row = FaceRow.from_face("clips/a.mp4", face)
    assert row == FaceRow("clips/a.mp4", 50, 2.0, 1, 100.0, 50.0, 200.0, 170.3, 0.99999, 0.12345678)
    assert list(dataclasses.asdict(row)) == FACE_CONTRACT  # p_fake is written as scored, unrounded


def test_track_row_columns_are_exactly_the_contract():
    assert TrackRow.columns() == TRACK_CONTRACT


def test_new_video_row_fields_are_empty_unless_set():
    row = VideoRow(video_path="a.mp4", status="no_face")
    assert (row.n_tracks_counted, row.verdict_track_id, row.n_cuts) == (None, None, None)
    row = VideoRow("a.mp4", "ok", 0.7, "FAKE", n_tracks=3, n_tracks_counted=2, verdict_track_id=1, n_cuts=4)
    assert (row.n_tracks_counted, row.verdict_track_id, row.n_cuts) == (2, 1, 4)


def test_track_row_from_a_summary():
    # track 0: 64 px faces (weighed down); track 1: two faces of ten, left out
    summaries = summarize_tracks(
        [0.123456789] * 9 + [0.9] + [0.2, 0.3],
        [0] * 10 + [1] * 2,
        [64.0] * 10 + [200.0] * 2,
        timestamps_s=[0.5 * i for i in range(12)],
    )
    small, short = (
        TrackRow.from_summary("clips/a.mp4", t, frames_sampled=12, sets_verdict=i == 0) for i, t in enumerate(summaries)
    )
    mean = (0.123456789 * 9 + 0.9) / 10
    assert small == TrackRow(
        video_path="clips/a.mp4",
        track_id=0,
        n_faces=10,
        frames_with_faces=10,
        frames_sampled=12,
        first_timestamp_s=0.0,
        last_timestamp_s=4.5,
        median_face_px=64.0,
        mean_p_fake=round(mean, 5),
        max_p_fake=0.9,
        counted=True,
        reason="counted_small_faces",
        static=False,
        size_weight=0.63,
        verdict_score=round(0.5 + 0.63 * (mean - 0.5), 5),
        sets_verdict=True,
    )
    assert (short.track_id, short.counted, short.reason, short.sets_verdict) == (1, False, "too_few_faces", False)
    assert (short.first_timestamp_s, short.last_timestamp_s, short.size_weight) == (5.0, 5.5, 1.0)
    assert list(dataclasses.asdict(small)) == TRACK_CONTRACT


def test_rows_say_their_band_and_rule():
    from pipeline.scan.analyze import ScanConfig, ScoredFace, error_row, verdict_row

    config = ScanConfig(aggregation="track_max", threshold=0.7, uncertain_below=0.4)
    faces = [ScoredFace(i, i, float(i), 0, (0.0, 0.0, 200.0, 200.0), 0.99, 0.55) for i in range(5)]
    row = verdict_row("clip.mp4", faces, config, model="m", n_frames=5, started_s=0.0)
    assert (row.label, row.threshold, row.uncertain_below) == ("UNCERTAIN", 0.7, 0.4)
    assert row.label_rule == f"FAKE at p_fake >= 0.7, REAL under 0.4, UNCERTAIN between; {EVIDENCE_RULE_TEXT}"
    # a clip with no verdict says the same rule: every row of a batch records how labels were made
    failed = error_row("gone.mp4", "error", "file not found", 0.1, config, "m")
    assert (failed.label, failed.uncertain_below, failed.label_rule) == ("", 0.4, row.label_rule)
    one_cut = error_row("gone.mp4", "error", "x", 0.1, ScanConfig(threshold=0.7), "m")
    assert one_cut.uncertain_below is None
    assert one_cut.label_rule == f"FAKE at p_fake >= 0.7, else REAL; {EVIDENCE_RULE_TEXT}"
    columns = VideoRow.columns()
    assert columns.index("uncertain_below") == columns.index("threshold") + 1


def test_labels_in_use_and_counts_text():
    assert labels_in_use(0.4) == LABELS == ("FAKE", "UNCERTAIN", "REAL")
    assert labels_in_use(None) == ("FAKE", "REAL")
    text = counts_text({"no_face": 2, "ok": 27, "decode_error": 0}, {"REAL": 16, "FAKE": 5, "UNCERTAIN": 6})
    assert text == "ok 27 (FAKE 5, UNCERTAIN 6, REAL 16), no_face 2"
    assert counts_text({"ok": 3}, {"FAKE": 0, "REAL": 3}) == "ok 3 (FAKE 0, REAL 3)"
    assert counts_text({"timeout": 1}) == "timeout 1" and counts_text({}) == ""


def test_an_ok_row_never_claims_more_than_was_decoded():
    with pytest.raises(ValueError, match="else it is partial"):
        VideoRow("a.mp4", "ok", 0.3, "REAL", duration_s=10.0, covered_s=1.0, reached_end=False)
    with pytest.raises(ValueError, match="more than was decoded"):
        VideoRow("a.mp4", "ok", 0.3, "REAL", duration_s=10.0, covered_s=12.0, reached_end=True)
    partial = VideoRow("a.mp4", "partial", 0.3, "REAL", duration_s=10.0, covered_s=1.0, reached_end=False)
    assert partial.p_fake == 0.3
    unknown = VideoRow("a.mp4", "ok", 0.3, "REAL", duration_s=None, covered_s=40.0, reached_end=False)  # the cap hit
    assert unknown.reached_end is False
