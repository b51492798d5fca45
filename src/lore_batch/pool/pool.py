"""The durable pool: queued calls and batches as rows, shared by every process on the same store (BATCH.md 6).

A process enqueues by inserting a row and awaits its answer. One loop per process does the rest:

- heartbeat its ``lore_batch_processes`` row (the credentials it holds and the workers it has handlers for);
- try to lead every credential it holds (:mod:`.leadership`); for each one it leads, a :class:`~.leader.Leader`
  flushes, polls, applies results and runs fallbacks for the items of *every* process;
- deliver its own finished rows: to the awaiting caller, else to the result handler of the item's worker,
  else the row stays ``done`` for a later start;
- hand finished rows of processes that are gone to its handlers, and fail queued items whose credential no
  live process has held for ``credential_wait`` (:class:`~lore_batch.errors.CredentialUnavailable`).

Close (``on_close="leave"``) leaves queued items and in-flight batches for the next start, fails live callers
with :class:`~lore_batch.errors.ClientClosed`, releases leadership and marks the process stopped.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import socket
import uuid
from collections.abc import Awaitable, Coroutine
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import anthropic

from lore_batch.auth import AuthCredential
from lore_batch.clock import Clock
from lore_batch.costlog import CostLog
from lore_batch.engine.channels import Channels
from lore_batch.engine.disable import DisableList
from lore_batch.engine.fallback import FallbackExecutor
from lore_batch.engine.items import PromptCall, build_params, new_ulid, params_size
from lore_batch.engine.ledger import BACKGROUND_TAG, PROVIDER, Ledger
from lore_batch.engine.poller import poll_gap
from lore_batch.engine.settings import EngineCounters, EngineSettings
from lore_batch.engine.tasks import TaskSet
from lore_batch.engine.waits import sleep_or_wake
from lore_batch.errors import BatchError, ClientClosed, HandlerRetry
from lore_batch.limits import CircuitBreaker
from lore_batch.pricing import PricingCatalog
from lore_core.llm import LLMClient, LLMResponse
from lore_core.store.migrate import ensure_schema

from .leader import Leader
from .leadership import Leadership, make_leadership
from .records import (
    FINISHED,
    HandledResult,
    ResultHandler,
    StoredItem,
    call_to_json,
    decode_error,
    decode_response,
)
from .settings import PoolSettings
from .store import PoolStore, ProcessRow

__all__ = ["CredentialSource", "DurablePool"]

logger = logging.getLogger(__name__)

# Seconds of clock difference between hosts that a delivery pass tolerates (rows read since the last pass minus
# this); a full pass every ``stale_after`` catches anything older.
DELIVERY_CLOCK_MARGIN = 5.0
# Seconds (pool clock) a close waits for the loop's pass in progress to finish.
CLOSE_PASS_BOUND = 10.0


class CredentialSource(Protocol):
    """What the pool needs from a registry to resume batches: the credentials it holds, by fingerprint."""

    def fingerprints(self) -> set[str]: ...

    def credential(self, fp: str) -> AuthCredential | None: ...


class DurablePool:
    """Queue, flush, poll and deliver through the store; see the module docstring."""

    def __init__(
        self,
        inner: LLMClient,
        client: anthropic.AsyncAnthropic,
        *,
        store: PoolStore,
        settings: EngineSettings,
        pool_settings: PoolSettings,
        clock: Clock,
        rng: random.Random,
        own_credential: AuthCredential | None,
        registry: object | None,
        cost_log: CostLog,
        breaker: CircuitBreaker,
        catalog: PricingCatalog | None = None,
        fallbacks: FallbackExecutor | None = None,
        disabled: DisableList | None = None,
    ) -> None:
        self.store = store
        self.settings = settings
        self.pool_settings = pool_settings
        self.clock = clock
        self.rng = rng
        self.channels = Channels(client, own=own_credential, batch_rpm=settings.batch_rpm, clock=clock)
        self.disabled = disabled or DisableList(clock=clock, ttl=settings.disable_ttl)
        self.ledger = Ledger(cost_log, catalog=catalog or PricingCatalog.default(), clock=clock)
        self.fallbacks = fallbacks or FallbackExecutor(
            inner, limit=settings.fallback_concurrency, breaker=breaker, spawn=self.spawn
        )
        self.counters = EngineCounters()
        self.process_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.leadership: Leadership = make_leadership(
            store, holder=self.process_id, lease_ttl=pool_settings.lease_ttl
        )
        self.registry = registry
        self.credentials: dict[str, AuthCredential] = {}
        if own_credential is not None:
            self.credentials[own_credential.fingerprint] = own_credential
        self.handlers: dict[str, ResultHandler] = {}
        self.waiters: dict[str, asyncio.Future[LLMResponse]] = {}
        self.leaders: dict[str, Leader] = {}
        self.local_errors: dict[str, BaseException] = {}
        self.causes: dict[str, BaseException] = {}
        self.running_fallbacks: set[str] = set()
        # Fallback tasks of this pool's items (they run in the shared executor): close settles them before it
        # gives up leadership, so no next leader runs one of them a second time while it is still running.
        self.fallback_tasks: set[asyncio.Task[None]] = set()
        self.own_creates: set[str] = set()
        self.parked: set[str] = set()
        # item id -> (monotonic time to call its handler again, first deferral) after a HandlerRetry
        self.deferred: dict[str, tuple[float, float]] = {}
        self.wake = asyncio.Event()
        on_register = getattr(registry, "on_register", None)
        if callable(
            on_register
        ):  # a credential registered again: try to lead it (and resume its batches) now
            on_register(lambda _fp: self.wake.set())
        self.closing = False
        self.closed = False
        self.flushing_all = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._start_lock = asyncio.Lock()
        self._started = False
        self._main: asyncio.Task[None] | None = None
        self._tasks = TaskSet()
        self._lock_due: dict[str, float] = {}
        self._pending: tuple[list[dict[str, Any]], asyncio.Future[None]] | None = None
        self._next_heartbeat = 0.0
        self._next_sweep = 0.0
        self._next_full_delivery = 0.0
        self._delivered_since = datetime.fromtimestamp(0, tz=UTC)

    # -- lifecycle -------------------------------------------------------------------------------------------

    def wall(self) -> datetime:
        """The clock's wall time as an aware UTC datetime."""
        return datetime.fromtimestamp(self.clock.now(), tz=UTC)

    def check_loop(self) -> None:
        """Raise :class:`BatchError` when called from a loop other than the one the pool started in."""
        if self._loop is not None and self._loop is not asyncio.get_running_loop():
            raise BatchError("this batch client is bound to another event loop")

    async def start(self) -> None:
        """Check the schema, register this process and start the loop (once).

        Raises:
            SchemaOutOfDateError: the store is behind the code (run ``lore db upgrade``).
            StoreError: the database failed.
        """
        self.check_loop()
        if self._started:
            return
        async with self._start_lock:
            if not self._started:
                await self._start()

    async def _start(self) -> None:
        self._loop = asyncio.get_running_loop()
        await ensure_schema(self.store.engine, auto_migrate=False)
        row = ProcessRow(
            id=self.process_id,
            host=socket.gethostname(),
            pid=os.getpid(),
            credential_fps=tuple(sorted(self.known_fps())),
            workers=tuple(sorted(self.handlers)),
            heartbeat_at=self.wall(),
            stopped_at=None,
        )
        await self.store.register_process(row, now=self.wall())
        self._next_heartbeat = self.clock.monotonic() + self.pool_settings.heartbeat
        self._main = self.spawn(self._run(), name="lore_batch.pool")
        self._started = True
        logger.info("durable pool process %s started", self.process_id)

    def spawn(self, coro: Coroutine[Any, Any, Any], *, name: str) -> asyncio.Task[Any]:
        """Run ``coro`` as a background task of this pool; a failure is logged and kept."""
        return self._tasks.spawn(coro, name=name)

    @property
    def background_errors(self) -> list[BaseException]:
        """Failures of background tasks and of loop passes, oldest first."""
        return self._tasks.errors

    # -- credentials -----------------------------------------------------------------------------------------

    def known_fps(self) -> set[str]:
        """The credentials this process holds: its own, those it enqueued with, and its registry's."""
        found = set(self.credentials)
        fingerprints = getattr(self.registry, "fingerprints", None)
        if callable(fingerprints):
            found |= set(fingerprints())
        return found

    def credential_for(self, fp: str) -> AuthCredential | None:
        """The credential with fingerprint ``fp``, if this process holds it."""
        credential = self.credentials.get(fp)
        if credential is None:
            lookup = getattr(self.registry, "credential", None)
            credential = lookup(fp) if callable(lookup) else None
        return credential if isinstance(credential, AuthCredential) else None

    def is_disabled(self, credential: AuthCredential, session_id: str | None) -> bool:
        """Whether batching is off for this credential or (session, scheme)."""
        return self.disabled.blocks(credential, session_id=session_id)

    def disable_items(self, items: list[StoredItem], *, status_code: int | None, reason: str) -> None:
        """Put the items' credential, and each (session, scheme) among them, on the disable list."""
        for fp in {item.credential_fp for item in items}:
            credential = self.credential_for(fp)
            if credential is None:
                continue
            sessions = sorted(
                {i.session_id for i in items if i.credential_fp == fp and i.session_id is not None}
            )
            self.disabled.disable(credential, sessions=sessions, status_code=status_code, reason=reason)

    def poll_gap(self, polls: int) -> float:
        """Seconds before the poll that follows ``polls`` earlier polls."""
        return poll_gap(polls, cap=self.settings.poll_cap, jitter=self.settings.jitter, rng=self.rng)

    # -- items in --------------------------------------------------------------------------------------------

    async def enqueue(
        self, call: PromptCall, *, credential: AuthCredential, model: str, max_tokens: int
    ) -> tuple[str, asyncio.Future[LLMResponse]]:
        """Insert a queued row for ``call`` (snapshotting its credential's fingerprint) and return its id and
        the future its answer will resolve."""
        await self.start()
        if self.closing:
            raise ClientClosed("client is closing")
        params = build_params(call, model=model, max_tokens=max_tokens)
        now = self.wall()
        item_id = new_ulid(self.clock.now())
        self.credentials[credential.fingerprint] = credential
        future: asyncio.Future[LLMResponse] = asyncio.get_running_loop().create_future()
        self.waiters[item_id] = future
        try:
            await self._insert(
                {
                    "id": item_id,
                    "credential_fp": credential.fingerprint,
                    "provider": PROVIDER,
                    "workspace": credential.workspace,
                    "model": model,
                    "facade": "client",
                    "worker": call.worker,
                    "tag": BACKGROUND_TAG,
                    "session_id": call.session_id,
                    "params": params,
                    "call": call_to_json(call),
                    "params_bytes": params_size(params),
                    "deadline": now + timedelta(seconds=self.settings.give_up_after),
                    "state": "queued",
                    "owner_id": self.process_id,
                    "enqueued_at": now,
                    "updated_at": now,
                }
            )
        except BaseException:
            self.waiters.pop(item_id, None)
            raise
        self.counters.total_queued += 1
        self.wake.set()
        return item_id, future

    async def _insert(self, row: dict[str, Any]) -> None:
        """Insert ``row`` together with every other row enqueued in the same turn of the loop (one transaction
        for the calls of one ``asyncio.gather``); each caller gets the transaction's error, if any."""
        batch = self._pending
        if batch is None:
            batch = self._pending = ([], asyncio.get_running_loop().create_future())
            self.spawn(self._insert_pending(batch), name="lore_batch.pool.insert")
        batch[0].append(row)
        await asyncio.shield(batch[1])

    async def _insert_pending(self, batch: tuple[list[dict[str, Any]], asyncio.Future[None]]) -> None:
        rows, done = batch
        await asyncio.sleep(0)  # callers scheduled in this turn join the same insert
        self._pending = None
        try:
            await self.store.insert_items(rows)
        except asyncio.CancelledError:
            done.cancel()
            raise
        except Exception as exc:  # noqa: BLE001 - every caller of this insert gets the error
            done.set_exception(exc)
            done.exception()  # retrieved here too: every caller already holds it
        else:
            done.set_result(None)

    async def wait(
        self, item_id: str, future: asyncio.Future[LLMResponse], *, worker: str | None
    ) -> LLMResponse:
        """Await ``item_id``'s answer. A cancelled caller leaves its item to its worker's handler when there
        is one; otherwise a still-queued item is withdrawn and never submitted."""
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            self.waiters.pop(item_id, None)
            if worker not in self.handlers:
                now = self.wall()
                withdrawn = await asyncio.shield(
                    self.store.move(
                        item_id,
                        expect=("queued",),
                        state="delivered",
                        error={"kind": "abandoned"},
                        finished_at=now,
                        delivered_at=now,
                        updated_at=now,
                    )
                )
                logger.info(
                    "item %s abandoned by its caller (%s)", item_id, "withdrawn" if withdrawn else "kept"
                )
            raise

    def finished(self, item: StoredItem) -> None:
        """An item's outcome is stored: wake the delivery pass if this process owns it."""
        if item.owner_id == self.process_id:
            self.wake.set()
        else:
            self.causes.pop(item.id, None)

    # -- the loop --------------------------------------------------------------------------------------------

    async def _run(self) -> None:
        while not self.closing:
            self.wake.clear()
            try:
                wait = await self._tick()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.background_errors.append(exc)
                logger.exception("durable pool pass failed; trying again")
                wait = self.pool_settings.lock_retry
            await sleep_or_wake(self.clock, wait, self.wake)

    async def _tick(self) -> float:
        ps = self.pool_settings
        now = self.clock.monotonic()
        waits = [ps.delivery_interval]
        if now >= self._next_heartbeat:
            await self.store.heartbeat(
                self.process_id, fps=self.known_fps(), workers=self.handlers, now=self.wall()
            )
            self._next_heartbeat = now + ps.heartbeat
        waits.append(self._next_heartbeat - now)
        await self._lead(now, waits)
        for fp, leader in list(self.leaders.items()):
            try:
                wait = await leader.step()
            except Exception as exc:  # one credential's trouble must not stop the others or delivery
                self.background_errors.append(exc)
                logger.exception("pass for credential %s failed; trying again", fp)
                wait = ps.lock_retry
            if wait is not None:
                waits.append(wait)
        deferred = await self._deliver()
        if deferred is not None:
            waits.append(deferred)
        if now >= self._next_sweep:
            await self._expire_unheld()
            await self._orphans()
            self._next_sweep = now + ps.lock_retry
        waits.append(self._next_sweep - now)
        return max(min(waits), 0.0)

    async def _lead(self, now: float, waits: list[float]) -> None:
        ps = self.pool_settings
        for fp in sorted(self.known_fps()):
            due = self._lock_due.get(fp, 0.0)
            if now >= due:
                held = await self.leadership.hold(fp, now=self.wall())
                leader = self.leaders.get(fp)
                if held and leader is None:
                    credential = self.credential_for(fp)
                    if credential is None:
                        await self.leadership.release(fp)
                        held = False
                    else:
                        leader = Leader(self, self.channels.get(credential))
                        await leader.resume()  # registered only once resumed: a failed resume is retried
                        self.leaders[fp] = leader
                elif not held and leader is not None:
                    logger.warning("lost the lead of credential %s", fp)
                    del self.leaders[fp]
                due = now + (ps.heartbeat if held else ps.lock_retry)
                self._lock_due[fp] = due
            waits.append(due - now)

    # -- delivery --------------------------------------------------------------------------------------------

    async def _deliver(self) -> float | None:
        now = self.clock.monotonic()
        # Rows changed since the last pass (less a margin for other hosts' clocks); a full pass now and then,
        # so parked rows are not re-read every second.
        wall = self.wall()
        deferred_due = any(at <= now for at, _ in self.deferred.values())
        full = now >= self._next_full_delivery or deferred_due  # a put-off row changed long ago
        since = None if full else self._delivered_since - timedelta(seconds=DELIVERY_CLOCK_MARGIN)
        if full:
            self._next_full_delivery = now + self.pool_settings.stale_after
        self._delivered_since = wall
        rows = await self.store.finished_for(self.process_id, since=since)
        if full:  # put-off rows that are no longer ours to deliver (taken over, delivered) are forgotten
            present = {item.id for item in rows}
            for item_id in [i for i in self.deferred if i not in present]:
                del self.deferred[item_id]
        resolved: list[str] = []
        try:
            for item in rows:
                if item.id in self.parked or self.deferred.get(item.id, (0.0, 0.0))[0] > now:
                    continue
                try:
                    await self._deliver_one(item, resolved)
                except Exception as exc:  # one unreadable row must not stop every delivery
                    self.background_errors.append(exc)
                    logger.exception("delivery of item %s failed; it is set aside", item.id)
                    self.parked.add(item.id)
        finally:
            if resolved:
                try:
                    await self.store.mark_delivered(resolved, now=self.wall())
                except Exception:
                    # Their callers have their answers: never hand these rows to a handler as well.
                    self.parked.update(resolved)
                    raise
        later = [at for at, _ in self.deferred.values() if at > now]
        return min(later) - now if later else None

    async def _deliver_one(self, item: StoredItem, resolved: list[str]) -> None:
        future = self.waiters.pop(item.id, None)
        if future is not None and not future.done():
            self._resolve(future, item)
            resolved.append(item.id)
        elif item.worker is not None and item.worker in self.handlers:
            await self._handle(item, self.handlers[item.worker])
        else:
            self.parked.add(item.id)  # stays done until a process with a handler for it starts

    def _outcome(self, item: StoredItem) -> LLMResponse | BaseException:
        if item.state == "done" and item.result is not None:
            return decode_response(item.route, item.result)
        local = self.local_errors.pop(item.id, None)
        return local if local is not None else decode_error(item.id, item.error or {})

    def _resolve(self, future: asyncio.Future[LLMResponse], item: StoredItem) -> None:
        outcome = self._outcome(item)
        if isinstance(outcome, BaseException):
            future.set_exception(outcome)
            self.counters.failed += 1
        else:
            future.set_result(outcome)
            if outcome.route == "batch":
                self.counters.batched += 1
            else:
                self.counters.fallback += 1

    async def _delivered(self, item: StoredItem) -> None:
        now = self.wall()
        await self.store.move(item.id, expect=FINISHED, state="delivered", delivered_at=now, updated_at=now)

    async def _handle(self, item: StoredItem, handler: ResultHandler) -> None:
        outcome = self._outcome(item)
        result = HandledResult(
            item_id=item.id,
            worker=item.worker,
            session_id=item.session_id,
            call=item.call,
            response=None if isinstance(outcome, BaseException) else outcome,
            error=outcome if isinstance(outcome, BaseException) else None,
        )
        try:
            await handler(result)
        except HandlerRetry as retry:
            now = self.clock.monotonic()
            first = self.deferred.get(item.id, (now, now))[1]
            if now - first < self.pool_settings.handler_defer_limit:
                self.deferred[item.id] = (now + max(retry.after, 0.0), first)
                logger.info(
                    "handler for worker %s put item %s off by %.0fs", item.worker, item.id, retry.after
                )
                return
            logger.warning("handler for worker %s kept putting item %s off: giving up", item.worker, item.id)
            self.deferred.pop(item.id, None)
            await self.store.move(item.id, expect=FINISHED, state="handler_failed", updated_at=self.wall())
            return
        except Exception:
            attempts = item.handler_attempts + 1
            final = attempts >= self.pool_settings.handler_attempts
            logger.exception(
                "handler for worker %s failed on item %s (attempt %d)", item.worker, item.id, attempts
            )
            await self.store.move(
                item.id,
                expect=FINISHED,
                handler_attempts=attempts,
                updated_at=self.wall(),
                **({"state": "handler_failed"} if final else {}),
            )
            self.parked.add(item.id)
            return
        self.deferred.pop(item.id, None)
        await self._delivered(item)
        logger.info("item %s handed to the %s handler", item.id, item.worker)

    async def live_process_ids(self) -> set[str]:
        """Ids of the processes alive now (this one included)."""
        return {p.id for p in await self._live_processes()} | {self.process_id}

    async def _live_processes(self) -> list[ProcessRow]:
        cutoff = self.wall() - timedelta(seconds=self.pool_settings.stale_after)
        return [p for p in await self.store.processes() if p.stopped_at is None and p.heartbeat_at >= cutoff]

    async def _orphans(self) -> None:
        if not self.handlers:
            return
        live = [p.id for p in await self._live_processes()]
        if self.process_id not in live:
            live.append(self.process_id)
        for item in await self.store.orphans(live, sorted(self.handlers)):
            if item.worker is None or item.handler_attempts >= self.pool_settings.handler_attempts:
                continue
            taken = await self.store.move(
                item.id,
                expect=FINISHED,
                where_owner=item.owner_id,
                owner_id=self.process_id,
                updated_at=self.wall(),
            )
            if taken:
                logger.info("took over finished item %s of gone process %s", item.id, item.owner_id)
                await self._handle(item, self.handlers[item.worker])

    async def _expire_unheld(self) -> None:
        held = set(self.known_fps())
        for process in await self._live_processes():
            held |= set(process.credential_fps)
        now = self.wall()
        older = now - timedelta(seconds=self.pool_settings.credential_wait)
        for item_id, fp, _ in await self.store.expire_unheld(sorted(held), older_than=older, now=now):
            logger.warning("item %s expired: no live process holds credential %s", item_id, fp)
            if item_id in self.waiters:
                self.wake.set()

    # -- flush and close -------------------------------------------------------------------------------------

    async def flush(self) -> None:
        """Submit every queued item of the credentials this process leads now (and wait for the creates)."""
        if not self._started or self.closing:
            return
        self.check_loop()
        self.flushing_all = True
        try:
            for leader in list(self.leaders.values()):
                await leader.step()
            tasks = [task for leader in self.leaders.values() for task in leader.create_tasks]
            await asyncio.gather(*tasks, return_exceptions=True)
        finally:
            self.flushing_all = False

    async def aclose(self, timeout: float | None = None) -> None:  # noqa: ASYNC109 - on the injected clock
        """Close: queued items stay (or are flushed first with ``on_close="flush"``), in-flight batches are
        left to resume, live callers get :class:`ClientClosed`, leadership is released."""
        if self.closed:
            return
        if not self._started:
            self.closing = self.closed = True
            return
        self.check_loop()
        bound = CLOSE_PASS_BOUND if timeout is None else timeout
        if self.pool_settings.on_close == "flush" and not self.closing:
            await self._within(self.flush(), bound)
        self.closing = True
        self.wake.set()
        if self._main is not None:
            # Let the pass in progress finish (a delivery half done would hand an item to a handler twice).
            await self._within(asyncio.shield(self._main), bound)
        if self.fallback_tasks:
            # Running fallbacks finish (their answers are stored) or are cancelled (their rows stay "rescued"
            # for the next leader) before leadership is given up.
            await self._within(asyncio.gather(*self.fallback_tasks, return_exceptions=True), bound)
            for task in list(self.fallback_tasks):
                task.cancel()
            await asyncio.gather(*self.fallback_tasks, return_exceptions=True)
        await self._tasks.cancel_all()
        for item_id, future in list(self.waiters.items()):
            if not future.done():
                future.set_exception(ClientClosed(f"client closed; item {item_id} stays in the store"))
        self.waiters.clear()
        try:
            await self.leadership.close()
            await self.store.stop_process(self.process_id, now=self.wall())
        finally:
            self.closed = True
        logger.info("durable pool process %s stopped", self.process_id)

    async def _within(self, awaitable: Awaitable[Any], seconds: float) -> None:
        """Await ``awaitable`` for at most ``seconds`` on the pool clock (then cancel it)."""
        work = asyncio.ensure_future(awaitable)
        timer = asyncio.ensure_future(self.clock.sleep(seconds))
        waits: set[asyncio.Future[Any]] = {work, timer}
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        timer.cancel()
        if not work.done():
            work.cancel()
        await asyncio.gather(work, timer, return_exceptions=True)

    def __repr__(self) -> str:
        return (
            f"DurablePool(process={self.process_id!r}, leading={sorted(self.leaders)}, "
            f"waiters={len(self.waiters)}, closing={self.closing})"
        )
