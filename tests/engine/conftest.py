"""Engine fixtures: the real store, the real SDK on the emulator, and a recorder of worker-call flags."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest

from lore_batch import AnthropicLLMClient, RetryPolicy
from lore_batch.emulator import AnthropicEmulator
from lore_core.clock import ManualClock
from lore_core.config import LoreConfig
from lore_core.llm import LLMClient, LLMResponse
from lore_core.store import SqlSessionStore
from lore_core.workers import WorkerContext, WorkerScheduler

# The shared real session lives beside the project (../shared/data); LORE_SHARED_DATA may point elsewhere.
SHARED_DATA = Path(
    os.environ.get("LORE_SHARED_DATA") or Path(__file__).resolve().parents[3] / "shared" / "data"
)
SHARED_SESSION = SHARED_DATA / "session-cli-sentry-issue.json"
START = datetime(2026, 2, 25, 22, 0, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Call:
    worker: str | None
    session_id: str | None
    urgent: bool
    max_tokens: int | None
    model: str | None
    temperature: float | None


@dataclass
class RecordingLLM:
    """Passes every call to a real client and keeps the flags it was given (observation only)."""

    inner: LLMClient
    calls: list[Call] = field(default_factory=list)
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
        self.calls.append(Call(worker, session_id, urgent, max_tokens, model, temperature))
        return await self.inner.prompt(
            system,
            user,
            model=model,
            max_tokens=max_tokens,
            temperature=temperature,
            urgent=urgent,
            session_id=session_id,
            worker=worker,
        )


@dataclass
class Engine:
    """The worker side of the engine wired to real components."""

    emulator: AnthropicEmulator
    clock: ManualClock
    llm: RecordingLLM
    store: SqlSessionStore
    scheduler: WorkerScheduler

    @property
    def context(self) -> WorkerContext:
        return self.scheduler.context


@pytest.fixture
def config() -> LoreConfig:
    return LoreConfig()


@pytest.fixture
async def engine(store: SqlSessionStore, config: LoreConfig) -> AsyncIterator[Engine]:
    clock = ManualClock(start=START.timestamp(), auto_advance=True)
    emulator = AnthropicEmulator(clock=clock)
    async with emulator.client(api_key="sk-ant-engine-test") as client:
        inner = AnthropicLLMClient(
            client, clock=clock, retry=RetryPolicy(background_attempts=1, urgent_attempts=1)
        )
        llm = RecordingLLM(inner)
        context = WorkerContext(store=store, llm=llm, config=config, clock=clock)
        scheduler = WorkerScheduler(context)
        yield Engine(emulator=emulator, clock=clock, llm=llm, store=store, scheduler=scheduler)
        await scheduler.aclose(grace=5)


@pytest.fixture
def shared_session_path() -> Path:
    if not SHARED_SESSION.exists():
        pytest.skip(
            f"the shared real session is absent: expected {SHARED_SESSION} (set LORE_SHARED_DATA to its folder)"
        )
    return SHARED_SESSION
