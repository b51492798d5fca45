"""The create rows of the failure policy (BATCH.md 5.4; behaviours 18-22)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import anthropic
import pytest

from lore_batch import AnthropicLLMClient, AuthCredential, BatchLLMClient, RetryPolicy
from lore_batch.emulator import AnthropicEmulator
from lore_core.errors import LLMRequestError

from .conftest import (
    API_KEY,
    OAUTH_TOKEN,
    Registry,
    SpyLLM,
    StepClock,
    advance,
    creates,
    endpoint,
    run_until,
)


def _chain(error: BaseException) -> list[BaseException]:
    links: list[BaseException] = []
    link: BaseException | None = error
    while link is not None and link not in links:
        links.append(link)
        link = link.__cause__
    return links


async def test_a_create_429_is_retried_after_its_retry_after(
    make_client: Callable[..., BatchLLMClient], emu: AnthropicEmulator, clock: StepClock
) -> None:
    emu.faults.fail_next("batch_create", 429, retry_after=7)
    llm = make_client()
    start = clock.now()
    reply = await run_until(clock, llm.prompt("", "hello"))
    assert reply.route == "batch"
    assert [(r.status, r.at - start) for r in creates(emu)] == [(429, 30.0), (200, 37.0)]


async def test_three_failed_creates_fall_back(
    make_client: Callable[..., BatchLLMClient], spy: SpyLLM, emu: AnthropicEmulator, clock: StepClock
) -> None:
    emu.faults.fail_next("batch_create", 500, count=3)
    llm = make_client()
    start = clock.now()
    reply = await run_until(clock, llm.prompt("", "hello", worker="curate"))
    assert reply.route == "fallback"
    assert [(r.status, r.at - start) for r in creates(emu)] == [(500, 30.0), (500, 35.0), (500, 55.0)]
    assert spy.calls[0]["urgent"] is False
    assert llm.stats().total_fallback == 1


async def test_a_failed_fallback_chains_the_create_error(
    make_client: Callable[..., BatchLLMClient], emu: AnthropicEmulator, clock: StepClock
) -> None:
    emu.faults.fail_next("batch_create", 529, count=3)
    emu.faults.fail_next("messages", 400)
    llm = make_client()
    with pytest.raises(LLMRequestError) as info:
        await run_until(clock, llm.prompt("", "hello"))
    chain = _chain(info.value)
    assert isinstance(chain[1], anthropic.BadRequestError)  # the fallback's own cause comes first
    create_errors = [e for e in chain if isinstance(e, anthropic.APIStatusError) and e.status_code == 529]
    assert len(create_errors) == 3  # the last create error, then the earlier ones
    assert llm.stats().total_failed == 1


async def test_an_ambiguous_create_adopts_the_batch_it_made(
    make_client: Callable[..., BatchLLMClient], emu: AnthropicEmulator, clock: StepClock
) -> None:
    emu.faults.drop_connection("batch_create")
    llm = make_client()
    replies = await run_until(clock, asyncio.gather(llm.prompt("", "one"), llm.prompt("", "two")))
    assert [r.route for r in replies] == ["batch", "batch"]
    assert len(emu.batches) == 1
    assert len(creates(emu)) == 1
    assert len(endpoint(emu, "batch_list")) == 1
    assert llm.stats().batches_submitted == 1


async def test_an_ambiguous_create_that_made_nothing_is_retried(
    make_client: Callable[..., BatchLLMClient], emu: AnthropicEmulator, clock: StepClock
) -> None:
    emu.faults.drop_connection("batch_create", after_processing=False)
    llm = make_client()
    reply = await run_until(clock, llm.prompt("", "one"))
    assert reply.route == "batch"
    assert len(emu.batches) == 1
    assert len(creates(emu)) == 2


async def test_a_413_halves_the_batch(
    make_client: Callable[..., BatchLLMClient], emu: AnthropicEmulator, clock: StepClock
) -> None:
    emu.max_batch_bytes = 2600
    llm = make_client()
    replies = await run_until(clock, asyncio.gather(*(llm.prompt("", f"{i}" * 1000) for i in range(4))))
    assert [r.route for r in replies] == ["batch"] * 4
    # The emulator refuses the oversized body before parsing it, so it records no request count for the 413.
    assert [(r.status, r.batch_request_count) for r in creates(emu)] == [(413, None), (200, 2), (200, 2)]


async def test_a_single_item_that_still_gets_413_falls_back(
    make_client: Callable[..., BatchLLMClient], emu: AnthropicEmulator, clock: StepClock
) -> None:
    emu.max_batch_bytes = 500
    llm = make_client()
    reply = await run_until(clock, llm.prompt("", "x" * 1000))
    assert reply.route == "fallback"
    assert [r.status for r in creates(emu)] == [413]


@pytest.fixture
async def oauth_sdk(emu: AnthropicEmulator) -> AsyncIterator[anthropic.AsyncAnthropic]:
    async with emu.client(auth_token=OAUTH_TOKEN) as client:
        yield client


async def test_a_403_for_an_oauth_token_disables_it_and_the_next_call_skips_the_queue(
    make_client: Callable[..., BatchLLMClient],
    oauth_sdk: anthropic.AsyncAnthropic,
    emu: AnthropicEmulator,
    clock: StepClock,
) -> None:
    inner = SpyLLM(AnthropicLLMClient(oauth_sdk, clock=clock, retry=RetryPolicy(jitter=0.0)))
    llm = make_client(inner=inner, client=oauth_sdk)
    first = await run_until(clock, llm.prompt("", "first"))
    assert first.route == "fallback"
    assert [r.status for r in creates(emu)] == [403]
    before = clock.now()
    second = await run_until(clock, llm.prompt("", "second"))  # no session: the credential entry covers it
    assert second.route == "fallback"
    assert clock.now() == before  # no wait for a flush
    assert len(creates(emu)) == 1
    # After the TTL the credential is tried again.
    await advance(clock, 24 * 3600.0)
    assert (await run_until(clock, llm.prompt("", "third"))).route == "fallback"
    assert [r.status for r in creates(emu)] == [403, 403]


async def test_a_session_that_switches_to_an_api_key_batches_again(
    make_client: Callable[..., BatchLLMClient],
    sdk: anthropic.AsyncAnthropic,
    emu: AnthropicEmulator,
    clock: StepClock,
) -> None:
    registry = Registry({"s1": AuthCredential("bearer", OAUTH_TOKEN)})
    inner = AnthropicLLMClient(sdk, registry=registry, clock=clock, retry=RetryPolicy(jitter=0.0))
    llm = make_client(inner=inner, registry=registry)
    assert (await run_until(clock, llm.prompt("", "a", session_id="s1"))).route == "fallback"
    # A refreshed OAuth token has a new fingerprint, but the (session, scheme) entry still applies.
    registry.sessions["s1"] = AuthCredential("bearer", OAUTH_TOKEN + "-refreshed")
    assert (await run_until(clock, llm.prompt("", "b", session_id="s1"))).route == "fallback"
    assert len(creates(emu)) == 1
    registry.sessions["s1"] = AuthCredential("api-key", API_KEY)
    assert (await run_until(clock, llm.prompt("", "c", session_id="s1"))).route == "batch"


async def test_another_4xx_on_create_falls_back_at_once(
    make_client: Callable[..., BatchLLMClient], emu: AnthropicEmulator, clock: StepClock
) -> None:
    emu.faults.fail_next("batch_create", 400)
    llm = make_client()
    reply = await run_until(clock, llm.prompt("", "hello"))
    assert reply.route == "fallback"
    assert [r.status for r in creates(emu)] == [400]
