"""The Message Batches lifecycle through the real SDK, on a manual clock."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import anthropic
import pytest
from anthropic import AsyncAnthropic

from lore_batch.emulator import AnthropicEmulator, ManualClock

from .helpers import auth, batch_requests, params, raw_client

DAY = 86_400.0


async def _results(client: AsyncAnthropic, batch_id: str) -> dict[str, Any]:
    return {line.custom_id: line.result async for line in await client.messages.batches.results(batch_id)}


async def test_a_batch_runs_in_progress_then_ends_with_every_result(
    emu: AnthropicEmulator, client: AsyncAnthropic, clock: ManualClock
) -> None:
    created = await client.messages.batches.create(requests=batch_requests(3))
    assert created.id.startswith("msgbatch_")
    assert created.type == "message_batch"
    assert created.processing_status == "in_progress"
    assert created.request_counts.processing == 3
    assert created.results_url is None
    assert created.created_at == datetime.fromtimestamp(clock(), UTC)
    assert (created.expires_at - created.created_at).total_seconds() == DAY

    clock.advance(59)
    polled = await client.messages.batches.retrieve(created.id)
    assert polled.processing_status == "in_progress"
    assert polled.request_counts.processing == 3  # counts move only at the end

    clock.advance(1)
    ended = await client.messages.batches.retrieve(created.id)
    assert ended.processing_status == "ended"
    assert (ended.ended_at - created.created_at).total_seconds() == 60
    assert ended.request_counts.succeeded == 3
    assert ended.request_counts.processing == 0
    assert ended.results_url == f"http://emulator.local/v1/messages/batches/{created.id}/results"

    results = await _results(client, created.id)
    assert sorted(results) == ["req-0", "req-1", "req-2"]
    for custom_id, result in results.items():
        assert result.type == "succeeded"
        assert result.message.content[0].text == f"Echo: question {custom_id[-1]}"
        assert result.message.usage.service_tier == "batch"


async def test_results_and_delete_answer_400_until_the_batch_ended(
    emu: AnthropicEmulator, client: AsyncAnthropic
) -> None:
    batch = await client.messages.batches.create(requests=batch_requests(1))
    async with raw_client(emu) as http:
        early = await http.get(f"/v1/messages/batches/{batch.id}/results", headers=auth())
    assert early.status_code == 400
    with pytest.raises(anthropic.BadRequestError):
        await client.messages.batches.delete(batch.id)
    with pytest.raises(anthropic.AnthropicError, match="results_url"):
        await client.messages.batches.results(batch.id)
    emu.end_all()
    deleted = await client.messages.batches.delete(batch.id)
    assert (deleted.id, deleted.type) == (batch.id, "message_batch_deleted")
    with pytest.raises(anthropic.NotFoundError):
        await client.messages.batches.retrieve(batch.id)
    assert batch.id not in emu.batches


async def test_end_all_ends_every_batch_now(emu: AnthropicEmulator, client: AsyncAnthropic) -> None:
    first = await client.messages.batches.create(requests=batch_requests(2))
    second = await client.messages.batches.create(requests=batch_requests(2))
    emu.end_all()
    for batch_id in (first.id, second.id):
        snapshot = emu.batches[batch_id]
        assert snapshot.processing_status == "ended"
        assert snapshot.ended_at == snapshot.created_at
        assert dict(snapshot.outcomes) == {"req-0": "succeeded", "req-1": "succeeded"}


async def test_advance_moves_time_on_top_of_any_clock(emu: AnthropicEmulator, client: AsyncAnthropic) -> None:
    batch = await client.messages.batches.create(requests=batch_requests(1))
    emu.advance(60)
    assert (await client.messages.batches.retrieve(batch.id)).processing_status == "ended"


async def test_real_time_clock_with_advance() -> None:
    emu = AnthropicEmulator(batch_delay=3600.0)
    async with emu.client() as client:
        batch = await client.messages.batches.create(requests=batch_requests(1))
        assert (await client.messages.batches.retrieve(batch.id)).processing_status == "in_progress"
        emu.advance(3600)
        assert (await client.messages.batches.retrieve(batch.id)).processing_status == "ended"


async def test_list_is_newest_first_with_cursors(emu: AnthropicEmulator, client: AsyncAnthropic) -> None:
    ids = [(await client.messages.batches.create(requests=batch_requests(1))).id for _ in range(5)]
    newest_first = ids[::-1]
    page = await client.messages.batches.list(limit=2)
    assert [b.id for b in page.data] == newest_first[:2]
    assert (page.has_more, page.first_id, page.last_id) == (True, newest_first[0], newest_first[1])
    assert [b.id async for b in client.messages.batches.list(limit=2)] == newest_first  # auto-paging
    after = await client.messages.batches.list(after_id=newest_first[1], limit=10)
    assert [b.id for b in after.data] == newest_first[2:]
    assert after.has_more is False
    before = await client.messages.batches.list(before_id=newest_first[4], limit=2)
    assert [b.id for b in before.data] == newest_first[2:4]
    assert before.has_more is True
    default = await client.messages.batches.list()
    assert len(default.data) == 5
    assert default.has_more is False


@pytest.mark.parametrize(
    "query", ["limit=0", "limit=1001", "limit=x", "after_id=a&before_id=b", "after_id=nope"]
)
async def test_list_refuses_bad_queries(emu: AnthropicEmulator, query: str) -> None:
    async with raw_client(emu) as http:
        response = await http.get(f"/v1/messages/batches?{query}", headers=auth())
    assert response.status_code == 400


async def test_list_of_nothing(client: AsyncAnthropic) -> None:
    page = await client.messages.batches.list()
    assert (page.data, page.has_more, page.first_id, page.last_id) == ([], False, None, None)


async def test_cancel_goes_canceling_then_ended_and_keeps_finished_items(
    emu: AnthropicEmulator, client: AsyncAnthropic, clock: ManualClock
) -> None:
    emu.cancel_delay = 5.0
    batch = await client.messages.batches.create(requests=batch_requests(4))
    clock.advance(30)  # items finish at 15, 30, 45 and 60 s: two are done
    canceled = await client.messages.batches.cancel(batch.id)
    assert canceled.processing_status == "canceling"
    assert canceled.cancel_initiated_at == datetime.fromtimestamp(clock(), UTC)
    assert canceled.request_counts.processing == 4
    assert (await client.messages.batches.cancel(batch.id)).processing_status == "canceling"  # idempotent
    clock.advance(5)
    ended = await client.messages.batches.retrieve(batch.id)
    assert ended.processing_status == "ended"
    assert (ended.request_counts.succeeded, ended.request_counts.canceled) == (2, 2)
    results = await _results(client, batch.id)
    assert sorted(r.type for r in results.values()) == ["canceled", "canceled", "succeeded", "succeeded"]
    billed = {row.custom_id for row in emu.billing if row.batch_id == batch.id}
    assert billed == {cid for cid, r in results.items() if r.type == "succeeded"}
    again = await client.messages.batches.cancel(batch.id)  # an ended batch stays as it is
    assert again.processing_status == "ended"


async def test_cancel_with_default_delay_ends_at_the_next_look(
    emu: AnthropicEmulator, client: AsyncAnthropic
) -> None:
    batch = await client.messages.batches.create(requests=batch_requests(2))
    assert (await client.messages.batches.cancel(batch.id)).processing_status == "canceling"
    ended = await client.messages.batches.retrieve(batch.id)
    assert (ended.processing_status, ended.request_counts.canceled) == ("ended", 2)
    assert emu.billing == []


async def test_items_unfinished_at_expiry_expire(clock: ManualClock) -> None:
    emu = AnthropicEmulator(clock=clock, batch_delay=2 * DAY)
    async with emu.client() as client:
        batch = await client.messages.batches.create(requests=batch_requests(4))
        clock.advance(DAY)
        ended = await client.messages.batches.retrieve(batch.id)
        assert ended.processing_status == "ended"
        assert ended.ended_at == ended.expires_at
        # items would finish at 12, 24, 36 and 48 h: two made it
        assert (ended.request_counts.succeeded, ended.request_counts.expired) == (2, 2)
        results = await _results(client, batch.id)
    assert sorted(r.type for r in results.values()) == ["expired", "expired", "succeeded", "succeeded"]
    assert len(emu.billing) == 2


async def test_results_are_archived_after_29_days(
    emu: AnthropicEmulator, client: AsyncAnthropic, clock: ManualClock
) -> None:
    batch = await client.messages.batches.create(requests=batch_requests(1))
    clock.advance(60 + 29 * DAY - 1)
    assert (await client.messages.batches.retrieve(batch.id)).archived_at is None
    assert len(await _results(client, batch.id)) == 1
    clock.advance(1)
    archived = await client.messages.batches.retrieve(batch.id)
    assert archived.archived_at is not None
    assert archived.ended_at is not None
    assert (archived.archived_at - archived.ended_at).total_seconds() == 29 * DAY
    with pytest.raises(anthropic.NotFoundError):
        await _results(client, batch.id)


async def _line_order(seed: int) -> list[str]:
    emu = AnthropicEmulator(clock=ManualClock(), seed=seed)
    async with emu.client() as client:
        batch = await client.messages.batches.create(requests=batch_requests(12))
        emu.end_all()
        return [line.custom_id async for line in await client.messages.batches.results(batch.id)]


async def test_result_order_is_seeded() -> None:
    first, again, other = await _line_order(1), await _line_order(1), await _line_order(2)
    assert first == again
    assert sorted(first) == sorted(other)
    assert first != sorted(first)
    assert first != other


async def test_params_are_validated_when_processing_ends(
    emu: AnthropicEmulator, client: AsyncAnthropic
) -> None:
    bad: dict[str, dict[str, Any]] = {
        "stream": params(stream=True),
        "speed": params(speed="fast"),
        "max-tokens-zero": params(max_tokens=0),
        "max-tokens-missing": {k: v for k, v in params().items() if k != "max_tokens"},
        "unknown-model": params(model="claude-nonexistent-1"),
        "no-messages": params(messages=[]),
    }
    requests: list[Any] = [{"custom_id": cid, "params": p} for cid, p in bad.items()]
    requests.append({"custom_id": "fine", "params": params()})
    batch = await client.messages.batches.create(requests=requests)  # accepted: validation is asynchronous
    emu.end_all()
    results = await _results(client, batch.id)
    assert results.pop("fine").type == "succeeded"
    for custom_id, result in results.items():
        assert result.type == "errored", custom_id
        assert result.error.type == "error"
        assert result.error.error.type == "invalid_request_error"
    assert {row.custom_id for row in emu.billing} == {"fine"}


@pytest.mark.parametrize(
    "requests",
    [
        [{"custom_id": "has space", "params": params()}],
        [{"custom_id": "x" * 65, "params": params()}],
        [{"custom_id": "", "params": params()}],
        [{"custom_id": "dup", "params": params()}, {"custom_id": "dup", "params": params()}],
        [],
        [{"custom_id": "no-params"}],
    ],
)
async def test_create_refuses_bad_requests(client: AsyncAnthropic, requests: list[Any]) -> None:
    with pytest.raises(anthropic.BadRequestError):
        await client.messages.batches.create(requests=requests)


async def test_create_refuses_more_than_100k_requests(emu: AnthropicEmulator) -> None:
    body = {"requests": [{"custom_id": "r", "params": {}}] * 100_001}
    async with raw_client(emu) as http:
        response = await http.post("/v1/messages/batches", headers=auth(), content=json.dumps(body))
    assert response.status_code == 400
    assert "100000" in response.json()["error"]["message"]
    assert emu.requests[-1].batch_request_count == 100_001
    assert emu.batches == {}


async def test_create_refuses_a_body_over_the_byte_cap(
    emu: AnthropicEmulator, client: AsyncAnthropic
) -> None:
    assert emu.max_batch_bytes == 256 * 1024 * 1024
    emu.max_batch_bytes = 2_000
    with pytest.raises(anthropic.APIStatusError) as caught:
        await client.messages.batches.create(requests=batch_requests(40))
    assert caught.value.status_code == 413
    assert caught.value.body["error"]["type"] == "request_too_large"
    async with raw_client(emu) as http:  # a body without Content-Length is measured while read

        async def chunks() -> Any:
            for _ in range(10):
                yield b" " * 500

        streamed = await http.post("/v1/messages/batches", headers=auth(), content=chunks())
    assert streamed.status_code == 413
    assert emu.batches == {}


async def test_requests_log_names_the_batch_and_its_custom_ids(
    emu: AnthropicEmulator, client: AsyncAnthropic
) -> None:
    batch = await client.messages.batches.create(requests=batch_requests(3))
    await client.messages.batches.retrieve(batch.id)
    create, retrieve = emu.requests
    assert (create.method, create.path, create.endpoint, create.status) == (
        "POST",
        "/v1/messages/batches",
        "batch_create",
        200,
    )
    assert create.batch_request_count == 3
    assert create.custom_ids == ("req-0", "req-1", "req-2")
    assert create.batch_id == batch.id
    assert (retrieve.endpoint, retrieve.batch_id, retrieve.batch_request_count) == (
        "batch_retrieve",
        batch.id,
        None,
    )
