"""pipeline/web/scoring.py without models: the notes next to the verdict, the model line, the
boxed frame and the saliency overlays of a result (constructed rows and faces; the real
scanner's results are tested in test_web.py)."""

from __future__ import annotations

import dataclasses
import io

import numpy as np
import pytest
from PIL import Image

from pipeline.models.weights import WeightsSpec
from pipeline.report.explain import FEW_FACES, NEAR_THRESHOLD, SMALL_FACE_PX, TRACKS_DISAGREE_MARGIN, model_summary
from pipeline.scan.aggregate import size_reliability
from pipeline.scan.analyze import ScanConfig, VideoResult
from pipeline.scan.notes import EVIDENCE_RULE_TEXT
from pipeline.scan.records import VideoRow
from pipeline.video.decode import iter_frames, sampling_fps
from pipeline.video.probe import probe_video
from pipeline.web.scoring import (
    FRAME_MAX_LONG_SIDE_PX,
    CheckedUpload,
    Evidence,
    boxed_frame,
    build_result,
    decode_worst_frame,
    gather_evidence,
    shown_faces,
)
from tests.helpers import make_lavfi_clip
from tests.web.fakes import CROP_PX, FakeScorer, face, ok_result, one_person, spec_named


def build(result: VideoResult, *, kind: str = "video", config: ScanConfig | None = None, **kwargs):
    return build_result(
        result,
        kind=kind,
        config=config or ScanConfig(threshold=0.5),
        scorer=FakeScorer(),
        job_id="job1",
        max_thumbnails=kwargs.pop("max_thumbnails", 48),
        **kwargs,
    )


# --- notes: the reasons to trust a verdict less ---------------------------------------------

NOTE_CASES = [
    # a clear verdict on one large person seen throughout the whole clip: nothing to say
    (one_person(0.9), 0.9, {}, "video", []),
    (one_person(0.1), 0.1, {}, "video", []),
    # within NEAR_THRESHOLD of 0.5, either side
    (one_person(0.53), 0.53, {}, "video", ["near_threshold"]),
    (one_person(0.46), 0.46, {}, "video", ["near_threshold"]),
    # just outside the band
    (one_person(0.56), 0.56, {}, "video", []),
    # two faces in the whole clip
    (one_person(0.9, n=2), 0.9, {}, "video", ["few_faces"]),
    # one face in an image is a few-faces verdict too
    (one_person(0.1, n=1), 0.1, {}, "image", ["few_faces"]),
    # the person is small: median 60 px
    (one_person(0.9, size_px=60), 0.9, {}, "video", ["small_faces"]),
    # a small person beside a large one: the large one decides, no note
    (one_person(0.9) + [face(i, 1, 0.9, size_px=40) for i in range(6)], 0.9, {}, "video", []),
    # a small person scored fake beside a large real one counts, weighed down, and decides: they
    # disagree, and the verdict rests on small faces
    (
        one_person(0.1) + [face(i, 1, 0.9, size_px=40) for i in range(6)],
        0.67,
        {},
        "video",
        ["tracks_disagree", "small_faces"],
    ),
    # ... and when the large one is not clearly real, only the small faces are worth a note
    (one_person(0.35) + [face(i, 1, 0.8, size_px=60) for i in range(6)], 0.69, {}, "video", ["small_faces"]),
    # a passer-by scored fake in one frame beside a real person, not counted: the REAL verdict says so
    (one_person(0.1, n=10) + [face(3, 1, 0.9)], 0.1, {}, "video", ["person_left_out"]),
    # a still picture scored fake beside a moving real person, not counted: the REAL verdict says so
    (one_person(0.1) + [face(i, 1, 0.9, static=True) for i in range(6)], 0.1, {}, "video", ["person_left_out"]),
    # ... but not under a FAKE verdict, nor for a left-out person scored real
    (one_person(0.9) + [face(i, 1, 0.9, static=True) for i in range(6)], 0.9, {}, "video", []),
    (one_person(0.1, n=10) + [face(3, 1, 0.2)], 0.1, {}, "video", []),
    # two people, one fake, one clearly real: they disagree
    (one_person(0.9) + [face(i, 1, 0.1) for i in range(6)], 0.9, {}, "video", ["tracks_disagree"]),
    # the second person only a little under the threshold: not "well under", no disagreement
    (one_person(0.9) + [face(i, 1, 0.4) for i in range(6)], 0.9, {}, "video", []),
    # a passer-by in one frame at 0.05: track_max does not count them, so no disagreement
    (one_person(0.9, n=10) + [face(3, 1, 0.05)], 0.9, {}, "video", []),
    # HDR clip whose frames could not be tone mapped; tone mapped or SDR (None): nothing
    (one_person(0.9), 0.9, {"tone_mapped": False, "color_transfer": "smpte2084"}, "video", ["hdr_not_tone_mapped"]),
    (one_person(0.9), 0.9, {"tone_mapped": True, "color_transfer": "smpte2084"}, "video", []),
    # faces found only with the frames turned
    (one_person(0.9), 0.9, {"rotation_guess_deg": 90}, "video", ["rotation_guessed"]),
    # sampling stopped before the end (a clip of unknown length that hit the frame cap)
    (one_person(0.9), 0.9, {"duration_s": None, "covered_s": 4.0, "reached_end": False}, "video", ["partial_coverage"]),
    # everything at once, in the documented order
    (
        [face(0, 0, 0.52, size_px=50), face(1, 1, 0.0, size_px=50)],
        0.52,
        {"tone_mapped": False, "rotation_guess_deg": 270, "duration_s": None, "covered_s": 4.0, "reached_end": False},
        "video",
        [
            "near_threshold",
            "tracks_disagree",
            "few_faces",
            "small_faces",
            "hdr_not_tone_mapped",
            "rotation_guessed",
            "partial_coverage",
        ],
    ),
]


@pytest.mark.parametrize("faces, p_fake, row_fields, kind, kinds", NOTE_CASES)
def test_notes_say_why_to_trust_a_verdict_less(faces, p_fake, row_fields, kind, kinds):
    payload, _ = build(ok_result(faces, p_fake, **row_fields), kind=kind)
    assert [n["kind"] for n in payload["notes"]] == kinds
    for note in payload["notes"]:
        text = note["text"]
        # a plain sentence: starts like one, ends with a full stop, no markup
        assert (text[0].isupper() or text.startswith("p_fake")) and text.endswith("."), text
        assert "`" not in text and "*" not in text and "<" not in text


def test_notes_name_the_numbers_they_rest_on():
    two_people = one_person(0.9) + [face(i, 1, 0.1) for i in range(6)]
    payload, _ = build(ok_result(two_people, 0.9, rotation_guess_deg=90))
    text = {n["kind"]: n["text"] for n in payload["notes"]}
    assert "person 0 scores 0.90" in text["tracks_disagree"] and "person 1 0.10" in text["tracks_disagree"]
    assert "most suspicious" in text["tracks_disagree"]  # track_max: the verdict follows person 0
    assert "the faces were found only with the frames turned 90°" in text["rotation_guessed"].lower()
    near, _ = build(ok_result(one_person(0.52), 0.52, threshold=0.477), config=ScanConfig(threshold=0.477))
    assert near["notes"][0]["text"].startswith("p_fake 0.520 is within 0.05 of the threshold 0.477")
    few, _ = build(ok_result(one_person(0.9, n=1), 0.9))
    assert "Only 1 face was scored in the whole clip" in few["notes"][0]["text"]
    small, _ = build(ok_result(one_person(0.9, size_px=64), 0.9))
    assert f"about 64 px, under {SMALL_FACE_PX} px" in small["notes"][0]["text"]


def test_note_thresholds_are_where_the_docs_say():
    # the named constants the notes use; a change here must be a change of the documented rule
    assert (FEW_FACES, SMALL_FACE_PX, NEAR_THRESHOLD, TRACKS_DISAGREE_MARGIN) == (3, 100, 0.05, 0.2)
    at_few, _ = build(ok_result(one_person(0.9, n=FEW_FACES), 0.9))
    at_small, _ = build(ok_result(one_person(0.9, size_px=SMALL_FACE_PX), 0.9))
    assert at_few["notes"] == [] and at_small["notes"] == []  # the limits themselves are fine


def test_no_face_clip_gets_only_the_notes_about_the_file():
    row = VideoRow("x.mp4", "no_face", n_frames=5, tone_mapped=False, rotation_guess_deg=None, reached_end=True)
    payload, images = build(VideoResult(row))
    assert [n["kind"] for n in payload["notes"]] == ["hdr_not_tone_mapped"]
    assert payload["frame"] is None and images.frame_jpeg is None and images.faces_jpeg == ()


# --- the model line ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, threshold, expected",
    [
        # the project's default: a mix, named as people know the face sets
        (
            "meso4_mix_v2",
            0.477,
            "Meso-4 trained by this project on DFDC, FaceForensics++ and MesoNet faces (meso4_mix_v2); "
            "says FAKE at p_fake ≥ 0.477",
        ),
        # trained by the project on one face set given by path: the path is not shown
        ("meso4_scanner_v1", 0.5, "Meso-4 trained by this project (meso4_scanner_v1); says FAKE at p_fake ≥ 0.50"),
        # MesoNet's own files
        (
            "mesonet-meso4-df",
            0.5,
            "Meso-4 published with MesoNet (Afchar et al. 2018), trained on MesoNet's Deepfake set "
            "(mesonet-meso4-df); says FAKE at p_fake ≥ 0.50",
        ),
        (
            "mesonet-mesoinception4-f2f",
            0.7,
            "MesoInception-4 published with MesoNet (Afchar et al. 2018), trained on Face2Face "
            "(mesonet-mesoinception4-f2f); says FAKE at p_fake ≥ 0.70",
        ),
    ],
)
def test_model_line_is_written_for_people(name, threshold, expected):
    line = model_summary(spec_named(name), name, threshold)
    assert line == expected
    assert "`" not in line and "/" not in line.replace("p_fake", "")  # no commands, no paths


def test_model_line_of_an_ensemble_and_of_unknown_text():
    ensemble = dataclasses.replace(
        spec_named("meso4_mix_v2"), architecture="ensemble", provenance="ensemble of `a`, `b`", license=""
    )
    assert model_summary(ensemble, "mix", 0.5) == "An ensemble of models (mix); says FAKE at p_fake ≥ 0.50"
    odd = dataclasses.replace(spec_named("meso4_mix_v2"), provenance="made with `tool` somewhere", license="")
    assert model_summary(odd, "my`model", 0.5) == "Meso-4 (mymodel); says FAKE at p_fake ≥ 0.50"


# a head's spec as pipeline.training.train_head writes it (its provenance, shortened)
LITE0_HEAD = WeightsSpec(
    name="lite0_mix_v1",
    architecture="effnet-lite0-head",
    sha256="0" * 64,
    output="p_fake",
    input_size_px=224,
    input_scale="(x-127)/128",
    crop_margin=0.93,
    threshold=0.42,
    provenance=(
        "head fitted with pipeline/training/train_head.py on cached effnet-lite0-blocks features of the mix "
        "dfdc, ffpp, mesonet (2026-12-07); backbone: EfficientNet-Lite0 (Tan & Le 2019), ImageNet weights, "
        "frozen; exported with pipeline/models/export_backbone.py"
    ),
)


@pytest.mark.parametrize(
    "spec, expected",
    [
        # the backbone family, named from the registry, its face sets from the head's provenance
        (
            LITE0_HEAD,
            "EfficientNet-Lite0 features + MLP head trained by this project on DFDC, FaceForensics++ and "
            "MesoNet faces (lite0_mix_v1); says FAKE at p_fake ≥ 0.42",
        ),
        # a head whose provenance names no mix: still ours, no sets invented
        (
            dataclasses.replace(LITE0_HEAD, provenance="head fitted with pipeline/training/train_head.py"),
            "EfficientNet-Lite0 features + MLP head trained by this project (lite0_mix_v1); says FAKE at p_fake ≥ 0.42",
        ),
    ],
)
def test_model_line_of_a_backbone_head(spec, expected):
    line = model_summary(spec, spec.name, spec.threshold)
    assert line == expected
    assert "/" not in line.replace("p_fake", "")  # the provenance's paths are not copied


@pytest.mark.parametrize(
    "spec, method, name",
    [
        (spec_named("meso4_mix_v2"), "grad-cam", "Grad-CAM"),  # a Keras CNN
        (LITE0_HEAD, "occlusion", "Occlusion"),  # the backbone family has no gradients
    ],
)
def test_the_payload_says_how_the_overlays_were_made(spec, method, name):
    payload, _ = build_result(
        ok_result(one_person(0.9), 0.9),
        kind="video",
        config=ScanConfig(threshold=0.5),
        scorer=FakeScorer(spec.name, spec),
        job_id="job1",
        max_thumbnails=48,
    )
    assert payload["model"]["saliency"] == {"method": method, "name": name}


def test_model_line_is_in_the_payload():
    payload, _ = build(ok_result(one_person(0.9), 0.9))
    assert payload["model"]["summary"].startswith("Meso-4 trained by this project on DFDC")
    assert "`" in payload["model"]["provenance"]  # the developer text is still there for scripts


# --- the evidence images ------------------------------------------------------------------------


def test_thumbnails_and_overlays_follow_the_faces_worst_first():
    faces = [face(0, 0, 0.2), face(1, 0, 0.9), face(2, 0, 0.5)]
    maps = np.zeros((2, CROP_PX, CROP_PX), np.float32)
    maps[0, :128] = 1.0  # the worst face: its top half pushed p_fake up
    payload, images = build(ok_result(faces, 0.53), max_thumbnails=2, evidence=Evidence(saliency=maps))
    items = payload["faces"]
    assert [f["p_fake"] for f in items] == [0.9, 0.5, 0.2]
    assert [f["thumbnail_url"] for f in items] == [
        "/api/v1/jobs/job1/faces/0.jpg",
        "/api/v1/jobs/job1/faces/1.jpg",
        None,
    ]
    assert [f["saliency_url"] for f in items] == [
        "/api/v1/jobs/job1/saliency/0.jpg",
        "/api/v1/jobs/job1/saliency/1.jpg",
        None,
    ]
    assert len(images.faces_jpeg) == len(images.saliency_jpeg) == 2
    overlay = np.asarray(Image.open(io.BytesIO(images.saliency_jpeg[0])))
    assert overlay.shape == (CROP_PX, CROP_PX, 3)
    # jet: red over the salient top half, blue over the rest of the grey crop
    top, bottom = overlay[:100].mean(axis=(0, 1)), overlay[160:].mean(axis=(0, 1))
    assert top[0] > top[2] + 40 and bottom[2] > bottom[0] + 40


def test_saliency_maps_must_match_the_faces_shown():
    with pytest.raises(ValueError, match="3 saliency maps for 2 faces shown"):
        build(
            ok_result([face(0, 0, 0.9), face(1, 0, 0.8)], 0.85),
            evidence=Evidence(saliency=np.zeros((3, CROP_PX, CROP_PX), np.float32)),
        )


def test_shown_faces_stop_at_the_first_face_without_a_crop():
    faces = [face(0, 0, 0.9), face(1, 0, 0.8, crop=False), face(2, 0, 0.7)]
    assert [f.p_fake for f in shown_faces(faces, 48)] == [0.9]
    assert [f.p_fake for f in shown_faces(faces[::2], 1)] == [0.9]


def test_boxed_frame_boxes_every_face_of_the_sample_and_fits_a_phone():
    frame_rgb = np.full((1080, 1920, 3), 60, np.uint8)
    faces = [face(3, 0, 0.9, size_px=400), face(3, 1, 0.1, size_px=400), face(4, 0, 0.95, size_px=400)]
    worst = boxed_frame(frame_rgb, faces, faces[0], threshold=0.5)
    assert worst.rgb.shape == (720, FRAME_MAX_LONG_SIDE_PX, 3)
    assert (worst.sample_index, worst.timestamp_s, worst.n_faces) == (3, 3.0, 2)  # sample 4's face is elsewhere
    scale = FRAME_MAX_LONG_SIDE_PX / 1920

    def left_edge(track: int) -> np.ndarray:
        """The colour of the box's left edge, half way down (the frame shrunk by ``scale``)."""
        x, y = round((10 + 300 * track) * scale), round(210 * scale)
        return worst.rgb[y, x].astype(int)

    red, green = left_edge(0), left_edge(1)
    assert red[0] > 180 and red[1] < 90  # at or above the threshold
    assert green[1] > 150 and green[0] < 90  # below it
    assert np.array_equal(frame_rgb, np.full((1080, 1920, 3), 60, np.uint8))  # the decoded frame is untouched


def test_frame_in_the_payload():
    frame_rgb = np.full((360, 640, 3), 60, np.uint8)
    faces = one_person(0.9)
    frame = boxed_frame(frame_rgb, faces, faces[2], threshold=0.5)
    payload, images = build(ok_result(faces, 0.9), evidence=Evidence(frame=frame, elapsed_s=0.25))
    assert payload["frame"] == {
        "url": "/api/v1/jobs/job1/frame.jpg",
        "timestamp_s": 2.0,
        "sample_index": 2,
        "width": 640,
        "height": 360,
        "n_faces": 1,
    }
    assert Image.open(io.BytesIO(images.frame_jpeg)).size == (640, 360)
    assert payload["evidence_s"] == 0.25


# --- decoding the frame again, and what happens when evidence fails -------------------------


@pytest.fixture(scope="module")
def small_clip(tmp_path_factory):
    """A 3 s 320x240 test pattern at 25 fps: samples at 0, 1 and 2 s."""
    return make_lavfi_clip(tmp_path_factory.mktemp("clip") / "pattern.mp4", duration_s=3.0)


def test_worst_frame_is_the_sample_the_face_was_found_in(small_clip):
    info = probe_video(small_clip)
    checked = CheckedUpload("video", "MP4/MOV", info)
    config = ScanConfig()
    # what the scan saw: its frames, and a face in each at the time the decoder gave
    sample_fps = sampling_fps(info, config.fps, config.max_frames)
    scanned = list(iter_frames(small_clip, info, sample_fps=sample_fps, max_frames=config.max_frames))
    assert len(scanned) == 3
    faces = [dataclasses.replace(face(f.sample_index, 0, 0.9), timestamp_s=f.timestamp_s) for f in scanned]
    result = ok_result(faces, 0.9)
    for frame, found in zip(scanned, faces):
        assert np.array_equal(decode_worst_frame(small_clip, checked, result, found, config), frame.rgb)
    assert not np.array_equal(scanned[0].rgb, scanned[1].rgb)  # testsrc2 moves: each sample its own picture
    turned = decode_worst_frame(small_clip, checked, ok_result(faces, 0.9, rotation_guess_deg=90), faces[1], config)
    assert np.array_equal(turned, np.rot90(scanned[1].rgb, k=-1))  # turned as the scan turned it
    elsewhere = dataclasses.replace(faces[1], timestamp_s=faces[1].timestamp_s + 0.5)
    with pytest.raises(ValueError, match=r"sample 1 decodes at .* s, the face was found at .* s"):
        decode_worst_frame(small_clip, checked, result, elsewhere, config)


@dataclasses.dataclass
class BrokenSaliencyScorer(FakeScorer):
    """A scorer whose spec asks for 128 px crops while the faces were cropped at 256 px:
    Grad-CAM refuses them (before TensorFlow is ever imported)."""

    spec: WeightsSpec = dataclasses.field(
        default_factory=lambda: dataclasses.replace(spec_named("meso4_mix_v2"), input_size_px=128)
    )


def test_evidence_that_fails_is_left_out_and_the_rest_kept(small_clip, caplog):
    checked = CheckedUpload("video", "MP4/MOV", probe_video(small_clip))
    result = ok_result(one_person(0.9, n=3), 0.9)
    evidence = gather_evidence(small_clip, checked, result, BrokenSaliencyScorer(), ScanConfig(), max_thumbnails=48)
    assert evidence.saliency is None and "saliency maps failed" in caplog.text
    assert evidence.frame is not None and evidence.frame.rgb.shape == (240, 320, 3)
    missing = small_clip.with_name("gone.mp4")
    lost = gather_evidence(missing, checked, result, BrokenSaliencyScorer(), ScanConfig(), max_thumbnails=0)
    assert lost.frame is None and "the frame at 0.00 s" in caplog.text
    assert str(missing) not in caplog.text  # the upload's private path is never logged
    no_face = VideoResult(VideoRow("x.mp4", "no_face", n_frames=3))
    assert gather_evidence(small_clip, checked, no_face, BrokenSaliencyScorer(), ScanConfig(), max_thumbnails=48) == (
        Evidence()
    )


def test_a_person_left_out_of_a_real_verdict_is_named():
    faces = one_person(0.1) + [face(i, 1, 0.8, size_px=40, static=True) for i in range(6)]
    payload, _ = build(ok_result(faces, 0.1))
    (note,) = payload["notes"]
    assert note["kind"] == "person_left_out"
    assert note["text"].startswith("Person 1 scores 0.80, at or above the threshold, but is not counted")
    assert "a still picture" in note["text"] and "(6 faces)" in note["text"]
    passer_by, _ = build(ok_result(one_person(0.1, n=10) + [face(3, 1, 0.9)], 0.1))
    (note,) = passer_by["notes"]
    assert "Person 1 scores 0.90" in note["text"] and "seen in too few frames" in note["text"]
    assert "(1 face)" in note["text"]
    # the old rule is gone: nothing says a person was left out for being small
    assert all("half" not in n["text"] for n in payload["notes"] + passer_by["notes"])


# --- an UNCERTAIN band: two thresholds --------------------------------------------------------

BAND = ScanConfig(aggregation="track_max", threshold=0.7, uncertain_below=0.4)


def build_band(faces, p_fake, **kwargs):
    return build(ok_result(faces, p_fake, threshold=0.7, uncertain_below=0.4), config=BAND, **kwargs)


def test_an_uncertain_verdict_says_in_plain_words_that_the_model_cannot_tell():
    payload, _ = build_band(one_person(0.55), 0.55)
    assert payload["label"] == "UNCERTAIN" and payload["threshold"] == 0.7 and payload["uncertain_below"] == 0.4
    assert payload["label_rule"] == f"FAKE at p_fake >= 0.7, REAL under 0.4, UNCERTAIN between; {EVIDENCE_RULE_TEXT}"
    assert payload["verdict_text"] == (
        "The model cannot tell with the confidence it was validated for: p_fake 0.550 is between the two "
        "thresholds (REAL under 0.40, FAKE at 0.70 and above), so the verdict is UNCERTAIN."
    )
    assert payload["model"]["summary"].endswith("says FAKE at p_fake ≥ 0.70, REAL under 0.40, UNCERTAIN between")
    assert payload["notes"] == []  # one clear person: the verdict's own sentence says it all


def test_the_verdict_sentence_names_the_threshold_it_rests_on():
    fake, _ = build_band(one_person(0.9), 0.9)
    real, _ = build_band(one_person(0.1), 0.1)
    assert fake["verdict_text"] == "p_fake 0.900 is at or above the FAKE threshold 0.70, so the verdict is FAKE."
    assert real["verdict_text"] == "p_fake 0.100 is under the REAL threshold 0.40, so the verdict is REAL."
    one_cut, _ = build(ok_result(one_person(0.9), 0.9))
    assert one_cut["verdict_text"] == "p_fake 0.900 is at or above the threshold 0.50, so the verdict is FAKE."
    assert (
        one_cut["uncertain_below"] is None
        and one_cut["label_rule"] == f"FAKE at p_fake >= 0.5, else REAL; {EVIDENCE_RULE_TEXT}"
    )
    no_face, _ = build(VideoResult(VideoRow("x.mp4", "no_face", n_frames=5, reached_end=True)))
    assert no_face["verdict_text"] is None and no_face["label"] is None


@pytest.mark.parametrize(
    "p_fake, label, text",
    [
        (0.72, "FAKE", "p_fake 0.720 is within 0.05 above the FAKE threshold 0.70: a little lower and the verdict "
         "would be UNCERTAIN."),
        (0.37, "REAL", "p_fake 0.370 is within 0.05 under the REAL threshold 0.40: a little higher and the verdict "
         "would be UNCERTAIN."),
        # between the thresholds, near either one: not a coin toss against one of them, it is UNCERTAIN already
        (0.41, "UNCERTAIN", None),
        (0.69, "UNCERTAIN", None),
        (0.55, "UNCERTAIN", None),
        # clear of both
        (0.8, "FAKE", None),
        (0.3, "REAL", None),
    ],
)  # fmt: skip
def test_near_a_threshold_with_a_band(p_fake, label, text):
    payload, _ = build_band(one_person(p_fake), p_fake)
    assert payload["label"] == label
    near = [n["text"] for n in payload["notes"] if n["kind"] == "near_threshold"]
    assert near == ([text] if text else [])


def test_a_person_left_out_is_named_when_alone_they_would_label_the_clip_higher():
    # a REAL verdict, and a passer-by in the band: they alone would make it UNCERTAIN
    payload, _ = build_band(one_person(0.1, n=10) + [face(3, 1, 0.55)], 0.1)
    (note,) = payload["notes"]
    assert note["kind"] == "person_left_out"
    assert note["text"].startswith(
        "Person 1 scores 0.55, between the two thresholds (REAL under 0.40, FAKE at 0.70 and above), but is not counted"
    )
    # an UNCERTAIN verdict, and a passer-by over the upper threshold: they alone would make it FAKE
    payload, _ = build_band(one_person(0.55, n=10) + [face(3, 1, 0.9)], 0.55)
    (note,) = payload["notes"]
    assert note["text"].startswith("Person 1 scores 0.90, at or above the FAKE threshold 0.70, but is not counted")
    # ... but not a passer-by in the band beside an UNCERTAIN verdict: they would change nothing
    payload, _ = build_band(one_person(0.55, n=10) + [face(3, 1, 0.5)], 0.55)
    assert payload["notes"] == []


def test_people_disagree_only_when_the_second_reads_real_by_the_rule():
    payload, _ = build_band(one_person(0.9) + [face(i, 1, 0.1) for i in range(6)], 0.9)
    (note,) = payload["notes"]
    assert note["kind"] == "tracks_disagree" and "person 1 0.10, under the REAL threshold." in note["text"]
    # 0.45 is well under 0.70 but in the band: UNCERTAIN on their own, not clearly real
    payload, _ = build_band(one_person(0.9) + [face(i, 1, 0.45) for i in range(6)], 0.9)
    assert payload["notes"] == []


# --- the people: the same tracks the verdict was made from ----------------------------------

PERSON_KEYS = {
    # kept as they were (an API contract)
    "track_id",
    "n_faces",
    # how much of the clip the person was seen in
    "frames_with_faces",
    "frames_sampled",
    "mean_p_fake",
    "max_p_fake",
    "first_timestamp_s",
    "last_timestamp_s",
    "median_face_px",
    "sets_clip_p_fake",
    # what the verdict made of them
    "static",
    "size_weight",
    "verdict_score",
    "counted",
    "reason",
    "reason_text",
    "sets_verdict",
}


def people(payload) -> dict[int, dict]:
    return {t["track_id"] + 1: t for t in payload["tracks"]}


def test_people_say_whether_they_were_counted_and_why():
    faces = (
        one_person(0.2, n=10)  # person 1: large, seen throughout
        + [face(i, 1, 0.9, size_px=64) for i in range(10)]  # person 2: small faces, weighed down
        + [face(i, 2, 0.7, static=True) for i in range(10)]  # person 3: a poster
        + [face(4, 3, 0.95)]  # person 4: a passer-by in one frame
    )
    result = ok_result(faces, 0.5 + size_reliability(64) * 0.4)
    payload, _ = build(result)
    assert payload["p_fake"] == pytest.approx(result.row.p_fake, abs=1e-4)
    assert all(set(t) == PERSON_KEYS for t in payload["tracks"])
    by_person = people(payload)
    assert [p["track_id"] for p in payload["tracks"]] == [0, 1, 2, 3]  # person N is track N-1
    assert {n: (p["counted"], p["reason"]) for n, p in by_person.items()} == {
        1: (True, "counted"),
        2: (True, "counted_small_faces"),
        3: (False, "static"),
        4: (False, "too_few_faces"),
    }
    weight = round(size_reliability(64), 3)
    assert by_person[1]["reason_text"] == "counted"
    small = by_person[2]
    assert small["reason_text"] == (
        f"counted, small faces weighed down (×{weight:.2f}: {small['mean_p_fake']:.2f} counts as "
        f"{small['verdict_score']:.2f})"
    )
    assert by_person[3]["reason_text"] == "left out: a still picture (photo, poster, screen)"
    assert by_person[4]["reason_text"] == "left out: seen in too few frames"
    # the small person's score is pulled toward the threshold, and it still sets the verdict
    assert by_person[2]["size_weight"] == weight and by_person[1]["size_weight"] == 1.0
    assert by_person[2]["verdict_score"] == pytest.approx(0.5 + weight * 0.4, abs=1e-4)
    assert by_person[2]["mean_p_fake"] == 0.9 and by_person[2]["max_p_fake"] == 0.9
    assert [n for n, p in by_person.items() if p["sets_verdict"]] == [2]
    assert [n for n, p in by_person.items() if p["sets_clip_p_fake"]] == [2]
    assert by_person[3]["static"] and not by_person[2]["static"]
    assert (by_person[4]["n_faces"], by_person[4]["first_timestamp_s"], by_person[4]["last_timestamp_s"]) == (
        1,
        4.0,
        4.0,
    )
    assert by_person[2]["median_face_px"] == 64.0
    # the people match the scanner's own summaries: one source
    assert [(t.track_id, t.counted, t.reason) for t in result.tracks] == [
        (p["track_id"], p["counted"], p["reason"]) for p in payload["tracks"]
    ]


def test_only_still_pictures_count_and_other_rules_count_everyone():
    stills = [face(i, 0, 0.3, static=True) for i in range(5)]
    payload, _ = build(ok_result(stills, 0.3))
    (person,) = payload["tracks"]
    assert (person["counted"], person["reason"], person["static"]) == (True, "counted_static_only", True)
    assert person["reason_text"] == "counted: only still pictures in this clip" and person["sets_verdict"]
    # under "mean" every face counts, nobody alone sets the verdict
    faces = one_person(0.2, n=10) + [face(3, 1, 0.9)]
    mean, _ = build(ok_result(faces, 0.27, aggregation="mean"), config=ScanConfig(threshold=0.5, aggregation="mean"))
    assert [(p["counted"], p["reason"], p["sets_verdict"]) for p in mean["tracks"]] == [(True, "counted", False)] * 2
    assert all("sets_clip_p_fake" not in p for p in mean["tracks"])


def test_people_of_a_result_without_summaries_are_summarized_the_same():
    faces = one_person(0.2, n=10) + [face(3, 1, 0.9)]
    full = ok_result(faces, 0.2)
    bare = dataclasses.replace(full, tracks=())
    assert build(bare)[0]["tracks"] == build(full)[0]["tracks"]


def test_the_payloads_people_and_faces_are_the_csv_records_by_the_same_names():
    from pipeline.scan.records import FaceRow, TrackRow

    faces = one_person(0.2, n=4) + [face(i, 1, 0.9, size_px=64) for i in range(4)]
    result = ok_result(faces, 0.6)
    payload, _ = build(result)
    extras = {"reason_text", "sets_clip_p_fake"}
    for person, row in zip(payload["tracks"], result.track_rows()):
        assert set(person) - extras == set(TrackRow.columns()) - {"video_path"}
        assert {k: person[k] for k in person if k not in extras | {"verdict_score"}} == {
            k: v for k, v in row.to_json(without=("video_path",)).items() if k != "verdict_score"
        }
    rows = {(r.frame_index, r.track_id): r for r in result.face_rows()}
    for item in payload["faces"]:
        assert set(item) == set(FaceRow.columns()) - {"video_path"} | {"sample_index", "thumbnail_url", "saliency_url"}
        row = rows[(item["frame_index"], item["track_id"])]
        assert {k: item[k] for k in row.to_json(without=("video_path",))} == row.to_json(without=("video_path",))


def test_the_caveats_go_by_the_json_lines_name_and_the_old_one():
    payload, _ = build(ok_result(one_person(0.52, size_px=64), 0.52))
    assert payload["caveats"] and payload["caveats"] is payload["notes"]
    assert all(set(c) == {"kind", "text"} for c in payload["caveats"])
