"""``lore emulator``: serve the Anthropic API emulator on 127.0.0.1 for users' own tests."""

from __future__ import annotations

import argparse

__all__ = ["register"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "emulator",
        help="serve the Anthropic API emulator on 127.0.0.1",
        description="Serves /v1/messages and the Message Batches API in memory, for tests and demos.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--delay", type=float, default=0.0, help="seconds a batch stays in_progress")
    parser.add_argument("--seed", type=int, default=0)
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    from lore_batch.emulator import AnthropicEmulator, run

    emu = AnthropicEmulator(batch_delay=args.delay, seed=args.seed)
    print(f"lore emulator: serving on http://{args.host}:{args.port} (Ctrl-C to stop)")
    run(args.host, args.port, emulator=emu)
    return 0
