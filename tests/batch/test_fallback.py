"""The sync fallback executor: exact replay, concurrency 2, the 429 breaker (behaviours 30, 32)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from lore_batch import AuthCredential, BatchLLMClient
from lore_batch.costlog import MemoryCostLog
from lore_batch.emulator import AnthropicEmulator
from lore_batch.engine.fallback import RATE_LIMIT_ATTEMPTS
from lore_core.errors import RateLimitedError
from lore_core.llm import LLMResponse

from .conftest import API_KEY, Registry, SpyLLM, StepClock, advance, run_until, settle


async def test_the_fallback_replays_every_field_non_urgent(
    make_client: Callable[..., BatchLLMClient], spy: SpyLLM, emu: AnthropicEmulator, clock: StepClock
) -> None:
    emu.faults.item_outcomes(canceled=1.0)
    llm = make_client(registry=Registry({"s9": AuthCredential("api-key", API_KEY)}))
    reply = await run_until(
        clock,
        llm.prompt(
            "You curate.",
            "the user text",
            model="anthropic/claude-haiku-4-5",
            max_tokens=321,
            temperature=0.5,
            session_id="s9",
            worker="curate",
        ),
    )
    assert reply.route == "fallback"
    assert spy.calls == [
        {
            "system": "You curate.",
            "user": "the user text",
            "model": "anthropic/claude-haiku-4-5",
            "max_tokens": 321,
            "temperature": 0.5,
            "urgent": False,
            "session_id": "s9",
            "worker": "curate",
        }
    ]


async def test_at_most_two_fallbacks_run_at_once_and_none_is_dropped(
    make_client: Callable[..., BatchLLMClient], spy: SpyLLM, emu: AnthropicEmulator, clock: StepClock
) -> None:
    emu.faults.item_outcomes(canceled=1.0)
    spy.gate = asyncio.Event()
    llm = make_client()
    tasks = [asyncio.ensure_future(llm.prompt("", f"q{i}")) for i in range(6)]
    await advance(clock, 200.0)
    assert spy.active == 2
    # An urgent call is never held behind them.
    assert (await llm.prompt("", "urgent", urgent=True)).route == "sync"
    spy.gate.set()
    replies = await run_until(clock, asyncio.gather(*tasks))
    assert [r.route for r in replies] == ["fallback"] * 6
    assert spy.peak == 3  # two fallbacks plus the urgent call
    assert llm.stats().total_fallback == 6


class RateLimitedOnce:
    """An inner client without its own breaker whose first non-urgent call is rate limited."""

    def __init__(self, real: SpyLLM) -> None:
        self.real = real
        self.limited = 0

    async def prompt(self, system: str, user: str, **kwargs: Any) -> LLMResponse:
        if not kwargs.get("urgent") and self.limited < 1:
            self.limited += 1
            raise RateLimitedError("rate limited", retry_after=5.0, status=429)
        return await self.real.prompt(system, user, **kwargs)


async def test_a_fallback_429_trips_the_breaker_and_is_sent_again_once_it_closes(
    make_client: Callable[..., BatchLLMClient], spy: SpyLLM, emu: AnthropicEmulator, clock: StepClock
) -> None:
    emu.faults.item_outcomes(canceled=1.0)
    llm = make_client(inner=RateLimitedOnce(spy))
    first = asyncio.ensure_future(llm.prompt("", "first"))
    while not llm.breaker.is_open:
        await advance(clock, 1.0)
    tripped_at = clock.monotonic()
    assert llm.breaker.trips == 1
    assert 0 < llm.breaker.remaining() <= 60.0
    # Urgent calls are never held by the breaker.
    assert (await llm.prompt("", "urgent", urgent=True)).route == "sync"
    assert clock.monotonic() == tripped_at
    assert not first.done()
    reply = await run_until(clock, first)
    assert reply.route == "fallback"
    assert clock.monotonic() - tripped_at >= 59.0
    assert [call["user"] for call in spy.calls] == ["urgent", "first"]
    stats = llm.stats()
    assert (stats.total_fallback, stats.total_failed) == (1, 0)


async def test_a_fallback_refused_three_times_fails_with_the_rate_limit_and_escalates(
    make_client: Callable[..., BatchLLMClient], spy: SpyLLM, emu: AnthropicEmulator, clock: StepClock
) -> None:
    emu.faults.item_outcomes(canceled=1.0)
    emu.faults.fail_next("messages", 429, count=RATE_LIMIT_ATTEMPTS, retry_after=1)
    llm = make_client()
    start = clock.monotonic()
    with pytest.raises(RateLimitedError) as caught:
        await run_until(clock, llm.prompt("", "limited"))
    assert caught.value.__cause__ is not None  # the batch-side cancel is chained under it
    assert llm.breaker.trips == RATE_LIMIT_ATTEMPTS
    assert llm.breaker.remaining() > 60.0
    assert clock.monotonic() - start >= 60.0 + 120.0  # waited out two escalating trips between sends
    assert len(spy.calls) == RATE_LIMIT_ATTEMPTS
    assert llm.stats().total_failed == 1


async def test_a_caller_cancelled_during_its_fallback_is_settled_once_and_logged(
    make_client: Callable[..., BatchLLMClient],
    spy: SpyLLM,
    emu: AnthropicEmulator,
    clock: StepClock,
    cost_log: MemoryCostLog,
) -> None:
    emu.faults.item_outcomes(canceled=1.0)
    spy.gate = asyncio.Event()
    llm = make_client()
    task = asyncio.ensure_future(llm.prompt("", "going away"))
    while spy.active == 0:
        await advance(clock, 5.0)
    task.cancel()
    await settle()
    assert task.cancelled()
    spy.gate.set()
    await settle()
    # The sync call had already been sent: it is logged (it was paid for) but counted in no total.
    assert [(row.route, row.status) for row in cost_log.entries if row.route != "batch"] == [
        ("fallback", "ok")
    ]
    stats = llm.stats()
    assert (stats.total_fallback, stats.total_failed, stats.total_batched) == (0, 0, 0)
    assert llm._engine.live == {}
    assert llm._engine.background_errors == []
