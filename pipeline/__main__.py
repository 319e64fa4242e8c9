"""``python -m pipeline COMMAND ...``: one entry point for every job of the project, installed
as the console script ``deepfake-scan COMMAND ...`` too.

Each command lives in its own module with ``main(argv, prog) -> int``; it is imported only when
called, so ``--help`` stays fast. Usage lines name the command as it was typed
(``deepfake-scan score`` or ``python -m pipeline score``).
"""

from __future__ import annotations

import importlib
import sys

from pipeline.cli.common import program_name

# the console script of setup.cfg [options.entry_points] that runs this module's main()
CONSOLE_SCRIPT = "deepfake-scan"

COMMANDS = {
    "score": ("pipeline.cli.score", "score video clips into a CSV of p_fake per clip"),
    "extract": ("pipeline.cli.extract", "build a face dataset from labelled clips (same as extract_faces.py)"),
    "evaluate": ("pipeline.cli.evaluate", "metrics and plots of weights on labelled face crops or clips"),
    "train": ("pipeline.cli.train", "train Meso-4 on labelled face crops"),
    "serve": ("pipeline.cli.serve", "web application: upload a clip or an image, see the verdict"),
    "report": ("pipeline.cli.report", "one self-contained HTML report of a scores file (CSV or JSON Lines)"),
}


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    """Run ``COMMAND`` with the rest of ``argv``; its exit status, or 2 for a missing or unknown
    command. ``prog``: how this entry point was typed (``None``: ``deepfake-scan`` when started
    as that console script, else ``python -m pipeline``)."""
    prog = prog or program_name("python -m pipeline", (CONSOLE_SCRIPT,))
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        lines = [f"  {name:10s} {text}" for name, (_, text) in COMMANDS.items()]
        print(
            f"usage: {prog} COMMAND [ARGS]\n\ncommands:\n"
            + "\n".join(lines)
            + f"\n\n'{prog} COMMAND --help' shows each command's options and their defaults."
        )
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        print(f"{prog}: error: unknown command {command!r}; choose from {sorted(COMMANDS)}", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[command][0])
    return module.main(rest, prog=f"{prog} {command}")


if __name__ == "__main__":
    sys.exit(main())
