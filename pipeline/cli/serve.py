"""``python -m pipeline serve``: the web application on waitress (default) or Flask's own server.

Argument parsing imports nothing heavy: ``--help`` answers without loading TensorFlow. The
models are loaded once, here, and passed into the app factory.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading

from pipeline.scan.aggregate import AGGREGATIONS, DEFAULT_AGGREGATION
from pipeline.cli.common import (
    fail,
    positive_float,
    positive_int,
    probability,
    start_logging,
)
from pipeline.faces.detect import DetectorConfig
from pipeline.scan.analyze import ScanConfig

log = logging.getLogger("pipeline.web")

SERVERS = ("waitress", "flask")
# waitress buffers a whole request body before the app sees it; it refuses bodies this much
# over the app's own limit by itself (a plain-text 413), so a huge upload never fills the disk,
# while a modest overshoot still gets the app's friendly 413.
WAITRESS_BODY_SLACK_BYTES = 16 * 1024 * 1024


def _port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be in 0..65535, got {text}")
    return value


def build_parser(prog: str = "python -m pipeline serve") -> argparse.ArgumentParser:
    defaults, det = ScanConfig(), DetectorConfig()
    p = argparse.ArgumentParser(
        prog=prog,
        description="Web application: upload a video or an image, see p_fake (probability the faces are "
                    "manipulated: 1 = fake, 0 = real), the verdict, a chart over time and the faces.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0: every interface)")
    p.add_argument("--port", type=_port, default=8000, help="port to listen on")
    p.add_argument("--weights", default=None,
                   help="Meso-4 weights file; default: weights/ in the repo, then the cache, then download")
    p.add_argument("--no-download", action="store_true", help="never download default weights")
    p.add_argument("--server", choices=SERVERS, default="waitress",
                   help="waitress: production WSGI server; flask: Flask's development server (never debug mode)")
    p.add_argument("--threads", type=positive_int, default=4, help="waitress threads serving requests")
    p.add_argument("--max-upload-mb", type=positive_float, default=200.0, help="largest upload (413 beyond)")
    p.add_argument("--max-duration", type=positive_float, default=600.0,
                   help="longest clip in seconds (422 beyond)")
    p.add_argument("--queue-size", type=positive_int, default=8, help="uploads waiting to be scored (503 beyond)")
    p.add_argument("--keep-jobs", type=positive_int, default=100, help="finished results kept in memory")
    p.add_argument("--keep-minutes", type=positive_float, default=60.0, help="how long results are kept")
    p.add_argument("--fps", type=positive_float, default=defaults.fps, help="frames sampled per second of video")
    p.add_argument("--max-frames", type=positive_int, default=defaults.max_frames,
                   help="sampled frames per clip at most (long clips are sampled evenly)")
    p.add_argument("--threshold", type=probability, default=None,
                   help="label FAKE when p_fake >= threshold; default: the weights' own threshold")
    p.add_argument("--aggregation", choices=sorted(AGGREGATIONS), default=DEFAULT_AGGREGATION,
                   help="how face scores become one p_fake per clip")
    p.add_argument("--timeout", type=positive_float, default=300.0, help="seconds allowed per upload")
    p.add_argument("--detect-size", type=positive_int, default=det.detect_long_side_px,
                   help="long side in pixels of the copy of each frame MTCNN looks at")
    p.add_argument("--min-confidence", type=probability, default=det.min_confidence,
                   help="MTCNN confidence below which a face is ignored")
    p.add_argument("--min-face", type=positive_int, default=det.min_face_px,
                   help="faces smaller than this (pixels, full resolution) are ignored")
    p.add_argument("-q", "--quiet", action="store_true", help="warnings and errors only")
    return p



def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def load_models(weights_path, detector_config: DetectorConfig):
    """Meso-4 and MTCNN, once per process."""
    from pipeline.faces.detect import FaceDetector
    from pipeline.models.meso4 import MesoScorer

    scorer = MesoScorer.load(weights_path)
    return FaceDetector.create(detector_config), scorer


def build_waitress_server(app, host: str, port: int, *, threads: int = 4, max_upload_bytes: int | None = None):
    """A waitress server for ``app`` (``port`` 0: a free one, see ``server.effective_port``);
    ``server.run()`` serves until ``server.close()``."""
    from waitress.server import create_server

    kwargs = {}
    if max_upload_bytes is not None:
        kwargs["max_request_body_size"] = max_upload_bytes + WAITRESS_BODY_SLACK_BYTES
    return create_server(app, host=host, port=port, threads=threads, ident="deepfake-scanner", **kwargs)


def main(argv: list[str] | None = None, prog: str = "python -m pipeline serve") -> int:
    """Load the models, build the app, serve until interrupted. 0 on a clean stop; 2 with a
    one-line message for usage errors (missing or unknown weights, port in use)."""
    args = build_parser(prog).parse_args(argv)
    start_logging(args.quiet)

    from pipeline.errors import WeightsError
    from pipeline.models.weights import resolve_weights, spec_for_weights

    try:
        weights_path = resolve_weights(args.weights, download=not args.no_download)
        spec = spec_for_weights(weights_path)
    except (FileNotFoundError, WeightsError) as exc:
        return fail(prog, str(exc))
    detector_config = DetectorConfig(detect_long_side_px=args.detect_size, min_confidence=args.min_confidence,
                                     min_face_px=args.min_face)
    config = ScanConfig(fps=args.fps, max_frames=args.max_frames,
                        threshold=args.threshold if args.threshold is not None else spec.threshold,
                        aggregation=args.aggregation, timeout_s=args.timeout, detector=detector_config)

    from pipeline.web.app import WebConfig, create_app

    web = WebConfig(max_upload_bytes=int(args.max_upload_mb * 1024 * 1024), max_duration_s=args.max_duration,
                    max_queued=args.queue_size, keep_jobs=args.keep_jobs, keep_s=args.keep_minutes * 60)
    try:
        detector, scorer = load_models(weights_path, detector_config)
    except WeightsError as exc:
        return fail(prog, str(exc))
    app = create_app(detector, scorer, config, web)
    state = app.extensions["deepfake_scanner"]
    if threading.current_thread() is threading.main_thread():
        # SIGTERM (service managers, docker stop) ends like Ctrl-C, so uploads are cleaned up.
        signal.signal(signal.SIGTERM, _interrupt)
    try:
        if args.server == "waitress":
            try:
                server = build_waitress_server(app, args.host, args.port, threads=args.threads,
                                               max_upload_bytes=web.max_upload_bytes)
            except OSError as exc:
                return fail(prog, f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}")
            log.info("serving on http://%s:%s/ (waitress, %d threads; model %s, threshold %g)",
                     server.effective_host, server.effective_port, args.threads, scorer.name, config.threshold)
            try:
                server.run()
            finally:
                server.close()
        else:
            log.warning("Flask's development server: for real use, run with --server waitress")
            try:
                app.run(host=args.host, port=args.port, debug=False, use_reloader=False, threaded=True)
            except OSError as exc:
                return fail(prog, f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}")
    except KeyboardInterrupt:
        log.info("stopping")
    finally:
        state.close()
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
