"""The ``lore`` command line. ``main(argv)`` returns the exit code; nothing here runs at import time.

Exit codes: 0 success, 1 the work failed (unreadable input, a failed call), 2 usage error.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from lore_core.cli import advise, db, demo, emulator, inspect, queue, recall, replay
from lore_core.errors import LoreError

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand registered."""
    parser = argparse.ArgumentParser(
        prog="lore",
        description="lore-memory: unbounded, cache-warm conversations on the Anthropic Messages API.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    demo.register(sub)
    emulator.register(sub)
    db.register(sub)
    inspect.register(sub)
    queue.register(sub)
    replay.register(sub)
    recall.register(sub)
    advise.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI with ``argv`` (default ``sys.argv[1:]``) and return the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on usage errors and 0 on --help
        return int(exc.code) if isinstance(exc.code, int) else 2
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        result: int = handler(args)
    except LoreError as exc:
        print(f"lore: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return result
