"""pipeline/training/train_head.py and ``python -m pipeline train MIX.json --architecture effnet-lite0-head``
(pipeline/cli/train.py): source-balanced weights, the head fit (PCA folded into its first layer), and one tiny
real run through the command line on two face sets of ../shared/data with the real backbone."""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path

import numpy as np
import pytest

from pipeline.cli.train import main
from pipeline.models.calibration import sigmoid
from pipeline.training.features import CachedFace
from pipeline.training.metrics import roc_auc
from pipeline.training.train_head import HeadConfig, SourceFeatures, balanced_weights, fit_head
from tests.helpers import BACKBONE_ONNX

# --- balanced_weights -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "cells",
    [
        # {(source, class): faces}
        {(0, 0): 5, (0, 1): 1, (1, 0): 2, (1, 1): 10},  # counts far apart, both ways
        {(0, 0): 3, (0, 1): 3},  # one source, already balanced
        {(0, 0): 4, (0, 1): 2, (1, 1): 7},  # a source with fakes only
        {(0, 0): 1, (0, 1): 1, (1, 0): 1, (1, 1): 1, (2, 0): 50, (2, 1): 1},  # one big cell
    ],
)
def test_balanced_weights_give_every_source_and_class_the_same_total(cells):
    source_ids = np.concatenate([np.full(n, s) for (s, _), n in cells.items()])
    y = np.concatenate([np.full(n, c) for (_, c), n in cells.items()])
    order = np.random.default_rng(0).permutation(len(y))  # cells interleaved, as sources and views are
    source_ids, y = source_ids[order], y[order]
    weights = balanced_weights(source_ids, y)
    assert weights.shape == y.shape and (weights > 0).all()
    totals = [weights[(source_ids == s) & (y == c)].sum() for s, c in cells]
    np.testing.assert_allclose(totals, len(y) / len(cells))
    assert weights.mean() == pytest.approx(1.0)
    # within a cell every face weighs the same
    for s, c in cells:
        cell = weights[(source_ids == s) & (y == c)]
        np.testing.assert_allclose(cell, cell[0])


# --- fit_head ---------------------------------------------------------------------------------------------------


def _toy_source(name: str, n: int = 240, width: int = 40, seed: int = 0, views: int = 1) -> SourceFeatures:
    """A linearly separable toy source: fakes shifted by 8 along one direction (at least 5 noise sigmas);
    3 pairs in 4 train, 1 in 4 val."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    direction = rng.normal(size=width)
    direction /= np.linalg.norm(direction)
    faces = [
        CachedFace(f"{name}/{k}.jpg", "fake" if y[k] else "real", f"g{k}", "val" if (k // 2) % 4 == 3 else "train")
        for k in range(n)
    ]
    base = rng.normal(size=(n, width)) * rng.uniform(0.5, 1.5, width) + rng.normal(0, 5, width)
    shifted = base + 8.0 * y[:, None] * direction
    out = [shifted.astype(np.float32)]
    for _ in range(1, views):
        out.append((shifted + rng.normal(0, 0.1, shifted.shape)).astype(np.float32))
    return SourceFeatures(name, faces, out)


@pytest.fixture
def captured_fits(monkeypatch):
    """The scikit-learn models ``fit_head`` fits, with their inputs: [(model, x, y, sample_weight)]. The real
    ``fit`` runs."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier

    fits = []
    for cls in (MLPClassifier, LogisticRegression):
        real_fit = cls.fit

        def spy(self, x, y, sample_weight=None, _real=real_fit):
            fits.append((self, np.array(x), np.array(y), sample_weight))
            return _real(self, x, y, sample_weight=sample_weight)

        monkeypatch.setattr(cls, "fit", spy)
    return fits


@pytest.mark.parametrize(
    "hidden",
    [
        (6,),  # an MLP: the projection folded into its first layer
        (),  # logistic regression: folded into its only layer
    ],
)
def test_fit_head_folds_the_pca_projection_exactly(captured_fits, hidden):
    source = _toy_source("a", width=40)
    head, seconds = fit_head({"a": source}, HeadConfig(hidden=hidden, alpha=0.1, views=1, pca_dims=5, max_iter=200))
    ((model, x_fit, _, _),) = captured_fits
    assert x_fit.shape[1] == 5  # the model was fitted on the projection...
    assert head.n_features == 40 and head.weights[0].shape[0] == 40  # ...and the head takes the raw features
    assert seconds >= 0
    raw = source.views[0][source.part("train")]
    if hidden:
        expected = model.predict_proba(x_fit)[:, 1]
        np.testing.assert_allclose(sigmoid(head.logit(raw)), expected, atol=1e-4)
    else:
        np.testing.assert_allclose(head.logit(raw), model.decision_function(x_fit), atol=1e-3, rtol=1e-4)


def test_fit_head_weighs_sources_and_classes_alike(captured_fits):
    # source b: 3x the faces and mostly fakes; views: 2 (every view of a training face is a row)
    a = _toy_source("a", n=80, seed=1, views=2)
    b = _toy_source("b", n=240, seed=2, views=2)
    b.faces = [CachedFace(f.file, "fake" if k % 4 else "real", f.group, f.split) for k, f in enumerate(b.faces)]
    fit_head({"a": a, "b": b}, HeadConfig(hidden=(), views=2, pca_dims=None))
    ((_, x_fit, y_fit, weights),) = captured_fits
    n_a = 2 * int(a.part("train").sum())
    assert len(x_fit) == n_a + 2 * int(b.part("train").sum())
    ids = np.r_[np.zeros(n_a), np.ones(len(x_fit) - n_a)]
    totals = [weights[(ids == s) & (y_fit == c)].sum() for s in (0, 1) for c in (0, 1)]
    np.testing.assert_allclose(totals, totals[0])


@pytest.mark.parametrize(
    "hidden, pca_dims",
    [
        ((), None),  # logistic regression on the standardised features
        ((), 6),  # logistic regression on 6 principal components, folded back
    ],
)
def test_fit_head_separates_a_separable_set(hidden, pca_dims):
    sources = {"a": _toy_source("a", seed=3), "b": _toy_source("b", seed=4)}
    head, _ = fit_head(sources, HeadConfig(hidden=hidden, alpha=0.01, views=1, pca_dims=pca_dims, max_iter=200))
    for source in sources.values():
        val = source.part("val")
        assert roc_auc(source.y[val], head.logit(source.views[0][val])) > 0.95


def test_fewer_training_rows_than_pca_dims_fit_without_the_projection(captured_fits):
    """PCA cannot find 512 components in 60 rows: a set that small is fitted on the standardised features
    (it raised ``n_components=512 must be between 1 and min(n_samples, n_features)``)."""
    source = _toy_source("a", n=80, width=600)
    head, _ = fit_head({"a": source}, HeadConfig(hidden=(4,), views=1, pca_dims=512))
    ((_, x_fit, _, _),) = captured_fits
    assert x_fit.shape == (60, 600) and head.n_features == 600


# --- the command line, on real faces ----------------------------------------------------------------------------

ARCH = "effnet-lite0-head"


def _write_dfdc(path: Path, shared_data: Path) -> list[dict]:
    """12 real and their 12 fakes of DFDC (one real clip, one fake of it per group): 8 groups train, 4 val."""
    with open(shared_data / "dfdc_faces" / "faces.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    groups: list[str] = []
    for r in rows:
        if r["original_video"] not in groups and len(groups) < 12:
            groups.append(r["original_video"])
    chosen = []
    for r in rows:
        if r["original_video"] in groups:
            split = "train" if groups.index(r["original_video"]) < 8 else "val"
            chosen.append({**r, "file": str(shared_data / "dfdc_faces" / r["file"]), "split": split})
    assert sorted(r["label"] for r in chosen) == ["fake"] * 12 + ["real"] * 12
    _write_csv(path, chosen)
    return chosen


def _write_mesonet(path: Path, shared_data: Path) -> list[dict]:
    """3 faces of each of 4 real and 4 fake videos of MesoNet's faces: per class 3 videos train, 1 val."""
    with open(shared_data / "faces" / "faces.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    chosen = []
    for label in ("real", "fake"):
        videos: dict[str, int] = {}
        for r in rows:
            v = r["source_video"]
            if r["label"] != label or (v not in videos and len(videos) == 4) or videos.get(v, 0) == 3:
                continue
            videos[v] = videos.get(v, 0) + 1
            split = "train" if list(videos).index(v) < 3 else "val"
            chosen.append({**r, "file": str(shared_data / "faces" / r["file"]), "split": split})
    assert len(chosen) == 24
    _write_csv(path, chosen)
    return chosen


def _write_csv(path: Path, rows: list[dict]) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def _argv(mix: Path, output: Path, cache: Path) -> list[str]:
    head_flags = ["--views", "2", "--hidden", "8", "--alpha", "0.1"]
    return [str(mix), "-o", str(output), "--architecture", ARCH, "--feature-cache", str(cache), *head_flags]


@pytest.fixture(scope="module")
def tiny_mix(tmp_path_factory, shared_data) -> Path:
    """``mix.json`` of two sources (DFDC framed at 0.93, grouped by original clip; MesoNet's faces at 1.11)."""
    root = tmp_path_factory.mktemp("mix")
    _write_dfdc(root / "dfdc.csv", shared_data)
    _write_mesonet(root / "mesonet.csv", shared_data)
    mix = {
        "crop_margin": 0.93,
        "sources": [
            {"name": "dfdc", "data": "dfdc.csv", "crop_margin": 0.93, "group_column": "original_video"},
            {"name": "mesonet", "data": "mesonet.csv", "crop_margin": 1.11},
        ],
    }
    (root / "mix.json").write_text(json.dumps(mix))
    return root / "mix.json"


@pytest.fixture(scope="module")
def trained(tiny_mix, tmp_path_factory):
    """One real run of the command line: (exit status, head path, cache root)."""
    out = tmp_path_factory.mktemp("head")
    head, cache = out / "models" / "tiny.npz", out / "cache"
    return main(_argv(tiny_mix, head, cache)), head, cache


@pytest.mark.shared_data
def test_the_cli_writes_a_head_and_its_spec(trained, tiny_mix):
    status, head, _ = trained
    assert status == 0
    sidecar = head.with_name(head.name + ".json")
    assert head.is_file() and sidecar.is_file()
    spec = json.loads(sidecar.read_text())
    assert spec["architecture"] == ARCH and spec["name"] == "tiny" and spec["output"] == "p_fake"
    assert (spec["input_size_px"], spec["input_scale"], spec["crop_margin"]) == (224, "(x-127)/128", 0.93)
    # the backbone is named relative to the head, so the folder can move with it
    assert not Path(spec["backbone"]).is_absolute()
    assert (head.parent / spec["backbone"]).resolve() == BACKBONE_ONNX.resolve()
    from pipeline.models.backbone import BACKBONES

    assert spec["backbone_sha256"] == BACKBONES["effnet-lite0-blocks"].sha256
    assert spec["temperature"] > 0 and 0 < spec["threshold"] < 1
    training = spec["training"]
    assert training["config"]["hidden"] == [8] and training["config"]["views"] == 2
    assert training["config"]["alpha"] == 0.1
    metrics = training["metrics_per_source"]
    assert set(metrics) == {"dfdc", "mesonet"}
    # validation parts: DFDC 4 groups of a real and a fake; MesoNet 1 video of each class, 3 faces each
    assert (metrics["dfdc"]["faces"], metrics["dfdc"]["fake"]) == (8, 4)
    assert (metrics["mesonet"]["faces"], metrics["mesonet"]["fake"]) == (6, 3)
    for m in metrics.values():
        assert 0 <= m["auc"] <= 1 and 0 <= m["ece"] <= 1 and len(m["auc_augmented_views"]) == 1
    # the mix is recorded with its data relative to the head, resolving to the manifests used
    sources = {s["name"]: s for s in training["mix"]["sources"]}
    assert (head.parent / sources["dfdc"]["data"]).resolve() == (tiny_mix.parent / "dfdc.csv").resolve()
    assert (sources["dfdc"]["crop_margin"], sources["mesonet"]["crop_margin"]) == (0.93, 1.11)


@pytest.mark.shared_data
def test_the_head_loads_and_scores_as_the_training_saw_the_faces(trained, tiny_mix):
    from pipeline.models.backbone_scorer import BackboneScorer
    from pipeline.models.factory import load_scorer
    from pipeline.training.dataset import load_crop_rgb, load_faces
    from pipeline.training.features import cache_dir_for, load_cached

    status, head, cache = trained
    assert status == 0
    scorer = load_scorer(head, threads=1)
    assert isinstance(scorer, BackboneScorer) and scorer.spec.input_size_px == 224
    items = load_faces(tiny_mix.parent / "mesonet.csv")
    # MesoNet's faces framed at 1.11, centre-cropped to the model's 0.93, as the cache did
    crops = np.stack([load_crop_rgb(i.source_path, 224, "area", 0.93 / 1.11) for i in items])
    p_fake = scorer.score_p_fake(crops)
    assert p_fake.shape == (24,) and ((p_fake >= 0) & (p_fake <= 1)).all()
    # the scanner's features equal the cached view 0 (stored as float16) the head was fitted on
    _, view0 = load_cached(cache_dir_for(cache, scorer.backbone.info.sha256, 0.93), "mesonet", 0)
    cached = sigmoid(scorer.head.logit(view0) / scorer.spec.temperature)
    np.testing.assert_allclose(p_fake, cached, atol=0.02)


@pytest.mark.shared_data
def test_a_second_run_reuses_the_feature_cache(trained, tiny_mix, tmp_path, caplog):
    status, _, cache = trained
    assert status == 0
    chunks = sorted(cache.rglob("*.npy"))
    assert len(chunks) == 4  # 2 sources x 2 views, one chunk each
    mtimes = {p: p.stat().st_mtime_ns for p in chunks}
    with caplog.at_level(logging.INFO, logger="pipeline.training"):
        assert main(_argv(tiny_mix, tmp_path / "again.npz", cache)) == 0
    assert {p: p.stat().st_mtime_ns for p in cache.rglob("*.npy")} == mtimes
    stats = [r.args[1] for r in caplog.records if r.getMessage().startswith("feature cache ")]
    assert [(s["source"], s["computed"], s["views_done"]) for s in stats] == [("dfdc", 0, 48), ("mesonet", 0, 48)]
    assert (tmp_path / "again.npz").is_file()


@pytest.mark.parametrize(
    "data, output, extra, message",
    [
        ("mix.json", "head.h5", [], "writes a head file NAME.npz"),  # a Meso-4 output name
        ("faces.csv", "head.npz", [], "trains on a mix of face sets"),  # one face set, not a mix
        ("faces", "head.npz", [], "trains on a mix of face sets"),  # a class folder, not a mix
        ("mix.json", "head.npz", ["--hidden", "8,x"], "bad head setting"),  # not a width
        ("mix.json", "head.npz", ["--views", "0"], "bad head setting"),  # views in [1, 16]
        ("mix.json", "head.npz", ["--alpha", "0"], "bad head setting"),  # alpha > 0
        ("mix.json", "head.npz", ["--max-minutes", "0"], "--max-minutes must be > 0"),
    ],
)
def test_usage_errors_exit_2_with_one_line(tmp_path, capsys, data, output, extra, message):
    argv = [str(tmp_path / data), "-o", str(tmp_path / output), "--architecture", ARCH, *extra]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and err.startswith("python -m pipeline train: error:") and "\n" not in err
    assert list(tmp_path.iterdir()) == []  # nothing written, not even the cache


def test_a_missing_mix_file_is_a_one_line_error(tmp_path, capsys):
    argv = [str(tmp_path / "nowhere.json"), "-o", str(tmp_path / "h.npz"), "--architecture", ARCH]
    argv += ["--feature-cache", str(tmp_path / "cache")]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "invalid mix file" in err and "\n" not in err
    assert not (tmp_path / "h.npz").exists()
