"""Fixtures for the durable pool: the batch tests' emulator and stepping clock, plus a clock that holds still
while a store has a transaction open (database I/O runs outside the clock: a driver thread, a socket)."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import anthropic
import pytest

from lore_batch import BatchLLMClient
from lore_batch.emulator import AnthropicEmulator
from lore_batch.pool import PoolSettings
from lore_core.store.transactions import SqlStoreBase
from tests.batch.conftest import (  # noqa: F401 - fixtures used by this package's tests
    BATCH_DELAY,
    Capture,
    SpyLLM,
    StepClock,
    capture,
    counting_executor,
    sdk,
    settle,
    spy,
)

T = TypeVar("T")

# Real seconds a pool test may spend in one run_until before it fails (a hang fails fast, never stalls CI).
WALL_LIMIT = 120.0


async def run_until(clock: StepClock, awaitable: Awaitable[T], *, horizon: float = 50_000.0) -> T:
    """Await ``awaitable`` while moving ``clock`` from one sleeper's deadline to the next, holding it still
    while a watched store works (however long that takes on a loaded machine); bounded by :data:`WALL_LIMIT`
    real seconds."""
    return await asyncio.wait_for(_run(clock, awaitable, horizon=horizon), WALL_LIMIT)


async def _run(clock: StepClock, awaitable: Awaitable[T], *, horizon: float) -> T:
    task = asyncio.ensure_future(awaitable)
    idle = 0
    try:
        while True:
            await settle()
            if task.done():
                return task.result()
            busy = isinstance(clock, IOClock) and any(store.busy for store in clock.stores)
            deadline = clock.next_deadline()
            if deadline is None:
                if not busy:
                    idle += 1
                    assert idle < 2000, "stuck: the task waits but nothing sleeps on the clock"
                await asyncio.sleep(0.001)
                continue
            idle = 0
            assert deadline <= horizon, f"still waiting at t={deadline}"
            clock.advance(max(0.0, deadline - clock.monotonic()))
    finally:
        if not task.done():
            task.cancel()


# Short timings so tests cross leases, heartbeats and stale processes in little simulated time.
FAST = PoolSettings(
    heartbeat=2.0,
    stale_after=6.0,
    lock_retry=1.0,
    lease_ttl=5.0,
    delivery_interval=1.0,
    credential_wait=600.0,
)


class IOClock(StepClock):
    """A stepping clock that offers no deadline while any watched store has a transaction open."""

    def __init__(self) -> None:
        super().__init__()
        self.stores: list[SqlStoreBase] = []

    def next_deadline(self) -> float | None:
        if any(store.busy for store in self.stores):
            return None
        return super().next_deadline()


@pytest.fixture
def clock() -> IOClock:
    return IOClock()


@pytest.fixture
def emu(clock: IOClock, capture: Capture) -> AnthropicEmulator:
    return AnthropicEmulator(clock=clock, batch_delay=BATCH_DELAY, seed=3, responder=capture)


def watch(clock: IOClock, client: BatchLLMClient) -> BatchLLMClient:
    """Hold ``clock`` while ``client``'s store (and its request log) is busy."""
    pool = client._pool
    assert pool is not None
    clock.stores.append(pool.store)
    if isinstance(client.cost_log, SqlStoreBase):
        clock.stores.append(client.cost_log)
    return client


@pytest.fixture
async def make_durable(
    spy: SpyLLM, sdk: anthropic.AsyncAnthropic, clock: IOClock, migrated_url: str
) -> AsyncIterator[Callable[..., BatchLLMClient]]:
    made: list[BatchLLMClient] = []

    def make(**kwargs: Any) -> BatchLLMClient:
        kwargs.setdefault("clock", clock)
        kwargs.setdefault("jitter", 0.0)
        kwargs.setdefault("disabled", False)
        kwargs.setdefault("rng", random.Random(0))
        kwargs.setdefault("store", migrated_url)
        kwargs.setdefault("pool_settings", FAST)
        client = BatchLLMClient(kwargs.pop("inner", spy), kwargs.pop("client", sdk), **kwargs)
        made.append(watch(clock, client))
        return client

    yield make
    for client in made:
        await run_until(clock, client.aclose(timeout=120.0))
