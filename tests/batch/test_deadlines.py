"""Rescue at the give-up time, upstream cancel, superseded results, cancelled waiters (behaviours 28, 29, 33)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from lore_batch import BatchLLMClient
from lore_batch.costlog import MemoryCostLog
from lore_batch.emulator import AnthropicEmulator

from .conftest import SpyLLM, StepClock, advance, creates, endpoint, run_until


async def test_an_item_past_its_rescue_time_falls_back_and_its_batch_is_cancelled(
    make_client: Callable[..., BatchLLMClient], spy: SpyLLM, emu: AnthropicEmulator, clock: StepClock
) -> None:
    emu.batch_delay = 5000.0
    llm = make_client(give_up_after=600.0)
    start = clock.now()
    reply = await run_until(clock, llm.prompt("", "slow", worker="distill"))
    assert reply.route == "fallback"
    assert clock.now() - start == 600.0
    assert spy.calls[0]["urgent"] is False
    (cancel,) = endpoint(emu, "batch_cancel")
    assert cancel.at - start == 600.0
    (batch,) = emu.batches.values()
    assert batch.cancel_initiated_at is not None
    # The engine keeps polling the cancelled batch until it has ended, then forgets it.
    await run_until(clock, _until(lambda: llm.stats().inflight_batches == 0))
    assert llm.stats().total_fallback == 1


async def _until(condition: Callable[[], bool]) -> None:
    while not condition():  # noqa: ASYNC110 - polls engine state between clock steps
        await asyncio.sleep(0)


async def test_a_late_result_for_a_rescued_item_is_logged_as_superseded(
    make_client: Callable[..., BatchLLMClient],
    emu: AnthropicEmulator,
    clock: StepClock,
    cost_log: MemoryCostLog,
) -> None:
    emu.batch_delay = 580.0  # created at t=30, ends at t=610
    llm = make_client(give_up_after=600.0, poll_interval=5.0)
    early = asyncio.ensure_future(llm.prompt("", "early"))
    await advance(clock, 20.0)
    late = asyncio.ensure_future(llm.prompt("", "late"))
    early_reply = await run_until(clock, early)  # rescued at t=600, while "late" still waits
    late_reply = await run_until(clock, late)  # answered by the batch at t=610
    assert (early_reply.route, late_reply.route) == ("fallback", "batch")
    superseded = [row for row in cost_log.entries if row.route == "batch_superseded"]
    assert len(superseded) == 1
    assert superseded[0].cost_usd is not None
    assert superseded[0].cost_usd > 0
    assert cost_log.totals().wasted_usd == superseded[0].cost_usd
    assert endpoint(emu, "batch_cancel") == []
    stats = llm.stats()
    assert (stats.total_batched, stats.total_fallback) == (1, 1)


async def test_a_waiter_cancelled_while_queued_is_never_submitted(
    make_client: Callable[..., BatchLLMClient], emu: AnthropicEmulator, clock: StepClock
) -> None:
    llm = make_client()
    gone = asyncio.ensure_future(llm.prompt("", "gone"))
    kept = asyncio.ensure_future(llm.prompt("", "kept"))
    await advance(clock, 10.0)
    gone.cancel()
    await advance(clock, 0.0)
    assert llm.stats().queued == 1
    assert (await run_until(clock, kept)).route == "batch"
    assert creates(emu)[0].batch_request_count == 1
    stats = llm.stats()
    assert (stats.total_batched, stats.total_failed, stats.total_fallback) == (1, 0, 0)


async def test_a_batch_whose_waiters_all_cancelled_is_cancelled_upstream(
    make_client: Callable[..., BatchLLMClient], emu: AnthropicEmulator, clock: StepClock
) -> None:
    emu.batch_delay = 3000.0
    llm = make_client()
    tasks = [asyncio.ensure_future(llm.prompt("", f"q{i}")) for i in range(2)]
    await advance(clock, 40.0)
    assert llm.stats().inflight_requests == 2
    tasks[0].cancel()
    await advance(clock, 0.0)
    assert endpoint(emu, "batch_cancel") == []
    tasks[1].cancel()
    await advance(clock, 0.0)
    assert len(endpoint(emu, "batch_cancel")) == 1
    await run_until(clock, _until(lambda: llm.stats().inflight_batches == 0))
    assert (llm.stats().total_batched, llm.stats().total_failed) == (0, 0)
