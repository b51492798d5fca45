"""The durable pool across OS processes, on SQLite (one machine) and PostgreSQL: a SIGKILL after submit, and
three processes pooling into shared batches. Real time, the real SDK over a socket to the emulator."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from lore_batch.emulator import AnthropicEmulator
from lore_core.store import create_engine
from tests.batch.conftest import API_KEY, creates

pytestmark = pytest.mark.wire

ROOT = Path(__file__).resolve().parents[2]
READ_LIMIT = 60.0


@pytest.fixture
async def served() -> AsyncIterator[tuple[AnthropicEmulator, str]]:
    emu = AnthropicEmulator(batch_delay=3.0, seed=3)
    async with emu.serve() as base_url:
        yield emu, base_url


async def _spawn(mode: str, *args: str, db: str, emulator: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.pool.worker",
        mode,
        "--db",
        db,
        "--emulator",
        emulator,
        "--api-key",
        API_KEY,
        *args,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def _line(proc: asyncio.subprocess.Process) -> str:
    assert proc.stdout is not None
    try:
        raw = await asyncio.wait_for(proc.stdout.readline(), READ_LIMIT)
    except TimeoutError:
        proc.kill()
        _, err = await proc.communicate()
        raise AssertionError(f"no answer from the worker process; stderr:\n{err.decode()[-3000:]}") from None
    if not raw:
        _, err = await proc.communicate()
        raise AssertionError(f"the worker process exited early; stderr:\n{err.decode()[-3000:]}")
    return raw.decode().strip()


async def _rows(url: str, query: str) -> list[tuple[object, ...]]:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            return [tuple(row) for row in await connection.execute(sa.text(query))]
    finally:
        await engine.dispose()


def _item_id(custom_id: str) -> str:
    return custom_id.split("-")[1]


async def test_a_process_killed_after_submit_is_resumed_by_the_next_one(
    served: tuple[AnthropicEmulator, str], migrated_url: str, tmp_path: Path
) -> None:
    emu, base_url = served
    count = 6
    first = await _spawn("submit", "--count", str(count), db=migrated_url, emulator=base_url)
    assert await _line(first) == "SUBMITTED"
    first.kill()  # SIGKILL: no close, no release, nothing flushed
    await first.wait()
    (create,) = creates(emu)
    assert create.batch_request_count == count

    out = tmp_path / "handled.jsonl"
    second = await _spawn(
        "resume", "--count", str(count), "--out", str(out), db=migrated_url, emulator=base_url
    )
    assert await _line(second) == "DONE"
    assert await asyncio.wait_for(second.wait(), READ_LIMIT) == 0

    handled = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(h["user"] for h in handled) == sorted(f"q-{i}" for i in range(count))
    assert all(h["route"] == "batch" and h["text"].endswith(h["user"]) for h in handled)
    assert len({h["item_id"] for h in handled}) == count
    # Exactly one submission per item in the emulator's log: the new process only polled and downloaded.
    assert len(creates(emu)) == 1
    assert sorted(_item_id(cid) for cid in create.custom_ids) == sorted(h["item_id"] for h in handled)
    states = await _rows(migrated_url, "SELECT state, attempts FROM lore_batch_items")
    assert states == [("delivered", 1)] * count
    (stopped,) = await _rows(
        migrated_url, "SELECT count(*) FROM lore_batch_processes WHERE stopped_at IS NOT NULL"
    )
    assert stopped == (1,)  # the killed process never marked itself stopped; the second did


async def test_three_processes_pool_their_calls_into_shared_batches(
    served: tuple[AnthropicEmulator, str], migrated_url: str
) -> None:
    emu, base_url = served
    per_process, processes = 100, 3
    start_at = time.time() + 6.0  # every process is up and registered before any enqueues
    procs = [
        await _spawn(
            "pool",
            "--count",
            str(per_process),
            "--prefix",
            f"p{n}",
            "--window",
            "1.0",
            "--start-at",
            str(start_at),
            db=migrated_url,
            emulator=base_url,
        )
        for n in range(processes)
    ]
    reports = [json.loads(await _line(proc)) for proc in procs]
    for proc in procs:
        assert await asyncio.wait_for(proc.wait(), READ_LIMIT) == 0

    assert [r["matched"] for r in reports] == [per_process] * processes  # every caller got its own answers
    made = creates(emu)
    item_ids = [_item_id(cid) for create in made for cid in create.custom_ids]
    assert len(item_ids) == per_process * processes
    assert len(set(item_ids)) == len(item_ids)  # no item submitted twice
    owners = dict(await _rows(migrated_url, "SELECT id, owner_id FROM lore_batch_items"))
    mixed = [create for create in made if len({owners[_item_id(cid)] for cid in create.custom_ids}) > 1]
    assert mixed, "no batch held items from more than one process"
    # Each process would have flushed at least once on its own: pooling made fewer batches than that.
    assert len(made) < processes
    states = await _rows(migrated_url, "SELECT DISTINCT state FROM lore_batch_items")
    assert states == [("delivered",)]
