"""The waitress server as ``python -m pipeline serve`` builds it: enough threads for a job page's
burst of images, and a log without waitress's queue warnings (the real-browser check is
``tests/integration/test_web_browser.py::test_viewing_a_job_page_leaves_the_server_log_quiet``)."""

from __future__ import annotations

import logging

import pytest

pytest.importorskip("waitress")


@pytest.fixture
def queue_logger():
    """waitress's queue logger, its level put back afterwards."""
    logger = logging.getLogger("waitress.queue")
    level = logger.level
    yield logger
    logger.setLevel(level)


def test_the_server_has_threads_for_a_browsers_connections_and_quiets_only_the_queue_log(modelless_app, queue_logger):
    from pipeline.cli.serve import DEFAULT_THREADS, build_parser, build_waitress_server

    queue_logger.setLevel(logging.NOTSET)
    server = build_waitress_server(modelless_app, "127.0.0.1", 0)
    try:
        # twice the 6 connections a browser opens to one server
        assert server.adj.threads == DEFAULT_THREADS >= 12
        assert build_parser().parse_args([]).threads == DEFAULT_THREADS
    finally:
        server.close()
    assert not queue_logger.isEnabledFor(logging.WARNING) and queue_logger.isEnabledFor(logging.ERROR)
    # waitress's other warnings still show
    assert logging.getLogger("waitress").isEnabledFor(logging.WARNING)
