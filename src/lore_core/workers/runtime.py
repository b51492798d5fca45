"""What every worker shares: the LLM call with its flags, the background gate, and the run record.

Every worker call passes ``temperature=0``, the session id, the worker label, ``model = worker_model or the
session's model`` and ``urgent`` as its run decided (ENGINE.md 1.2). Each call is recorded as a
``worker_runs`` row (ok, error, rejected or stale), so background failures are visible in ``lore inspect``
instead of disappearing into a log.

The background gate holds non-urgent calls while a rate limit pause runs (``retry_after``, else the backoff
schedule 60, 120, 240, 480, 600 s, escalating while 429s continue) and caps how many are in flight at once.
The cap is the client's ``background_slots`` when it declares one (``None``: the client pools or limits its
background traffic itself, as ``AnthropicLLMClient`` and ``BatchLLMClient`` do, so a second limit would only
stop calls from sharing a batch), else ``LoreConfig.background_concurrency``. Urgent calls ignore both.

A :class:`Replay` carries an answer that arrived after the coroutine that asked for it was gone (see
:mod:`lore_core.workers.replay`): a worker step given one runs only for the prompt it answers.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from lore_core.clock import Clock, SystemClock
from lore_core.config import LoreConfig
from lore_core.errors import ConfigError, LLMError, RateLimitedError
from lore_core.llm import LLMClient, LLMResponse
from lore_core.outputs import OutputRejected
from lore_core.prompting import Prompt
from lore_core.store.port import SessionStore
from lore_core.store.records import WorkerRunRecord
from lore_core.tokens import TokenCounter, count_tokens

__all__ = ["BackgroundGate", "Replay", "Replayed", "RunRecorder", "WorkerContext"]

logger = logging.getLogger(__name__)

_UNSET_SLOTS = object()


class BackgroundGate:
    """Pause and cap non-urgent worker calls; urgent calls pass straight through."""

    def __init__(self, *, slots: int | None, backoff: tuple[float, ...], clock: Clock) -> None:
        self._semaphore = asyncio.Semaphore(slots) if slots else None
        self._backoff = backoff
        self._clock = clock
        self._paused_until = 0.0
        self._trips = 0

    @property
    def paused_for(self) -> float:
        """Seconds left in the current rate-limit pause (0 when calls may go)."""
        return max(0.0, self._paused_until - self._clock.monotonic())

    @asynccontextmanager
    async def slot(self, *, urgent: bool) -> AsyncIterator[None]:
        """Wait for the pause to end and a slot to free (non-urgent only), then hold the slot."""
        if urgent:
            yield
            return
        while (wait := self.paused_for) > 0:
            await self._clock.sleep(wait)
        if self._semaphore is None:
            yield
            return
        async with self._semaphore:
            yield

    def rate_limited(self, retry_after: float | None) -> None:
        """Pause non-urgent calls for ``retry_after`` or the next step of the backoff schedule."""
        step = self._backoff[min(self._trips, len(self._backoff) - 1)]
        self._trips += 1
        pause = max(step, retry_after or 0.0)
        self._paused_until = max(self._paused_until, self._clock.monotonic() + pause)
        logger.warning("worker calls paused for %.0f s after a rate limit", pause)

    def succeeded(self) -> None:
        """A call went through: the next rate limit starts the schedule over."""
        if self.paused_for == 0:
            self._trips = 0


@dataclass(slots=True)
class RunRecorder:
    """One recorded worker run; see :meth:`WorkerContext.run`."""

    context: WorkerContext
    worker: str
    session_id: str | None
    project: str | None
    urgent: bool
    model: str | None
    started_at: datetime
    status: str = "ok"
    error_type: str | None = None
    error_detail: str | None = None
    responses: list[LLMResponse] = field(default_factory=list)

    async def call(self, prompt: Prompt) -> LLMResponse:
        """Make the worker call for ``prompt`` with this run's flags.

        Raises:
            LLMError: the call failed (a rate limit also pauses the background gate).
        """
        ctx = self.context
        async with ctx.gate.slot(urgent=self.urgent):
            try:
                response = await ctx.llm.prompt(
                    prompt.system,
                    prompt.user,
                    model=self.model,
                    max_tokens=prompt.max_tokens,
                    temperature=0,
                    urgent=self.urgent,
                    session_id=self.session_id,
                    worker=prompt.worker,
                )
            except RateLimitedError as exc:
                if not self.urgent:
                    ctx.gate.rate_limited(exc.retry_after)
                raise
        ctx.gate.succeeded()
        self.responses.append(response)
        return response

    def stale(self, detail: str) -> None:
        """Mark the run's result as stale: another process or run got there first; nothing was written."""
        self.status, self.error_type, self.error_detail = "stale", "stale", detail


class WorkerContext:
    """The dependencies and shared limits of every worker of one engine instance."""

    def __init__(
        self,
        *,
        store: SessionStore,
        llm: LLMClient,
        config: LoreConfig,
        clock: Clock | None = None,
        counter: TokenCounter = count_tokens,
    ) -> None:
        self.store = store
        self.llm = llm
        self.config = config
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.counter = counter
        self.tz = _zone(config.timezone)
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.versions: dict[str, int] = {}
        slots = getattr(llm, "background_slots", _UNSET_SLOTS)
        self.gate = BackgroundGate(
            slots=config.background_concurrency if slots is _UNSET_SLOTS else slots,  # type: ignore[arg-type]
            backoff=config.backoff_seconds,
            clock=self.clock,
        )

    def with_llm(self, llm: LLMClient) -> WorkerContext:
        """A context for the same engine whose calls go to ``llm``: same store, config, clock, counter, lease
        owner and snapshot versions (a bump through either is seen by both); its own background gate, sized
        by ``llm``'s ``background_slots``.

        Example: ``ctx.with_llm(StoredAnswers()).versions is ctx.versions``.
        """
        sibling = WorkerContext(
            store=self.store, llm=llm, config=self.config, clock=self.clock, counter=self.counter
        )
        sibling.owner = self.owner
        sibling.versions = self.versions
        return sibling

    def bump(self, session_id: str) -> None:
        """Note that a session's distillations changed (sessions re-read their snapshot only after a bump)."""
        self.versions[session_id] = self.versions.get(session_id, 0) + 1

    def now(self) -> datetime:
        """The clock's time as an aware UTC datetime."""
        return datetime.fromtimestamp(self.clock.now(), tz=UTC)

    async def model_for(self, session_id: str) -> str | None:
        """The model worker calls use for a session: ``worker_model``, else the session's last model."""
        if self.config.worker_model:
            return self.config.worker_model
        session = await self.store.get_session(session_id)
        return session.last_model if session is not None else None

    @asynccontextmanager
    async def run(
        self,
        worker: str,
        *,
        session_id: str | None,
        project: str | None,
        urgent: bool,
        model: str | None,
    ) -> AsyncIterator[RunRecorder]:
        """Record one worker run: ``ok`` unless the body raises an ``LLMError`` (``error``), an
        ``OutputRejected`` (``rejected``) or marks it stale. The exception is re-raised after recording."""
        recorder = RunRecorder(
            context=self,
            worker=worker,
            session_id=session_id,
            project=project,
            urgent=urgent,
            model=model,
            started_at=self.now(),
        )
        try:
            yield recorder
        except OutputRejected as exc:
            recorder.status, recorder.error_type, recorder.error_detail = "rejected", exc.reason, exc.detail
            raise
        except LLMError as exc:
            recorder.status, recorder.error_type = "error", type(exc).__name__
            recorder.error_detail = _error_detail(exc)
            raise
        except asyncio.CancelledError:
            # Cancelled (a close, a shutdown): nothing was written; never recorded as ok.
            recorder.status, recorder.error_type = "error", "cancelled"
            raise
        finally:
            await self._save(recorder)

    async def record_unused(
        self, worker: str, *, session_id: str, project: str | None, response: LLMResponse, detail: str
    ) -> None:
        """Record a run for an answer nothing used (status ``stale``, ``detail`` as its reason: codes, never
        text), so the tokens it cost stay visible in ``worker_runs``.

        Raises:
            SessionNotFoundError: the session is unknown.

        Example: ``await ctx.record_unused("distill", session_id="s1", project="p", response=r, detail="stale: x")``.
        """
        async with self.run(worker, session_id=session_id, project=project, urgent=False, model=None) as run:
            run.responses.append(response)
            run.stale(detail)

    async def _save(self, recorder: RunRecorder) -> None:
        usage_in = sum(r.usage.total_input_tokens for r in recorder.responses)
        usage_out = sum(r.usage.output_tokens for r in recorder.responses)
        run = WorkerRunRecord(
            id=str(uuid.uuid4()),
            session_id=recorder.session_id,
            project=recorder.project,
            worker=recorder.worker,
            urgent=recorder.urgent,
            status=recorder.status,  # type: ignore[arg-type]
            route=recorder.responses[-1].route if recorder.responses else None,
            error_type=recorder.error_type,
            error_detail=recorder.error_detail[:500] if recorder.error_detail else None,
            input_tokens=usage_in,
            output_tokens=usage_out,
            started_at=recorder.started_at,
            finished_at=self.now(),
        )
        await self.store.record_worker_run(run)
        if recorder.status != "ok":
            logger.warning(
                "worker %s for session %s: %s (%s)",
                recorder.worker,
                recorder.session_id,
                recorder.status,
                recorder.error_type,
            )


@dataclass(frozen=True, slots=True, kw_only=True)
class Replay:
    """An answer being applied after its call's coroutine was gone.

    A worker step given a ``Replay`` rebuilds its prompt(s) from the stored state and runs only for the one
    :meth:`wants` accepts (same worker label, system and user text); that call goes through ``context``,
    whose client holds just this answer. ``system`` and ``user`` stay out of ``repr``.
    """

    context: WorkerContext
    worker: str
    system: str = field(repr=False)
    user: str = field(repr=False)

    def wants(self, prompt: Prompt) -> bool:
        """Whether ``prompt`` is exactly the call this answer belongs to."""
        return prompt.worker == self.worker and prompt.system == self.system and prompt.user == self.user


@dataclass(frozen=True, slots=True)
class Replayed:
    """What a worker step did with a :class:`Replay`: ``applied`` when it wrote its result; ``detail`` is a
    short reason starting with a code (``stale:``, ``busy:``, ``rejected:``, ...), never prompt text."""

    applied: bool
    detail: str


def _error_detail(exc: LLMError) -> str:
    parts = [f"status={exc.status}" if exc.status is not None else "", exc.error_type or ""]
    if exc.request_id:
        parts.append(f"request_id={exc.request_id}")
    return " ".join(p for p in parts if p)


def _zone(name: str) -> tzinfo:
    if name.upper() == "UTC":
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError(f"unknown time zone {name!r}") from exc
