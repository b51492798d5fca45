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
    spy,
)
from tests.batch.conftest import run_until as _run_until

T = TypeVar("T")

# Real seconds a pool test may spend in one run_until before it fails (a hang fails fast, never stalls CI).
WALL_LIMIT = 120.0


async def run_until(clock: StepClock, awaitable: Awaitable[T], *, horizon: float = 50_000.0) -> T:
    """``tests.batch.conftest.run_until`` (which holds an :class:`IOClock` still while its stores work),
    bounded by :data:`WALL_LIMIT` real seconds."""
    return await asyncio.wait_for(_run_until(clock, awaitable, horizon=horizon), WALL_LIMIT)


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

    def busy(self) -> bool:
        """Whether a watched store has a transaction open."""
        return any(store.busy for store in self.stores)

    def next_deadline(self) -> float | None:
        if self.busy():
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
