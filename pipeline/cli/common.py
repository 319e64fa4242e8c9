"""What the command lines share: argparse value types (each names the rule it enforces), the
one-line usage error, and logging set-up."""

from __future__ import annotations

import argparse
import logging
import os
import sys


def positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def non_negative_float(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {text}")
    return value


def probability(text: str) -> float:
    """A probability strictly between 0 and 1 (a threshold or a confidence)."""
    value = float(text)
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"must be in (0, 1), got {text}")
    return value


def fail(prog: str, message: str) -> int:
    """Print a one-line usage error and return the exit status for it (2, as argparse does)."""
    print(f"{prog}: error: {message}", file=sys.stderr)
    return 2


def start_logging(quiet: bool) -> None:
    """Log to stderr (INFO, or WARNING with ``quiet``) and keep TensorFlow's C++ start-up
    chatter and Dask's per-task lines out of it."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    logging.basicConfig(level=logging.WARNING if quiet else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("distributed").setLevel(logging.WARNING)
