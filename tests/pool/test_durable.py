"""Durable mode on SQLite and PostgreSQL: rows, one submission per item, restart, handlers (BATCH.md 6)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import sqlalchemy as sa

from lore_batch import BatchLLMClient
from lore_batch.emulator import AnthropicEmulator
from lore_batch.pool import HandledResult
from lore_core.store import create_engine
from tests.batch.conftest import API_KEY, creates

from .conftest import IOClock, run_until


async def _rows(url: str, query: str) -> list[tuple[object, ...]]:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            return [tuple(row) for row in await connection.execute(sa.text(query))]
    finally:
        await engine.dispose()


async def test_queued_calls_are_rows_and_come_back_as_batch_answers(
    make_durable: Callable[..., BatchLLMClient], emu: AnthropicEmulator, clock: IOClock, migrated_url: str
) -> None:
    llm = make_durable()
    replies = await run_until(
        clock, asyncio.gather(*(llm.prompt("sys", f"question {i}", worker="distill") for i in range(5)))
    )
    assert [reply.route for reply in replies] == ["batch"] * 5
    assert all(reply.text.endswith(f"question {i}") for i, reply in enumerate(replies))
    (create,) = creates(emu)
    assert create.batch_request_count == 5
    rows = await _rows(migrated_url, "SELECT state, attempts, custom_id, worker FROM lore_batch_items")
    assert sorted(row[0] for row in rows) == ["delivered"] * 5
    assert {row[2] for row in rows} == set(create.custom_ids)
    assert all(row[1] == 1 and row[3] == "distill" for row in rows)
    (batch,) = await _rows(migrated_url, "SELECT id, status, request_count FROM lore_batch_batches")
    assert batch == (create.batch_id, "ended", 5)
    stats = llm.stats()
    assert (stats.total_batched, stats.batches_submitted, stats.total_failed) == (5, 1, 0)


async def test_no_secret_is_written_to_the_pool_tables(
    make_durable: Callable[..., BatchLLMClient], clock: IOClock, migrated_url: str
) -> None:
    llm = make_durable()
    await run_until(clock, llm.prompt("sys", "hello", worker="curate", session_id="s1"))
    for table in ("lore_batch_items", "lore_batch_batches", "lore_batch_processes", "lore_batch_leases"):
        for row in await _rows(migrated_url, f"SELECT * FROM {table}"):
            text = repr(row)
            assert API_KEY not in text
            assert API_KEY[-12:] not in text


async def test_a_result_whose_process_is_gone_reaches_the_handler_of_a_new_process(
    make_durable: Callable[..., BatchLLMClient], emu: AnthropicEmulator, clock: IOClock, migrated_url: str
) -> None:
    first = make_durable()
    calls = [asyncio.ensure_future(first.prompt("sys", f"q{i}", worker="distill")) for i in range(3)]
    await run_until(clock, _until(lambda: len(creates(emu)) == 1))
    # The first process goes away without a word: its tasks stop, its rows stay as they are.
    await _crash(first)
    for call in calls:
        call.cancel()
    got: list[HandledResult] = []

    async def handler(result: HandledResult) -> None:
        got.append(result)

    second = make_durable()
    second.register_handler("distill", handler)
    await run_until(clock, second.prompt("sys", "wake up", urgent=True))  # starts nothing durable
    await run_until(clock, second._pool.start())  # type: ignore[union-attr]
    await run_until(clock, _until(lambda: len(got) == 3))
    assert sorted(result.call.user for result in got) == ["q0", "q1", "q2"]
    assert all(result.response is not None and result.response.route == "batch" for result in got)
    assert all(result.response.text.endswith(result.call.user) for result in got if result.response)
    assert len(creates(emu)) == 1  # nothing was submitted twice
    states = await _rows(migrated_url, "SELECT state, owner_id FROM lore_batch_items")
    assert {state for state, _ in states} == {"delivered"}
    assert {owner for _, owner in states} == {second._pool.process_id}  # type: ignore[union-attr]


async def _until(condition: Callable[[], bool]) -> None:
    while not condition():  # noqa: ASYNC110 - the state lives in the emulator and the store, no event to await
        await asyncio.sleep(0.01)


async def _crash(client: BatchLLMClient) -> None:
    """Stop ``client``'s pool as a killed process would: no close, no release, no stopped_at."""
    pool = client._pool
    assert pool is not None
    tasks = [task for task in pool._tasks if not task.done()]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    leadership = pool.leadership
    connection = getattr(leadership, "_connection", None)
    if connection is not None:  # PostgreSQL: a dead process's session ends, and its advisory locks with it
        await connection.invalidate()
        await connection.close()
    pool.closing = pool.closed = True
    client._engine.closing = True
