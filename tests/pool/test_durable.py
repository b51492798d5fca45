"""Durable mode on SQLite and PostgreSQL: rows, one submission per item, restart, handlers (BATCH.md 6)."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import anthropic
import pytest
import sqlalchemy as sa

from lore_batch import AuthCredential, BatchLLMClient, ClientClosed, CredentialRegistry, CredentialUnavailable
from lore_batch.emulator import AnthropicEmulator
from lore_batch.engine.items import PromptCall, build_params, new_ulid, params_size
from lore_batch.pool import HandledResult
from lore_batch.pool.records import StoredItem, call_to_json
from lore_batch.pool.store import PoolStore
from lore_core.store import create_engine
from tests.batch.conftest import API_KEY, OTHER_KEY, Registry, SpyLLM, advance, creates

from .conftest import FAST, IOClock, run_until


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
    await asyncio.gather(*calls, return_exceptions=True)
    got: list[HandledResult] = []

    async def handler(result: HandledResult) -> None:
        got.append(result)

    second = make_durable()
    second.register_handler("distill", handler)
    await run_until(clock, second.resume())
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
    await pool._tasks.cancel_all()
    leadership = pool.leadership
    connection = getattr(leadership, "_connection", None)
    if connection is not None:  # PostgreSQL: a dead process's session ends, and its advisory locks with it
        await connection.invalidate()
        await connection.close()
    pool.closing = pool.closed = True
    client._engine.closing = True
    await pool.store.aclose()  # nothing this process still runs can write any more


async def test_two_processes_on_one_store_share_a_batch_and_only_one_leads(
    make_durable: Callable[..., BatchLLMClient], emu: AnthropicEmulator, clock: IOClock
) -> None:
    first, second = make_durable(), make_durable()
    replies = await run_until(
        clock,
        asyncio.gather(
            *(first.prompt("sys", f"a{i}", worker="distill") for i in range(4)),
            *(second.prompt("sys", f"b{i}", worker="distill") for i in range(4)),
        ),
    )
    assert [reply.route for reply in replies] == ["batch"] * 8
    assert [reply.text[-2:] for reply in replies] == [f"a{i}" for i in range(4)] + [f"b{i}" for i in range(4)]
    (create,) = creates(emu)
    assert create.batch_request_count == 8
    leaders = [client for client in (first, second) if client._pool and client._pool.leaders]
    assert len(leaders) == 1


async def test_close_leaves_queued_items_for_the_next_start(
    make_durable: Callable[..., BatchLLMClient], emu: AnthropicEmulator, clock: IOClock, migrated_url: str
) -> None:
    first = make_durable()
    call = asyncio.ensure_future(first.prompt("sys", "later", worker="curate"))
    await run_until(clock, _until(lambda: first.stats().total_queued == 1))
    await run_until(clock, first.aclose())
    with pytest.raises(ClientClosed):
        await call
    assert creates(emu) == []
    assert await _rows(migrated_url, "SELECT state FROM lore_batch_items") == [("queued",)]
    got: list[HandledResult] = []

    async def handler(result: HandledResult) -> None:
        got.append(result)

    second = make_durable()
    second.register_handler("curate", handler)
    await run_until(clock, second.resume())
    await run_until(clock, _until(lambda: len(got) == 1))
    assert got[0].response is not None
    assert got[0].response.text.endswith("later")
    assert len(creates(emu)) == 1


async def test_close_with_on_close_flush_submits_queued_items_first(
    make_durable: Callable[..., BatchLLMClient], emu: AnthropicEmulator, clock: IOClock, migrated_url: str
) -> None:
    llm = make_durable(on_close="flush")
    call = asyncio.ensure_future(llm.prompt("sys", "now", worker="curate"))
    await run_until(
        clock, _until(lambda: bool(llm._pool and llm._pool.leaders) and llm.stats().total_queued == 1)
    )
    await run_until(clock, llm.aclose())
    with pytest.raises(ClientClosed):
        await call
    (create,) = creates(emu)
    assert create.batch_request_count == 1
    assert await _rows(migrated_url, "SELECT state FROM lore_batch_items") == [("in_batch",)]


async def test_a_claim_left_by_a_dead_leader_is_requeued_and_submitted_once(
    make_durable: Callable[..., BatchLLMClient], emu: AnthropicEmulator, clock: IOClock, migrated_url: str
) -> None:
    await _dead_leader_claim(migrated_url, clock, count=3)
    llm = make_durable()
    got: list[HandledResult] = []

    async def handler(result: HandledResult) -> None:
        got.append(result)

    llm.register_handler("distill", handler)
    await run_until(clock, llm.resume())
    await run_until(clock, _until(lambda: len(got) == 3))
    (create,) = creates(emu)  # nothing had been created: the items went back to the queue, then out once
    assert create.batch_request_count == 3
    assert all(cid.endswith("-1") for cid in create.custom_ids)  # the dead claim's attempt was taken back
    assert await _rows(migrated_url, "SELECT status FROM lore_batch_batches ORDER BY created_at") == [
        ("failed",),
        ("ended",),
    ]


async def test_a_batch_created_by_a_dead_leader_is_adopted_not_submitted_again(
    make_durable: Callable[..., BatchLLMClient],
    emu: AnthropicEmulator,
    clock: IOClock,
    migrated_url: str,
    sdk: anthropic.AsyncAnthropic,
) -> None:
    claimed = await _dead_leader_claim(migrated_url, clock, count=3)
    # The dead leader's create went through just before it died: the batch exists, the row says "creating".
    await sdk.messages.batches.create(
        requests=[{"custom_id": item.custom_id or "", "params": item.params} for item in claimed]  # type: ignore[misc]
    )
    llm = make_durable()
    got: list[HandledResult] = []

    async def handler(result: HandledResult) -> None:
        got.append(result)

    llm.register_handler("distill", handler)
    await run_until(clock, llm.resume())
    await run_until(clock, _until(lambda: len(got) == 3))
    assert len(creates(emu)) == 1
    assert await _rows(migrated_url, "SELECT status FROM lore_batch_batches") == [("ended",)]


async def test_items_whose_credential_nobody_holds_wait_then_expire_with_a_clear_error(
    make_durable: Callable[..., BatchLLMClient], emu: AnthropicEmulator, clock: IOClock, migrated_url: str
) -> None:
    llm = make_durable(registry=Registry({"s1": AuthCredential("api-key", OTHER_KEY)}))
    call = asyncio.ensure_future(llm.prompt("sys", "orphan", worker="distill", session_id="s1"))
    await run_until(clock, _until(lambda: llm.stats().total_queued == 1))  # the row is in
    await _crash(llm)  # the only holder of OTHER_KEY is gone
    call.cancel()
    await asyncio.gather(call, return_exceptions=True)
    waiting = make_durable(pool_settings=dataclasses.replace(FAST, credential_wait=300.0))
    got: list[HandledResult] = []

    async def handler(result: HandledResult) -> None:
        got.append(result)

    waiting.register_handler("distill", handler)
    await run_until(clock, waiting.resume())
    await advance(clock, 200.0)
    assert await _rows(migrated_url, "SELECT state FROM lore_batch_items") == [("queued",)]  # waiting
    await run_until(clock, _until(lambda: len(got) == 1))
    error = got[0].error
    assert isinstance(error, CredentialUnavailable)
    assert error.credential_fp == AuthCredential("api-key", OTHER_KEY).fingerprint
    assert error.waited >= 300.0
    assert OTHER_KEY not in str(error)
    assert creates(emu) == []


async def _dead_leader_claim(
    url: str, clock: IOClock, *, count: int, workspace: str | None = None
) -> list[StoredItem]:
    """Rows as a leader leaves them when it dies between its claim and the end of its create."""
    credential = AuthCredential("api-key", API_KEY, workspace=workspace)
    store = PoolStore(url)
    try:
        now = datetime.fromtimestamp(clock.now(), UTC)
        rows = []
        for i in range(count):
            call = PromptCall(
                system="sys", user=f"d{i}", model=None, max_tokens=None, temperature=0, session_id=None,
                worker="distill",
            )  # fmt: skip
            params = build_params(call, model="claude-sonnet-4-6", max_tokens=1024)
            rows.append(
                {
                    "id": new_ulid(now.timestamp()),
                    "credential_fp": credential.fingerprint,
                    "provider": "anthropic",
                    "workspace": workspace,
                    "model": "claude-sonnet-4-6",
                    "facade": "client",
                    "worker": "distill",
                    "tag": "background",
                    "session_id": None,
                    "params": params,
                    "call": call_to_json(call),
                    "params_bytes": params_size(params),
                    "deadline": now + timedelta(hours=1),
                    "state": "queued",
                    "owner_id": "dead-host:1:00000000",
                    "enqueued_at": now,
                    "updated_at": now,
                }
            )
        await store.insert_items(rows)
        return await store.claim(
            credential.fingerprint, workspace, limit=count, max_bytes=10**9, submission_id=new_ulid(now.timestamp()),
            provider="anthropic", process_id="dead-host:1:00000000", now=now,
        )  # fmt: skip
    finally:
        await store.aclose()


async def test_a_workspace_batch_left_by_a_dead_leader_is_adopted_in_its_workspace(
    make_durable: Callable[..., BatchLLMClient],
    emu: AnthropicEmulator,
    clock: IOClock,
    migrated_url: str,
    sdk: anthropic.AsyncAnthropic,
) -> None:
    claimed = await _dead_leader_claim(migrated_url, clock, count=2, workspace="ws-1")
    await sdk.messages.batches.create(
        requests=[{"custom_id": item.custom_id or "", "params": item.params} for item in claimed],  # type: ignore[misc]
        workspace_id="ws-1",
    )
    llm = make_durable(
        registry=CredentialRegistry(default=AuthCredential("api-key", API_KEY, workspace="ws-1"))
    )
    got: list[HandledResult] = []

    async def handler(result: HandledResult) -> None:
        got.append(result)

    llm.register_handler("distill", handler)
    await run_until(clock, llm.resume())
    await run_until(clock, _until(lambda: len(got) == 2))
    assert len(creates(emu)) == 1  # listed in its own workspace, found, adopted: never submitted again


async def test_a_failed_list_at_takeover_leaves_the_claim_for_a_later_look(
    make_durable: Callable[..., BatchLLMClient],
    emu: AnthropicEmulator,
    clock: IOClock,
    migrated_url: str,
    sdk: anthropic.AsyncAnthropic,
) -> None:
    claimed = await _dead_leader_claim(migrated_url, clock, count=2)
    await sdk.messages.batches.create(
        requests=[{"custom_id": item.custom_id or "", "params": item.params} for item in claimed]  # type: ignore[misc]
    )
    emu.faults.fail_next("batch_list", 500)  # "could not look" must not read as "nothing was made"
    llm = make_durable()
    got: list[HandledResult] = []

    async def handler(result: HandledResult) -> None:
        got.append(result)

    llm.register_handler("distill", handler)
    await run_until(clock, llm.resume())
    assert await _rows(migrated_url, "SELECT status FROM lore_batch_batches") == [("creating",)]
    await run_until(clock, _until(lambda: len(got) == 2))
    assert len(creates(emu)) == 1
    assert len([r for r in emu.requests if r.endpoint == "batch_list"]) == 2


async def test_items_are_rescued_even_when_every_poll_fails(
    make_durable: Callable[..., BatchLLMClient], emu: AnthropicEmulator, clock: IOClock, spy: SpyLLM
) -> None:
    emu.faults.fail_next("batch_retrieve", 500, count=10_000)
    llm = make_durable(give_up_after=300.0)
    start = clock.monotonic()
    reply = await run_until(clock, llm.prompt("sys", "stuck", worker="distill"))
    assert reply.route == "fallback"
    assert clock.monotonic() - start < 400.0
    assert len(creates(emu)) == 1
