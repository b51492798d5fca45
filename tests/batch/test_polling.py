"""The poll loop: backoff, Retry-After per credential, request budget (behaviours 10, 11)."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable

from lore_batch import AuthCredential, BatchLLMClient
from lore_batch.emulator import AnthropicEmulator

from .conftest import API_KEY, OTHER_KEY, Registry, StepClock, creates, endpoint, run_until


def _gaps(times: list[float]) -> list[float]:
    return [round(b - a, 6) for a, b in itertools.pairwise(times)]


async def test_poll_gaps_double_from_five_seconds_up_to_the_cap(
    make_client: Callable[..., BatchLLMClient], emu: AnthropicEmulator, clock: StepClock
) -> None:
    emu.batch_delay = 400.0
    llm = make_client()
    reply = await run_until(clock, llm.prompt("", "hello"))
    assert reply.route == "batch"
    created = creates(emu)[0].at
    polls = [r.at for r in endpoint(emu, "batch_retrieve")]
    # The results download retrieves the batch once more (that is why it costs two tokens): drop it.
    polls = polls[:-1]
    assert _gaps([created, *polls]) == [5.0, 10.0, 20.0, 40.0, 60.0, 60.0, 60.0, 60.0, 60.0, 60.0]


async def test_retry_after_on_a_poll_pauses_only_that_credential(
    make_client: Callable[..., BatchLLMClient], emu: AnthropicEmulator, clock: StepClock
) -> None:
    emu.batch_delay = 200.0
    registry = Registry({"a": AuthCredential("api-key", API_KEY), "b": AuthCredential("api-key", OTHER_KEY)})
    llm = make_client(registry=registry)
    emu.faults.fail_next("batch_retrieve", 429, retry_after=100)
    await run_until(
        clock, asyncio.gather(llm.prompt("", "a", session_id="a"), llm.prompt("", "b", session_id="b"))
    )
    polls = endpoint(emu, "batch_retrieve")
    limited = polls[0]
    assert limited.status == 429
    same = [r.at for r in polls if r.credential_fp == limited.credential_fp]
    other = [r.at for r in polls if r.credential_fp != limited.credential_fp]
    assert same[1] - same[0] >= 100.0
    assert _gaps(other[:4]) == [10.0, 20.0, 40.0]  # the other credential keeps its schedule


async def test_a_download_costs_two_tokens(
    make_client: Callable[..., BatchLLMClient], emu: AnthropicEmulator, clock: StepClock
) -> None:
    emu.batch_delay = 1.0
    llm = make_client(batch_rpm=2)  # two tokens banked at most, one every 30 s
    await run_until(clock, llm.prompt("", "hello"))
    create, poll = creates(emu)[0], endpoint(emu, "batch_retrieve")[0]
    download = endpoint(emu, "batch_results")[0]
    assert poll.at - create.at == 5.0
    # After the create and the poll, 1 + 5/30 - 1 tokens are left; two are needed: (2 - 1/6) * 30 s later.
    assert round(download.at - poll.at, 6) == 55.0


async def test_a_poll_403_keeps_polling_at_the_cap(
    make_client: Callable[..., BatchLLMClient], emu: AnthropicEmulator, clock: StepClock
) -> None:
    emu.batch_delay = 100.0
    emu.faults.fail_next("batch_retrieve", 403)
    llm = make_client()
    reply = await run_until(clock, llm.prompt("", "hello"))
    assert reply.route == "batch"
    polls = endpoint(emu, "batch_retrieve")
    assert polls[0].status == 403
    assert polls[1].at - polls[0].at == 60.0
    assert len(creates(emu)) == 1
