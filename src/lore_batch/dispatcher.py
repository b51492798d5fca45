"""``FleetDispatcher``: route any agent's ``messages.create`` calls by latency budget (BATCH.md 3.2).

A call with no budget, or one a batch cannot meet, goes straight to ``messages.create``; a call with room to
wait joins a batch on the same engine ``BatchLLMClient`` uses, at half the price. Both routes return
``anthropic.types.Message``. The budget picks the route and the deadline; it is never a timeout on a sync call.

Routing, first match wins (:func:`choose_route`):

1. batching disabled, or ``force_sync`` → sync
2. ``stream=True`` → :class:`~lore_batch.errors.UnsupportedParams` (``submit`` returns a whole ``Message``)
3. ``max_tokens == 0`` or ``speed`` set → sync (the Batches API refuses them)
4. ``force_batch`` → batch, deadline now + 24 h
5. no budget → sync (batching is opt-in: a forgotten budget must never turn a call into a wait of minutes)
6. budget ≤ ``sync_max_latency_ms`` → sync
7. budget < window + turnaround + ``sync_max_latency_ms`` → sync (it would be rescued before a batch ended)
8. otherwise → batch, deadline now + budget (at most 24 h)

The turnaround is the larger of ``min_batch_turnaround_ms`` and the 90th percentile of the batches this
dispatcher saw end. A queued call whose deadline nears leaves early in its own batch, and one that can no longer
make it is answered synchronously before its deadline.
"""

from __future__ import annotations

import functools
import inspect
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Final, Literal

import anthropic
from anthropic.resources.messages import AsyncMessages
from anthropic.types import Message
from anthropic.types.messages import MessageBatch
from sqlalchemy.ext.asyncio import AsyncEngine

from lore_batch.clock import Clock, SystemClock
from lore_batch.costlog import CostLog, MemoryCostLog, SqlCostLog
from lore_batch.engine import Engine, EngineSettings
from lore_batch.engine.channels import client_credential
from lore_batch.engine.grouping import MAX_BATCH_REQUESTS
from lore_batch.engine.ledger import BACKGROUND_TAG
from lore_batch.errors import DispatcherClosed, NoCredentials, UnsupportedParams
from lore_batch.limits import CircuitBreaker
from lore_batch.usage import usage_from_api
from lore_core.settings import Settings

__all__ = [
    "DispatchStats",
    "FleetDispatcher",
    "PendingBatch",
    "RouteDecision",
    "RoutingPolicy",
    "choose_route",
]

logger = logging.getLogger(__name__)

# The longest a batch may run (its expiry), and so the longest deadline.
MAX_DEADLINE_S: Final = 86_400.0


@dataclass(frozen=True, slots=True, kw_only=True)
class RoutingPolicy:
    """How :class:`FleetDispatcher` routes and batches (times in ms unless named ``_s``).

    ``sync_max_latency_ms``: budgets up to this go sync, and this much is kept for the sync call of a rescue.
    ``batch_window_ms``: a batch leaves this long after its first item arrived; ``batch_min_size``: or at
    once with this many items; ``batch_max_size``: at most this many per batch (up to 100,000).
    ``poll_interval_s``: the longest gap between polls (≥ 5). ``min_batch_turnaround_ms``: the least batch
    turnaround to plan with. ``fallback_concurrency``, ``max_attempts``, ``batch_rpm``: as for
    ``BatchLLMClient``. ``disabled=None`` reads ``LORE_BATCH_DISABLED`` (only ``"1"`` disables).

    Raises:
        ValueError: a field out of range.
    """

    sync_max_latency_ms: int = 5000
    batch_window_ms: int = 30000
    batch_min_size: int = 10
    batch_max_size: int = 100
    poll_interval_s: float = 60.0
    min_batch_turnaround_ms: int = 120_000
    fallback_concurrency: int = 2
    max_attempts: int = 3
    batch_rpm: float = 50.0
    disabled: bool | None = None

    def __post_init__(self) -> None:
        if self.sync_max_latency_ms < 0:
            raise ValueError("sync_max_latency_ms must not be negative")
        if self.batch_window_ms <= 0:
            raise ValueError("batch_window_ms must be positive")
        if self.batch_min_size < 1:
            raise ValueError("batch_min_size must be at least 1")
        if not 1 <= self.batch_max_size <= MAX_BATCH_REQUESTS:
            raise ValueError(f"batch_max_size must be 1-{MAX_BATCH_REQUESTS:,}")
        if self.poll_interval_s < 5.0:
            raise ValueError("poll_interval_s must be at least 5 seconds")
        if self.min_batch_turnaround_ms < 0:
            raise ValueError("min_batch_turnaround_ms must not be negative")
        if self.fallback_concurrency < 1 or self.max_attempts < 1 or self.batch_rpm <= 0:
            raise ValueError("fallback_concurrency, max_attempts and batch_rpm must be positive")


@dataclass(frozen=True, slots=True)
class DispatchStats:
    """Calls so far. Each finished call counts in exactly one of ``sync_calls`` (sync by choice),
    ``batched_calls`` (answered by a succeeded batch result), ``fallbacks`` (meant for a batch, answered sync)
    or ``errors``; ``batches_submitted`` and ``resubmitted`` count creates and resubmissions."""

    sync_calls: int
    batched_calls: int
    batches_submitted: int
    errors: int
    fallbacks: int
    resubmitted: int

    @property
    def total(self) -> int:
        """Every finished call."""
        return self.sync_calls + self.batched_calls + self.fallbacks + self.errors


@dataclass(frozen=True, slots=True)
class PendingBatch:
    """What ``on_batch_submitted`` gets after each create."""

    batch_id: str
    request_count: int
    submitted_at: datetime


@dataclass(frozen=True, slots=True)
class RouteDecision:
    """Where a call goes, its deadline in seconds from now (batch only), and the rule that decided."""

    route: Literal["sync", "batch"]
    deadline_s: float | None
    reason: str


def choose_route(
    params: dict[str, Any],
    *,
    latency_budget_ms: float | None,
    force_sync: bool,
    force_batch: bool,
    policy: RoutingPolicy,
    disabled: bool,
    turnaround_s: float,
) -> RouteDecision:
    """The route of one call (pure; see the module docstring for the rules).

    Raises:
        UnsupportedParams: ``stream=True``.

    Example::

        choose_route({"model": "m", "max_tokens": 9, "messages": []}, latency_budget_ms=None, force_sync=False,
                     force_batch=False, policy=RoutingPolicy(), disabled=False, turnaround_s=120.0).route  # "sync"
    """
    if disabled or force_sync:
        return RouteDecision("sync", None, "disabled" if disabled else "force_sync")
    if params.get("stream"):
        raise UnsupportedParams("stream")
    if params.get("max_tokens") == 0 or params.get("speed") is not None:
        return RouteDecision("sync", None, "not_batchable")
    if force_batch:
        return RouteDecision("batch", MAX_DEADLINE_S, "force_batch")
    if latency_budget_ms is None:
        return RouteDecision("sync", None, "no_budget")
    if latency_budget_ms <= policy.sync_max_latency_ms:
        return RouteDecision("sync", None, "tight_budget")
    needed_ms = policy.batch_window_ms + turnaround_s * 1000 + policy.sync_max_latency_ms
    if latency_budget_ms < needed_ms:
        return RouteDecision("sync", None, "budget_below_turnaround")
    return RouteDecision("batch", min(latency_budget_ms / 1000, MAX_DEADLINE_S), "budget")


class FleetDispatcher:
    """Send ``messages.create`` calls sync or through batches by latency budget; see the module docstring.

    ``client`` is the ``AsyncAnthropic`` whose credential every call uses. Use it as an async context manager,
    or just call it: it starts lazily in the running loop and never hangs. After :meth:`aclose` it raises
    :class:`~lore_batch.errors.DispatcherClosed`. ``on_batch_submitted(PendingBatch)`` runs after each create
    (an exception from it is logged with its traceback). ``cost_log`` gets one row per call; with ``store`` (a
    database URL or ``AsyncEngine`` at schema head) and no ``cost_log``, the rows go to the store's request-log
    table, where ``lore advise`` reads them. The queue itself stays in memory (no durable dispatcher yet).

    Example::

        async with FleetDispatcher(anthropic.AsyncAnthropic()) as fleet:
            now = await fleet.submit(model="claude-haiku-4-5", max_tokens=256, messages=msgs)           # sync
            later = await fleet.submit(latency_budget_ms=3_600_000, model=..., max_tokens=..., messages=...)
    """

    def __init__(
        self,
        client: anthropic.AsyncAnthropic,
        *,
        policy: RoutingPolicy | None = None,
        store: AsyncEngine | str | None = None,
        on_batch_submitted: Callable[[PendingBatch], object] | None = None,
        clock: Clock | None = None,
        cost_log: CostLog | None = None,
        rng: random.Random | None = None,
        jitter: float = 0.1,
        shutdown_grace: float = 10.0,
    ) -> None:
        self.policy = policy or RoutingPolicy()
        self.client = client
        self.clock: Clock = clock or SystemClock()
        self._owned_log: SqlCostLog | None = None
        if cost_log is None and store is not None:
            cost_log = self._owned_log = SqlCostLog(store)
        self.cost_log: CostLog = cost_log if cost_log is not None else MemoryCostLog()
        self.disabled = (
            Settings.from_env().batch_disabled if self.policy.disabled is None else self.policy.disabled
        )
        self._credential = client_credential(client)
        self._on_batch_submitted = on_batch_submitted
        policy_ = self.policy
        settings = EngineSettings(
            window=policy_.batch_window_ms / 1000,
            flush_now=policy_.batch_min_size,
            max_requests=policy_.batch_max_size,
            poll_cap=policy_.poll_interval_s,
            sync_reserve=policy_.sync_max_latency_ms / 1000,
            give_up_after=MAX_DEADLINE_S,
            min_turnaround=policy_.min_batch_turnaround_ms / 1000,
            max_attempts=policy_.max_attempts,
            fallback_concurrency=policy_.fallback_concurrency,
            batch_rpm=policy_.batch_rpm,
            jitter=jitter,
            shutdown_grace=shutdown_grace,
        )
        self._engine = Engine(
            None,
            client,
            settings=settings,
            clock=self.clock,
            rng=rng or random.Random(),
            own_credential=self._credential,
            cost_log=self.cost_log,
            breaker=CircuitBreaker(clock=self.clock),
        )
        self._engine.on_created = self._created
        self._sync_calls = 0
        self._sync_errors = 0

    async def submit(
        self,
        *,
        latency_budget_ms: float | None = None,
        force_sync: bool = False,
        force_batch: bool = False,
        tag: str | None = None,
        **params: Any,
    ) -> Message:
        """Answer one ``messages.create`` call on the route its budget allows (see the module docstring).

        ``tag`` labels the request-log row and is never sent; calls that asked for the batch route are tagged
        ``background`` unless ``tag`` is given.

        Raises:
            DispatcherClosed: after :meth:`aclose`.
            UnsupportedParams: ``stream=True``.
            NoCredentials: the client has no credential to batch with.
            BatchItemErrored: an errored batch result a retry cannot fix (``invalid_request_error``, ...).
            BatchAbandoned: a close gave up on the call.
            anthropic.APIError: the sync route's errors pass through unchanged; a fallback's error has the
                batch-side failure chained as its cause.
        """
        engine = self._engine
        if engine.closing:
            raise DispatcherClosed()
        engine.check_loop()
        decision = choose_route(
            params,
            latency_budget_ms=latency_budget_ms,
            force_sync=force_sync,
            force_batch=force_batch,
            policy=self.policy,
            disabled=self.disabled,
            turnaround_s=engine.turnaround(),
        )
        if decision.route == "sync":
            return await self._sync(params, tag=tag)
        if self._credential is None:
            raise NoCredentials(None)
        item = engine.new_item(
            dict(params),
            credential=self._credential,
            model=str(params.get("model", "")),
            send=lambda: self.client.messages.create(**create_kwargs(params)),
            convert=_same,
            tag=tag or BACKGROUND_TAG,
            deadline_in=decision.deadline_s,
        )
        if item.size > engine.settings.max_bytes:
            engine.fallback_now(item)
        else:
            engine.enqueue(item)
        message: Message = await engine.wait(item)
        return message

    async def submit_sync(self, **params: Any) -> Message:
        """:meth:`submit` on the sync route."""
        return await self.submit(force_sync=True, **params)

    async def submit_batch(self, **params: Any) -> Message:
        """:meth:`submit` on the batch route (deadline 24 h)."""
        return await self.submit(force_batch=True, **params)

    @property
    def stats(self) -> DispatchStats:
        """Counters now (see :class:`DispatchStats`)."""
        counters = self._engine.counters
        return DispatchStats(
            sync_calls=self._sync_calls,
            batched_calls=counters.batched,
            batches_submitted=counters.batches_submitted,
            errors=counters.failed + self._sync_errors,
            fallbacks=counters.fallback,
            resubmitted=counters.resubmitted,
        )

    async def flush(self) -> None:
        """Submit every queued call now (and wait for those creates, not their results)."""
        await self._engine.flush()

    async def aclose(self, timeout: float | None = None) -> None:  # noqa: ASYNC109 - on the injected clock
        """Close: queued calls are answered sync, batches in flight get the shutdown grace, then are cancelled
        upstream and their callers get :class:`~lore_batch.errors.BatchAbandoned`; ``timeout`` bounds it."""
        await self._engine.aclose(timeout)
        if self._owned_log is not None:
            await self._owned_log.aclose()

    async def __aenter__(self) -> FleetDispatcher:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def _sync(self, params: dict[str, Any], *, tag: str | None) -> Message:
        started = self.clock.monotonic()
        try:
            message: Message = await self.client.messages.create(**create_kwargs(params))
        except Exception:
            self._sync_errors += 1
            await self._log(params, None, tag=tag, started=started)
            raise
        self._sync_calls += 1
        await self._log(params, message, tag=tag, started=started)
        return message

    async def _log(
        self, params: dict[str, Any], message: Message | None, *, tag: str | None, started: float
    ) -> None:
        ledger = self._engine.ledger
        entry = ledger.entry(
            route="sync",
            status="ok" if message is not None else "error",
            model=message.model if message is not None else str(params.get("model", "")),
            usage=usage_from_api(message.usage) if message is not None else None,
            tag=tag,
            worker=None,
            session_id=None,
            credential_fp=self._credential.fingerprint if self._credential is not None else None,
            latency_ms=int((self.clock.monotonic() - started) * 1000),
        )
        await ledger.write([entry])

    def _created(self, batch: MessageBatch, request_count: int) -> None:
        if self._on_batch_submitted is None:
            return
        self._on_batch_submitted(
            PendingBatch(batch.id, request_count, datetime.fromtimestamp(self.clock.now(), tz=UTC))
        )

    def __repr__(self) -> str:
        return f"FleetDispatcher(policy={self.policy!r}, disabled={self.disabled}, engine={self._engine!r})"


def _same(message: Message) -> Message:
    return message


@functools.cache
def _create_parameters() -> frozenset[str]:
    """The keyword arguments the installed SDK's ``messages.create`` takes."""
    return frozenset(inspect.signature(AsyncMessages.create).parameters) - {"self"}


def create_kwargs(params: dict[str, Any]) -> dict[str, Any]:
    """``params`` as ``messages.create`` keyword arguments: a request field the installed SDK has no argument
    for (``temperature``, ``top_p``, ``top_k`` in current releases) travels in ``extra_body``, so every
    parameter a batch request accepts works on the sync route and in a fallback too.

    Example::

        create_kwargs({"model": "m", "max_tokens": 8, "messages": [], "temperature": 0.2})
        # {"model": "m", "max_tokens": 8, "messages": [], "extra_body": {"temperature": 0.2}}
    """
    known = _create_parameters()
    kwargs = {key: value for key, value in params.items() if key in known}
    extra = {key: value for key, value in params.items() if key not in known}
    if extra:
        kwargs["extra_body"] = {**extra, **(params.get("extra_body") or {})}
    return kwargs
