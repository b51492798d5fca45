"""Recall fixtures: ``Lore`` on a real migrated store (SQLite and PostgreSQL) with a scripted LLM."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest

from lore_core import Lore, LoreConfig
from lore_core.clock import ManualClock
from lore_core.errors import LLMError, LLMUnavailableError
from lore_core.llm import LLMResponse, Usage

START = datetime(2026, 5, 1, 14, 0, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Call:
    worker: str | None
    session_id: str | None
    urgent: bool
    temperature: float | None
    user: str


@dataclass
class ScriptedLLM:
    """Answers ``recall`` calls as told: ``answer`` text, ``failure`` raised, or (``hang``) never.

    Every other worker call fails at once (no background work matters here). ``cancelled`` counts recall
    calls that were cancelled while hanging.
    """

    answer: str = "<queries>\n</queries>"
    failure: LLMError | None = None
    hang: bool = False
    calls: list[Call] = field(default_factory=list)
    cancelled: int = 0
    background_slots: int | None = None

    async def prompt(
        self,
        system: str,
        user: str,
        *,
        model: str | None = None,
        max_tokens: int | None = None,
        temperature: float | None = 0,
        urgent: bool = False,
        session_id: str | None = None,
        worker: str | None = None,
    ) -> LLMResponse:
        self.calls.append(Call(worker, session_id, urgent, temperature, user))
        if worker != "recall":
            raise LLMUnavailableError("no background work in recall tests")
        if self.failure is not None:
            raise self.failure
        if self.hang:
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                self.cancelled += 1
                raise
        return LLMResponse(
            text=self.answer, usage=Usage(input_tokens=50, output_tokens=10), model=model or "m"
        )

    @property
    def recall_calls(self) -> list[Call]:
        return [call for call in self.calls if call.worker == "recall"]


@dataclass
class Rig:
    lore: Lore
    llm: ScriptedLLM
    clock: ManualClock


@pytest.fixture
def config() -> LoreConfig:
    return LoreConfig()


@pytest.fixture
def llm() -> ScriptedLLM:
    return ScriptedLLM()


@pytest.fixture
async def rig(migrated_url: str, config: LoreConfig, llm: ScriptedLLM) -> AsyncIterator[Rig]:
    clock = ManualClock(start=START.timestamp(), auto_advance=True)
    async with Lore.open(migrated_url, llm=llm, config=config, clock=clock, watch_idle=False) as lore:
        yield Rig(lore=lore, llm=llm, clock=clock)
