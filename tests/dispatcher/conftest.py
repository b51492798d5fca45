"""Fixtures for FleetDispatcher: the batch tests' emulator, stepping clock and real SDK in process."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Callable
from typing import Any

import anthropic
import pytest

from lore_batch import FleetDispatcher
from lore_batch.costlog import MemoryCostLog
from tests.batch.conftest import (  # noqa: F401 - fixtures used by this package's tests
    StepClock,
    capture,
    clock,
    cost_log,
    counting_executor,
    emu,
    run_until,
    sdk,
)


@pytest.fixture
async def make_fleet(
    sdk: anthropic.AsyncAnthropic, clock: StepClock, cost_log: MemoryCostLog
) -> AsyncIterator[Callable[..., FleetDispatcher]]:
    made: list[FleetDispatcher] = []

    def make(**kwargs: Any) -> FleetDispatcher:
        kwargs.setdefault("clock", clock)
        kwargs.setdefault("jitter", 0.0)
        kwargs.setdefault("rng", random.Random(0))
        kwargs.setdefault("cost_log", cost_log)
        fleet = FleetDispatcher(kwargs.pop("client", sdk), **kwargs)
        made.append(fleet)
        return fleet

    yield make
    for fleet in made:
        await run_until(clock, fleet.aclose(timeout=120.0))
