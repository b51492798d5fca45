"""Helpers for the late-answer tests: an engine whose model records every worker call and fails it, and
answers built by the emulator's default worker responders (what a batch would have delivered)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from lore_batch.emulator.workers import WORKER_RESPONDERS
from lore_core import AnswerOutcome, Lore, LoreConfig
from lore_core.clock import ManualClock
from lore_core.errors import LLMUnavailableError
from lore_core.ingest import MessageLog
from lore_core.llm import LLMResponse, Route, Usage

from .conftest import START
from .test_failures import coding_turns

MODEL = "claude-sonnet-4-6"


@dataclass(frozen=True, slots=True)
class Sent:
    """One worker call as the engine made it."""

    worker: str | None
    session_id: str | None
    system: str
    user: str
    max_tokens: int | None


@dataclass
class CapturingLLM:
    """Records every call, then fails it (the model is down: nothing gets written), unless ``answering`` is
    on: then the emulator's default responder for the worker answers."""

    sent: list[Sent] = field(default_factory=list)
    answering: bool = False
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
        call = Sent(worker, session_id, system, user, max_tokens)
        self.sent.append(call)
        if not self.answering:
            raise LLMUnavailableError("the test model is down", status=503)
        return answer_for(call, route="sync")

    def of(self, worker: str) -> list[Sent]:
        """The calls made for ``worker``, oldest first."""
        return [call for call in self.sent if call.worker == worker]


def answer_for(call: Sent, *, text: str | None = None, route: Route = "batch") -> LLMResponse:
    """The answer the emulator's default responder gives ``call`` (or ``text``), as a batch delivers it."""
    if text is None:
        params = {
            "model": "claude-test",
            "system": call.system,
            "max_tokens": call.max_tokens or 4_096,
            "messages": [{"role": "user", "content": call.user}],
        }
        (responder,) = [responder for matches, responder in WORKER_RESPONDERS if matches(params)]
        text = responder(params).content[0]["text"]
    assert isinstance(text, str)
    usage = Usage(input_tokens=len(call.user) // 4, output_tokens=len(text) // 4)
    return LLMResponse(text=text, usage=usage, model="claude-test", route=route)


@dataclass
class Rig:
    lore: Lore
    llm: CapturingLLM

    async def apply(
        self, call: Sent, response: LLMResponse | None = None, *, session_id: str = "s1"
    ) -> AnswerOutcome:
        """Hand ``call``'s answer to the engine the way a batch result handler does."""
        assert call.worker is not None
        return await self.lore.apply_answer(
            worker=call.worker,
            session_id=session_id,
            system=call.system,
            user=call.user,
            response=response or answer_for(call),
        )

    async def store_turns(self, turns: int, *, session_id: str = "s1") -> None:
        """Store the history of ``turns`` coding turns (what is stored already is skipped), as turns would."""
        store, now = self.lore.store, self.lore.now_datetime()
        await store.ensure_session(session_id, "proj", MODEL, now)
        await MessageLog(store).record(session_id, coding_turns(turns), now=now)


@asynccontextmanager
async def open_rig(url: str, config: LoreConfig) -> AsyncIterator[Rig]:
    """A ``Lore`` on ``url`` (migrated) whose model records and fails every call."""
    llm = CapturingLLM()
    clock = ManualClock(start=START.timestamp(), auto_advance=True)
    async with Lore.open(url, llm=llm, config=config, clock=clock, watch_idle=False) as lore:
        yield Rig(lore=lore, llm=llm)
        await lore.scheduler.run_until_idle()
