"""``BatchLLMClient`` writing its request log to the store: the real ``AsyncAnthropic`` on the in-process
emulator, time moved by a stepping clock, rows read back from SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable
from pathlib import Path
from typing import TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from lore_batch import AnthropicLLMClient, BatchLLMClient, RetryPolicy
from lore_batch.costlog import RequestLogEntry, SqlCostLog
from lore_batch.emulator import AnthropicEmulator
from lore_core.store import create_engine
from tests.batch.conftest import (  # counting_executor: autouse, lets settle() see SDK threads
    API_KEY,
    BATCH_DELAY,
    StepClock,
    counting_executor,  # noqa: F401
    settle,
)

T = TypeVar("T")

PROMPT = "PROMPT-TEXT-that-must-not-be-stored"


class TrackedSqlCostLog(SqlCostLog):
    """A ``SqlCostLog`` that counts the rows it is still writing."""

    writing = 0

    async def record(self, entry: RequestLogEntry) -> None:
        self.writing += 1
        try:
            await super().record(entry)
        finally:
            self.writing -= 1


class LogAwareClock(StepClock):
    """A stepping clock that holds time still while the request log is writing a row.

    Database I/O runs outside the clock (a driver thread, a socket): without this, the helpers could jump to
    the next deadline (a poll, the give-up timer) while a result is still being logged.
    """

    log: TrackedSqlCostLog | None = None

    def next_deadline(self) -> float | None:
        if self.log is not None and self.log.writing:
            return None
        return super().next_deadline()


async def run_until(clock: LogAwareClock, awaitable: Awaitable[T]) -> T:
    """``tests.batch.conftest.run_until`` with longer settling: here a batch create, its HTTP round trip and
    the poller's wake-up share the loop with database sockets, and 40 rounds were sometimes not enough."""
    task = asyncio.ensure_future(awaitable)
    try:
        for _ in range(10_000):
            await settle(rounds=400)
            if task.done():
                return task.result()
            deadline = clock.next_deadline()
            if deadline is None:
                await asyncio.sleep(0.001)  # a row is being written, outside the clock
                continue
            clock.advance(max(0.0, deadline - clock.monotonic()))
        raise AssertionError("stuck: the task never finished")
    finally:
        if not task.done():
            task.cancel()


async def _database_text(url: str) -> str:
    """Everything the request log holds, as text (PostgreSQL renders each whole row)."""
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            if engine.dialect.name == "postgresql":
                query = "SELECT CAST(t AS text) FROM lore_batch_request_log AS t"
            else:
                query = "SELECT quote(id) || quote(provider) || quote(model) FROM lore_batch_request_log"
            return "\n".join(str(value) for value in (await connection.scalars(sa.text(query))).all())
    finally:
        await engine.dispose()


async def test_the_batch_client_logs_sync_and_batch_rows_without_secrets(migrated_url: str) -> None:
    clock = LogAwareClock()
    emu = AnthropicEmulator(clock=clock, batch_delay=BATCH_DELAY, seed=3)
    async with emu.client(api_key=API_KEY) as sdk, TrackedSqlCostLog(migrated_url) as log:
        clock.log = log
        inner = AnthropicLLMClient(sdk, clock=clock, retry=RetryPolicy(jitter=0.0, background_attempts=1))
        llm = BatchLLMClient(
            inner, sdk, cost_log=log, clock=clock, disabled=False, jitter=0.0, rng=random.Random(0)
        )
        try:
            urgent = await llm.prompt(PROMPT, PROMPT, urgent=True, worker="curate", session_id="s1")
            later = await run_until(
                clock,
                asyncio.gather(
                    *(
                        llm.prompt(PROMPT, f"{PROMPT} {n}", worker="distill", session_id="s1")
                        for n in range(3)
                    )
                ),
            )
        finally:
            await run_until(clock, llm.aclose(timeout=120.0))
            clock.log = None
        assert urgent.route == "sync"
        assert [reply.route for reply in later] == ["batch"] * 3

        rows = await log.rows()
        totals = await log.query_totals()

    assert sorted(row.route for row in rows) == ["batch", "batch", "batch", "sync"]
    sync_row = next(row for row in rows if row.route == "sync")
    assert (sync_row.tag, sync_row.worker) == (None, "curate")
    assert sync_row.cost_usd is not None
    assert sync_row.cost_usd == sync_row.sync_cost_usd
    batch_rows = [row for row in rows if row.route == "batch"]
    for row in batch_rows:
        assert (row.tag, row.worker, row.status, row.session_id) == ("background", "distill", "ok", "s1")
        assert row.batch_id
        assert row.custom_id
        assert row.credential_fp
        assert len(row.credential_fp) == 16
        assert row.cost_usd is not None
        assert row.sync_cost_usd is not None
        assert row.cost_usd > 0
        assert row.cost_usd * 2 == row.sync_cost_usd
    assert totals.requests == 4
    assert totals.batch_savings_usd == sum(row.cost_usd or 0 for row in batch_rows)
    assert totals.cost_usd == sum(row.cost_usd or 0 for row in rows)

    stored = [repr(rows), await _database_text(migrated_url)]
    url = make_url(migrated_url)
    if url.get_backend_name() == "sqlite":
        database = Path(url.database or "")
        files = [path.read_bytes().decode("latin-1") for path in database.parent.glob(f"{database.name}*")]
        assert any(str(batch_rows[0].batch_id) in text for text in files)  # the rows are in what we read
        stored += files
    for text in stored:
        assert API_KEY not in text
        assert API_KEY[-12:] not in text
        assert PROMPT not in text
