"""The engine's late answers through the durable pool, end to end (BATCH.md 6.2), on SQLite and PostgreSQL.

Process A runs the engine on a durable batch client: its distiller and curator make their worker calls, the
pool submits them in one batch, and A goes away before the batch ends. Process B opens the same store,
registers ``lore_handlers`` and resumes: the pool hands B the finished rows of the gone process, and the
handlers apply them through ``Lore.apply_answer``, so the distillation and the curation A paid for land in the
store, with no second submission and no model call of B's own.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from lore_batch import BatchLLMClient
from lore_batch.emulator import AnthropicEmulator
from lore_batch.pool import lore_handlers
from lore_core import Lore
from lore_core.ingest import MessageLog
from lore_core.store import create_engine
from tests.batch.conftest import creates, endpoint
from tests.engine.test_failures import coding_turns

from .conftest import IOClock, run_until
from .test_durable import _crash

MODEL = "claude-sonnet-4-6"
SESSION = "s1"


async def _open(url: str, llm: BatchLLMClient, clock: IOClock) -> Lore:
    """A ``Lore`` on ``url`` whose store the clock watches (its I/O runs outside the clock)."""
    lore = await Lore.open(url, llm=llm, clock=clock, watch_idle=False)
    clock.stores.append(lore.store)
    return lore


@dataclass
class ProcessA:
    """The engine of the process that asked, its batch client, and its workers' tasks (still awaiting)."""

    lore: Lore
    llm: BatchLLMClient
    work: list[asyncio.Future[Any]]

    async def stop(self) -> None:
        """Cancel the workers' tasks (their ``finally`` blocks run: the session lease is released) and close."""
        for task in self.work:
            task.cancel()
        await asyncio.gather(*self.work, return_exceptions=True)
        await self.lore.close()


async def _ask_then_crash(
    make_durable: Callable[..., BatchLLMClient], emu: AnthropicEmulator, clock: IOClock, url: str
) -> ProcessA:
    """Process A: store three coding turns, start a forced distillation and a curation of the session, wait
    for the pool's one batch create (both calls in it), then kill A's pool as a dead process would stop."""
    llm = make_durable(max_queue_size=2)  # the two calls go out together, without waiting out the window
    lore = await _open(url, llm, clock)
    now = lore.now_datetime()
    await lore.store.ensure_session(SESSION, "proj", MODEL, now)
    await MessageLog(lore.store).record(SESSION, coding_turns(3), now=now)
    await lore.store.save_state(SESSION, turns_since_curation=lore.config.curate_after_turns)
    work: list[asyncio.Future[Any]] = [
        asyncio.ensure_future(lore.scheduler.distiller.run(SESSION, force=True)),
        asyncio.ensure_future(lore.scheduler.curator.curate(SESSION)),
    ]
    a = ProcessA(lore=lore, llm=llm, work=work)
    try:
        await run_until(clock, _until(lambda: len(creates(emu)) == 1))
        (create,) = creates(emu)
        assert create.batch_request_count == 2
        await _crash(llm)
        assert not any(task.done() for task in work)  # both calls still await the batch: nothing was written
    except BaseException:
        await a.stop()  # a failure here must not leave A's workers running into the fixtures' teardown
        raise
    return a


@asynccontextmanager
async def _process_b(
    make_durable: Callable[..., BatchLLMClient], clock: IOClock, url: str
) -> AsyncIterator[tuple[Lore, BatchLLMClient]]:
    """Process B: a new engine and durable client on the store, the engine's handlers registered, resumed."""
    llm = make_durable()
    lore = await _open(url, llm, clock)
    try:
        for worker, handler in lore_handlers(lore).items():
            llm.register_handler(worker, handler)
        await run_until(clock, llm.resume())
        yield lore, llm
    finally:
        await run_until(clock, lore.close())


async def _until(condition: Callable[[], bool]) -> None:
    while not condition():  # noqa: ASYNC110 - the state lives in the emulator, no event to await
        await asyncio.sleep(0.01)


async def _select(engine: AsyncEngine, query: str) -> list[tuple[Any, ...]]:
    async with engine.connect() as connection:
        return [tuple(row) for row in await connection.execute(sa.text(query))]


async def _until_handled(lore: Lore, pool_rows: AsyncEngine, clock: IOClock) -> None:
    """Move the clock until every pool item is through its handler (``delivered``, or ``handler_failed``
    after its last attempt: the assertions then say what is missing instead of a timeout), then let the
    engine's follow-up work (the retention check) finish. A handler returns before its item is marked
    ``delivered``, so whatever it wrote is in the store by then."""
    while not {state for (state,) in await _select(pool_rows, "SELECT state FROM lore_batch_items")} <= {
        "delivered",
        "handler_failed",
    }:
        await clock.sleep(1.0)
    await lore.scheduler.run_until_idle()


@pytest.fixture
async def pool_rows(migrated_url: str) -> AsyncIterator[AsyncEngine]:
    """One engine for the test's own reads of the pool tables."""
    engine = create_engine(migrated_url)
    yield engine
    await engine.dispose()


async def test_a_gone_processs_distill_and_curate_answers_land_through_a_new_processs_handlers(
    make_durable: Callable[..., BatchLLMClient],
    emu: AnthropicEmulator,
    clock: IOClock,
    migrated_url: str,
    pool_rows: AsyncEngine,
) -> None:
    a = await _ask_then_crash(make_durable, emu, clock, migrated_url)
    await a.stop()
    async with _process_b(make_durable, clock, migrated_url) as (lore, llm):
        store = lore.store
        assert await store.list_distillations(SESSION) == []
        assert await store.list_knowledge("proj") == []
        await run_until(clock, _until_handled(lore, pool_rows, clock))

        # distill: the observer row over every message, as if A's run had received the answer
        (row,) = await store.list_distillations(SESSION)
        assert (row.kind, row.generation, row.route) == ("observer", 0, "batch")
        assert set(row.source_ids) == {m.id for m in await store.list_messages(SESSION)}
        assert await store.count_messages(SESSION, undistilled_only=True) == 0
        assert row.retention_score is not None  # the retention check followed, as after any write
        # curate: entries from the session, the watermark moved
        entries = await store.list_knowledge("proj")
        assert entries
        assert {entry.source_session for entry in entries} == {SESSION}
        state = await store.load_state(SESSION)
        assert state is not None
        assert state.turns_since_curation == 0
        # worker_runs: one run per worker carries the batch answer and its tokens (A's cancelled runs are
        # recorded too, as errors of type "cancelled" with neither a route nor tokens).
        for worker in ("distill", "curate"):
            answered = [
                run
                for run in await store.list_worker_runs(session_id=SESSION, worker=worker)
                if run.route is not None
            ]
            assert [(run.status, run.route) for run in answered] == [("ok", "batch")], worker
            assert answered[0].input_tokens > 0
        assert await store.count_worker_runs(session_id=SESSION, status="stale") == 0

    assert len(creates(emu)) == 1  # nothing was submitted twice
    assert endpoint(emu, "messages") == []  # and nothing was asked outside the batch (no sync call, no retry)
    items = await _select(pool_rows, "SELECT state, worker, owner_id FROM lore_batch_items ORDER BY worker")
    assert [(state, worker) for state, worker, _ in items] == [
        ("delivered", "curate"),
        ("delivered", "distill"),
    ]
    assert {owner for _, _, owner in items} == {llm._pool.process_id}  # type: ignore[union-attr]


async def test_a_killed_processs_distill_answer_lands_although_its_session_lease_is_still_held(
    make_durable: Callable[..., BatchLLMClient],
    emu: AnthropicEmulator,
    clock: IOClock,
    migrated_url: str,
    pool_rows: AsyncEngine,
) -> None:
    # A is killed, not cancelled: its distiller's finally never runs, so its lease row stays as it was. B's
    # handler finds the step busy, puts the answer off (HandlerRetry) and applies it once the lease is over.
    a = await _ask_then_crash(make_durable, emu, clock, migrated_url)
    started = clock.monotonic()
    try:
        async with _process_b(make_durable, clock, migrated_url) as (lore, _):
            await run_until(clock, _until_handled(lore, pool_rows, clock))
            assert clock.monotonic() - started >= lore.config.worker_lease_seconds - 60.0
            stale = await lore.store.list_worker_runs(session_id=SESSION, worker="distill", status="stale")
            assert [run.error_detail for run in stale] == []
            (row,) = await lore.store.list_distillations(SESSION)
            assert row.route == "batch"
            assert await lore.store.count_messages(SESSION, undistilled_only=True) == 0
    finally:
        await a.stop()
    assert len(creates(emu)) == 1
