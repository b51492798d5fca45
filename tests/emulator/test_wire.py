"""The emulator over a real socket: uvicorn on 127.0.0.1 and a real ``AsyncAnthropic(base_url=...)``."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from decimal import Decimal

import anthropic
import httpx2
import pytest
from anthropic import AsyncAnthropic

from lore_batch.emulator import AnthropicEmulator, ManualClock

from .helpers import KEY, MODEL, batch_requests, params

pytestmark = pytest.mark.wire

OAUTH = "sk-ant-oat01-wire-token"


@pytest.fixture
async def served(emu: AnthropicEmulator) -> AsyncIterator[str]:
    """``emu`` served by uvicorn; yields its base URL."""
    async with emu.serve() as base_url:
        yield base_url


def _client(base_url: str, **credential: str) -> AsyncAnthropic:
    return AsyncAnthropic(base_url=base_url, max_retries=0, **(credential or {"api_key": KEY}))


async def test_serve_yields_a_loopback_url(served: str) -> None:
    assert served.startswith("http://127.0.0.1:")
    assert int(served.rsplit(":", 1)[1]) > 0


async def test_a_batch_of_three_completes_and_its_results_come_back(
    emu: AnthropicEmulator, served: str, clock: ManualClock
) -> None:
    async with _client(served) as client:
        batch = await client.messages.batches.create(requests=batch_requests(3))
        assert batch.processing_status == "in_progress"
        clock.advance(60)
        ended = await client.messages.batches.retrieve(batch.id)
        assert ended.processing_status == "ended"
        assert ended.results_url == f"{served}/v1/messages/batches/{batch.id}/results"
        results = {
            line.custom_id: line.result async for line in await client.messages.batches.results(batch.id)
        }
    assert sorted(results) == ["req-0", "req-1", "req-2"]
    for custom_id, result in results.items():
        assert result.type == "succeeded"
        assert result.message.content[0].text == f"Echo: question {custom_id[-1]}"
    endpoints = [r.endpoint for r in emu.requests]
    assert endpoints == ["batch_create", "batch_retrieve", "batch_retrieve", "batch_results"]
    assert all(r.status == 200 for r in emu.requests)
    assert emu.requests[0].custom_ids == ("req-0", "req-1", "req-2")


async def test_bad_and_duplicate_custom_ids_are_refused(emu: AnthropicEmulator, served: str) -> None:
    async with _client(served) as client:
        with pytest.raises(anthropic.BadRequestError):
            await client.messages.batches.create(requests=[{"custom_id": "not valid!", "params": params()}])
        with pytest.raises(anthropic.BadRequestError):
            await client.messages.batches.create(
                requests=[
                    {"custom_id": "twice", "params": params()},
                    {"custom_id": "twice", "params": params()},
                ]
            )
    assert [(r.endpoint, r.status) for r in emu.requests] == [("batch_create", 400), ("batch_create", 400)]
    assert emu.requests[1].custom_ids == ("twice", "twice")
    assert emu.batches == {}


async def test_an_unknown_key_gets_401(clock: ManualClock) -> None:
    emu = AnthropicEmulator(clock=clock, api_keys={KEY})
    async with emu.serve() as base_url, _client(base_url, api_key="sk-ant-unknown") as client:
        with pytest.raises(anthropic.AuthenticationError) as caught:
            await client.messages.create(**params())
    assert caught.value.status_code == 401
    assert [r.status for r in emu.requests] == [401]


async def test_stream_inside_a_batch_is_an_errored_result(emu: AnthropicEmulator, served: str) -> None:
    async with _client(served) as client:
        batch = await client.messages.batches.create(
            requests=[{"custom_id": "streamed", "params": params(stream=True)}]
        )
        emu.end_all()
        (line,) = [line async for line in await client.messages.batches.results(batch.id)]
    assert line.custom_id == "streamed"
    assert line.result.type == "errored"
    assert line.result.error.error.type == "invalid_request_error"


async def test_every_request_is_logged(emu: AnthropicEmulator, served: str) -> None:
    async with _client(served) as client:
        await client.messages.create(**params())
        await client.messages.count_tokens(model=MODEL, messages=params()["messages"])
        batch = await client.messages.batches.create(requests=batch_requests(1))
        await client.messages.batches.list()
        await client.messages.batches.cancel(batch.id)
        emu.end_all()
        await client.messages.batches.results(batch.id)
        await client.messages.batches.delete(batch.id)
    assert [(r.method, r.endpoint, r.status) for r in emu.requests] == [
        ("POST", "messages", 200),
        ("POST", "count_tokens", 200),
        ("POST", "batch_create", 200),
        ("GET", "batch_list", 200),
        ("POST", "batch_cancel", 200),
        ("GET", "batch_retrieve", 200),
        ("GET", "batch_results", 200),
        ("DELETE", "batch_delete", 200),
    ]
    assert len({r.credential_fp for r in emu.requests}) == 1
    assert {r.scheme for r in emu.requests} == {"bearer"}


async def test_an_oauth_token_gets_403_on_batch_paths(emu: AnthropicEmulator, served: str) -> None:
    async with _client(served, auth_token=OAUTH) as client:
        assert (await client.messages.create(**params())).role == "assistant"
        with pytest.raises(anthropic.PermissionDeniedError):
            await client.messages.batches.create(requests=batch_requests(1))
        with pytest.raises(anthropic.PermissionDeniedError):
            await client.messages.batches.list()


async def test_another_credential_gets_404(emu: AnthropicEmulator, served: str) -> None:
    async with _client(served) as owner, _client(served, api_key="sk-ant-someone-else") as other:
        batch = await owner.messages.batches.create(requests=batch_requests(1))
        with pytest.raises(anthropic.NotFoundError):
            await other.messages.batches.retrieve(batch.id)


async def test_billing_shows_batches_at_half_price(emu: AnthropicEmulator, served: str) -> None:
    async with _client(served) as client:
        await client.messages.create(**params("same prompt"))
        await client.messages.batches.create(
            requests=[{"custom_id": "same", "params": params("same prompt")}]
        )
        emu.end_all()
    sync_row, batch_row = emu.billing
    assert (sync_row.route, batch_row.route) == ("sync", "batch")
    assert (sync_row.input_tokens, sync_row.output_tokens) == (
        batch_row.input_tokens,
        batch_row.output_tokens,
    )
    assert batch_row.cost_usd > 0
    assert batch_row.cost_usd * 2 == sync_row.cost_usd
    assert isinstance(batch_row.cost_usd, Decimal)


async def test_a_dropped_connection_is_a_connection_error_over_the_socket(
    emu: AnthropicEmulator, served: str, caplog: pytest.LogCaptureFixture
) -> None:
    emu.faults.drop_connection("batch_create")
    async with _client(served) as client:
        with pytest.raises(anthropic.APIConnectionError) as caught:
            await client.messages.batches.create(requests=batch_requests(1))
        assert isinstance(caught.value.__cause__, httpx2.RemoteProtocolError)
        (created,) = emu.batches  # processed before the drop
        assert (await client.messages.batches.retrieve(created)).id == created  # the server is still fine
    assert "Exception in ASGI application" not in caplog.text


async def test_a_truncated_download_fails_mid_stream_over_the_socket(
    emu: AnthropicEmulator, served: str
) -> None:
    async with _client(served) as client:
        batch = await client.messages.batches.create(requests=batch_requests(5))
        emu.end_all()
        emu.faults.truncate_results()
        decoder = await client.messages.batches.results(batch.id)  # the status line arrived
        # Older SDKs let httpx2's error through; from anthropic 2.17 the decoder wraps it in APIConnectionError.
        with pytest.raises((httpx2.RemoteProtocolError, anthropic.APIConnectionError)) as caught:
            async for _ in decoder:
                pass
        error: BaseException | None = caught.value
        while error is not None and not isinstance(error, httpx2.RemoteProtocolError):
            error = error.__cause__
        assert isinstance(error, httpx2.RemoteProtocolError)


async def test_run_serves_until_interrupted() -> None:
    code = (
        "from lore_batch.emulator import run\n"
        "run('127.0.0.1', 0, on_ready=lambda url: print(url, flush=True))\n"
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", code, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        assert proc.stdout is not None
        base_url = (await asyncio.wait_for(proc.stdout.readline(), timeout=20)).decode().strip()
        assert base_url.startswith("http://127.0.0.1:")
        async with _client(base_url) as client:
            assert (await client.messages.create(**params())).role == "assistant"
    finally:
        proc.send_signal(signal.SIGINT)
        _, stderr = await asyncio.wait_for(proc.communicate(), timeout=20)
    assert b"Traceback" not in stderr
