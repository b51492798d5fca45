"""Queued calls through the durable pool (``BatchLLMClient(store=...)``) on SQLite and PostgreSQL, with the real
SDK on the in-process emulator: where the time goes per call.

Run: ``.venv/bin/python bench/durable_pool.py [--calls 2000] [--postgres URL]``. Prints figures; asserts
nothing. Real clock; the emulator ends a batch at once, so the wall time includes the first poll (5 s after the
create). Phases: *enqueue* (every call's row inserted; the calls of one gather share one transaction),
*claim + create* (the leader's claim and the create request), *apply + deliver* (download, one conditional
update per result line, the request-log row, and every caller resolved from its row).
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import sys
import time
from pathlib import Path
from tempfile import TemporaryDirectory

import asyncpg
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import machine
from lore_batch import AnthropicLLMClient, BatchLLMClient
from lore_batch.emulator import AnthropicEmulator
from lore_batch.pool import PoolSettings
from lore_core.store import upgrade


async def run(url: str, calls: int) -> dict[str, float]:
    await upgrade(url)
    emulator = AnthropicEmulator(batch_delay=0.0)
    async with emulator.client(api_key="sk-ant-bench") as sdk:
        llm = BatchLLMClient(
            AnthropicLLMClient(sdk),
            sdk,
            store=url,
            flush_interval=30.0,
            max_queue_size=calls,
            jitter=0.0,
            pool_settings=PoolSettings(delivery_interval=0.2),
        )
        await llm.resume()
        started, cpu_started = time.perf_counter(), time.process_time()
        tasks = [
            asyncio.create_task(llm.prompt("You are terse.", f"Summarise change {n}.", worker="distill"))
            for n in range(calls)
        ]
        while llm.stats().total_queued < calls:  # noqa: ASYNC110 - sampling counters, not waiting on one
            await asyncio.sleep(0.001)
        enqueued = time.perf_counter()
        while llm.stats().batches_submitted < 1:  # noqa: ASYNC110 - sampling counters, not waiting on one
            await asyncio.sleep(0.001)
        created = time.perf_counter()
        polled_at = created + 5.0  # the first poll comes 5 s after the create
        replies = await asyncio.gather(*tasks)
        done, cpu = time.perf_counter(), time.process_time() - cpu_started
        await llm.aclose()
    assert all(reply.route == "batch" for reply in replies)
    return {
        "wall": done - started,
        "enqueue": enqueued - started,
        "create": created - enqueued,
        "apply": done - max(polled_at, created),
        "cpu_per_call_us": cpu / calls * 1e6,
    }


async def postgres_url(server: str) -> tuple[str, str]:
    parsed = make_url(server)
    name = f"lore_bench_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(
        host=parsed.host or "127.0.0.1", port=parsed.port or 5432, user=parsed.username or "postgres",
        database="postgres",
    )  # fmt: skip
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    return parsed.set(database=name).render_as_string(hide_password=False), name


async def drop(server: str, name: str) -> None:
    parsed = make_url(server)
    admin = await asyncpg.connect(
        host=parsed.host or "127.0.0.1", port=parsed.port or 5432, user=parsed.username or "postgres",
        database="postgres",
    )  # fmt: skip
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--postgres", default="postgresql+asyncpg://postgres@127.0.0.1:5432/lore_test")
    args = parser.parse_args()
    print(machine())
    print("backend     calls   wall s  enqueue s  claim+create s  apply+deliver s  CPU/call us")
    with TemporaryDirectory() as tmp:
        figures = await run(f"sqlite+aiosqlite:///{tmp}/bench.db", args.calls)
        _show("sqlite", args.calls, figures)
    url, name = await postgres_url(args.postgres)
    try:
        _show("postgresql", args.calls, await run(url, args.calls))
    finally:
        await drop(args.postgres, name)


def _show(backend: str, calls: int, f: dict[str, float]) -> None:
    print(
        f"{backend:<10} {calls:>6} {f['wall']:>8.2f} {f['enqueue']:>10.2f} {f['create']:>15.2f}"
        f" {f['apply']:>16.2f} {f['cpu_per_call_us']:>11.0f}"
    )


if __name__ == "__main__":
    asyncio.run(main())
