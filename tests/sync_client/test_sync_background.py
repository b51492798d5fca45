"""Background calls: the shared 429 breaker and the concurrency cap; neither ever holds urgent calls."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import anthropic
import pytest

from lore_batch.clock import ManualClock
from lore_batch.emulator import AnthropicEmulator
from lore_batch.limits import CircuitBreaker, ConcurrencyLimit, RetryPolicy
from lore_batch.sync_client import AnthropicLLMClient
from lore_core.errors import RateLimitedError

from .conftest import HookTransport, message_calls

MakeLLM = Callable[..., AnthropicLLMClient]


async def test_a_background_429_trips_the_breaker_for_the_schedule(
    make_llm: MakeLLM, emu: AnthropicEmulator, clock: ManualClock
) -> None:
    emu.faults.fail_next("messages", 429, retry_after=7)
    llm = make_llm()
    reply = await llm.prompt("", "x", worker="curate")
    assert reply.text == "Echo: x"
    assert clock.sleeps == [60.0]  # max(Retry-After 7, schedule[0] 60)
    assert [c.status for c in message_calls(emu)] == [429, 200]
    assert llm.breaker.trips == 0  # expired naturally, then a call went through: the count resets


async def test_a_longer_retry_after_wins_but_is_capped(
    make_llm: MakeLLM, emu: AnthropicEmulator, clock: ManualClock
) -> None:
    emu.faults.fail_next("messages", 429, retry_after=90)
    emu.faults.fail_next("messages", 429, retry_after=3600)
    llm = make_llm(retry=RetryPolicy(jitter=0.0, background_max_wait=120.0))
    await llm.prompt("", "x")
    assert clock.sleeps == [90.0, 120.0]  # 2nd trip: max(min(3600, 120), schedule[1] 120)


async def test_trips_escalate_and_reset(
    make_llm: MakeLLM, emu: AnthropicEmulator, clock: ManualClock
) -> None:
    emu.faults.fail_next("messages", 429, count=4)
    llm = make_llm()
    await llm.prompt("", "x")
    assert clock.sleeps == [60.0, 120.0, 240.0, 480.0]
    assert llm.breaker.trips == 0
    emu.faults.fail_next("messages", 429)
    await llm.prompt("", "y")
    assert clock.sleeps[-1] == 60.0  # a fresh episode starts at the bottom of the schedule


async def test_background_429_exhaustion_raises_rate_limited_and_leaves_the_breaker_open(
    make_llm: MakeLLM, emu: AnthropicEmulator, clock: ManualClock
) -> None:
    emu.faults.fail_next("messages", 429, count=2, retry_after=5)
    llm = make_llm(retry=RetryPolicy(background_attempts=2, jitter=0.0))
    with pytest.raises(RateLimitedError) as info:
        await llm.prompt("", "x", session_id="s1", worker="validate")
    assert isinstance(info.value.__cause__, anthropic.RateLimitError)
    assert info.value.retry_after == 120.0  # the breaker's pause, not just the header
    state = llm.breaker.state()
    assert state.trips == 2
    assert state.remaining == 120.0
    assert state.open_until == clock.now() + 120.0
    assert clock.sleeps == [60.0]


async def test_urgent_calls_are_never_held_by_an_open_breaker(
    sdk: anthropic.AsyncAnthropic, emu: AnthropicEmulator
) -> None:
    clock = ManualClock()  # time moves only when the test says so
    llm = AnthropicLLMClient(sdk, clock=clock, retry=RetryPolicy(jitter=0.0))
    llm.breaker.trip(retry_after=30.0)
    background = asyncio.create_task(llm.prompt("", "later"))
    await clock.wait_for_sleepers(1)
    assert message_calls(emu) == []  # held, not dropped

    reply = await llm.prompt("", "now", urgent=True)
    assert reply.text == "Echo: now"
    assert len(message_calls(emu)) == 1
    assert not background.done()

    clock.advance(60.0)
    assert (await background).text == "Echo: later"
    assert len(message_calls(emu)) == 2


async def test_urgent_429s_never_trip_the_breaker(make_llm: MakeLLM, emu: AnthropicEmulator) -> None:
    emu.faults.fail_next("messages", 429, count=3)
    llm = make_llm()
    with pytest.raises(RateLimitedError):
        await llm.prompt("", "x", urgent=True)
    assert llm.breaker.state().trips == 0
    assert not llm.breaker.is_open


async def test_one_breaker_shared_by_two_clients(
    sdk: anthropic.AsyncAnthropic, emu: AnthropicEmulator
) -> None:
    clock = ManualClock()
    breaker = CircuitBreaker(clock=clock)
    first = AnthropicLLMClient(sdk, clock=clock, breaker=breaker, retry=RetryPolicy(jitter=0.0))
    second = AnthropicLLMClient(sdk, clock=clock, breaker=breaker, retry=RetryPolicy(jitter=0.0))
    emu.faults.fail_next("messages", 429)
    tripped = asyncio.create_task(first.prompt("", "a"))
    await clock.wait_for_sleepers(1)
    assert breaker.state().is_open
    other = asyncio.create_task(second.prompt("", "b"))
    await clock.wait_for_sleepers(2)
    assert len(message_calls(emu)) == 1  # only the refused call went out
    clock.advance(60.0)
    await asyncio.gather(tripped, other)
    assert [c.status for c in message_calls(emu)] == [429, 200, 200]


async def test_breaker_max_wait_raises_without_sending(
    sdk: anthropic.AsyncAnthropic, emu: AnthropicEmulator
) -> None:
    clock = ManualClock()
    llm = AnthropicLLMClient(sdk, clock=clock, breaker=CircuitBreaker(clock=clock, max_wait=30.0))
    llm.breaker.trip()
    with pytest.raises(RateLimitedError) as info:
        await llm.prompt("", "x")
    assert info.value.retry_after == 60.0
    assert emu.requests == []


async def test_at_most_two_background_calls_in_flight_and_urgent_never_waits(
    hooked: tuple[anthropic.AsyncAnthropic, HookTransport], clock: ManualClock
) -> None:
    client, transport = hooked
    llm = AnthropicLLMClient(client, clock=clock)
    transport.hold = lambda user: user.startswith("bg")
    background = [asyncio.create_task(llm.prompt("", f"bg{n}")) for n in range(4)]
    await transport.wait_held(2)
    for _ in range(10):
        await asyncio.sleep(0)  # give the other two every chance to slip through
    assert transport.held == 2
    assert llm.background_limit.active == 2

    reply = await llm.prompt("", "urgent", urgent=True)  # not held by the transport, nor by the cap
    assert reply.text == "Echo: urgent"
    assert transport.peak == 3  # two background calls plus this urgent one

    transport.gate.set()
    replies = await asyncio.gather(*background)
    assert [r.text for r in replies] == [f"Echo: bg{n}" for n in range(4)]
    assert transport.held == 4
    assert transport.peak == 3
    assert llm.background_limit.active == 0


async def test_the_background_limit_is_a_parameter_and_can_be_shared(
    hooked: tuple[anthropic.AsyncAnthropic, HookTransport], clock: ManualClock
) -> None:
    client, transport = hooked
    shared = ConcurrencyLimit(1)
    first = AnthropicLLMClient(client, clock=clock, background_limit=shared)
    second = AnthropicLLMClient(client, clock=clock, background_limit=shared)
    transport.hold = lambda user: True
    calls = [asyncio.create_task(first.prompt("", "a")), asyncio.create_task(second.prompt("", "b"))]
    await transport.wait_held(1)
    for _ in range(10):
        await asyncio.sleep(0)
    assert transport.held == 1
    transport.gate.set()
    await asyncio.gather(*calls)
    assert transport.peak == 1
    assert AnthropicLLMClient(client, background_limit=3).background_limit.limit == 3


async def test_a_cancelled_background_call_gives_its_slot_back(
    hooked: tuple[anthropic.AsyncAnthropic, HookTransport], clock: ManualClock
) -> None:
    client, transport = hooked
    llm = AnthropicLLMClient(client, clock=clock, background_limit=1)
    transport.hold = lambda user: user == "stuck"
    stuck = asyncio.create_task(llm.prompt("", "stuck"))
    await transport.wait_held(1)
    stuck.cancel()
    with pytest.raises(asyncio.CancelledError):
        await stuck
    assert llm.background_limit.active == 0
    assert (await llm.prompt("", "next")).text == "Echo: next"
