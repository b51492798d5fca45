"""Fixtures for the engine facade: ``Lore`` on a real store, the real SDK on the emulator, a manual clock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from lore_batch import AnthropicLLMClient, RetryPolicy
from lore_batch.emulator import AnthropicEmulator
from lore_core import Lore, LoreConfig
from lore_core.clock import ManualClock

from ..engine.conftest import RecordingLLM

START = datetime(2026, 2, 25, 22, 0, tzinfo=UTC)


@dataclass
class Rig:
    lore: Lore
    emulator: AnthropicEmulator
    clock: ManualClock
    llm: RecordingLLM


@pytest.fixture
def config() -> LoreConfig:
    return LoreConfig()


@pytest.fixture
async def rig(migrated_url: str, config: LoreConfig) -> AsyncIterator[Rig]:
    clock = ManualClock(start=START.timestamp(), auto_advance=True)
    emulator = AnthropicEmulator(clock=clock)
    async with emulator.client(api_key="sk-ant-session-test") as client:
        llm = RecordingLLM(AnthropicLLMClient(client, clock=clock, retry=RetryPolicy(background_attempts=1)))
        async with Lore.open(migrated_url, llm=llm, config=config, clock=clock, watch_idle=False) as lore:
            yield Rig(lore=lore, emulator=emulator, clock=clock, llm=llm)
