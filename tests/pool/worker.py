"""A durable-pool process for the multi-process tests: ``python -m tests.pool.worker MODE ...``.

Modes:

- ``submit``: enqueue ``--count`` calls, print ``SUBMITTED`` once every one is in a created batch, then wait
  forever (the test kills it with SIGKILL).
- ``resume``: hold the same credential, register a ``distill`` handler that appends each result to ``--out``
  (one JSON line), resume the pool and print ``DONE`` once ``--count`` results were handled.
- ``pool``: at ``--start-at`` (epoch seconds), enqueue ``--count`` calls, await every answer, print one JSON
  line (how many answers matched their own question, and their routes), then close.

Real time, the real SDK over a socket to the test's emulator, the store at ``--db``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

import anthropic
import sqlalchemy as sa

from lore_batch import AnthropicLLMClient, BatchLLMClient, RetryPolicy
from lore_batch.pool import HandledResult, PoolSettings
from lore_core.store import create_engine

FAST = PoolSettings(
    heartbeat=0.5,
    stale_after=3.0,
    lock_retry=0.3,
    lease_ttl=2.0,
    delivery_interval=0.2,
    credential_wait=600.0,
)


def _client(args: argparse.Namespace) -> BatchLLMClient:
    sdk = anthropic.AsyncAnthropic(api_key=args.api_key, base_url=args.emulator, max_retries=0)
    inner = AnthropicLLMClient(sdk, retry=RetryPolicy(jitter=0.0, background_attempts=1))
    return BatchLLMClient(
        inner,
        sdk,
        store=args.db,
        flush_interval=args.window,
        max_queue_size=10_000,
        poll_interval=5.0,
        jitter=0.0,
        pool_settings=FAST,
    )


async def _in_batch(db: str) -> int:
    engine = create_engine(db)
    try:
        async with engine.connect() as connection:
            query = sa.text("SELECT count(*) FROM lore_batch_items WHERE state = 'in_batch'")
            return int((await connection.execute(query)).scalar_one())
    finally:
        await engine.dispose()


async def submit(args: argparse.Namespace) -> None:
    llm = _client(args)
    calls = [
        asyncio.ensure_future(llm.prompt("sys", f"{args.prefix}-{i}", worker="distill", session_id="s1"))
        for i in range(args.count)
    ]
    while await _in_batch(args.db) < args.count:  # noqa: ASYNC110 - the state is in another process's rows
        await asyncio.sleep(0.05)
    print("SUBMITTED", flush=True)
    await asyncio.gather(*calls)  # never finishes: the test kills this process first
    await asyncio.Event().wait()


async def resume(args: argparse.Namespace) -> None:
    llm = _client(args)
    out = Path(args.out)
    handled = asyncio.Event()
    count = 0

    async def handler(result: HandledResult) -> None:
        nonlocal count
        line = {
            "item_id": result.item_id,
            "user": result.call.user,
            "text": result.response.text if result.response else None,
            "route": result.response.route if result.response else None,
            "error": type(result.error).__name__ if result.error else None,
        }
        with out.open("a") as handle:  # noqa: ASYNC230 - one short line, in a test helper
            handle.write(json.dumps(line) + "\n")
        count += 1
        if count >= args.count:
            handled.set()

    llm.register_handler("distill", handler)
    await llm.resume()
    await handled.wait()
    print("DONE", flush=True)
    await llm.aclose()


async def pool(args: argparse.Namespace) -> None:
    llm = _client(args)
    await llm.resume()
    await asyncio.sleep(max(0.0, args.start_at - time.time()))
    questions = [f"{args.prefix}-{i}" for i in range(args.count)]
    replies = await asyncio.gather(*(llm.prompt("sys", q, worker="distill") for q in questions))
    matched = sum(reply.text.endswith(q) for reply, q in zip(replies, questions, strict=True))
    routes = sorted({reply.route for reply in replies})
    print(json.dumps({"matched": matched, "routes": routes, "process": llm._pool.process_id}), flush=True)  # type: ignore[union-attr]
    await llm.aclose()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["submit", "resume", "pool"])
    parser.add_argument("--db", required=True)
    parser.add_argument("--emulator", required=True)
    parser.add_argument("--api-key", required=True)
    parser.add_argument("--count", type=int, default=5)
    parser.add_argument("--prefix", default="q")
    parser.add_argument("--out", default="")
    parser.add_argument("--window", type=float, default=0.3)
    parser.add_argument("--start-at", type=float, default=0.0)
    args = parser.parse_args()
    runner = {"submit": submit, "resume": resume, "pool": pool}[args.mode]
    asyncio.run(runner(args))


if __name__ == "__main__":
    sys.exit(main())
