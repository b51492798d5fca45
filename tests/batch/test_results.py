"""Results: outcomes by type, missing and malformed lines, retried downloads (behaviours 11, 12, 23-27)."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from decimal import Decimal

import pytest

from lore_batch import AnthropicLLMClient, BatchItemErrored, BatchLLMClient, RetryPolicy
from lore_batch.clock import ManualClock
from lore_batch.costlog import CostLog, CostTotals, MemoryCostLog, RequestLogEntry
from lore_batch.emulator import AnthropicEmulator
from lore_core.errors import LLMRequestError

from .conftest import API_KEY, BATCH_DELAY, SpyLLM, StepClock, advance, creates, endpoint, run_until


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


_UNKNOWN_ID = "lb-00000000000000000000000000-1"
_JUNK_LINES = (
    '{"custom_id": "lb-cut-in-half", "result": {"type": "succ',  # not JSON
    json.dumps({"custom_id": _UNKNOWN_ID, "result": {"type": "canceled"}}),  # nobody's custom_id
    json.dumps({"result": {"type": "canceled"}}),  # no custom_id
    json.dumps({"custom_id": _UNKNOWN_ID, "result": {"type": "mystery"}}),  # unknown result type
)


async def test_the_tolerant_reader_skips_unusable_lines_and_applies_the_rest(
    make_client: Callable[..., BatchLLMClient],
    emu: AnthropicEmulator,
    clock: StepClock,
    cost_log: MemoryCostLog,
    caplog: pytest.LogCaptureFixture,
) -> None:
    emu.faults.extra_result_lines(*_JUNK_LINES, downloads=3)  # every download carries them
    llm = make_client()
    with caplog.at_level(logging.INFO, logger="lore_batch"):
        replies = await run_until(clock, asyncio.gather(*(llm.prompt("", f"q{i}") for i in range(6))))
    assert [r.route for r in replies] == ["batch"] * 6
    # The SDK's decoder stops at the junk; the second pass reads line by line and skips what it cannot use.
    assert len(endpoint(emu, "batch_results")) == 2
    assert len(creates(emu)) == 1
    assert caplog.text.count("skipped an unusable line") == 3
    assert f"result for unknown custom_id {_UNKNOWN_ID} ignored" in caplog.text
    assert len({row.custom_id for row in _batch_rows(cost_log)}) == 6
    assert llm.stats().total_resubmitted == 0


async def test_a_line_for_an_unknown_custom_id_is_ignored_by_the_sdk_decoder_pass(
    make_client: Callable[..., BatchLLMClient],
    emu: AnthropicEmulator,
    clock: StepClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    emu.faults.extra_result_lines(_JUNK_LINES[1])
    llm = make_client()
    with caplog.at_level(logging.WARNING, logger="lore_batch"):
        replies = await run_until(clock, asyncio.gather(*(llm.prompt("", f"q{i}") for i in range(3))))
    assert [r.route for r in replies] == ["batch"] * 3
    assert len(endpoint(emu, "batch_results")) == 1  # a well-formed line never forces the tolerant pass
    assert f"result for unknown custom_id {_UNKNOWN_ID} ignored" in caplog.text
    assert llm.stats().total_failed == 0


async def test_archived_results_count_as_missing_and_the_items_are_resubmitted(
    make_client: Callable[..., BatchLLMClient], clock: StepClock
) -> None:
    # The emulator keeps its own clock here, so its batches can age 30 days between two of our polls.
    emu = AnthropicEmulator(clock=ManualClock(), batch_delay=0.0, seed=3)
    async with emu.client(api_key=API_KEY) as sdk:
        inner = AnthropicLLMClient(sdk, clock=clock, retry=RetryPolicy(jitter=0.0, background_attempts=1))
        llm = make_client(inner=inner, client=sdk)
        task = asyncio.ensure_future(llm.prompt("", "old news"))
        await advance(clock, 31.0)
        (first,) = creates(emu)
        emu.advance(30 * 86_400.0)  # ended at once, archived after 29 days
        reply = await run_until(clock, task)
        await run_until(clock, llm.aclose())
    assert reply.route == "batch"
    first_again, second = creates(emu)
    assert first_again is first
    assert second.custom_ids[0].endswith("-2")
    downloads = endpoint(emu, "batch_results")
    assert [d.batch_id for d in downloads] == [second.batch_id]  # archived results are never fetched
    assert llm.stats().total_resubmitted == 1


async def test_progress_is_read_from_processing_status_never_from_request_counts(
    make_client: Callable[..., BatchLLMClient], emu: AnthropicEmulator, clock: StepClock
) -> None:
    emu.faults.early_counts(count=10)  # every poll before the end claims all requests succeeded
    llm = make_client()
    reply = await run_until(clock, llm.prompt("", "patience"))
    assert reply.route == "batch"
    (create,) = creates(emu)
    first_download = endpoint(emu, "batch_results")[0]
    assert first_download.at - create.at >= BATCH_DELAY
    early_polls = [r for r in endpoint(emu, "batch_retrieve") if r.at < create.at + BATCH_DELAY]
    assert len(early_polls) >= 3


async def test_at_most_max_inflight_requests_per_credential_are_in_unfinished_batches(
    make_client: Callable[..., BatchLLMClient], emu: AnthropicEmulator, clock: StepClock
) -> None:
    llm = make_client(max_queue_size=5, max_inflight_requests=3)
    tasks = [asyncio.ensure_future(llm.prompt("", f"q{i}")) for i in range(5)]
    await advance(clock, 1.0)
    (first,) = creates(emu)
    assert first.batch_request_count == 3
    stats = llm.stats()
    assert (stats.queued, stats.inflight_requests) == (2, 3)
    # The window passes with the credential still full: nothing more is created.
    await advance(clock, 40.0)
    assert len(creates(emu)) == 1
    replies = await run_until(clock, asyncio.gather(*tasks))
    assert [r.route for r in replies] == ["batch"] * 5
    _, second = creates(emu)
    assert second.batch_request_count == 2
    assert second.at >= first.at + BATCH_DELAY  # created once the first batch had ended


async def test_a_failed_direct_call_writes_an_error_row(
    make_client: Callable[..., BatchLLMClient], emu: AnthropicEmulator, cost_log: MemoryCostLog
) -> None:
    emu.faults.fail_next("messages", 400)
    llm = make_client()
    with pytest.raises(LLMRequestError):
        await llm.prompt("", "refused", urgent=True, worker="recall")
    (row,) = cost_log.entries
    assert (row.route, row.status, row.cost_usd, row.worker) == ("sync", "error", Decimal(0), "recall")
    assert row.model == "claude-sonnet-4-6"
    assert llm.stats().total_failed == 1
