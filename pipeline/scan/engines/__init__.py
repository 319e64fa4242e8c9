"""Engines: what scores a batch's clips, one module each behind one interface
(:class:`pipeline.scan.engines.base.Engine`).

``local`` (:mod:`~pipeline.scan.engines.local`: this process, the next clip decoding ahead),
``pool`` (:mod:`~pipeline.scan.engines.pool`: worker processes on this machine, ``--workers N``)
and ``dask`` (:mod:`~pipeline.scan.engines.dask`: a Dask cluster). :mod:`~pipeline.scan.engines.base`
holds what they share. :data:`ENGINES` names each engine's class, imported only when chosen (Dask,
an optional extra, only for ``--engine dask``); :func:`engine_for` picks one as
:func:`pipeline.scan.batch.run_batch` is asked (``engine``, ``workers``, ``address``).
"""

from __future__ import annotations

import importlib

from pipeline.errors import ConfigError

# Each engine's class, as ``module:name``; imported when chosen.
ENGINES: dict[str, str] = {
    "local": "pipeline.scan.engines.local:LocalEngine",
    "pool": "pipeline.scan.engines.pool:PoolEngine",
    "dask": "pipeline.scan.engines.dask:DaskEngine",
}
# What ``run_batch(engine=...)`` and ``--engine`` accept: ``local`` is this process with one
# worker and the pool with more.
ENGINE_CHOICES = ("local", "dask")


def engine_class(name: str) -> type:
    """The class :data:`ENGINES` names for ``name`` (importing its module). Raises ``KeyError``."""
    module, attr = ENGINES[name].split(":")
    return getattr(importlib.import_module(module), attr)


def check_engine_choice(engine: str) -> None:
    """Raises ``ValueError`` naming :data:`ENGINE_CHOICES` for any other ``engine``."""
    if engine not in ENGINE_CHOICES:
        raise ConfigError(f"engine must be one of {ENGINE_CHOICES}, got {engine!r}")


def engine_for(engine: str, *, workers: int = 1, address: str | None = None, progress: bool = False):
    """The :class:`~pipeline.scan.engines.base.Engine` for ``run_batch(engine=..., workers=...)``:
    ``dask`` on the cluster at ``address`` (or a local one of ``workers`` processes); ``local``
    with ``workers > 1`` a pool of that many processes, else this process (``progress``: a bar
    over the frames of each long clip). Raises ``ValueError`` for an engine not in
    :data:`ENGINE_CHOICES`."""
    check_engine_choice(engine)
    if engine == "dask":
        return engine_class("dask")(workers=workers, address=address)
    if workers > 1:
        return engine_class("pool")(workers=workers)
    return engine_class("local")(progress=progress)
