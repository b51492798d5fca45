"""``lore demo``: a generated coding session through lore-memory and its batched workers, offline by default.

A seeded session (requests, tool chains with reads, edits, test runs and errors, thinking, idle gaps) is sent
turn by turn through ``Lore`` (``transform``, the agent's call, ``record_usage``), with the workers on
``BatchLLMClient``, against the built-in emulator on simulated time. The table compares what lore-memory sent
and what it cost (prompt caching simulated from the recorded times) with two baselines. ``--live`` with
``ANTHROPIC_API_KEY`` sends the same calls to the real API.
"""

from __future__ import annotations

import argparse
import asyncio
import os

from rich.console import Console

from lore_core.cli.report import add_output_arguments, emit, progress

__all__ = ["register"]

DEFAULT_TURNS = 40


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "demo",
        help="replay a generated coding session through lore-memory (offline, simulated time)",
        description=(
            "Generates a realistic coding session (seeded), runs it turn by turn through lore-memory with its "
            "workers batched, on the built-in Anthropic emulator and simulated time, and compares tokens and "
            "cost (prompt caching simulated) with sending the full history and with compaction at 80%."
        ),
    )
    parser.add_argument("--turns", type=_positive, default=DEFAULT_TURNS, help="human requests (default 40)")
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of the session and the emulator (default 0)"
    )
    parser.add_argument("--model", default="claude-sonnet-4-6", help="model (default claude-sonnet-4-6)")
    parser.add_argument("--context-window", type=_positive, help="context window (default: the model's)")
    parser.add_argument(
        "--live",
        action="store_true",
        help="use the real Anthropic API (needs ANTHROPIC_API_KEY; costs real money and waits for real batches)",
    )
    add_output_arguments(parser)
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    from lore_batch.replay import backend as backends
    from lore_batch.replay.runner import ReplayOptions, replay_transcript
    from lore_batch.replay.synthetic import DEMO_SYSTEM, DEMO_TOOLS, coding_session

    console = Console(stderr=bool(args.json))
    transcript = coding_session(turns=args.turns, seed=args.seed)
    options = ReplayOptions(
        model=args.model,
        context_window=args.context_window,
        system=DEMO_SYSTEM,
        tools=DEMO_TOOLS,
        seed=args.seed,
        call_agent=True,
        source=f"demo (seed {args.seed})",
        format="synthetic",
    )

    async def run(on_turn: object) -> object:
        backend = backends.build_backend(
            live=args.live, env=os.environ, seed=args.seed, start=transcript.messages[0].at.timestamp()
        )
        try:
            return await replay_transcript(transcript, options=options, backend=backend, on_turn=on_turn)  # type: ignore[arg-type]
        finally:
            await backend.aclose()

    if args.live:
        console.print("[yellow]--live: every call goes to the Anthropic API and is billed[/yellow]")
    with progress(console, f"{args.turns}-turn coding session") as on_turn:
        report = asyncio.run(run(on_turn))
    from lore_batch.replay.report import ReplayReport

    assert isinstance(report, ReplayReport)
    return emit(report, args=args, console=console, title="lore demo")
