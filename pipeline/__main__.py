"""``python -m pipeline COMMAND ...``: one entry point for every job of the project.

Each command lives in its own module with ``main(argv, prog) -> int``; it is imported only when
called, so ``--help`` stays fast.
"""

from __future__ import annotations

import importlib
import sys

COMMANDS = {
    "score": ("pipeline.cli.score", "score video clips into a CSV of p_fake per clip"),
    "extract": ("pipeline.cli.extract", "build a face dataset from labelled clips (same as extract_faces.py)"),
    "evaluate": ("pipeline.cli.evaluate", "metrics and plots of weights on labelled face crops or clips"),
    "train": ("pipeline.cli.train", "train Meso-4 on labelled face crops"),
    "serve": ("pipeline.cli.serve", "web application: upload a clip or an image, see the verdict"),
}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        lines = [f"  {name:10s} {text}" for name, (_, text) in COMMANDS.items()]
        print("usage: python -m pipeline COMMAND [ARGS]\n\ncommands:\n" + "\n".join(lines))
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        print(
            f"python -m pipeline: error: unknown command {command!r}; choose from {sorted(COMMANDS)}", file=sys.stderr
        )
        return 2
    module = importlib.import_module(COMMANDS[command][0])
    return module.main(rest, prog=f"python -m pipeline {command}")


if __name__ == "__main__":
    sys.exit(main())
