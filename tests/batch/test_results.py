"""Results: outcomes by type, missing and malformed lines, retried downloads (behaviours 11, 12, 23-27)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from lore_batch import BatchItemErrored, BatchLLMClient
from lore_batch.costlog import CostLog, CostTotals, MemoryCostLog, RequestLogEntry
from lore_batch.emulator import AnthropicEmulator

from .conftest import SpyLLM, StepClock, creates, endpoint, run_until


def _batch_rows(cost_log: MemoryCostLog) -> list[RequestLogEntry]:
    return [row for row in cost_log.entries if row.route == "batch"]


async def _reset_faults_after_first_create(emu: AnthropicEmulator) -> None:
    while not creates(emu):  # noqa: ASYNC110 - the emulator has no event to wait on
        await asyncio.sleep(0)
    emu.faults.clear()


async def test_errored_invalid_request_raises_batch_item_errored_without_retry(
    make_client: Callable[..., BatchLLMClient], spy: SpyLLM, emu: AnthropicEmulator, clock: StepClock
) -> None:
    emu.faults.item_outcomes(errored=1.0, error_type="invalid_request_error")
    llm = make_client()
    with pytest.raises(BatchItemErrored) as info:
        await run_until(clock, llm.prompt("", "bad"))
    error = info.value
    assert error.custom_id == creates(emu)[0].custom_ids[0]
    assert error.batch_id == creates(emu)[0].batch_id
    assert error.error_type == "invalid_request_error"
    assert error.request_id
    assert error.retryable is False
    assert len(creates(emu)) == 1
    assert spy.calls == []
    assert llm.stats().total_failed == 1


async def test_errored_overloaded_is_resubmitted_then_falls_back_after_three_attempts(
    make_client: Callable[..., BatchLLMClient], spy: SpyLLM, emu: AnthropicEmulator, clock: StepClock
) -> None:
    emu.faults.item_outcomes(errored=1.0, error_type="overloaded_error")
    llm = make_client()
    reply = await run_until(clock, llm.prompt("", "busy"))
    assert reply.route == "fallback"
    suffixes = [r.custom_ids[0].rsplit("-", 1)[1] for r in creates(emu)]
    assert suffixes == ["1", "2", "3"]
    assert len({r.custom_ids[0] for r in creates(emu)}) == 3
    stats = llm.stats()
    assert stats.total_resubmitted == 2
    assert (stats.total_fallback, stats.total_batched, stats.total_failed) == (1, 0, 0)
    assert len(spy.calls) == 1


async def test_errored_api_error_is_resubmitted_and_then_batched(
    make_client: Callable[..., BatchLLMClient], emu: AnthropicEmulator, clock: StepClock
) -> None:
    emu.faults.item_outcomes(errored=1.0, error_type="api_error")
    llm = make_client()
    reset = asyncio.ensure_future(_reset_faults_after_first_create(emu))
    reply = await run_until(clock, llm.prompt("", "flaky"))
    await reset
    assert reply.route == "batch"
    assert len(creates(emu)) == 2
    assert llm.stats().total_resubmitted == 1


async def test_expired_with_time_left_is_resubmitted(
    make_client: Callable[..., BatchLLMClient], emu: AnthropicEmulator, clock: StepClock
) -> None:
    emu.faults.item_outcomes(expired=1.0)
    llm = make_client()
    reset = asyncio.ensure_future(_reset_faults_after_first_create(emu))
    reply = await run_until(clock, llm.prompt("", "late"))
    await reset
    assert reply.route == "batch"
    assert llm.stats().total_resubmitted == 1


async def test_expired_near_the_deadline_falls_back(
    make_client: Callable[..., BatchLLMClient], spy: SpyLLM, emu: AnthropicEmulator, clock: StepClock
) -> None:
    emu.batch_delay = 200.0
    emu.faults.item_outcomes(expired=1.0)
    llm = make_client(give_up_after=300.0)
    start = clock.now()
    reply = await run_until(clock, llm.prompt("", "late"))
    assert reply.route == "fallback"
    assert len(creates(emu)) == 1
    assert clock.now() - start < 300.0  # answered by the expired result, not by the rescue timer
    assert llm.stats().total_resubmitted == 0


async def test_canceled_not_by_us_falls_back(
    make_client: Callable[..., BatchLLMClient], spy: SpyLLM, emu: AnthropicEmulator, clock: StepClock
) -> None:
    emu.faults.item_outcomes(canceled=1.0)
    llm = make_client()
    reply = await run_until(clock, llm.prompt("", "canceled"))
    assert reply.route == "fallback"
    assert len(creates(emu)) == 1


async def test_a_missing_line_is_resubmitted(
    make_client: Callable[..., BatchLLMClient], emu: AnthropicEmulator, clock: StepClock
) -> None:
    emu.faults.result_lines(dropped=1)
    llm = make_client()
    replies = await run_until(clock, asyncio.gather(*(llm.prompt("", f"q{i}") for i in range(3))))
    assert [r.route for r in replies] == ["batch"] * 3
    first, second = creates(emu)
    assert second.batch_request_count == 1
    assert second.custom_ids[0].endswith("-2")
    assert second.custom_ids[0][:-2] in {cid[:-2] for cid in first.custom_ids}
    assert llm.stats().total_resubmitted == 1


async def test_a_malformed_line_triggers_the_tolerant_reader_and_nothing_is_applied_twice(
    make_client: Callable[..., BatchLLMClient],
    emu: AnthropicEmulator,
    clock: StepClock,
    cost_log: MemoryCostLog,
) -> None:
    emu.faults.result_lines(malformed=1)
    llm = make_client()
    replies = await run_until(clock, asyncio.gather(*(llm.prompt("", f"q{i}") for i in range(6))))
    assert [r.route for r in replies] == ["batch"] * 6
    assert len(endpoint(emu, "batch_results")) == 2
    assert len(creates(emu)) == 1
    rows = _batch_rows(cost_log)
    assert len(rows) == 6
    assert len({row.custom_id for row in rows}) == 6
    assert llm.stats().total_resubmitted == 0


async def test_a_download_dropped_mid_stream_is_retried(
    make_client: Callable[..., BatchLLMClient],
    emu: AnthropicEmulator,
    clock: StepClock,
    cost_log: MemoryCostLog,
) -> None:
    emu.faults.truncate_results()
    llm = make_client()
    replies = await run_until(clock, asyncio.gather(*(llm.prompt("", f"q{i}") for i in range(4))))
    assert [r.route for r in replies] == ["batch"] * 4
    downloads = endpoint(emu, "batch_results")
    assert len(downloads) == 2
    assert downloads[1].at - downloads[0].at >= 5.0
    assert len(_batch_rows(cost_log)) == 4


async def test_a_poll_error_keeps_the_batch(
    make_client: Callable[..., BatchLLMClient], emu: AnthropicEmulator, clock: StepClock
) -> None:
    emu.faults.fail_next("batch_retrieve", 500, count=3)
    llm = make_client()
    reply = await run_until(clock, llm.prompt("", "hello"))
    assert reply.route == "batch"
    assert len(creates(emu)) == 1


async def test_a_lost_batch_resubmits_its_items(
    make_client: Callable[..., BatchLLMClient], emu: AnthropicEmulator, clock: StepClock
) -> None:
    emu.faults.fail_next("batch_retrieve", 404)
    llm = make_client()
    reply = await run_until(clock, llm.prompt("", "hello"))
    assert reply.route == "batch"
    assert len(creates(emu)) == 2
    assert llm.stats().total_resubmitted == 1


class FinishedAtEachRow(MemoryCostLog):
    """A cost log that yields on each write and notes how many callers had their answer by then."""

    def __init__(self, finished: list[int]) -> None:
        super().__init__()
        self.finished = finished
        self.seen: list[int] = []

    async def record(self, entry: RequestLogEntry) -> None:
        await super().record(entry)
        for _ in range(5):
            await asyncio.sleep(0)
        self.seen.append(len(self.finished))

    def totals(self) -> CostTotals:
        return super().totals()


async def test_shuffled_lines_are_joined_by_custom_id_and_waiters_resolve_as_lines_arrive(
    make_client: Callable[..., BatchLLMClient], clock: StepClock
) -> None:
    finished: list[int] = []
    log: CostLog = FinishedAtEachRow(finished)
    llm = make_client(cost_log=log)

    async def call(i: int) -> str:
        reply = await llm.prompt("", f"question {i}")
        finished.append(i)
        return reply.text

    texts = await run_until(clock, asyncio.gather(*(call(i) for i in range(8))))
    assert all(text.endswith(f"question {i}") for i, text in enumerate(texts))
    assert isinstance(log, FinishedAtEachRow)
    assert log.seen[-1] >= 6  # most callers had their answer before the last line was applied
    assert finished != sorted(finished)  # lines came in a shuffled order


async def test_errored_permission_error_disables_and_falls_back(
    make_client: Callable[..., BatchLLMClient], spy: SpyLLM, emu: AnthropicEmulator, clock: StepClock
) -> None:
    emu.faults.item_outcomes(errored=1.0, error_type="permission_error")
    llm = make_client()
    assert (await run_until(clock, llm.prompt("", "one"))).route == "fallback"
    before = clock.now()
    assert (await run_until(clock, llm.prompt("", "two"))).route == "fallback"
    assert clock.now() == before
    assert len(creates(emu)) == 1
    assert len(spy.calls) == 2
