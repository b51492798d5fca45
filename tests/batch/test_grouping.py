"""Credentials and workspaces never share a batch; splits and custom_ids (behaviours 5-7, 9)."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
from collections.abc import Callable
from dataclasses import dataclass

from lore_batch import AuthCredential, BatchLLMClient
from lore_batch.emulator import AnthropicEmulator
from lore_batch.engine.grouping import MAX_BATCH_BYTES, group_by, split
from lore_batch.engine.items import CUSTOM_ID_PATTERN, REQUEST_OVERHEAD_BYTES, custom_id, new_ulid

from .conftest import API_KEY, OTHER_KEY, Registry, SpyLLM, StepClock, advance, creates, run_until


def _emulator_fp(token: str) -> str:
    # The SDK sends API keys as `Authorization: Bearer`, so the emulator fingerprints them as bearer.
    return hashlib.sha256(f"bearer|{token}".encode()).hexdigest()[:16]


async def test_two_credentials_make_two_batches_and_each_caller_gets_its_own_answer(
    make_client: Callable[..., BatchLLMClient], emu: AnthropicEmulator, clock: StepClock
) -> None:
    registry = Registry({"a": AuthCredential("api-key", API_KEY), "b": AuthCredential("api-key", OTHER_KEY)})
    llm = make_client(registry=registry)
    calls = [(("a", "b")[i % 2], f"question {i}") for i in range(120)]
    replies = await run_until(
        clock, asyncio.gather(*(llm.prompt("", text, session_id=session) for session, text in calls))
    )
    assert all(reply.route == "batch" for reply in replies)
    assert all(reply.text.endswith(text) for reply, (_, text) in zip(replies, calls, strict=True))
    made = creates(emu)
    assert len(made) == 2
    assert {r.credential_fp for r in made} == {_emulator_fp(API_KEY), _emulator_fp(OTHER_KEY)}
    assert all(r.batch_request_count == 60 for r in made)
    # Both batches were in flight at once: neither waited for the other.
    assert made[0].at == made[1].at
    # Every poll and download went out with the batch's own credential.
    owner = {r.batch_id: r.credential_fp for r in made}
    for record in emu.requests:
        if record.batch_id is not None:
            assert record.credential_fp == owner[record.batch_id]
    assert llm.stats().batches_submitted == 2


async def test_another_workspace_makes_another_batch(
    make_client: Callable[..., BatchLLMClient], emu: AnthropicEmulator, clock: StepClock
) -> None:
    registry = Registry(
        {
            "plain": AuthCredential("api-key", API_KEY),
            "ws": AuthCredential("api-key", API_KEY, workspace="wrkspc_other"),
        }
    )
    llm = make_client(registry=registry)
    replies = await run_until(
        clock,
        asyncio.gather(llm.prompt("", "one", session_id="plain"), llm.prompt("", "two", session_id="ws")),
    )
    assert [r.route for r in replies] == ["batch", "batch"]
    assert sorted((r.workspace or "") for r in creates(emu)) == ["", "wrkspc_other"]


@dataclass(frozen=True)
class Sized:
    name: str
    size: int


def test_split_at_max_requests_and_at_the_byte_cap() -> None:
    items = [Sized(f"i{n}", 40) for n in range(5)]
    parts = split(items, max_requests=2, max_bytes=MAX_BATCH_BYTES)
    assert [[i.name for i in batch] for batch in parts.batches] == [["i0", "i1"], ["i2", "i3"], ["i4"]]
    parts = split(items, max_requests=100, max_bytes=100)
    assert [len(batch) for batch in parts.batches] == [2, 2, 1]
    assert parts.oversize == ()


def test_a_lone_oversize_item_is_set_aside() -> None:
    parts = split(
        [Sized("small", 10), Sized("huge", 500), Sized("small2", 10)], max_requests=10, max_bytes=100
    )
    assert [[i.name for i in b] for b in parts.batches] == [["small", "small2"]]
    assert [i.name for i in parts.oversize] == ["huge"]


def test_group_by_keeps_order() -> None:
    assert group_by(["a1", "b1", "a2"], lambda s: s[0]) == {"a": ["a1", "a2"], "b": ["b1"]}


async def test_an_oversize_item_goes_to_fallback(
    make_client: Callable[..., BatchLLMClient], spy: SpyLLM, emu: AnthropicEmulator, clock: StepClock
) -> None:
    llm = make_client()
    engine = llm._engine
    engine.settings = dataclasses.replace(engine.settings, max_bytes=REQUEST_OVERHEAD_BYTES + 150)
    small, big = await run_until(
        clock, asyncio.gather(llm.prompt("", "small"), llm.prompt("", "x" * 400, worker="distill"))
    )
    assert small.route == "batch"
    assert big.route == "fallback"
    assert spy.calls[0]["user"] == "x" * 400
    assert creates(emu)[0].batch_request_count == 1


def test_custom_ids_match_the_api_pattern_and_change_per_attempt() -> None:
    ids = {new_ulid(1_700_000_000.0) for _ in range(1000)}
    assert len(ids) == 1000
    for ulid in list(ids)[:50]:
        assert len(ulid) == 26
        for attempt in (1, 2, 3):
            cid = custom_id(ulid, attempt)
            assert CUSTOM_ID_PATTERN.match(cid)
            assert len(cid) <= 31
        assert custom_id(ulid, 1) != custom_id(ulid, 2)
    assert sorted([new_ulid(1.0), new_ulid(2.0)])[0].startswith(new_ulid(1.0)[:10])


async def test_custom_ids_in_a_batch_are_unique_and_carry_no_session(
    make_client: Callable[..., BatchLLMClient], emu: AnthropicEmulator, clock: StepClock
) -> None:
    llm = make_client()
    await run_until(
        clock, asyncio.gather(*(llm.prompt("", f"q{i}", session_id="secret-session") for i in range(10)))
    )
    ids = creates(emu)[0].custom_ids
    assert len(set(ids)) == 10
    assert all(CUSTOM_ID_PATTERN.match(cid) and cid.endswith("-1") for cid in ids)
    assert not any("secret" in cid for cid in ids)


async def test_a_slow_fallback_in_one_group_never_delays_another_groups_create(
    make_client: Callable[..., BatchLLMClient], spy: SpyLLM, emu: AnthropicEmulator, clock: StepClock
) -> None:
    registry = Registry({"a": AuthCredential("api-key", API_KEY), "b": AuthCredential("api-key", OTHER_KEY)})
    llm = make_client(registry=registry)
    llm._engine.disabled.disable(registry.sessions["a"], sessions=[], status_code=403, reason="test")
    spy.gate = asyncio.Event()
    held = asyncio.ensure_future(llm.prompt("", "held", session_id="a"))
    batched = asyncio.ensure_future(llm.prompt("", "batched", session_id="b"))
    await advance(clock, 30.0)
    assert len(creates(emu)) == 1
    assert not held.done()
    spy.gate.set()
    assert (await run_until(clock, batched)).route == "batch"
    assert (await run_until(clock, held)).route == "fallback"
