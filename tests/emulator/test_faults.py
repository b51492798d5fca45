"""Scripted and seeded faults, as the real SDK sees them in process."""

from __future__ import annotations

import json
from typing import Any

import anthropic
import pytest
from anthropic import AsyncAnthropic

from lore_batch.emulator import AnthropicEmulator, ConnectionDropped, ManualClock
from lore_core.errors import ConfigError

from .helpers import batch_requests, params


@pytest.mark.parametrize(
    ("status", "exc_type", "error_type"),
    [
        (429, anthropic.RateLimitError, "rate_limit_error"),
        (500, anthropic.InternalServerError, "api_error"),
        (529, anthropic.OverloadedError, "overloaded_error"),
        (401, anthropic.AuthenticationError, "authentication_error"),
        (403, anthropic.PermissionDeniedError, "permission_error"),
        (413, anthropic.ContentTooLargeError, "request_too_large"),
    ],
)
async def test_fail_next_answers_the_scripted_status(
    emu: AnthropicEmulator,
    client: AsyncAnthropic,
    status: int,
    exc_type: type[anthropic.APIStatusError],
    error_type: str,
) -> None:
    emu.faults.fail_next("batch_create", status)
    with pytest.raises(exc_type) as caught:
        await client.messages.batches.create(requests=batch_requests(1))
    assert caught.value.status_code == status
    assert caught.value.body["error"]["type"] == error_type
    assert caught.value.request_id == caught.value.response.headers["request-id"]
    assert emu.batches == {}
    batch = await client.messages.batches.create(requests=batch_requests(1))  # only the next call failed
    assert batch.processing_status == "in_progress"
    assert [r.status for r in emu.requests] == [status, 200]


async def test_429_sends_retry_after(emu: AnthropicEmulator, client: AsyncAnthropic) -> None:
    emu.faults.fail_next("messages", 429)
    emu.faults.fail_next("messages", 429, retry_after=30)
    emu.faults.fail_next("messages", 429, retry_after=None)
    emu.faults.fail_next("messages", 503, retry_after=2.5)
    headers = []
    for _ in range(4):
        with pytest.raises(anthropic.APIStatusError) as caught:
            await client.messages.create(**params())
        headers.append(caught.value.response.headers.get("retry-after"))
    assert headers == ["1", "30", None, "2.5"]


async def test_scripted_error_type_overrides_the_default(
    emu: AnthropicEmulator, client: AsyncAnthropic
) -> None:
    emu.faults.fail_next("count_tokens", 400, error_type="billing_error")
    with pytest.raises(anthropic.BadRequestError) as caught:
        await client.messages.count_tokens(model=params()["model"], messages=params()["messages"])
    assert caught.value.body["error"]["type"] == "billing_error"


async def test_poll_failures_then_recovery(emu: AnthropicEmulator, client: AsyncAnthropic) -> None:
    batch = await client.messages.batches.create(requests=batch_requests(1))
    emu.faults.fail_next("batch_retrieve", 529, count=2)
    for _ in range(2):
        with pytest.raises(anthropic.OverloadedError):
            await client.messages.batches.retrieve(batch.id)
    assert (await client.messages.batches.retrieve(batch.id)).id == batch.id


async def test_connection_drop_after_create_leaves_the_batch_created(
    emu: AnthropicEmulator, client: AsyncAnthropic
) -> None:
    emu.faults.drop_connection("batch_create")
    with pytest.raises(anthropic.APIConnectionError) as caught:
        await client.messages.batches.create(requests=batch_requests(2))
    assert isinstance(caught.value.__cause__, ConnectionDropped)
    (record,) = emu.requests
    assert (record.endpoint, record.status, record.dropped) == ("batch_create", 200, True)
    assert record.batch_id in emu.batches  # the batch exists: a client must adopt it, not re-create it
    listed = await client.messages.batches.list()
    assert [b.id for b in listed.data] == [record.batch_id]


async def test_connection_drop_before_processing_changes_nothing(
    emu: AnthropicEmulator, client: AsyncAnthropic
) -> None:
    emu.faults.drop_connection("messages", after_processing=False)
    with pytest.raises(anthropic.APIConnectionError):
        await client.messages.create(**params())
    (record,) = emu.requests
    assert (record.status, record.dropped) == (0, True)
    assert emu.billing == []


async def test_a_dropped_sync_call_is_still_billed(emu: AnthropicEmulator, client: AsyncAnthropic) -> None:
    emu.faults.drop_connection("messages")
    with pytest.raises(anthropic.APIConnectionError):
        await client.messages.create(**params())
    assert [row.route for row in emu.billing] == ["sync"]


async def _outcomes(seed: int, **rates: Any) -> dict[str, str]:
    emu = AnthropicEmulator(clock=ManualClock(), seed=seed)
    emu.faults.item_outcomes(**rates)
    async with emu.client() as client:
        batch = await client.messages.batches.create(requests=batch_requests(40))
        emu.end_all()
        results = {
            line.custom_id: line.result async for line in await client.messages.batches.results(batch.id)
        }
    billed = {row.custom_id for row in emu.billing}
    assert billed == {cid for cid, r in results.items() if r.type == "succeeded"}
    counts = emu.batches[batch.id].request_counts
    assert counts.errored == sum(r.type == "errored" for r in results.values())
    for result in results.values():
        if result.type == "errored":
            assert result.error.error.type == rates.get("error_type", "api_error")
    return {cid: r.type for cid, r in results.items()}


async def test_item_outcome_rates_are_seeded() -> None:
    rates = {"errored": 0.25, "error_type": "overloaded_error", "expired": 0.25, "canceled": 0.25}
    first = await _outcomes(3, **rates)
    assert first == await _outcomes(3, **rates)
    assert first != await _outcomes(4, **rates)
    assert set(first.values()) == {"succeeded", "errored", "expired", "canceled"}
    assert set((await _outcomes(3, errored=1.0)).values()) == {"errored"}


def test_fault_plan_refuses_nonsense(emu: AnthropicEmulator) -> None:
    with pytest.raises(ConfigError):
        emu.faults.fail_next("batch_frobnicate", 500)
    with pytest.raises(ConfigError):
        emu.faults.fail_next("messages", 200)
    with pytest.raises(ConfigError):
        emu.faults.drop_connection("messages", count=0)
    with pytest.raises(ConfigError):
        emu.faults.item_outcomes(errored=0.6, expired=0.6)
    with pytest.raises(ConfigError):
        emu.faults.result_lines(malformed=-1)
    with pytest.raises(ConfigError):
        emu.faults.truncate_results(0)
    assert "batch_retrieve" in emu.faults.ENDPOINTS


async def test_clear_forgets_scripted_faults(emu: AnthropicEmulator, client: AsyncAnthropic) -> None:
    emu.faults.fail_next("messages", 500, count=3)
    emu.faults.item_outcomes(errored=1.0)
    emu.faults.clear()
    assert (await client.messages.create(**params())).role == "assistant"


async def test_malformed_and_dropped_result_lines(emu: AnthropicEmulator, client: AsyncAnthropic) -> None:
    batch = await client.messages.batches.create(requests=batch_requests(6))
    emu.end_all()
    emu.faults.result_lines(dropped=2)
    assert len([line async for line in await client.messages.batches.results(batch.id)]) == 4
    emu.faults.result_lines(malformed=1)
    with pytest.raises(json.JSONDecodeError):
        async for _ in await client.messages.batches.results(batch.id):
            pass
    assert len([line async for line in await client.messages.batches.results(batch.id)]) == 6  # one-off


async def test_truncated_results_download(emu: AnthropicEmulator, client: AsyncAnthropic) -> None:
    batch = await client.messages.batches.create(requests=batch_requests(3))
    emu.end_all()
    emu.faults.truncate_results()
    with pytest.raises(anthropic.APIConnectionError):  # in process the transport raises before any byte
        await client.messages.batches.results(batch.id)
    assert len([line async for line in await client.messages.batches.results(batch.id)]) == 3


async def test_batch_rpm_limits_each_credential_over_a_sliding_minute(clock: ManualClock) -> None:
    emu = AnthropicEmulator(clock=clock, batch_rpm=3)
    async with emu.client() as client, emu.client(api_key="sk-ant-other") as other:
        batch = await client.messages.batches.create(requests=batch_requests(1))
        clock.advance(10)
        await client.messages.batches.retrieve(batch.id)
        await client.messages.batches.list()
        with pytest.raises(anthropic.RateLimitError) as caught:
            await client.messages.batches.retrieve(batch.id)
        assert caught.value.response.headers["retry-after"] == "50"  # the create leaves the window at 60 s
        assert (await other.messages.batches.list()).data == []  # another credential has its own budget
        assert (await client.messages.create(**params())).role == "assistant"  # /v1/messages is not counted
        clock.advance(50)
        assert (await client.messages.batches.retrieve(batch.id)).id == batch.id
    assert [r.status for r in emu.requests if r.endpoint.startswith("batch_")] == [
        200,
        200,
        200,
        429,
        200,
        200,
    ]
