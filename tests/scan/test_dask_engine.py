"""Scale-out: the scan on a real Dask cluster (scheduler and worker processes on 127.0.0.1)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

pytest.importorskip("distributed")

from pipeline.cli import score as cli

DASK = str(Path(sys.executable).parent / "dask")
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """``dask scheduler`` and ``dask worker --nworkers 2 --nthreads 1`` as real processes."""
    import psutil

    tmp = tmp_path_factory.mktemp("dask")
    scheduler_file = tmp / "scheduler.json"
    common = {"cwd": tmp, "stdout": subprocess.DEVNULL, "stderr": open(tmp / "log.txt", "w")}
    scheduler = subprocess.Popen(
        [
            DASK,
            "scheduler",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--no-dashboard",
            "--scheduler-file",
            str(scheduler_file),
        ],
        **common,
    )
    deadline = time.monotonic() + 60
    while not scheduler_file.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    address = json.loads(scheduler_file.read_text())["address"]
    workers = subprocess.Popen(
        [
            DASK,
            "worker",
            address,
            "--nworkers",
            "2",
            "--nthreads",
            "1",
            "--no-dashboard",
            "--host",
            "127.0.0.1",
            "--memory-limit",
            "4GiB",
        ],
        **common,
    )
    from distributed import Client

    with Client(address) as client:
        client.wait_for_workers(2, timeout=120)
    yield {"address": address, "workers": workers, "log": tmp / "log.txt"}
    for proc in (workers, scheduler):
        for child in psutil.Process(proc.pid).children(recursive=True):
            child.kill()
        proc.kill()
        proc.wait(timeout=30)


def _worker_processes(cluster) -> list:
    """The worker processes that ``dask worker`` (whose nannies run in-process) spawned."""
    import psutil

    workers = []
    for w in psutil.Process(cluster["workers"].pid).children(recursive=True):
        try:
            if "spawn_main" in " ".join(w.cmdline()):
                workers.append(w)
        except psutil.Error:  # gone, or a zombie not yet reaped
            continue
    return workers


@pytest.fixture
def clips(tmp_path, clip_dir):
    folder = tmp_path / "clips"
    folder.mkdir()
    for i in range(4):
        (folder / f"face{i}.mp4").write_bytes((clip_dir / "face.mp4").read_bytes())
    (folder / "noface.mp4").write_bytes((clip_dir / "noface.mp4").read_bytes())
    (folder / "broken.mp4").write_bytes((clip_dir / "truncated.mp4").read_bytes())
    return folder


def _frame(path) -> pd.DataFrame:
    return pd.read_csv(path).sort_values("video_path").reset_index(drop=True)


@pytest.mark.slow
def test_dask_gives_the_same_rows_as_local(cluster, clips, tmp_path, meso4_df_path):
    local, remote = tmp_path / "local.csv", tmp_path / "dask.csv"
    base = [str(clips), "--weights", str(meso4_df_path), "-q"]
    assert cli.main(base + ["-o", str(local)]) == 0
    assert cli.main(base + ["-o", str(remote), "--engine", "dask", "--address", cluster["address"]]) == 0
    a, b = _frame(local), _frame(remote)
    key = ["video_path", "status", "label", "n_frames", "n_faces", "n_tracks", "width", "height"]
    pd.testing.assert_frame_equal(a[key].astype(str), b[key].astype(str))
    assert (a["p_fake"].fillna(-1) - b["p_fake"].fillna(-1)).abs().max() < 1e-5
    assert set(b["status"]) == {"ok", "no_face", "decode_error"}


@pytest.mark.slow
def test_resume_on_dask_submits_only_what_is_missing(cluster, clips, tmp_path, meso4_df_path):
    out = tmp_path / "dask.csv"
    args = [
        str(clips),
        "-o",
        str(out),
        "--weights",
        str(meso4_df_path),
        "-q",
        "--engine",
        "dask",
        "--address",
        cluster["address"],
    ]
    assert cli.main(args) == 0
    lines = out.read_text().splitlines(keepends=True)
    out.write_text("".join(lines[:3]))  # a killed run: two clips done
    assert cli.main(args) == 0
    frame = pd.read_csv(out)
    assert len(frame) == 6 and frame["video_path"].is_unique
    assert out.read_text().startswith("".join(lines[:3]))  # the done rows were kept, not redone


@pytest.mark.slow
def test_killed_worker_loses_nothing_and_duplicates_nothing(cluster, clips, tmp_path, meso4_df_path):
    import threading

    out = tmp_path / "dask.csv"
    args = [
        str(clips),
        "-o",
        str(out),
        "--weights",
        str(meso4_df_path),
        "-q",
        "--engine",
        "dask",
        "--address",
        cluster["address"],
    ]
    result = {}
    thread = threading.Thread(target=lambda: result.setdefault("rc", cli.main(args)))
    thread.start()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and (not out.exists() or len(out.read_text().splitlines()) < 2):
        time.sleep(0.1)
    victims = _worker_processes(cluster)
    assert len(victims) == 2
    victims[0].kill()  # mid-run: the nanny restarts it, the plugin loads the models again
    thread.join(timeout=300)
    assert result.get("rc") == 0
    frame = pd.read_csv(out)
    assert sorted(frame["video_path"]) == sorted(str(p) for p in clips.iterdir())  # each exactly once
    assert (frame.loc[frame["video_path"].str.contains("face\\d"), "status"] == "ok").all()
    # the restarted worker rejoins with its models
    from distributed import Client

    with Client(cluster["address"]) as client:
        client.wait_for_workers(2, timeout=120)


@pytest.mark.slow
def test_window_bounds_the_clips_in_flight(meso4_df_path, tmp_path):
    """A local cluster started by the engine; a lazy input is pulled at most ``window`` ahead."""
    from pipeline.models.factory import ModelSpec
    from pipeline.scan.analyze import ScanConfig
    from pipeline.scan.engines.dask import results_on_dask

    pulled = 0

    def paths():
        nonlocal pulled
        for i in range(40):
            pulled += 1
            yield str(tmp_path / f"missing{i}.mp4")

    ahead = []
    seen = []
    for result in results_on_dask(paths(), ModelSpec(weights=meso4_df_path), ScanConfig(), workers=1, window=5):
        seen.append(result.row.video_path)
        ahead.append(pulled - len(seen))
        assert result.row.status == "error" and "not found" in result.row.error
    assert len(seen) == 40 and len(set(seen)) == 40
    assert max(ahead) <= 5


@pytest.mark.slow
def test_local_engine_never_imports_dask(clip_dir, tmp_path, meso4_df_path):
    code = (
        f"import sys\nfrom pipeline.cli import score as cli\n"
        f"rc = cli.main([{str(clip_dir / 'noface.mp4')!r}, '-o', {str(tmp_path / 'o.csv')!r}, "
        f"'--weights', {str(meso4_df_path)!r}, '-q'])\n"
        "assert rc == 0\nassert 'distributed' not in sys.modules and 'dask' not in sys.modules\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_address_without_dask_engine_is_a_usage_error(tmp_path, meso4_df_path, capsys):
    rc = cli.main(
        [
            str(tmp_path),
            "-o",
            str(tmp_path / "o.csv"),
            "--weights",
            str(meso4_df_path),
            "--address",
            "tcp://127.0.0.1:1",
        ]
    )
    assert rc == 2 and "--engine dask" in capsys.readouterr().err


def test_the_plugin_carries_a_pinned_spec_and_its_weights(meso4_df_path, tmp_path):
    """What travels to each worker: the spec pinned to one file, the file's bytes and sidecar."""
    from pipeline.models.factory import ModelSpec, worker_spec
    from pipeline.scan.analyze import ScanConfig
    from pipeline.scan.engines.dask import ModelsPlugin

    spec = worker_spec(ModelSpec(weights=meso4_df_path), workers=2)
    plugin = ModelsPlugin(spec, ScanConfig())
    assert plugin.spec is spec and plugin.spec.intra_op_threads >= 1 and plugin.spec.download is False
    assert plugin.files == {meso4_df_path.name: meso4_df_path.read_bytes()}  # no sidecar: known by sha256
    with pytest.raises(ValueError, match="pinned"):
        ModelsPlugin(ModelSpec(), ScanConfig())


def test_an_ensemble_travels_with_its_members(meso4_df_path, tmp_path):
    """A worker gets the ensemble file naming its members by bare names, and every member."""
    import json

    from pipeline.models.ensemble import weights_bundle
    from pipeline.models.weights import spec_for_weights

    ensemble = tmp_path / "pair.ensemble.json"
    ensemble.write_text(
        json.dumps({"members": [{"weights": str(meso4_df_path)}, {"weights": str(meso4_df_path), "temperature": 2.0}]})
    )
    main, files = weights_bundle(ensemble)
    worker_dir = tmp_path / "worker"
    worker_dir.mkdir()
    for name, content in files.items():
        (worker_dir / name).write_bytes(content)
    assert main == "pair.ensemble.json" and len(files) == 3
    # the worker's copy resolves on its own: members found beside it, same contract
    assert spec_for_weights(worker_dir / main).name == "pair"
    assert spec_for_weights(worker_dir / main).crop_margin == spec_for_weights(ensemble).crop_margin
    assert json.loads(files[main])["members"][1] == {"weights": "member1_Meso4_DF.h5", "temperature": 2.0}
