"""Where weights come from and what they mean.

Every weights file the project reads has a :class:`~pipeline.models.spec.WeightsSpec`
(:mod:`pipeline.models.spec`): its input contract (size, colour order, scaling, resize
interpolation), what its output means, its sha256 and where it came from. The original MesoNet
files are recognised by sha256 (their sigmoid is P(real): Keras sorted the class folders ``df`` <
``real``); the project's own files carry a JSON sidecar ``<weights>.json``; an ensemble file gets
the spec its format builds (:mod:`pipeline.models.ensemble_file`). Whatever the file outputs,
the scorer turns it into ``p_fake``.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import shutil
import urllib.request
from pathlib import Path

from pipeline.atomic import atomic_path
from pipeline.errors import WeightsError, WeightsNotFoundError
from pipeline.models.ensemble_file import ensemble_spec, read_ensemble
from pipeline.models.spec import WeightsSpec, sha256_file, sidecar_path  # imported from here too, as ever

log = logging.getLogger(__name__)

# File endings of the weights files a model name or folder may stand for (one per registered runtime format).
WEIGHTS_SUFFIXES = (".h5", ".npz", ".ensemble.json")
REPO_WEIGHTS_DIR = Path(__file__).resolve().parents[2] / "weights"
CACHE_ENV_VAR = "DEEPFAKE_SCANNER_CACHE"
# The project's own default model, in weights/ of the repository, chosen by the cross-dataset table
# of weights/MODEL_CARD.md (meso4_scanner_v1 and the MesoNet files stay selectable by name).
REPO_DEFAULT_NAME = "lite0_mix_v1.npz"
# The fallback: MesoNet's DF weights, found in the cache or downloaded into it.
DEFAULT_WEIGHTS_NAME = "Meso4_DF.h5"
MESONET_LICENSE = "Apache-2.0 (DariusAf/MesoNet)"

MESONET_BASE_URL = "https://github.com/DariusAf/MesoNet/raw/master/weights/"

KNOWN_WEIGHTS: dict[str, WeightsSpec] = {
    spec.sha256: spec
    for spec in (
        WeightsSpec(
            name="mesonet-meso4-df",
            architecture="meso4",
            sha256="036ed30d04ffd9c7506f825b97c86aa64915f5818931da96817b169aad790af5",
            output="p_real",
            provenance="MesoNet (Afchar et al. 2018), Meso4 trained on the Deepfake set; Keras 2.1.5",
            license=MESONET_LICENSE,
            url=MESONET_BASE_URL + "Meso4_DF.h5",
        ),
        WeightsSpec(
            name="mesonet-meso4-f2f",
            architecture="meso4",
            sha256="bcfda015d217b9f8d6557693edbdf9f4e79cfd22672541968dd0e2954462b5d7",
            output="p_real",
            provenance="MesoNet (Afchar et al. 2018), Meso4 trained on Face2Face; Keras 2.1.5",
            license=MESONET_LICENSE,
            url=MESONET_BASE_URL + "Meso4_F2F.h5",
        ),
        WeightsSpec(
            name="mesonet-mesoinception4-df",
            architecture="mesoinception4",
            sha256="234586d40058e76ef8b6f27ca4b63c06e31c2a5a69c0d8ba6f30b1468ab7bafa",
            output="p_real",
            provenance="MesoNet (Afchar et al. 2018), MesoInception-4 trained on the Deepfake set; Keras 2.1.5",
            license=MESONET_LICENSE,
            url=MESONET_BASE_URL + "MesoInception_DF.h5",
        ),
        WeightsSpec(
            name="mesonet-mesoinception4-f2f",
            architecture="mesoinception4",
            sha256="d4533ac8a3197dc35c47405d23d99e888c1d0135e267e03540c7451feaccff3f",
            output="p_real",
            provenance="MesoNet (Afchar et al. 2018), MesoInception-4 trained on Face2Face; Keras 2.1.5",
            license=MESONET_LICENSE,
            url=MESONET_BASE_URL + "MesoInception_F2F.h5",
        ),
    )
}
DEFAULT_DOWNLOAD = next(s for s in KNOWN_WEIGHTS.values() if s.name == "mesonet-meso4-df")


def known_weights_text() -> str:
    """The files recognised by sha256 alone, for messages: ``Meso4_DF.h5, Meso4_F2F.h5, ...``."""
    return ", ".join(spec.url.rsplit("/", 1)[-1] if spec.url else spec.name for spec in KNOWN_WEIGHTS.values())


def spec_for_weights(weights_path: str | Path) -> WeightsSpec:
    """The spec of a weights file: known by sha256, else its sidecar, else :class:`WeightsError`.
    An ensemble file (``*.ensemble.json``, :mod:`pipeline.models.ensemble_file`) gets the spec built
    from its own fields and its members' shared input contract.

    Worked out once per file and process: the spec is kept by the file's path, size and
    modification time (and its sidecar's), so the command line's checks, the provenance of the
    rows and the model load of one run hash the file once; a changed file is read again."""
    path = Path(weights_path)
    return _cached_spec(str(path.resolve()), _stat_key(path), _stat_key(sidecar_path(path)))


def _stat_key(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns


@functools.lru_cache(maxsize=32)
def _cached_spec(resolved: str, file_key, sidecar_key) -> WeightsSpec:
    """:func:`spec_for_weights` of ``resolved``; the keys make a changed file a new entry. Errors are not kept."""
    return _read_spec(Path(resolved))


def _read_spec(path: Path) -> WeightsSpec:
    if str(path).lower().endswith(".ensemble.json"):
        _, members = read_ensemble(path)
        return ensemble_spec(path, [spec_for_weights(m.weights) for m in members])
    try:
        digest = sha256_file(path)
    except OSError as exc:
        raise WeightsError(f"cannot read weights {path}: {exc.strerror or exc}") from exc
    if digest in KNOWN_WEIGHTS:
        return KNOWN_WEIGHTS[digest]
    sidecar = sidecar_path(path)
    if not sidecar.is_file():
        raise WeightsError(
            f"unknown weights {path} (sha256 {digest[:16]}...): not one of MesoNet's files this project "
            f"knows by sha256 ({known_weights_text()}) and no spec sidecar {sidecar.name} beside it; the "
            "sidecar says what the output means (see pipeline/models/weights.py)"
        )
    try:
        fields = json.loads(sidecar.read_text())
        if not isinstance(fields, dict):
            raise ValueError(f"expected a JSON object, got {type(fields).__name__}")
        if isinstance(fields.get("clip_decision"), dict):  # kept as canonical JSON text: the spec stays hashable
            fields["clip_decision"] = json.dumps(fields["clip_decision"], sort_keys=True)
        spec = WeightsSpec(**{k: v for k, v in fields.items() if k in WeightsSpec.__dataclass_fields__})
    except (OSError, ValueError, TypeError) as exc:
        raise WeightsError(f"invalid spec sidecar {sidecar}: {exc}") from exc
    if spec.sha256 != digest:
        raise WeightsError(f"{path} does not match its sidecar: sha256 {digest[:16]}... != {spec.sha256[:16]}...")
    return spec


def cache_dir() -> Path:
    """``$DEEPFAKE_SCANNER_CACHE``, else ``$XDG_CACHE_HOME/deepfake-scanner``, else ``~/.cache/deepfake-scanner``."""
    explicit = os.environ.get(CACHE_ENV_VAR)
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "deepfake-scanner"


def resolve_weights(explicit: str | Path | None = None, *, download: bool = True) -> Path:
    """The weights file to use, decided in this one place.

    1. ``explicit`` (``--weights``): a file, or a model's *name* (:func:`weights_by_name`:
       ``meso4_scanner_v1``, ``mesonet-meso4-df``, ...), so older models stay selectable.
    2. ``weights/`` of this repository: the project's own default, ``REPO_DEFAULT_NAME``.
    3. MesoNet's DF weights (``DEFAULT_WEIGHTS_NAME``) in the cache directory (see :func:`cache_dir`).
    4. when ``download``: fetch the MesoNet DF file into the cache, sha256-verified.
    Raises ``FileNotFoundError`` listing every place tried; for an ``explicit`` directory, one
    saying so and naming the weights files in it.
    """
    if explicit is not None:
        path = Path(explicit).expanduser()
        if path.is_file():
            return path
        if path.is_dir():
            files = sorted(p.name for p in path.iterdir() if p.name.endswith(WEIGHTS_SUFFIXES))
            inside = f"; weights files in it: {', '.join(files)}" if files else ""
            raise WeightsNotFoundError(
                f"--weights {path} is a directory: give one weights file (.h5, .npz or .ensemble.json) or a model "
                f"name{inside}"
            )
        if "/" not in str(explicit) and "\\" not in str(explicit):
            return weights_by_name(str(explicit), download=download)
        raise WeightsNotFoundError(f"weights file not found: {path}")
    tried = []
    for candidate in (REPO_WEIGHTS_DIR / REPO_DEFAULT_NAME, cache_dir() / "weights" / DEFAULT_WEIGHTS_NAME):
        if candidate.is_file():
            return candidate
        tried.append(str(candidate))
    if download:
        target = cache_dir() / "weights" / DEFAULT_WEIGHTS_NAME
        try:
            return fetch_weights(DEFAULT_DOWNLOAD.url or "", target, DEFAULT_DOWNLOAD.sha256)
        except (OSError, WeightsError) as exc:
            tried.append(f"{DEFAULT_DOWNLOAD.url} ({exc})")
    raise WeightsNotFoundError("no weights found; tried: " + "; ".join(tried) + ". Pass --weights PATH.")


def model_names() -> list[str]:
    """Every model selectable by name: the project's files in ``weights/`` (``NAME.h5`` with a
    sidecar, ``NAME.ensemble.json``) and the known MesoNet files (by their spec name)."""
    own = [p.name[: -len(".h5")] for p in REPO_WEIGHTS_DIR.glob("*.h5") if sidecar_path(p).is_file()]
    own += [p.name[: -len(".npz")] for p in REPO_WEIGHTS_DIR.glob("*.npz") if sidecar_path(p).is_file()]
    own += [p.name[: -len(".ensemble.json")] for p in REPO_WEIGHTS_DIR.glob("*.ensemble.json")]
    return sorted(own) + sorted(spec.name for spec in KNOWN_WEIGHTS.values())


def weights_by_name(name: str, *, download: bool = True) -> Path:
    """The file of a model named ``name``: ``weights/NAME.h5``, ``NAME.npz`` or ``NAME.ensemble.json``
    of this repository, or a known MesoNet file by its spec name (``mesonet-meso4-df``, ...)
    found in the cache or, when ``download``, fetched into it (sha256-verified). Raises
    ``FileNotFoundError`` listing the names there are."""
    for candidate in (REPO_WEIGHTS_DIR / f"{name}{suffix}" for suffix in WEIGHTS_SUFFIXES):
        if candidate.is_file():
            return candidate
    known = next((spec for spec in KNOWN_WEIGHTS.values() if spec.name == name), None)
    if known is not None and known.url:
        target = cache_dir() / "weights" / known.url.rsplit("/", 1)[-1]
        if target.is_file() and sha256_file(target) == known.sha256:
            return target
        if download:
            try:
                return fetch_weights(known.url, target, known.sha256)
            except (OSError, WeightsError) as exc:
                raise WeightsNotFoundError(
                    f"model {name}: not in {target.parent} and the download failed: {exc}"
                ) from exc
        raise WeightsNotFoundError(f"model {name}: not in {target.parent} (downloads are off)")
    raise WeightsNotFoundError(f"weights file or model name not found: {name}; models: {', '.join(model_names())}")


def fetch_weights(url: str, target: str | Path, sha256: str, *, timeout_s: float = 60.0) -> Path:
    """Download ``url`` to ``target`` atomically, keeping it only if its sha256 matches.

    A partial or corrupt download never lands at ``target``.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    log.info("downloading %s -> %s", url, target)
    with atomic_path(target) as tmp_path:
        with open(tmp_path, "wb") as tmp, urllib.request.urlopen(url, timeout=timeout_s) as response:
            shutil.copyfileobj(response, tmp)
        digest = sha256_file(tmp_path)
        if digest != sha256:
            raise WeightsError(f"download of {url} has sha256 {digest[:16]}..., expected {sha256[:16]}...")
    return target
