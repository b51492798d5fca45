"""Fixtures for the emulator tests: a manual clock, an emulator on it, and a real SDK client."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from anthropic import AsyncAnthropic

from lore_batch.emulator import AnthropicEmulator, ManualClock


@pytest.fixture
def clock() -> ManualClock:
    """A clock that moves only when a test says so."""
    return ManualClock()


@pytest.fixture
def emu(clock: ManualClock) -> AnthropicEmulator:
    """An emulator whose batches take 60 simulated seconds."""
    return AnthropicEmulator(clock=clock, batch_delay=60.0, seed=7)


@pytest.fixture
async def client(emu: AnthropicEmulator) -> AsyncIterator[AsyncAnthropic]:
    """The real ``AsyncAnthropic`` on ``emu`` (in process, no retries)."""
    async with emu.client() as sdk:
        yield sdk
