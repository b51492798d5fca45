"""One retry layer: what is retried, how long we wait, and the typed errors when we stop."""

from __future__ import annotations

import random
from collections.abc import Callable

import anthropic
import httpx2
import pytest

from lore_batch.clock import ManualClock
from lore_batch.emulator import AnthropicEmulator
from lore_batch.limits import RetryPolicy
from lore_batch.sync_client import AnthropicLLMClient
from lore_core.errors import (
    LLMAuthError,
    LLMRequestError,
    LLMUnavailableError,
    RateLimitedError,
)

from .conftest import HookTransport, message_calls

MakeLLM = Callable[..., AnthropicLLMClient]


async def test_urgent_429_honours_retry_after(
    make_llm: MakeLLM, emu: AnthropicEmulator, clock: ManualClock
) -> None:
    emu.faults.fail_next("messages", 429, retry_after=7)
    llm = make_llm()
    reply = await llm.prompt("", "x", urgent=True)
    assert reply.text == "Echo: x"
    assert clock.sleeps == [7.0]
    assert [c.status for c in message_calls(emu)] == [429, 200]
    assert not llm.breaker.is_open  # urgent calls never trip the breaker
    assert llm.breaker.trips == 0


async def test_urgent_retry_after_is_capped_short(
    make_llm: MakeLLM, emu: AnthropicEmulator, clock: ManualClock
) -> None:
    emu.faults.fail_next("messages", 429, retry_after=90)
    await make_llm(retry=RetryPolicy(jitter=0.0, urgent_max_wait=10.0)).prompt("", "x", urgent=True)
    assert clock.sleeps == [10.0]


async def test_overloaded_then_server_error_then_success(
    make_llm: MakeLLM, emu: AnthropicEmulator, clock: ManualClock
) -> None:
    emu.faults.fail_next("messages", 529)
    emu.faults.fail_next("messages", 500)
    reply = await make_llm().prompt("", "x")
    assert reply.text == "Echo: x"
    assert [c.status for c in message_calls(emu)] == [529, 500, 200]
    assert clock.sleeps == [1.0, 2.0]  # exponential backoff, zero jitter


@pytest.mark.parametrize("status", [500, 502, 503, 504, 529])
async def test_urgent_exhaustion_raises_unavailable_from_the_sdk_error(
    make_llm: MakeLLM, emu: AnthropicEmulator, clock: ManualClock, status: int
) -> None:
    emu.faults.fail_next("messages", status, count=3)
    with pytest.raises(LLMUnavailableError) as info:
        await make_llm().prompt("", "x", urgent=True, worker="distill", session_id="s1")
    err = info.value
    assert isinstance(err.__cause__, anthropic.APIStatusError)
    assert err.__cause__.status_code == status
    assert err.status == status
    assert err.retryable
    calls = message_calls(emu)
    assert len(calls) == 3
    assert err.request_id == calls[-1].request_id
    assert "3 attempt" in str(err)
    assert clock.sleeps == [1.0, 2.0]


async def test_background_budget_is_larger(
    make_llm: MakeLLM, emu: AnthropicEmulator, clock: ManualClock
) -> None:
    emu.faults.fail_next("messages", 529, count=5)
    with pytest.raises(LLMUnavailableError) as info:
        await make_llm().prompt("", "x")
    assert info.value.error_type == "overloaded_error"
    assert isinstance(info.value.__cause__, anthropic.OverloadedError)
    assert len(message_calls(emu)) == 5
    assert clock.sleeps == [1.0, 2.0, 4.0, 8.0]


async def test_custom_budgets(make_llm: MakeLLM, emu: AnthropicEmulator) -> None:
    emu.faults.fail_next("messages", 500, count=10)
    llm = make_llm(retry=RetryPolicy(urgent_attempts=2, background_attempts=4, jitter=0.0))
    with pytest.raises(LLMUnavailableError):
        await llm.prompt("", "x", urgent=True)
    assert len(message_calls(emu)) == 2
    with pytest.raises(LLMUnavailableError):
        await llm.prompt("", "x")
    assert len(message_calls(emu)) == 6


async def test_urgent_429_exhausted_raises_rate_limited(
    make_llm: MakeLLM, emu: AnthropicEmulator, clock: ManualClock
) -> None:
    emu.faults.fail_next("messages", 429, count=3, retry_after=4)
    with pytest.raises(RateLimitedError) as info:
        await make_llm().prompt("", "x", urgent=True)
    assert info.value.retry_after == 4.0
    assert info.value.status == 429
    assert info.value.error_type == "rate_limit_error"
    assert isinstance(info.value.__cause__, anthropic.RateLimitError)
    assert clock.sleeps == [4.0, 4.0]


@pytest.mark.parametrize(
    ("status", "error_type"),
    [(400, "invalid_request_error"), (404, "not_found_error"), (413, "request_too_large")],
)
@pytest.mark.parametrize("urgent", [True, False])
async def test_request_errors_are_not_retried(
    make_llm: MakeLLM, emu: AnthropicEmulator, clock: ManualClock, status: int, error_type: str, urgent: bool
) -> None:
    emu.faults.fail_next("messages", status)
    with pytest.raises(LLMRequestError) as info:
        await make_llm().prompt("", "x", urgent=urgent)
    assert (info.value.status, info.value.error_type) == (status, error_type)
    assert not info.value.retryable
    assert isinstance(info.value.__cause__, anthropic.APIStatusError)
    assert len(message_calls(emu)) == 1
    assert clock.sleeps == []


@pytest.mark.parametrize(
    ("status", "sdk_error"), [(401, anthropic.AuthenticationError), (403, anthropic.PermissionDeniedError)]
)
async def test_auth_errors_are_not_retried(
    make_llm: MakeLLM, emu: AnthropicEmulator, status: int, sdk_error: type[Exception]
) -> None:
    emu.faults.fail_next("messages", status)
    with pytest.raises(LLMAuthError) as info:
        await make_llm().prompt("", "x")
    assert info.value.status == status
    assert isinstance(info.value.__cause__, sdk_error)
    assert len(message_calls(emu)) == 1


async def test_a_real_refusal_from_the_emulator_is_a_request_error(
    make_llm: MakeLLM, emu: AnthropicEmulator
) -> None:
    with pytest.raises(LLMRequestError) as info:
        await make_llm().prompt(
            "", "x", model="gpt-4o"
        )  # a bare id goes to Anthropic, which does not know it
    assert info.value.status in (400, 404)
    assert len(message_calls(emu)) == 1


async def test_the_sdks_own_retries_are_off(emu: AnthropicEmulator, clock: ManualClock) -> None:
    async with emu.client(api_key="sk-ant-test", max_retries=5) as eager:  # a user's ordinary retrying client
        llm = AnthropicLLMClient(eager, clock=clock, retry=RetryPolicy(urgent_attempts=1, jitter=0.0))
        emu.faults.fail_next("messages", 500)
        emu.faults.fail_next("messages", 429, count=2)
        with pytest.raises(LLMUnavailableError):
            await llm.prompt("", "x", urgent=True)
        assert len(message_calls(emu)) == 1
        llm = AnthropicLLMClient(eager, clock=clock, retry=RetryPolicy(urgent_attempts=3, jitter=0.0))
        await llm.prompt("", "x", urgent=True)
        assert [c.status for c in message_calls(emu)] == [500, 429, 429, 200]
        assert eager.max_retries == 5  # the caller's client is left as it was


async def test_dropped_connections_are_retried(
    make_llm: MakeLLM, emu: AnthropicEmulator, clock: ManualClock
) -> None:
    emu.faults.drop_connection("messages", after_processing=False)
    reply = await make_llm().prompt("", "x", urgent=True)
    assert reply.text == "Echo: x"
    assert clock.sleeps == [1.0]


async def test_network_exhaustion_raises_unavailable_from_connection_error(
    make_llm: MakeLLM, emu: AnthropicEmulator
) -> None:
    emu.faults.drop_connection("messages", count=3)
    with pytest.raises(LLMUnavailableError) as info:
        await make_llm().prompt("", "x", urgent=True)
    assert isinstance(info.value.__cause__, anthropic.APIConnectionError)
    assert info.value.status is None
    assert info.value.error_type == "connection"


async def test_timeouts_are_retried_then_raise_unavailable(
    hooked: tuple[anthropic.AsyncAnthropic, HookTransport], emu: AnthropicEmulator, clock: ManualClock
) -> None:
    client, transport = hooked
    llm = AnthropicLLMClient(client, clock=clock, retry=RetryPolicy(jitter=0.0))
    transport.raise_next = [httpx2.ReadTimeout("slow"), httpx2.ConnectTimeout("slow")]
    assert (await llm.prompt("", "x", urgent=True)).text == "Echo: x"
    assert clock.sleeps == [1.0, 2.0]
    transport.raise_next = [httpx2.ReadTimeout("slow")] * 3
    with pytest.raises(LLMUnavailableError) as info:
        await llm.prompt("", "x", urgent=True)
    assert isinstance(info.value.__cause__, anthropic.APITimeoutError)
    assert info.value.error_type == "timeout"
    assert len(message_calls(emu)) == 1  # only the successful call reached the emulator


async def test_jitter_comes_from_the_injected_rng(
    make_llm: MakeLLM, emu: AnthropicEmulator, clock: ManualClock
) -> None:
    emu.faults.fail_next("messages", 500, count=2)
    await make_llm(retry=RetryPolicy(jitter=0.5, rng=random.Random(3))).prompt("", "x")
    expected = random.Random(3)
    assert clock.sleeps == [1.0 * (1 - 0.5 * expected.random()), 2.0 * (1 - 0.5 * expected.random())]
