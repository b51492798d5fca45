"""The batching engine in memory mode: items in, answers out (BATCH.md 5, 6.3).

:class:`Engine` ties the pieces together: the :class:`~.flusher.Flusher` (queue, windows, creates), the
:class:`~.poller.Poller` (one poll loop, rescue times), the :class:`~.results.ResultReader`, the
:class:`~.fallback.FallbackExecutor` and the :class:`~.disable.DisableList`. It starts lazily in the running
loop on first use and is bound to that loop. Every item ends in exactly one of: delivered from a batch,
delivered by a fallback, failed, or abandoned (its caller went away).

Deadlines (5.3): an item's rescue time is its first enqueue + ``give_up_after`` − the sync reserve. It may
enter a batch only while ``rescue time − now ≥ window + min_turnaround``. At its rescue time a queued item
leaves the queue and an in-batch item is rescued; both fall back. A batch nobody waits on any more is
cancelled upstream and polled until it ends, so late results are still logged.

Close (memory mode): new calls go to inner; queued items drain through fallback; in-flight batches are
awaited up to ``shutdown_grace``, then cancelled upstream with their waiters failed by
:class:`~lore_batch.errors.BatchAbandoned`. ``aclose(timeout=...)`` bounds all of it.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import anthropic
from anthropic.types import Message
from anthropic.types.messages import MessageBatch

from lore_batch.auth import AuthCredential
from lore_batch.clock import Clock
from lore_batch.costlog import CostLog
from lore_batch.errors import BatchAbandoned, BatchError
from lore_batch.limits import CircuitBreaker
from lore_batch.pricing import PricingCatalog
from lore_batch.usage import usage_from_api
from lore_core.llm import LLMClient

from .channels import Channels
from .disable import DisableList
from .fallback import FallbackExecutor
from .flusher import Flusher
from .grouping import group_by
from .items import GroupKey, Item, ItemState, chain_cause, new_ulid, params_size
from .ledger import BACKGROUND_TAG, PROVIDER, Ledger
from .poller import InFlightBatch, Poller
from .results import ResultReader
from .settings import EngineCounters, EngineSettings
from .shutdown import NO_BATCH, cancel_unfinished, drain
from .tasks import TaskSet

__all__ = ["Engine", "EngineCounters", "EngineSettings"]

logger = logging.getLogger(__name__)

# Recent batch turnarounds kept to plan deadlines with.
TURNAROUND_SAMPLES = 20


class Engine:
    """Queues items, batches them per group, polls, applies results and falls back (memory mode)."""

    def __init__(
        self,
        inner: LLMClient | None,
        client: anthropic.AsyncAnthropic,
        *,
        settings: EngineSettings,
        clock: Clock,
        rng: random.Random,
        own_credential: AuthCredential | None,
        cost_log: CostLog,
        breaker: CircuitBreaker,
        catalog: PricingCatalog | None = None,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.rng = rng
        self.channels = Channels(client, own=own_credential, batch_rpm=settings.batch_rpm, clock=clock)
        self.disabled = DisableList(clock=clock, ttl=settings.disable_ttl)
        self.counters = EngineCounters()
        self.ledger = Ledger(cost_log, catalog=catalog or PricingCatalog.default(), clock=clock)
        self.flusher = Flusher(self)
        self.poller = Poller(self)
        self.results = ResultReader(self)
        self.fallbacks = FallbackExecutor(
            inner, limit=settings.fallback_concurrency, breaker=breaker, spawn=self.spawn
        )
        self.live: dict[str, Item] = {}
        # Seconds from create to "ended" of recent batches (not cancelled ones): the observed turnaround.
        self.turnarounds: deque[float] = deque(maxlen=TURNAROUND_SAMPLES)
        # Called with each created (or adopted) batch and its request count (FleetDispatcher's callback).
        self.on_created: Callable[[MessageBatch, int], None] | None = None
        self.known_batches: set[str] = set()
        self.changed = asyncio.Event()
        self.closing = False
        self.closed = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_tasks: list[asyncio.Task[None]] = []
        self._tasks = TaskSet()

    # -- lifecycle -------------------------------------------------------------------------------------------

    def check_loop(self) -> None:
        """Raise :class:`BatchError` when called from a loop other than the one the engine started in."""
        if self._loop is not None and self._loop is not asyncio.get_running_loop():
            raise BatchError("this batch client is bound to another event loop")

    def ensure_started(self) -> None:
        """Start the flush and poll loops in the running loop (once)."""
        self.check_loop()
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
            self._loop_tasks = [
                self.spawn(self.flusher.run(), name="lore_batch.flusher"),
                self.spawn(self.poller.run(), name="lore_batch.poller"),
            ]

    def stop_flusher(self) -> None:
        """Stop the flush loop: nothing new is submitted."""
        if self._loop_tasks:
            self._loop_tasks[0].cancel()

    def spawn(self, coro: Coroutine[Any, Any, Any], *, name: str) -> asyncio.Task[Any]:
        """Run ``coro`` as a background task of this engine; a failure is logged and kept."""
        return self._tasks.spawn(coro, name=name)

    @property
    def background_errors(self) -> list[BaseException]:
        """Failures of background tasks, oldest first."""
        return self._tasks.errors

    # -- items in --------------------------------------------------------------------------------------------

    def new_item(
        self,
        params: dict[str, Any],
        *,
        credential: AuthCredential,
        model: str,
        send: Callable[[], Awaitable[Any]],
        convert: Callable[[Message], Any],
        worker: str | None = None,
        session_id: str | None = None,
        tag: str | None = BACKGROUND_TAG,
        deadline_in: float | None = None,
    ) -> Item:
        """An item for a Messages request ``params`` (not yet queued). Its rescue time is ``deadline_in`` (or
        ``give_up_after``) seconds from now, less the sync reserve; ``send`` is its fallback, ``convert`` turns
        a succeeded result into what its caller gets."""
        now, wall = self.clock.monotonic(), self.clock.now()
        deadline = self.settings.give_up_after if deadline_in is None else deadline_in
        return Item(
            id=new_ulid(wall),
            params=params,
            send=send,
            convert=convert,
            worker=worker,
            session_id=session_id,
            tag=tag,
            credential=credential,
            group=GroupKey(credential.fingerprint, PROVIDER, credential.workspace),
            model=model,
            size=params_size(params),
            enqueued_at=now,
            enqueued_wall=wall,
            rescue_at=now + deadline - self.settings.sync_reserve,
            future=asyncio.get_running_loop().create_future(),
        )

    def enqueue(self, item: Item) -> None:
        """Queue ``item`` (or send it to fallback at once if it can never make a batch in time)."""
        self.ensure_started()
        self.live[item.id] = item
        self.counters.total_queued += 1
        if not self.can_enter_batch(item, self.clock.monotonic()):
            self.fallback(item, None)
            return
        self.flusher.queue.put(item)
        self.flusher.wake.set()
        self.poller.wake.set()

    def fallback_now(self, item: Item) -> None:
        """Answer ``item`` through the fallback executor without queueing it (disabled or oversize calls)."""
        self.ensure_started()
        self.live[item.id] = item
        self.fallback(item, None)

    async def wait(self, item: Item) -> Any:
        """Await ``item``'s answer; a cancelled caller abandons the item."""
        try:
            return await asyncio.shield(item.future)
        except asyncio.CancelledError:
            self.abandon(item)
            raise

    def turnaround(self) -> float:
        """The batch turnaround to plan with: the 90th percentile of the recent observed turnarounds, never
        below ``min_turnaround``."""
        if not self.turnarounds:
            return self.settings.min_turnaround
        ordered = sorted(self.turnarounds)
        p90 = ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]
        return max(self.settings.min_turnaround, p90)

    def can_enter_batch(self, item: Item, now: float) -> bool:
        """Whether ``item`` still has time for a window and a batch turnaround before its rescue time."""
        return item.rescue_at - now >= self.settings.window + self.turnaround()

    def can_flush(self, item: Item, now: float) -> bool:
        """Whether ``item``, flushed now, still has time for a batch turnaround before its rescue time."""
        return item.rescue_at - now >= self.turnaround()

    # -- settling --------------------------------------------------------------------------------------------

    def settle(self, item: Item, state: ItemState) -> None:
        """Mark ``item`` finished in ``state`` and stop tracking it."""
        item.state = state
        self.live.pop(item.id, None)
        self.changed.set()

    async def deliver_batch(self, item: Item, batch_id: str, message: Message) -> None:
        """Deliver a succeeded result (logged at batch prices first)."""
        response = item.convert(message)
        await self.ledger.record_item(
            item, route="batch", status="ok", message=message, batch_id=batch_id, custom_id=item.custom_id
        )
        if item.future.done():
            self.settle(item, "abandoned")
            return
        item.future.set_result(response)
        self.counters.batched += 1
        self.settle(item, "delivered")

    def fail(self, item: Item, error: BaseException) -> None:
        """Fail ``item``'s caller with ``error``."""
        if item.future.done():
            self.settle(item, "abandoned")
            return
        item.future.set_exception(error)
        self.counters.failed += 1
        self.settle(item, "failed")

    def fallback(self, item: Item, cause: BaseException | None) -> None:
        """Answer ``item`` synchronously; ``cause`` (the batch-side failure) is chained under a fallback error."""
        if cause is not None and cause is not item.cause:
            item.cause = chain_cause(cause, item.cause)
        if item.future.done():
            self.settle(item, "abandoned")
            return
        self.flusher.queue.remove(item)
        item.state = "rescued"
        self.fallbacks.submit(
            item.id,
            item.send,
            done=lambda response: self.fallback_done(item, response),
            failed=lambda error: self.fallback_failed(item, error),
            abandoned=lambda: self._left(item),
        )

    async def _left(self, item: Item) -> bool:
        if item.future.done():
            self.settle(item, "abandoned")
            return True
        return False

    async def fallback_done(self, item: Item, response: Any) -> None:
        """A fallback answered (an ``LLMResponse`` or a ``Message``, as the item's facade sends)."""
        if isinstance(response, Message):
            usage, model = usage_from_api(response.usage), response.model
        else:
            usage, model = response.usage, response.model
        await self.ledger.record_item(
            item,
            route="fallback",
            status="ok",
            message=None,
            batch_id=None,
            custom_id=None,
            usage=usage,
            model=model,
        )
        if item.future.done():
            self.settle(item, "abandoned")
            return
        item.future.set_result(response)
        self.counters.fallback += 1
        self.settle(item, "delivered")

    async def fallback_failed(self, item: Item, error: BaseException) -> None:
        """A fallback failed: the caller gets its error, with the batch-side failure as its cause."""
        await self.ledger.record_item(
            item, route="fallback", status="error", message=None, batch_id=None, custom_id=None
        )
        logger.info("fallback of item %s failed: %s", item.id, type(error).__name__)
        self.fail(item, chain_cause(error, item.cause))

    def retry_or_fallback(self, item: Item, cause: BaseException) -> None:
        """Resubmit ``item`` in a later batch if attempts and its deadline allow; otherwise fall back."""
        now = self.clock.monotonic()
        if item.future.done():
            self.settle(item, "abandoned")
            return
        if (
            item.attempts < self.settings.max_attempts
            and self.can_enter_batch(item, now)
            and not self.closing
            and not self.disabled.blocks(item.credential, session_id=item.session_id)
        ):
            item.cause = chain_cause(cause, item.cause) if cause is not item.cause else cause
            self.counters.resubmitted += 1
            logger.info("item %s resubmitted (attempt %d next)", item.id, item.attempts + 1)
            self.flusher.queue.put(item)
            self.flusher.wake.set()
            return
        self.fallback(item, cause)

    def disable(self, items: list[Item], *, status_code: int | None, reason: str) -> None:
        """Put each credential of ``items``, and each (session, scheme) among them, on the disable list."""
        for group in group_by(items, lambda item: item.credential.fingerprint).values():
            sessions = sorted({item.session_id for item in group if item.session_id is not None})
            self.disabled.disable(
                group[0].credential, sessions=sessions, status_code=status_code, reason=reason
            )

    def abandon(self, item: Item) -> None:
        """The caller went away: a queued item is never submitted; a batch nobody waits on is cancelled."""
        if item.future.done():
            return
        item.future.cancel()
        previous = item.state
        self.flusher.queue.remove(item)
        self.settle(item, "abandoned")
        logger.info("item %s abandoned by its caller while %s", item.id, previous)
        if previous == "in_batch" and item.batch_id is not None:
            batch = self.poller.batches.get(item.batch_id)
            if batch is not None:
                self.check_waiters(batch)

    def check_waiters(self, batch: InFlightBatch) -> None:
        """Cancel ``batch`` upstream once no caller waits on it."""
        if batch.id not in self.poller.batches or batch.cancel_wanted or batch.waiting():
            return
        batch.cancel_wanted = True
        self.spawn(self.poller.cancel_upstream(batch), name="lore_batch.cancel")

    def rescue_due(self, now: float) -> float | None:
        """Fall back every queued or in-batch item past its rescue time; returns the next rescue time."""
        next_at: float | None = None
        touched: dict[str, InFlightBatch] = {}
        for item in list(self.live.values()):
            if item.state not in ("queued", "in_batch") or item.future.done():
                continue
            if item.rescue_at > now:
                next_at = item.rescue_at if next_at is None else min(next_at, item.rescue_at)
                continue
            logger.info("item %s reached its rescue time while %s: fallback", item.id, item.state)
            if item.state == "in_batch" and item.batch_id is not None:
                batch = self.poller.batches.get(item.batch_id)
                if batch is not None:
                    touched[batch.id] = batch
            self.fallback(item, None)
        for batch in touched.values():
            self.check_waiters(batch)
        return next_at

    # -- flush and close -------------------------------------------------------------------------------------

    async def flush(self) -> None:
        """Submit every queued item now and wait for those creates to finish (retries included)."""
        if self._loop is None or self.closing:
            return
        self.check_loop()
        tasks = self.flusher.flush_all()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    async def aclose(self, timeout: float | None = None) -> None:  # noqa: ASYNC109 - on the injected clock
        """Close (memory mode), bounded by ``timeout`` seconds on the engine clock; idempotent."""
        if self.closing:
            return
        self.closing = True
        if self._loop is None:
            self.closed = True
            return
        self.check_loop()
        shutdown = asyncio.ensure_future(drain(self))
        waits: set[asyncio.Future[Any]] = {shutdown}
        timer = asyncio.ensure_future(self.clock.sleep(timeout)) if timeout is not None else None
        if timer is not None:
            waits.add(timer)
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        if timer is not None:
            timer.cancel()
        if not shutdown.done():
            logger.warning("close timed out after %.1fs; abandoning what is left", timeout)
            shutdown.cancel()
            await asyncio.wait({shutdown})
            await cancel_unfinished(self)
        elif not shutdown.cancelled() and shutdown.exception() is not None:
            logger.error("close failed", exc_info=shutdown.exception())
        for item in list(self.live.values()):
            self.fail(item, BatchAbandoned(item.batch_id or NO_BATCH, item.custom_id or item.id))
        await self._tasks.cancel_all()
        self.closed = True

    def __repr__(self) -> str:
        return (
            f"Engine(queued={len(self.flusher.queue)}, inflight_batches={len(self.poller.batches)}, "
            f"closing={self.closing})"
        )
