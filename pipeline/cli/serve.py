"""``python -m pipeline serve``: the web application on waitress (default) or Flask's own server.

Argument parsing imports nothing heavy: ``--help`` answers without loading TensorFlow. The
scan, detector and model flags are declared once in :mod:`pipeline.cli.common` (shared with
``score``); the models are loaded once, here, by :func:`pipeline.models.factory.load_models`,
and passed into the app factory.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from typing import TYPE_CHECKING

from pipeline.cli.common import (
    DefaultsHelpFormatter,
    OneLineParser,
    add_scan_arguments,
    fail,
    missing_extra,
    positive_float,
    positive_int,
    resolve_scan_settings,
    start_logging,
)
from pipeline.models.factory import load_models

if TYPE_CHECKING:
    from pipeline.web.app import WebConfig

log = logging.getLogger("pipeline.web")

SERVERS = ("waitress", "flask")
# waitress buffers a whole request body before the app sees it; it refuses bodies this much
# over the app's own limit by itself (a plain-text 413), so a huge upload never fills the disk,
# while a modest overshoot still gets the app's friendly 413.
WAITRESS_BODY_SLACK_BYTES = 16 * 1024 * 1024
# A browser opens up to 6 connections to one server, and a job page asks for up to 50 images at
# once (48 face thumbnails, the boxed frame; 48 overlays more when shown): with waitress's own 4
# threads, every page view queued requests for a few milliseconds and logged dozens of "Task queue
# depth" warnings. 12 threads, twice a browser's connections (waitress can queue a connection's
# next request while its thread is still finishing the last one), serve a page view with no queue.
DEFAULT_THREADS = 12


def _port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be in 0..65535, got {text}")
    return value


def build_parser(prog: str = "python -m pipeline serve") -> argparse.ArgumentParser:
    p = OneLineParser(
        prog=prog,
        description="Web application: upload a video or an image, see p_fake (probability the faces are "
        "manipulated: 1 = fake, 0 = real), the verdict, a chart over time and the faces.",
        formatter_class=DefaultsHelpFormatter,
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0: every interface)")
    p.add_argument("--port", type=_port, default=8000, help="TCP port to listen on (0: any free one)")
    p.add_argument(
        "--server",
        choices=SERVERS,
        default="waitress",
        help="waitress: production WSGI server; flask: Flask's development server (never debug mode)",
    )
    p.add_argument(
        "--threads", type=positive_int, default=DEFAULT_THREADS, metavar="N", help="waitress threads serving requests"
    )
    p.add_argument(
        "--max-upload-mb", type=positive_float, default=200.0, metavar="MB", help="largest upload in MiB (413 beyond)"
    )
    p.add_argument(
        "--max-duration",
        type=positive_float,
        default=600.0,
        metavar="SECONDS",
        help="longest clip in seconds (422 beyond)",
    )
    p.add_argument(
        "--queue-size",
        type=positive_int,
        default=8,
        metavar="UPLOADS",
        help="uploads waiting to be scored (503 beyond)",
    )
    p.add_argument(
        "--keep-jobs", type=positive_int, default=100, metavar="RESULTS", help="finished results kept in memory"
    )
    p.add_argument(
        "--keep-minutes",
        type=positive_float,
        default=60.0,
        metavar="MINUTES",
        help="how long results are kept, in minutes",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="warnings and errors only")
    add_scan_arguments(p, timeout_default=300.0, timeout_help="seconds allowed per upload")
    return p


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def quiet_waitress_queue_log() -> None:
    """Only errors from waitress's ``waitress.queue`` logger. It warns "Task queue depth is N"
    whenever a request waits for a free thread at all, even for a millisecond; here that is a
    burst of small JPEGs served from memory, when several people open job pages at once: harmless,
    and it drowned the log. waitress's other warnings and errors, and the app's log, still show."""
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)


def build_waitress_server(
    app, host: str, port: int, *, threads: int = DEFAULT_THREADS, max_upload_bytes: int | None = None
):
    """A waitress server for ``app`` (``port`` 0: a free one, see ``server.effective_port``);
    ``server.run()`` serves until ``server.close()``. Quiets waitress's queue warnings
    (:func:`quiet_waitress_queue_log`)."""
    from waitress.server import create_server

    quiet_waitress_queue_log()

    kwargs = {}
    if max_upload_bytes is not None:
        kwargs["max_request_body_size"] = max_upload_bytes + WAITRESS_BODY_SLACK_BYTES
    return create_server(app, host=host, port=port, threads=threads, ident="deepfake-scanner", **kwargs)


def web_config_from_args(args: argparse.Namespace) -> WebConfig:
    """The :class:`pipeline.web.app.WebConfig` of the upload and job flags (sizes in bytes,
    durations in seconds)."""
    from pipeline.web.app import WebConfig

    return WebConfig(
        max_upload_bytes=int(args.max_upload_mb * 1024 * 1024),
        max_duration_s=args.max_duration,
        max_queued=args.queue_size,
        keep_jobs=args.keep_jobs,
        keep_s=args.keep_minutes * 60,
    )


def main(argv: list[str] | None = None, prog: str = "python -m pipeline serve") -> int:
    """Load the models, build the app, serve until interrupted. 0 on a clean stop; 2 with a
    one-line message for usage errors (missing or unknown weights, port in use, the [web] extra
    not installed: a ``pip install`` hint)."""
    args = build_parser(prog).parse_args(argv)
    start_logging(args.quiet)
    needed = ("flask", "waitress") if args.server == "waitress" else ("flask",)
    if hint := missing_extra(needed, "web", f"serving with --server {args.server}"):
        return fail(prog, hint)
    from pipeline.errors import ScannerError
    from pipeline.web.app import create_app

    try:
        spec, config = resolve_scan_settings(args)
        web = web_config_from_args(args)
        models = load_models(spec)
    except ScannerError as exc:  # ours only: anything else is a bug, with its traceback
        return fail(prog, str(exc))
    assert models.detector is not None  # load_models builds one unless told not to
    app = create_app(models.detector, models.scorer, config, web)
    state = app.extensions["deepfake_scanner"]
    if threading.current_thread() is threading.main_thread():
        # SIGTERM (service managers, docker stop) ends like Ctrl-C, so uploads are cleaned up.
        signal.signal(signal.SIGTERM, _interrupt)
    try:
        return _serve(
            app, args, prog, web.max_upload_bytes, about=f"model {models.scorer.name}, threshold {config.threshold:g}"
        )
    except KeyboardInterrupt:
        log.info("stopping")
    finally:
        state.close()
    return 0


def _serve(app, args: argparse.Namespace, prog: str, max_upload_bytes: int, *, about: str) -> int:
    """Serve ``app`` with the chosen server until it stops; 2 if the port cannot be bound.
    ``about``: the model and threshold, for the start-up line."""
    if args.server == "flask":
        log.warning("Flask's development server: for real use, run with --server waitress")
        try:
            app.run(host=args.host, port=args.port, debug=False, use_reloader=False, threaded=True)
        except OSError as exc:
            return fail(prog, f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}")
        return 0
    try:
        server = build_waitress_server(
            app, args.host, args.port, threads=args.threads, max_upload_bytes=max_upload_bytes
        )
    except OSError as exc:
        return fail(prog, f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}")
    log.info(
        "serving on http://%s:%s/ (waitress, %d threads; %s)",
        server.effective_host,
        server.effective_port,
        args.threads,
        about,
    )
    try:
        server.run()
    finally:
        server.close()
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
