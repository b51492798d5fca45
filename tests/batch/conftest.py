"""Fixtures for the batching engine: the emulator on a stepping manual clock, the real ``AsyncAnthropic`` in
process, a spying inner client, and helpers that move time from one sleeper's deadline to the next.

Nothing sleeps on the clock for real: :func:`run_until` settles the event loop, then jumps the clock to the
earliest pending ``clock.sleep`` deadline, until the awaited task is done. Settling also waits for work the SDK
hands to a thread (each client copy resolves its platform headers once in the default executor), which the
loop's counting executor makes visible.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import anthropic
import pytest

from lore_batch import AnthropicLLMClient, AuthCredential, BatchLLMClient, RetryPolicy
from lore_batch.costlog import MemoryCostLog
from lore_batch.emulator import AnthropicEmulator, RequestRecord, ResponderOutput, echo_responder
from lore_batch.replay.stepping import CountingExecutor, SteppingClock
from lore_core.llm import LLMResponse

API_KEY = "sk-ant-api03-BATCHKEY-do-not-leak-0123456789"
OTHER_KEY = "sk-ant-api03-OTHERKEY-do-not-leak-9876543210"
OAUTH_TOKEN = "sk-ant-oat01-OAUTHTOKEN-do-not-leak-5555"
BATCH_DELAY = 60.0

T = TypeVar("T")


class StepClock(SteppingClock):
    """The replay's :class:`~lore_batch.replay.stepping.SteppingClock`: a manual clock that knows its
    sleepers' deadlines, so a test can jump to the next one."""


_executors: list[CountingExecutor] = []


@pytest.fixture(autouse=True)
async def counting_executor() -> AsyncIterator[CountingExecutor]:
    executor = CountingExecutor()
    asyncio.get_running_loop().set_default_executor(executor)
    _executors.append(executor)
    yield executor
    _executors.remove(executor)


async def settle(rounds: int = 400) -> None:
    """Let every ready task run until it blocks, including work handed to the executor's threads.

    400 rounds: 40 were seen too few on a loaded 2-core CI machine (a rescue sleeper registered after the
    clock had already jumped to the next poll)."""
    while True:
        for _ in range(rounds):
            await asyncio.sleep(0)
        if not any(executor.pending for executor in _executors):
            return
        await asyncio.sleep(0.001)


async def run_until(clock: StepClock, awaitable: Awaitable[T], *, horizon: float = 200_000.0) -> T:
    """Await ``awaitable`` while moving ``clock`` from one sleeper's deadline to the next.

    A clock with a ``busy()`` method (database I/O in flight, which runs outside the clock) is held still, and
    not counted as stuck, for as long as it says so."""
    task = asyncio.ensure_future(awaitable)
    idle = 0
    busy = getattr(clock, "busy", None)
    try:
        while True:
            await settle()
            if task.done():
                return task.result()
            deadline = clock.next_deadline()
            if deadline is None:
                if not (callable(busy) and busy()):
                    idle += 1
                    assert idle < 500, "stuck: the task waits but nothing sleeps on the clock"
                await asyncio.sleep(0.001)
                continue
            idle = 0
            assert deadline <= horizon, f"still waiting at t={deadline}"
            clock.advance(max(0.0, deadline - clock.monotonic()))
    finally:
        if not task.done():
            task.cancel()


async def advance(clock: StepClock, seconds: float) -> None:
    """Move ``clock`` forward by ``seconds``, stopping at every sleeper deadline on the way."""
    target = clock.monotonic() + seconds
    while True:
        await settle()
        deadline = clock.next_deadline()
        if deadline is None or deadline > target:
            break
        clock.advance(max(0.0, deadline - clock.monotonic()))
    clock.advance(max(0.0, target - clock.monotonic()))
    await settle()


@dataclass
class SpyLLM:
    """An inner ``LLMClient`` that records every call and delegates to a real ``AnthropicLLMClient``.

    ``gate`` (when set) holds non-urgent calls until it opens, to observe concurrency.
    """

    real: AnthropicLLMClient
    calls: list[dict[str, Any]] = field(default_factory=list)
    gate: asyncio.Event | None = None
    active: int = 0
    peak: int = 0

    @property
    def default_model(self) -> str:
        return self.real.default_model

    @property
    def max_tokens(self) -> int:
        return self.real.max_tokens

    @property
    def breaker(self) -> Any:
        return self.real.breaker

    async def prompt(self, system: str, user: str, **kwargs: Any) -> LLMResponse:
        self.calls.append({"system": system, "user": user, **kwargs})
        self.active += 1
        self.peak = max(self.peak, self.active)
        try:
            if self.gate is not None and not kwargs.get("urgent"):
                await self.gate.wait()
            return await self.real.prompt(system, user, **kwargs)
        finally:
            self.active -= 1


class Capture:
    """An emulator responder that records the params of every request it answers (sync and batch)."""

    def __init__(self) -> None:
        self.params: list[dict[str, Any]] = []

    def __call__(self, params: Mapping[str, Any]) -> ResponderOutput:
        self.params.append(dict(params))
        return echo_responder(params)


class Registry:
    """A ``CredentialResolver`` stub: a fixed map of session ids to credentials, no default."""

    def __init__(self, sessions: dict[str, AuthCredential] | None = None) -> None:
        self.sessions = dict(sessions or {})

    def resolve_auth(self, session_id: str | None) -> AuthCredential | None:
        return self.sessions.get(session_id) if session_id is not None else None


def creates(emu: AnthropicEmulator) -> list[RequestRecord]:
    return [r for r in emu.requests if r.endpoint == "batch_create"]


def endpoint(emu: AnthropicEmulator, name: str) -> list[RequestRecord]:
    return [r for r in emu.requests if r.endpoint == name]


@pytest.fixture
def clock() -> StepClock:
    return StepClock()


@pytest.fixture
def capture() -> Capture:
    return Capture()


@pytest.fixture
def emu(clock: StepClock, capture: Capture) -> AnthropicEmulator:
    return AnthropicEmulator(clock=clock, batch_delay=BATCH_DELAY, seed=3, responder=capture)


@pytest.fixture
async def sdk(emu: AnthropicEmulator) -> AsyncIterator[anthropic.AsyncAnthropic]:
    async with emu.client(api_key=API_KEY) as client:
        yield client


@pytest.fixture
def spy(sdk: anthropic.AsyncAnthropic, clock: StepClock) -> SpyLLM:
    return SpyLLM(AnthropicLLMClient(sdk, clock=clock, retry=RetryPolicy(jitter=0.0, background_attempts=1)))


@pytest.fixture
def cost_log() -> MemoryCostLog:
    return MemoryCostLog()


@pytest.fixture
async def make_client(
    spy: SpyLLM, sdk: anthropic.AsyncAnthropic, clock: StepClock, cost_log: MemoryCostLog
) -> AsyncIterator[Callable[..., BatchLLMClient]]:
    made: list[BatchLLMClient] = []

    def make(**kwargs: Any) -> BatchLLMClient:
        kwargs.setdefault("clock", clock)
        kwargs.setdefault("jitter", 0.0)
        kwargs.setdefault("disabled", False)
        kwargs.setdefault("rng", random.Random(0))
        kwargs.setdefault("cost_log", cost_log)
        client = BatchLLMClient(kwargs.pop("inner", spy), kwargs.pop("client", sdk), **kwargs)
        made.append(client)
        return client

    yield make
    for client in made:
        await run_until(clock, client.aclose(timeout=120.0))
