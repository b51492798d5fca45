"""``BatchLLMClient``: the :class:`~lore_core.llm.LLMClient` that pools non-urgent calls into batches.

Callers do not change: workers call ``prompt`` as before, and an answer from a batch is the same
:class:`~lore_core.llm.LLMResponse` a sync call gives, with ``route="batch"`` (BATCH.md 3.1).
"""

from __future__ import annotations

import dataclasses
import random
from dataclasses import dataclass
from decimal import Decimal
from types import TracebackType
from typing import Final

import anthropic
from anthropic.types import Message
from sqlalchemy.ext.asyncio import AsyncEngine

from lore_batch.auth import AuthCredential, CredentialResolver
from lore_batch.clock import Clock, SystemClock
from lore_batch.costlog import CostLog, MemoryCostLog, SqlCostLog
from lore_batch.engine import Engine, EngineSettings
from lore_batch.engine.channels import client_credential
from lore_batch.engine.items import PromptCall, build_params
from lore_batch.engine.ledger import BACKGROUND_TAG, PROVIDER
from lore_batch.engine.poller import FIRST_POLL_GAP
from lore_batch.errors import NoCredentials, UnsupportedProvider
from lore_batch.limits import CircuitBreaker
from lore_batch.pool.pool import DurablePool
from lore_batch.pool.records import ResultHandler
from lore_batch.pool.settings import OnClose, PoolSettings
from lore_batch.pool.store import PoolStore
from lore_batch.sync_client import llm_response_from_message, resolve_model
from lore_batch.usage import usage_from_api
from lore_core.errors import ConfigError
from lore_core.llm import LLMClient, LLMResponse
from lore_core.settings import Settings

__all__ = ["BatchClientStats", "BatchLLMClient"]

_DEFAULT_MODEL: Final = "claude-sonnet-4-6"
_DEFAULT_MAX_TOKENS: Final = 8192
# give_up_after bounds: at least a minute, at most the 24 h a batch may run.
_GIVE_UP_RANGE: Final = (60.0, 86_400.0)


@dataclass(frozen=True, slots=True, kw_only=True)
class BatchClientStats:
    """A snapshot of a :class:`BatchLLMClient`.

    ``queued``, ``inflight_batches`` and ``inflight_requests`` are now; the ``total_*`` fields count since
    construction. Every finished call counts in exactly one of ``total_batched``, ``total_direct``,
    ``total_fallback`` or ``total_failed`` (a call whose caller was cancelled counts in none).
    ``total_resubmitted`` counts resubmissions, ``batches_submitted`` creates. Costs come from the request
    log: ``batch_cost_usd`` is what batch answers cost, ``batch_savings_usd`` what they saved over sync.
    """

    queued: int
    inflight_batches: int
    inflight_requests: int
    total_queued: int
    total_batched: int
    total_direct: int
    total_fallback: int
    total_resubmitted: int
    total_failed: int
    batches_submitted: int
    batch_cost_usd: Decimal
    batch_savings_usd: Decimal


class BatchLLMClient:
    """An ``LLMClient`` that sends non-urgent calls through the Anthropic Message Batches API (memory mode).

    ``inner`` is the synchronous client (normally :class:`~lore_batch.AnthropicLLMClient`): urgent calls go
    straight to it, and it answers every fallback. ``client`` is the ``AsyncAnthropic`` for batch endpoints;
    with ``registry`` each call uses its session's credential (``registry.resolve_auth(session_id)``),
    without one every call uses ``client``'s own. ``disabled=None`` reads ``LORE_BATCH_DISABLED`` once (only
    ``"1"`` disables). ``flush_interval`` is the window, ``max_queue_size`` the flush-now size,
    ``poll_interval`` the poll cap, ``give_up_after`` (60-86,400 s) how long an item may wait before it is
    answered synchronously, ``batch_rpm`` the per-credential budget of batch-endpoint calls per minute, and
    ``max_inflight_requests`` how many of one credential's requests may sit in unfinished batches (the
    provider's processing-queue limit; more wait in the queue). ``clock`` and ``rng`` drive every wait and
    the poll jitter; ``cost_log`` receives one row per call (default: an in-memory ring).

    ``prompt`` routes by the first matching row: closing or closed, batching disabled, ``urgent=True``, or a
    provider without a batch implementation → inner; no credential → :class:`~lore_batch.NoCredentials`;
    credential or session on the disable list, or an item over the byte cap → fallback at once; otherwise
    queue and await. Raises :class:`~lore_core.errors.ConfigError` for invalid settings.

    Durable mode (``store=`` a database URL or an ``AsyncEngine`` migrated to head): queued calls and batches
    are rows, shared by every process on the store (``pool_settings`` tunes heartbeats, leadership and
    delivery); results whose caller is gone go to handlers registered with :meth:`register_handler`; the
    request log defaults to the store's table.

    Example::

        inner = AnthropicLLMClient(anthropic.AsyncAnthropic())
        async with BatchLLMClient(inner, anthropic.AsyncAnthropic()) as llm:
            reply = await llm.prompt(system, user, worker="distill", session_id="s1")   # batched
            reply.route  # "batch"
    """

    background_slots: int | None = None
    """The engine must not cap pooled calls: awaiting a batch holds no slot."""

    def __init__(
        self,
        inner: LLMClient,
        client: anthropic.AsyncAnthropic,
        *,
        registry: CredentialResolver | None = None,
        store: AsyncEngine | str | None = None,
        flush_interval: float = 30.0,
        max_queue_size: int = 50,
        poll_interval: float = 60.0,
        disabled: bool | None = None,
        give_up_after: float = 3600.0,
        clock: Clock | None = None,
        cost_log: CostLog | None = None,
        shutdown_grace: float = 10.0,
        batch_rpm: float = 50,
        max_inflight_requests: int = 100_000,
        jitter: float = 0.1,
        rng: random.Random | None = None,
        on_close: OnClose = "leave",
        pool_settings: PoolSettings | None = None,
    ) -> None:
        settings = EngineSettings(
            window=flush_interval,
            flush_now=max_queue_size,
            poll_cap=poll_interval,
            give_up_after=give_up_after,
            batch_rpm=batch_rpm,
            jitter=jitter,
            shutdown_grace=shutdown_grace,
            max_inflight_requests=max_inflight_requests,
        )
        _validate(settings)
        pool_settings = pool_settings or PoolSettings()
        if on_close != pool_settings.on_close:
            pool_settings = dataclasses.replace(pool_settings, on_close=on_close)
        problems = pool_settings.problems()
        if problems:
            raise ConfigError("; ".join(problems))
        self.inner = inner
        self.disabled = Settings.from_env().batch_disabled if disabled is None else disabled
        self.clock: Clock = clock or SystemClock()
        pool_store = PoolStore(store) if store is not None else None
        if cost_log is None:
            cost_log = SqlCostLog(pool_store.engine) if pool_store is not None else MemoryCostLog()
        self.cost_log: CostLog = cost_log
        self._registry = registry
        self._own = client_credential(client) if registry is None else None
        inner_model = getattr(inner, "default_model", None)
        inner_tokens = getattr(inner, "max_tokens", None)
        self.default_model = inner_model if isinstance(inner_model, str) else _DEFAULT_MODEL
        self.max_tokens = inner_tokens if isinstance(inner_tokens, int) else _DEFAULT_MAX_TOKENS
        inner_breaker = getattr(inner, "breaker", None)
        breaker = (
            inner_breaker if isinstance(inner_breaker, CircuitBreaker) else CircuitBreaker(clock=self.clock)
        )
        self._engine = Engine(
            inner,
            client,
            settings=settings,
            clock=self.clock,
            rng=rng or random.Random(),
            own_credential=self._own,
            cost_log=self.cost_log,
            breaker=breaker,
        )
        self._pool: DurablePool | None = None
        if pool_store is not None:
            self._pool = DurablePool(
                inner,
                client,
                store=pool_store,
                settings=settings,
                pool_settings=pool_settings,
                clock=self.clock,
                rng=self._engine.rng,
                own_credential=self._own,
                registry=registry,
                cost_log=self.cost_log,
                breaker=breaker,
                fallbacks=self._engine.fallbacks,
                disabled=self._engine.disabled,
            )
        self._direct_ok = 0
        self._direct_failed = 0
        self._handlers: dict[str, ResultHandler] = {}

    @property
    def durable(self) -> bool:
        """Whether queued calls live in the store (``store=`` was given)."""
        return self._pool is not None

    def register_handler(self, worker: str, handler: ResultHandler) -> None:
        """Send results of ``worker``'s calls that nobody awaits any more to ``handler`` (durable mode).

        ``handler`` is ``async fn(HandledResult)``; it gets results whose caller was cancelled, whose process
        closed, or whose process died (a later process takes them over). It runs at most
        ``pool_settings.handler_attempts`` times per item. In memory mode nothing outlives its caller, so
        handlers are kept but never called.

        Example::

            async def store_distillation(result: HandledResult) -> None:
                ...
            llm.register_handler("distill", store_distillation)
        """
        if not worker:
            raise ConfigError("a handler needs a worker label")
        if self._pool is not None:
            self._pool.handlers[worker] = handler
            self._pool.parked.clear()  # rows set aside for want of a handler are looked at again
            self._pool.wake.set()
        else:
            self._handlers[worker] = handler

    @property
    def breaker(self) -> CircuitBreaker:
        """The background breaker fallbacks wait on (``inner``'s when it has one)."""
        return self._engine.fallbacks.breaker

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
        """Answer one prompt: synchronously if urgent (or batching is off), else through a batch.

        Raises :class:`~lore_batch.NoCredentials` when no credential resolves for ``session_id`` (nothing is
        sent), :class:`~lore_batch.BatchItemErrored` for an errored batch result that a retry cannot fix,
        :class:`~lore_batch.BatchAbandoned` when a close gives up on the call, :class:`~lore_batch.BatchError`
        from another event loop, and whatever ``inner`` raises for calls it answers (a fallback's error has
        the batch-side failure chained as its cause).
        """
        engine = self._engine
        engine.check_loop()
        call = PromptCall(
            system=system,
            user=user,
            model=model,
            max_tokens=max_tokens,
            temperature=temperature,
            session_id=session_id,
            worker=worker,
        )
        closing = engine.closing or (self._pool is not None and self._pool.closing)
        if closing or self.disabled or urgent or _provider(model) != PROVIDER:
            return await self._direct(call, urgent=urgent)
        try:
            model_id = resolve_model(model, self.default_model)
            credential = self._credential(session_id)
        except Exception:
            self._direct_failed += 1
            raise
        params = build_params(
            call, model=model_id, max_tokens=self.max_tokens if max_tokens is None else max_tokens
        )
        item = engine.new_item(
            params,
            credential=credential,
            model=model_id,
            send=engine.fallbacks.prompt_sender(call),
            convert=_batch_response,
            worker=worker,
            session_id=session_id,
        )
        if (
            engine.disabled.blocks(credential, session_id=session_id)
            or item.size > engine.settings.max_bytes
            or not engine.can_enter_batch(item, self.clock.monotonic())
        ):
            engine.fallback_now(item)
            answer: LLMResponse = await engine.wait(item)
            return answer
        if self._pool is not None:
            item.future.cancel()  # the pool keeps its own future; this one was never handed out
            item_id, future = await self._pool.enqueue(
                call, credential=credential, model=model_id, max_tokens=params["max_tokens"]
            )
            return await self._pool.wait(item_id, future, worker=worker)
        engine.enqueue(item)
        answer = await engine.wait(item)
        return answer

    async def resume(self) -> None:
        """Durable mode: start this process's part of the pool now, without a call: register the process,
        lead the credentials it holds (resuming their batches) and deliver finished rows to handlers. Calls
        start it anyway; a process that only resumes or handles calls this. No-op in memory mode.

        Raises:
            SchemaOutOfDateError: the store is behind the code (run ``lore db upgrade``).
            StoreError: the database failed.
        """
        if self._pool is not None:
            await self._pool.start()

    async def flush(self) -> None:
        """Submit everything queued now, and wait for those creates (not for their results). In durable mode
        this covers the credentials this process leads."""
        if self._pool is not None:
            await self._pool.flush()
        await self._engine.flush()

    async def aclose(self, timeout: float | None = None) -> None:  # noqa: ASYNC109 - on the injected clock
        """Close: later calls go to inner; queued items drain through fallback; in-flight batches get
        ``shutdown_grace`` seconds, then are cancelled upstream and their callers get
        :class:`~lore_batch.BatchAbandoned`. ``timeout`` bounds it all (on the client's clock).

        Durable mode: queued items stay in the store for the next start (``on_close="flush"`` submits them
        first), in-flight batches are left to resume, live callers get :class:`~lore_batch.ClientClosed`,
        leadership is released and the process row marked stopped."""
        if self._pool is not None:
            await self._pool.aclose(timeout)
        await self._engine.aclose(timeout)
        if self._pool is not None:
            await self._pool.store.aclose()

    async def __aenter__(self) -> BatchLLMClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def stats(self) -> BatchClientStats:
        """Counters and costs now (see :class:`BatchClientStats`). In durable mode ``queued`` counts this
        process's calls still waiting for an answer, and the in-flight figures are those of the batches this
        process leads, as of its last pass."""
        engine = self._engine
        counters = [engine.counters]
        batches = list(engine.poller.batches.values())
        queued = len(engine.flusher.queue)
        inflight_batches = len(batches)
        inflight_requests = sum(len(batch.waiting()) for batch in batches)
        if self._pool is not None:
            pool = self._pool
            counters.append(pool.counters)
            queued += len(pool.waiters)
            inflight_batches += sum(leader.unfinished_batches for leader in pool.leaders.values())
            inflight_requests += sum(leader.unfinished_requests for leader in pool.leaders.values())
        batch_cost = engine.ledger.batch_cost + (
            self._pool.ledger.batch_cost if self._pool is not None else 0
        )
        return BatchClientStats(
            queued=queued,
            inflight_batches=inflight_batches,
            inflight_requests=inflight_requests,
            total_queued=sum(c.total_queued for c in counters),
            total_batched=sum(c.batched for c in counters),
            total_direct=self._direct_ok,
            total_fallback=sum(c.fallback for c in counters),
            total_resubmitted=sum(c.resubmitted for c in counters),
            total_failed=sum(c.failed for c in counters) + self._direct_failed,
            batches_submitted=sum(c.batches_submitted for c in counters),
            batch_cost_usd=batch_cost,
            batch_savings_usd=self.cost_log.totals().batch_savings_usd,
        )

    def _credential(self, session_id: str | None) -> AuthCredential:
        credential = self._registry.resolve_auth(session_id) if self._registry is not None else self._own
        if credential is None:
            raise NoCredentials(session_id)
        return credential

    async def _direct(self, call: PromptCall, *, urgent: bool) -> LLMResponse:
        started = self.clock.monotonic()
        try:
            response = await self.inner.prompt(
                call.system,
                call.user,
                model=call.model,
                max_tokens=call.max_tokens,
                temperature=call.temperature,
                urgent=urgent,
                session_id=call.session_id,
                worker=call.worker,
            )
        except Exception as exc:
            self._direct_failed += 1
            if _provider(call.model) == PROVIDER and not isinstance(exc, UnsupportedProvider | NoCredentials):
                # The call may have reached the provider: a row with status "error" (cost 0) keeps it visible.
                await self._log_direct(call, urgent=urgent, started=started, response=None)
            raise
        self._direct_ok += 1
        await self._log_direct(call, urgent=urgent, started=started, response=response)
        return response

    async def _log_direct(
        self, call: PromptCall, *, urgent: bool, started: float, response: LLMResponse | None
    ) -> None:
        resolved = self._registry.resolve_auth(call.session_id) if self._registry is not None else self._own
        model = response.model if response is not None else resolve_model(call.model, self.default_model)
        ledger = self._engine.ledger
        entry = ledger.entry(
            route="sync",
            status="ok" if response is not None else "error",
            model=model,
            usage=response.usage if response is not None else None,
            tag=None if urgent else BACKGROUND_TAG,
            worker=call.worker,
            session_id=call.session_id,
            credential_fp=resolved.fingerprint if resolved is not None else None,
            latency_ms=int((self.clock.monotonic() - started) * 1000),
        )
        await ledger.write([entry])

    def __repr__(self) -> str:
        return (
            f"BatchLLMClient(disabled={self.disabled}, registry={'yes' if self._registry is not None else 'no'}, "
            f"engine={self._engine!r})"
        )


def _batch_response(message: Message) -> LLMResponse:
    """What a ``prompt`` caller gets from a succeeded batch result (cache writes at the 1-hour TTL it asked)."""
    return dataclasses.replace(
        llm_response_from_message(message, route="batch"),
        usage=usage_from_api(message.usage, default_write_ttl="1h"),
    )


def _provider(model: str | None) -> str:
    if model and "/" in model:
        return model.partition("/")[0].lower()
    return PROVIDER


def _validate(settings: EngineSettings) -> None:
    """Raise :class:`ConfigError` for settings out of range (named by their ``BatchLLMClient`` argument)."""
    if settings.window <= 0:
        raise ConfigError("flush_interval must be positive")
    if settings.flush_now < 1:
        raise ConfigError("max_queue_size must be at least 1")
    if settings.poll_cap < FIRST_POLL_GAP:
        raise ConfigError(f"poll_interval must be at least {FIRST_POLL_GAP:g} seconds")
    if not _GIVE_UP_RANGE[0] <= settings.give_up_after <= _GIVE_UP_RANGE[1]:
        raise ConfigError("give_up_after must be between 60 and 86,400 seconds")
    if settings.shutdown_grace < 0:
        raise ConfigError("shutdown_grace must not be negative")
    if settings.batch_rpm <= 0:
        raise ConfigError("batch_rpm must be positive")
    if not 0 <= settings.jitter < 1:
        raise ConfigError("jitter must be in [0, 1)")
    if settings.max_inflight_requests < 1:
        raise ConfigError("max_inflight_requests must be at least 1")
