"""Lazy start, loop binding, bounded close in memory mode, stats (behaviour 34 and BATCH.md 3.1, 3.3, 6.3)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from decimal import Decimal

import pytest

from lore_batch import BatchAbandoned, BatchError, BatchItemErrored, BatchLLMClient
from lore_batch.costlog import MemoryCostLog
from lore_batch.emulator import AnthropicEmulator

from .conftest import SpyLLM, StepClock, advance, creates, endpoint, run_until


async def test_close_drains_queued_items_through_fallback_two_at_a_time(
    make_client: Callable[..., BatchLLMClient], spy: SpyLLM, emu: AnthropicEmulator, clock: StepClock
) -> None:
    llm = make_client()
    tasks = [asyncio.ensure_future(llm.prompt("", f"q{i}", worker="distill")) for i in range(5)]
    await advance(clock, 5.0)
    await run_until(clock, llm.aclose())
    replies = await asyncio.gather(*tasks)
    assert [r.route for r in replies] == ["fallback"] * 5
    assert all(call["urgent"] is False for call in spy.calls)
    assert spy.peak <= 2
    assert creates(emu) == []


async def test_close_waits_out_the_grace_then_cancels_and_abandons(
    make_client: Callable[..., BatchLLMClient], emu: AnthropicEmulator, clock: StepClock
) -> None:
    emu.batch_delay = 3000.0
    llm = make_client(shutdown_grace=10.0)
    task = asyncio.ensure_future(llm.prompt("", "slow"))
    await advance(clock, 40.0)
    closing_at = clock.monotonic()
    await run_until(clock, llm.aclose())
    assert clock.monotonic() - closing_at == 10.0
    with pytest.raises(BatchAbandoned) as info:
        await task
    (create,) = creates(emu)
    assert info.value.batch_id == create.batch_id
    assert info.value.custom_id == create.custom_ids[0]
    assert len(endpoint(emu, "batch_cancel")) == 1
    assert llm.stats().total_failed == 1


async def test_a_batch_ending_inside_the_grace_is_still_delivered(
    make_client: Callable[..., BatchLLMClient], emu: AnthropicEmulator, clock: StepClock
) -> None:
    emu.batch_delay = 13.0  # created at t=30, ends at t=43: polled at 40 (close), then 45
    llm = make_client(shutdown_grace=10.0)
    task = asyncio.ensure_future(llm.prompt("", "nearly done"))
    await advance(clock, 40.0)
    await run_until(clock, llm.aclose())
    assert (await task).route == "batch"
    assert endpoint(emu, "batch_cancel") == []


async def test_close_timeout_bounds_everything(
    make_client: Callable[..., BatchLLMClient], spy: SpyLLM, clock: StepClock
) -> None:
    spy.gate = asyncio.Event()  # the fallback never answers
    llm = make_client()
    task = asyncio.ensure_future(llm.prompt("", "stuck"))
    await advance(clock, 1.0)
    start = clock.monotonic()
    await run_until(clock, llm.aclose(timeout=5.0))
    assert clock.monotonic() - start == 5.0
    with pytest.raises(BatchAbandoned):
        await task


async def test_close_timeout_cancels_unfinished_batches_upstream(
    make_client: Callable[..., BatchLLMClient], emu: AnthropicEmulator, clock: StepClock
) -> None:
    emu.batch_delay = 3000.0
    llm = make_client(shutdown_grace=600.0)
    task = asyncio.ensure_future(llm.prompt("", "slow"))
    await advance(clock, 40.0)
    (create,) = creates(emu)
    start = clock.monotonic()
    await run_until(clock, llm.aclose(timeout=30.0))
    assert clock.monotonic() - start == 30.0  # the cancel itself answered at once
    with pytest.raises(BatchAbandoned) as info:
        await task
    assert info.value.batch_id == create.batch_id
    (cancel,) = endpoint(emu, "batch_cancel")
    assert create.batch_id in cancel.path
    assert llm.stats().inflight_batches == 0


async def test_calls_after_close_go_to_inner(
    make_client: Callable[..., BatchLLMClient], spy: SpyLLM, emu: AnthropicEmulator, clock: StepClock
) -> None:
    llm = make_client()
    await run_until(clock, llm.prompt("", "before"))
    await run_until(clock, llm.aclose())
    reply = await llm.prompt("", "after")
    assert reply.route == "sync"
    assert spy.calls[-1]["urgent"] is False
    assert len(creates(emu)) == 1


async def test_async_with_closes_and_an_unused_client_closes_at_once(
    make_client: Callable[..., BatchLLMClient], clock: StepClock
) -> None:
    async with make_client() as llm:
        assert llm.stats().queued == 0
    assert (await llm.prompt("", "x")).route == "sync"


async def test_the_engine_is_bound_to_the_loop_that_started_it(
    make_client: Callable[..., BatchLLMClient], clock: StepClock
) -> None:
    llm = make_client()
    task = asyncio.ensure_future(llm.prompt("", "here"))
    await advance(clock, 1.0)

    def elsewhere() -> None:
        asyncio.run(llm.prompt("", "there"))

    with pytest.raises(BatchError, match="another event loop"):
        await asyncio.to_thread(elsewhere)
    assert (await run_until(clock, task)).route == "batch"


async def test_stats_count_every_finished_call_exactly_once(
    make_client: Callable[..., BatchLLMClient],
    emu: AnthropicEmulator,
    clock: StepClock,
    cost_log: MemoryCostLog,
) -> None:
    llm = make_client()
    await llm.prompt("", "direct", urgent=True)
    await run_until(clock, asyncio.gather(llm.prompt("", "b1"), llm.prompt("", "b2")))
    emu.faults.item_outcomes(canceled=1.0)
    assert (await run_until(clock, llm.prompt("", "fb"))).route == "fallback"
    emu.faults.item_outcomes(errored=1.0, error_type="invalid_request_error")
    with pytest.raises(BatchItemErrored):
        await run_until(clock, llm.prompt("", "bad"))
    stats = llm.stats()
    assert (stats.total_direct, stats.total_batched, stats.total_fallback, stats.total_failed) == (1, 2, 1, 1)
    assert (stats.total_queued, stats.batches_submitted, stats.total_resubmitted) == (4, 3, 0)
    assert (stats.queued, stats.inflight_batches, stats.inflight_requests) == (0, 0, 0)
    assert stats.batch_cost_usd > 0
    # Anthropic batch prices are exactly half: what batching saved equals what it cost.
    assert stats.batch_savings_usd == stats.batch_cost_usd
    routes = sorted(row.route for row in cost_log.entries)
    assert routes == ["batch", "batch", "batch", "batch", "fallback", "sync"]  # incl. canceled & errored rows
    tags = {row.route: row.tag for row in cost_log.entries}
    assert tags == {"sync": None, "batch": "background", "fallback": "background"}
    failed_rows = [row for row in cost_log.entries if row.status in ("canceled", "errored")]
    assert [row.cost_usd for row in failed_rows] == [Decimal(0), Decimal(0)]
