"""pipeline/cli/extract.py: the command line of extract_faces.py / ``python -m pipeline extract``,
called in-process as ``main(argv)`` with the session's MTCNN networks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from pipeline.cli import extract as cli
from tests.helpers import make_face_clip, run_python

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def few_sources(tmp_path_factory) -> Path:
    """Two short clips a label: too few source videos for train, val and test each."""
    root = tmp_path_factory.mktemp("few")
    for label in ("real", "fake"):
        (root / label).mkdir()
        for name in ("a", "b"):
            make_face_clip(root / label / f"{name}.mp4", duration_s=1.0)
    return root


@pytest.fixture(scope="module")
def one_real_two_fake(tmp_path_factory) -> Path:
    """The issue's case: 1 real clip (short: fewer faces than either fake one) and 2 fake clips."""
    root = tmp_path_factory.mktemp("one_two")
    for label in ("real", "fake"):
        (root / label).mkdir()
    make_face_clip(root / "real" / "r1.mp4", duration_s=0.6)
    make_face_clip(root / "fake" / "f1.mp4", duration_s=2.0)
    make_face_clip(root / "fake" / "f2.mp4", duration_s=2.0)
    return root


def test_help_does_not_import_tensorflow():
    code = (
        "import sys\nfrom pipeline.cli import extract as cli\ntry:\n    cli.main(['--help'])\n"
        "except SystemExit as e:\n    assert e.code == 0\n"
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules\n"
    )
    proc = run_python(code)
    assert proc.returncode == 0, proc.stderr
    assert "--min-face" in proc.stdout and "--split" in proc.stdout and "(default: 64)" in proc.stdout


@pytest.mark.parametrize(
    "entry",
    [
        [str(REPO / "extract_faces.py")],  # the script
        ["-m", "pipeline", "extract"],  # the package's command
    ],
)
def test_both_entry_points_run_this_command_line(entry):
    proc = subprocess.run([sys.executable, *entry, "--help"], capture_output=True, text=True, timeout=60, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    assert "Build a labelled face dataset" in proc.stdout and "--max-per-video" in proc.stdout


def test_flags_map_onto_the_config_one_to_one():
    args = cli.build_parser("x").parse_args(
        [
            "src",
            "-o",
            "out",
            "--fps",
            "3",
            "--max-per-video",
            "7",
            "--min-face",
            "80",
            "--min-sharpness",
            "5",
            "--dedup",
            "1.5",
            "--stratify",
            "--split",
            "0.7,0.2,0.1",
            "--seed",
            "4",
            "--keep-size",
            "--labels",
            "real,DeepFake",
        ]
    )
    config = cli.config_from_args(args)
    assert (config.fps, config.max_per_video, config.min_sharpness, config.dedup_max_diff) == (3, 7, 5, 1.5)
    assert (config.stratify, config.split, config.seed, config.keep_size) == (True, (0.7, 0.2, 0.1), 4, True)
    assert config.labels == ("real", "fake")  # the seed's folder name is an alias of fake
    # --min-face sets the one detector config; its other settings stay the dataset's
    assert config.detector.min_face_px == 80 == config.min_face_px
    assert config.detector.full_frame_every_s == 0.0 and config.detector.min_confidence == 0.9


def test_usage_errors(tmp_path, capsys):
    assert cli.main([str(tmp_path / "missing"), "-o", str(tmp_path / "o")]) == 2
    assert "not found" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:  # argparse: a bad --split is a usage error
        cli.main([str(tmp_path), "-o", str(tmp_path / "o"), "--split", "0.5,0.5"])
    assert exit_info.value.code == 2
    with pytest.raises(SystemExit):  # not numbers
        cli.main([str(tmp_path), "-o", str(tmp_path / "o"), "--split", "a,b,c"])
    assert cli.main([str(tmp_path), "-o", str(tmp_path / "o"), "--split", "0.5,0.6,0.1"]) == 2
    assert "sum" in capsys.readouterr().err
    assert cli.main([str(tmp_path), "-o", str(tmp_path / "o")]) == 2  # a folder with no label subfolders
    assert "no labelled clips" in capsys.readouterr().err


def test_summary_is_a_readable_table():
    summary = {
        "faces": 40,
        "faces_before_stratify": 44,
        "new_faces": 40,
        "seconds": 12.3,
        "crops_per_second": 3.25,
        "per_split": {"train": {"real": 20, "fake": 16}, "val": {"real": 2, "fake": 2}},
    }
    text = cli.format_summary(summary, ("real", "fake"))
    assert text == (
        "faces in the manifest: 40 (44 before stratification)\n"
        "new this run: 40 faces in 12.3 s (3.25 crops/s)\n"
        "\n"
        "split  real  fake  total\n"
        "train    20    16     36\n"
        "val       2     2      4\n"
        "test      0     0      0\n"
    )
    assert "(" not in text.splitlines()[3]  # no Python tuples or dicts


@pytest.mark.slow
def test_main_builds_a_dataset_warns_about_few_clips_and_prints_a_table(
    few_sources, tmp_path, capsys, caplog, reuse_models
):
    out = tmp_path / "DS"
    assert cli.main([str(few_sources), "-o", str(out), "--fps", "2", "--max-per-video", "2"]) == 0
    printed = capsys.readouterr().out
    assert "split" in printed and "train" in printed and "val" in printed
    assert "yaw_bin" not in printed and "{" not in printed  # no stratification table, no raw dict
    # said once, clearly: what the split holds and why test is empty
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and warnings[0].startswith(
        "4 source videos with faces (2 real, 2 fake): train gets 1 real + 1 fake, val gets 1 real + 1 fake, "
        "test is empty."
    )
    manifest = pd.read_csv(out / "manifest.csv")
    for part in ("train", "val"):  # `train` can run on it: both labels in both parts
        assert set(manifest.loc[manifest["split"] == part, "label"]) == {"real", "fake"}
    assert (manifest["face_size_px"] >= 64).all()
    assert not list(out.glob("*.lock"))  # sources.csv's lock does not outlive the build


def test_stratify_prints_the_bin_table(few_sources, tmp_path, capsys, reuse_models):
    out = tmp_path / "DS"
    assert cli.main([str(few_sources), "-o", str(out), "--fps", "1", "--max-per-video", "1", "--stratify", "-q"]) == 0
    printed = capsys.readouterr().out
    assert "yaw_bin,size_bin,real_before,fake_before,real_after,fake_after" in printed
    assert "split" in printed


@pytest.mark.parametrize("stratify", [False, True])
def test_one_real_two_fake_clips_give_one_message_and_drop_nothing_silently(
    one_real_two_fake, tmp_path, capsys, caplog, reuse_models, stratify
):
    out = tmp_path / "DS"
    flags = ["--fps", "2", "--max-per-video", "4"] + (["--stratify"] if stratify else [])
    with caplog.at_level("INFO", logger="pipeline.training.extract"):
        assert cli.main([str(one_real_two_fake), "-o", str(out), *flags]) == 0
    capsys.readouterr()
    messages = [r.getMessage() for r in caplog.records if r.name == "pipeline.training.extract"]
    about_split = [m for m in messages if "source videos with faces" in m]
    assert len(about_split) == 1  # one message about the split, not several contradictory ones
    manifest = pd.read_csv(out / "manifest.csv")
    videos = manifest.groupby("label")["source_video"].nunique().to_dict()
    assert about_split[0].startswith(
        f"{videos['real'] + videos['fake']} source videos with faces{' after --stratify' if stratify else ''} "
        f"({videos['real']} real, {videos['fake']} fake): train gets 1 real + 1 fake, val gets 1 fake, test is empty."
    )
    assert "Add at least 2 real + 1 fake clips" in about_split[0] and "--split 1,0,0" in about_split[0]
    faces_all = pd.read_csv(out / "faces_all.csv")
    assert set(faces_all["source_video"]) == set(manifest["source_video"])  # no clip lost
    if stratify:
        dropped = len(faces_all) - len(manifest)
        clips = pd.read_csv(out / "stratification_clips.csv")
        assert clips["dropped"].sum() == dropped > 0 and not clips["whole_clip_dropped"].any()
        real, fake = (clips[clips["label"] == label] for label in ("real", "fake"))
        about_stratify = [m for m in messages if m.startswith("--stratify dropped")]
        assert len(about_stratify) == 1 and about_stratify[0].startswith(
            f"--stratify dropped {dropped} of {len(faces_all)} faces: real 0 of {real['faces_before'].sum()}; "
            f"fake {dropped} of {fake['faces_before'].sum()}, from {(fake['dropped'] > 0).sum()} of 2 clips. Why: "
        )
        assert about_stratify[0].endswith("Per clip: stratification_clips.csv.")
    else:
        assert not (out / "stratification_clips.csv").exists()
        assert not [m for m in messages if "stratify" in m]


@pytest.mark.parametrize(
    "folder, flags, label",
    [
        ("fake", [], "fake"),  # labelled by the folder it is in, as a build of the folder above labels it
        ("DeepFake", [], "fake"),  # the seed's folder name
        ("downloads", ["--label", "real"], "real"),  # any folder, with its label given
        ("fake", ["--label", "REAL"], "real"),  # the label given wins over the folder's
    ],
)
def test_one_clip_builds_the_dataset_from_that_clip(few_sources, tmp_path, capsys, reuse_models, folder, flags, label):
    (tmp_path / folder).mkdir()
    clip = tmp_path / folder / "one.mp4"
    clip.write_bytes((few_sources / "fake" / "a.mp4").read_bytes())
    out = tmp_path / "DS"
    assert cli.main([str(clip), "-o", str(out), "--fps", "2", "--max-per-video", "2", *flags]) == 0
    assert "train" in capsys.readouterr().out
    manifest = pd.read_csv(out / "manifest.csv")
    assert len(manifest) >= 1 and set(manifest["label"]) == {label} and set(manifest["split"]) == {"train"}
    assert set(manifest["source_video"]) == {f"{folder}/one"} and set(manifest["source_path"]) == {str(clip)}
    assert all((out / name).is_file() for name in manifest["file"])
    # run again: the clip is done, nothing is redone
    assert cli.main([str(clip), "-o", str(out), "--fps", "2", "--max-per-video", "2", *flags, "-q"]) == 0
    assert len(pd.read_csv(out / "sources.csv")) == 1
