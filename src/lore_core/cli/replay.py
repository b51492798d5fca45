"""``lore replay FILE``: a recorded conversation through lore-memory, priced against two baselines.

FILE is a Claude Code session (JSONL), Anthropic Messages JSON (a list, or an object with ``messages``), or the
shared session format; the format is detected. The run is offline (the workers' calls go to the built-in
emulator) and reproducible: the same file and options give the same figures.
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from rich.console import Console

from lore_core.cli.report import add_output_arguments, emit, progress

__all__ = ["register"]


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "replay",
        help="replay a recorded session through lore-memory and compare its cost with two baselines",
        description=(
            "Replays FILE (Claude Code JSONL, Anthropic Messages JSON, or the shared session format) turn by "
            "turn through lore-memory, offline, and reports tokens and simulated cost (prompt caching from the "
            "messages' times, the price catalog, batch rates for the workers) against sending the full history "
            "(compacting only on overflow) and compacting at 80% of the window."
        ),
    )
    parser.add_argument("file", type=Path, metavar="FILE", help="the recorded session")
    parser.add_argument(
        "--model", default="claude-sonnet-4-6", help="model to price (default claude-sonnet-4-6)"
    )
    parser.add_argument("--context-window", type=_positive, help="context window (default: the model's)")
    parser.add_argument(
        "--max-output-tokens", type=_positive, default=8_192, help="output reserve per call (default 8192)"
    )
    parser.add_argument("--max-turns", type=_positive, help="stop after this many model calls")
    parser.add_argument("--system", help="the agent's system prompt (default: the file's, else a short one)")
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of the emulator the workers call (default 0)"
    )
    add_output_arguments(parser)
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    from lore_batch.replay.runner import DEFAULT_SYSTEM, ReplayOptions, replay_transcript
    from lore_core.transcript_formats import load_transcript

    console = Console(stderr=bool(args.json))
    loaded = load_transcript(args.file)
    options = ReplayOptions(
        model=args.model,
        context_window=args.context_window,
        max_output_tokens=args.max_output_tokens,
        system=args.system or loaded.system or DEFAULT_SYSTEM,
        max_turns=args.max_turns,
        seed=args.seed,
        source=str(args.file),
        format=loaded.format,
    )
    with progress(console, f"replaying {args.file.name}") as on_turn:
        report = asyncio.run(replay_transcript(loaded.transcript, options=options, on_turn=on_turn))
    return emit(report, args=args, console=console, title=f"lore replay ({loaded.format})")
