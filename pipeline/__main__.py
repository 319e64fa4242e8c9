"""``python -m pipeline COMMAND ...``: one entry point for every job of the project."""

from __future__ import annotations

import sys

COMMANDS = {
    "score": "score video clips into a CSV of p_fake per clip",
}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        lines = [f"  {name:10s} {text}" for name, text in COMMANDS.items()]
        print("usage: python -m pipeline COMMAND [ARGS]\n\ncommands:\n" + "\n".join(lines))
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command == "score":
        from pipeline.cli import main as score_main

        return score_main(rest, prog="python -m pipeline score")
    print(f"python -m pipeline: error: unknown command {command!r}; choose from {sorted(COMMANDS)}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
