"""Routing in ``BatchLLMClient.prompt`` (BATCH.md 3.1) and the queue's windows (behaviours 1-4, 8)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from lore_batch import AuthCredential, BatchLLMClient, NoCredentials
from lore_batch.emulator import AnthropicEmulator
from lore_core.errors import ConfigError

from .conftest import API_KEY, Capture, Registry, SpyLLM, StepClock, advance, creates, run_until


async def test_urgent_call_goes_to_inner_and_is_never_queued(
    make_client: Callable[..., BatchLLMClient], spy: SpyLLM, emu: AnthropicEmulator, clock: StepClock
) -> None:
    llm = make_client()
    reply = await llm.prompt("sys", "now please", urgent=True, worker="curate")
    assert reply.route == "sync"
    assert spy.calls[0]["urgent"] is True
    assert llm.stats().total_queued == 0
    assert llm.stats().total_direct == 1
    assert creates(emu) == []


async def test_non_urgent_call_waits_for_the_window(
    make_client: Callable[..., BatchLLMClient], spy: SpyLLM, emu: AnthropicEmulator, clock: StepClock
) -> None:
    llm = make_client()
    task = asyncio.ensure_future(llm.prompt("sys", "later", worker="distill", session_id="s1"))
    await advance(clock, 29.0)
    assert not task.done()
    assert creates(emu) == []
    assert llm.stats().queued == 1
    await advance(clock, 1.0)
    assert len(creates(emu)) == 1
    assert creates(emu)[0].at == clock.now()
    reply = await run_until(clock, task)
    assert reply.route == "batch"
    assert "later" in reply.text
    assert spy.calls == []


async def test_the_window_opens_at_the_first_item_after_an_idle_spell(
    make_client: Callable[..., BatchLLMClient], emu: AnthropicEmulator, clock: StepClock
) -> None:
    llm = make_client()
    await run_until(clock, llm.prompt("", "first"))
    await advance(clock, 500.0)
    enqueued = clock.now()
    reply = await run_until(clock, llm.prompt("", "second"))
    assert reply.route == "batch"
    assert creates(emu)[1].at - enqueued == 30.0


async def test_flush_now_size_flushes_at_once_and_takes_every_item(
    make_client: Callable[..., BatchLLMClient], emu: AnthropicEmulator, clock: StepClock
) -> None:
    llm = make_client(max_queue_size=3)
    start = clock.now()
    replies = await run_until(clock, asyncio.gather(*(llm.prompt("", f"q{i}") for i in range(5))))
    assert [r.route for r in replies] == ["batch"] * 5
    assert [f"q{i}" in r.text for i, r in enumerate(replies)] == [True] * 5
    (create,) = creates(emu)
    assert create.at == start
    assert create.batch_request_count == 5


async def test_worker_params_are_exact(
    make_client: Callable[..., BatchLLMClient], capture: Capture, clock: StepClock
) -> None:
    llm = make_client()
    await run_until(
        clock,
        asyncio.gather(
            llm.prompt("You distill.", "with system", model="anthropic/claude-haiku-4-5", max_tokens=300),
            llm.prompt("", "no system", temperature=None),
        ),
    )
    by_user = {p["messages"][0]["content"]: p for p in capture.params}
    with_system, without = by_user["with system"], by_user["no system"]
    assert with_system["model"] == "claude-haiku-4-5"
    assert with_system["max_tokens"] == 300
    assert with_system["temperature"] == 0
    assert with_system["system"] == [
        {"type": "text", "text": "You distill.", "cache_control": {"type": "ephemeral", "ttl": "1h"}}
    ]
    assert with_system["messages"] == [{"role": "user", "content": "with system"}]
    assert "system" not in without
    assert "temperature" not in without
    assert without["model"] == "claude-sonnet-4-6"
    assert without["max_tokens"] == 8192


@pytest.mark.parametrize(("value", "batched"), [("1", False), ("0", True), ("true", True), (None, True)])
async def test_lore_batch_disabled_env(
    monkeypatch: pytest.MonkeyPatch,
    make_client: Callable[..., BatchLLMClient],
    spy: SpyLLM,
    clock: StepClock,
    value: str | None,
    batched: bool,
) -> None:
    if value is None:
        monkeypatch.delenv("LORE_BATCH_DISABLED", raising=False)
    else:
        monkeypatch.setenv("LORE_BATCH_DISABLED", value)
    llm = make_client(disabled=None)
    reply = await run_until(clock, llm.prompt("", "hello"))
    assert reply.route == ("batch" if batched else "sync")
    assert len(spy.calls) == (0 if batched else 1)


async def test_disabled_argument_overrides_the_environment(
    monkeypatch: pytest.MonkeyPatch, make_client: Callable[..., BatchLLMClient], clock: StepClock
) -> None:
    monkeypatch.setenv("LORE_BATCH_DISABLED", "1")
    assert (await run_until(clock, make_client(disabled=False).prompt("", "x"))).route == "batch"
    monkeypatch.setenv("LORE_BATCH_DISABLED", "0")
    assert (await run_until(clock, make_client(disabled=True).prompt("", "x"))).route == "sync"


async def test_other_provider_goes_to_inner(
    make_client: Callable[..., BatchLLMClient], spy: SpyLLM, emu: AnthropicEmulator
) -> None:
    llm = make_client()
    with pytest.raises(Exception, match="openai"):
        await llm.prompt("", "x", model="openai/gpt-5")
    assert spy.calls[0]["model"] == "openai/gpt-5"
    assert creates(emu) == []
    assert llm.stats().total_failed == 1


async def test_no_credential_raises_and_calls_nothing(
    make_client: Callable[..., BatchLLMClient], spy: SpyLLM, emu: AnthropicEmulator
) -> None:
    llm = make_client(registry=Registry())
    with pytest.raises(NoCredentials) as info:
        await llm.prompt("", "x", session_id="nobody")
    assert info.value.session_id == "nobody"
    assert spy.calls == []
    assert emu.requests == []


@pytest.mark.parametrize(
    "kwargs",
    [
        {"store": "mysql://nowhere/x"},
        {"max_inflight_requests": 0},
        {"on_close": "drop"},
        {"give_up_after": 30.0},
        {"give_up_after": 100_000.0},
        {"flush_interval": 0},
        {"max_queue_size": 0},
        {"poll_interval": 1.0},
        {"jitter": 1.5},
    ],
)
def test_invalid_settings_raise_config_error(make_client: Callable[..., BatchLLMClient], kwargs: Any) -> None:
    with pytest.raises(ConfigError):
        make_client(**kwargs)


def test_background_slots_is_none() -> None:
    assert BatchLLMClient.background_slots is None


async def test_an_item_whose_credential_is_disabled_while_queued_falls_back_at_flush(
    make_client: Callable[..., BatchLLMClient], spy: SpyLLM, emu: AnthropicEmulator, clock: StepClock
) -> None:
    llm = make_client()
    task = asyncio.ensure_future(llm.prompt("", "queued", session_id="s1"))
    await advance(clock, 10.0)
    llm._engine.disabled.disable(
        AuthCredential("api-key", API_KEY), sessions=["s1"], status_code=403, reason="permission_error"
    )
    reply = await run_until(clock, task)
    assert reply.route == "fallback"
    assert creates(emu) == []
    assert spy.calls[0]["session_id"] == "s1"
