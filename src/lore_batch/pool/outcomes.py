"""How a leader settles item rows: results, resubmits, fallbacks and rescues (BATCH.md 5.3, 5.4 on rows).

Every move is conditional on the state the item should be in, so a late line, a second leader or a rescue
racing a result never settles an item twice. A succeeded result is stored (with its cost in the request log)
before its owner is told; an outcome for an item that no longer waits on this batch is logged as
``batch_superseded`` and not stored.
"""

from __future__ import annotations

import dataclasses
import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

from anthropic.types import Message

from lore_batch.costlog import LogRoute, LogStatus, RequestLogEntry
from lore_batch.engine.items import chain_cause
from lore_batch.engine.ledger import BACKGROUND_TAG
from lore_batch.engine.poller import FIRST_POLL_GAP
from lore_batch.engine.results import AUTH_ERRORS, FINAL_ERRORS, ResultLine
from lore_batch.errors import BatchItemErrored
from lore_batch.usage import usage_from_api
from lore_core.llm import LLMResponse, Usage

from .records import StoredBatch, StoredItem, error_json, fallback_json, jsonb_safe

if TYPE_CHECKING:
    from .leader import Leader
    from .pool import DurablePool

__all__ = ["Outcomes", "ResultPass"]

logger = logging.getLogger(__name__)

# Succeeded result lines stored per transaction.
APPLY_CHUNK: Final = 500


class ResultPass:
    """One download of one batch: the items waiting on it, loaded once, and the succeeded results buffered
    until they are stored :data:`APPLY_CHUNK` at a time. Each download has its own (two batches of one
    credential may be read at the same moment)."""

    def __init__(self, outcomes: Outcomes, batch: StoredBatch, current: dict[str, StoredItem]) -> None:
        assert batch.id is not None
        self.outcomes = outcomes
        self.batch = batch
        self.batch_id: str = batch.id
        self.current = current
        self.pending: list[tuple[StoredItem, Message]] = []

    async def line(self, line: ResultLine, applied: set[str]) -> None:
        """Apply one result line (the first line per custom_id wins)."""
        if line.custom_id in applied:
            return
        applied.add(line.custom_id)
        outcomes, pool, batch_id = self.outcomes, self.outcomes.pool, self.batch_id
        item = self.current.get(line.custom_id)
        if item is None:
            item = await pool.store.item_by_custom_id(line.custom_id)
        if item is None:
            logger.warning("batch %s: result for unknown custom_id %s ignored", batch_id, line.custom_id)
            return
        if item.state != "in_batch" or item.batch_id != batch_id:
            if line.type == "succeeded" and line.message is not None:
                logger.info("batch %s: late result %s logged as batch_superseded", batch_id, line.custom_id)
                await outcomes.record(item, "batch_superseded", "ok", message=line.message, batch_id=batch_id)
            return
        if line.type == "succeeded" and line.message is not None:
            self.pending.append((item, line.message))
            if len(self.pending) >= APPLY_CHUNK:
                await self.flush(applied)
            return
        error = BatchItemErrored(
            line.custom_id, batch_id, line.error_type or line.type, line.error_message, line.request_id
        )
        status: LogStatus = (
            "errored" if line.type == "errored" else "expired" if line.type == "expired" else "canceled"
        )
        await outcomes.record(item, "batch", status, batch_id=batch_id)
        logger.info("batch %s: item %s %s (%s)", batch_id, line.custom_id, line.type, line.error_type or "-")
        if line.type == "errored" and line.error_type in FINAL_ERRORS:
            await outcomes.fail(item, error, expect=("in_batch",))
        elif line.type == "errored" and line.error_type in AUTH_ERRORS:
            pool.disable_items([item], status_code=None, reason=line.error_type or "refused")
            await outcomes.fallback(item, error, expect=("in_batch",))
        elif line.type == "canceled":
            await outcomes.fallback(item, error, expect=("in_batch",))
        else:
            await outcomes.retry_or_fallback(item, error)

    async def flush(self, applied: set[str]) -> None:
        """Store the buffered succeeded results (one transaction), log them at batch prices (one write) and
        wake their owners. A result whose item moved on meanwhile (a rescue) was paid for: it is logged as
        ``batch_superseded``. If the store fails, the lines count as not applied (read again later)."""
        pending, self.pending = self.pending, []
        if not pending:
            return
        pool = self.outcomes.pool
        now = pool.wall()
        rows = []
        for item, message in pending:
            usage = usage_from_api(message.usage, default_write_ttl="1h")
            values = {
                "state": "done",
                "result": jsonb_safe(message.model_dump(mode="json")),
                "usage": dataclasses.asdict(usage),
                "route": "batch",
                "finished_at": now,
                "updated_at": now,
            }
            rows.append((item.id, values))
        try:
            moved = await pool.store.finish_many(self.batch_id, rows)
        except BaseException:
            applied.difference_update(item.custom_id or "" for item, _ in pending)
            raise
        entries = [
            self.outcomes.entry(
                item, "batch" if item.id in moved else "batch_superseded", "ok", message=message,
                batch_id=self.batch_id,
            )
            for item, message in pending
        ]  # fmt: skip
        await pool.ledger.write(entries)
        for item, _ in pending:
            if item.id in moved:
                pool.finished(item)


class Outcomes:
    """Item-row transitions for one leader."""

    def __init__(self, pool: DurablePool, leader: Leader) -> None:
        self.pool = pool
        self.leader = leader

    # -- result lines ----------------------------------------------------------------------------------------

    async def start(self, batch: StoredBatch) -> ResultPass:
        """A download pass over ``batch``: the items waiting on it are loaded once (not one query per line)."""
        assert batch.id is not None
        items = await self.pool.store.items_in(self.leader.fp, ("in_batch",), batch_id=batch.id)
        return ResultPass(self, batch, {item.custom_id: item for item in items if item.custom_id is not None})

    async def all_missing(self, batch: StoredBatch, *, applied: set[str], reason: str) -> None:
        """Every item still ``in_batch`` under ``batch`` without an applied line is missing."""
        assert batch.id is not None
        for item in await self.pool.store.items_in(self.leader.fp, ("in_batch",), batch_id=batch.id):
            custom_id = item.custom_id or item.id
            if custom_id in applied:
                continue
            logger.info("batch %s: item %s %s", batch.id, custom_id, reason)
            await self.retry_or_fallback(item, BatchItemErrored(custom_id, batch.id, reason))

    # -- moves -----------------------------------------------------------------------------------------------

    def can_enter_batch(self, item: StoredItem, now: datetime) -> bool:
        """Whether ``item`` still has time for a window and a batch turnaround before its rescue time."""
        settings = self.pool.settings
        left = (item.deadline - now).total_seconds() - settings.sync_reserve
        return left >= settings.window + settings.min_turnaround

    async def retry_or_fallback(self, item: StoredItem, cause: BaseException) -> None:
        """Back to the queue if attempts and the deadline allow, else fallback."""
        pool = self.pool
        now = pool.wall()
        if (
            item.attempts < pool.settings.max_attempts
            and self.can_enter_batch(item, now)
            and not pool.closing
            and not pool.is_disabled(self.leader.channel.credential, item.session_id)
        ):
            moved = await pool.store.move(
                item.id, expect=("in_batch",), state="queued", batch_id=None, updated_at=now
            )
            if moved:
                pool.counters.resubmitted += 1
                if item.owner_id == pool.process_id:
                    pool.causes[item.id] = chain_cause(cause, pool.causes.get(item.id))
                logger.info("item %s resubmitted (attempt %d next)", item.id, item.attempts + 1)
            return
        await self.fallback(item, cause, expect=("in_batch",))

    async def fail(self, item: StoredItem, error: BaseException, *, expect: tuple[str, ...]) -> None:
        """Store ``error`` as the item's outcome."""
        pool = self.pool
        now = pool.wall()
        if await pool.store.move(
            item.id, expect=expect, state="failed", error=error_json(error), finished_at=now, updated_at=now
        ):
            # The typed error object can reach a caller of this process only.
            if item.owner_id == pool.process_id:
                pool.local_errors[item.id] = chain_cause(error, pool.causes.pop(item.id, None))
            pool.finished(item)

    async def fallback(
        self, item: StoredItem, cause: BaseException | None, *, expect: tuple[str, ...]
    ) -> bool:
        """Answer ``item`` synchronously (it becomes ``rescued`` while the call runs); whether it moved."""
        pool = self.pool
        if await pool.store.move(
            item.id, expect=expect, state="rescued", rescued_by=pool.process_id, updated_at=pool.wall()
        ):
            if cause is not None and item.owner_id == pool.process_id:  # causes matter only to a local caller
                pool.causes[item.id] = chain_cause(cause, pool.causes.get(item.id))
            self.start_fallback(item)
            return True
        return False

    def start_fallback(self, item: StoredItem) -> None:
        """Run the fallback of a ``rescued`` item."""
        pool = self.pool
        pool.running_fallbacks.add(item.id)

        async def done(response: LLMResponse) -> None:
            now = pool.wall()
            try:
                if await pool.store.move(
                    item.id, expect=("rescued",), state="done", result=jsonb_safe(fallback_json(response)),
                    usage=dataclasses.asdict(response.usage), route="fallback", finished_at=now, updated_at=now,
                ):  # fmt: skip
                    await self.record(item, "fallback", "ok", usage=response.usage, model=response.model)
                    pool.causes.pop(item.id, None)
                    pool.finished(item)
            finally:
                pool.running_fallbacks.discard(item.id)

        async def failed(error: BaseException) -> None:
            try:
                await self.record(item, "fallback", "error")
                logger.info("fallback of item %s failed: %s", item.id, type(error).__name__)
                await self.fail(item, error, expect=("rescued",))
            finally:
                pool.running_fallbacks.discard(item.id)

        async def abandoned() -> bool:
            return False  # durable: the answer is stored for the owner or a handler either way

        task = pool.fallbacks.submit(
            item.id, pool.fallbacks.prompt_sender(item.call), done=done, failed=failed, abandoned=abandoned
        )
        pool.fallback_tasks.add(task)
        task.add_done_callback(pool.fallback_tasks.discard)

    # -- rescues ---------------------------------------------------------------------------------------------

    async def rescue_queued(self, now: datetime) -> None:
        """Queued items without time left for a batch go to fallback."""
        settings = self.pool.settings
        threshold = now + timedelta(seconds=settings.sync_reserve + settings.window + settings.min_turnaround)
        for item in await self.pool.store.items_in(self.leader.fp, ("queued",), deadline_before=threshold):
            logger.info("item %s has no time left for a batch: fallback", item.id)
            await self.fallback(item, None, expect=("queued",))

    async def rescue_in_batch(self, now: datetime) -> float | None:
        """In-batch items past their rescue time go to fallback, once their batch has had a poll attempt by
        this leader (so results that ended while nobody led are used first); a batch nobody waits on any
        more is cancelled upstream. Returns seconds until the next rescue time."""
        pool, leader = self.pool, self.leader
        reserve = timedelta(seconds=pool.settings.sync_reserve)
        touched: dict[str, tuple[str, str | None]] = {}
        waiting_for_poll = False
        for item in await pool.store.items_in(leader.fp, ("in_batch",), deadline_before=now + reserve):
            if item.batch_id is None or item.batch_id not in leader.polled:
                waiting_for_poll = True
                continue
            logger.info("item %s reached its rescue time in batch %s: fallback", item.id, item.batch_id)
            if await self.fallback(item, None, expect=("in_batch",)) and item.submission_id is not None:
                touched[item.batch_id] = (item.submission_id, item.workspace)
        for batch_id, (submission_id, workspace) in touched.items():
            if not await pool.store.items_in(leader.fp, ("in_batch",), batch_id=batch_id):
                pool.spawn(
                    leader.cancel_upstream(batch_id, submission_id, workspace), name="lore_batch.pool.cancel"
                )
        if waiting_for_poll:
            return FIRST_POLL_GAP  # the batch's next poll comes first; no point waking every second
        soonest = await pool.store.min_deadline(leader.fp, "in_batch")
        if soonest is None:
            return None
        return max((soonest - reserve - now).total_seconds(), 1.0)

    # -- request log -----------------------------------------------------------------------------------------

    async def record(
        self,
        item: StoredItem,
        route: LogRoute,
        status: LogStatus,
        *,
        message: Message | None = None,
        batch_id: str | None = None,
        usage: Usage | None = None,
        model: str | None = None,
    ) -> None:
        """One request-log row for ``item``."""
        entry = self.entry(item, route, status, message=message, batch_id=batch_id, usage=usage, model=model)
        await self.pool.ledger.write([entry])

    def entry(
        self,
        item: StoredItem,
        route: LogRoute,
        status: LogStatus,
        *,
        message: Message | None = None,
        batch_id: str | None = None,
        usage: Usage | None = None,
        model: str | None = None,
    ) -> RequestLogEntry:
        """The request-log row for ``item``."""
        if message is not None:
            usage = usage_from_api(message.usage, default_write_ttl="1h")
            model = message.model
        extra: dict[str, Any] = {"batch_id": batch_id, "custom_id": item.custom_id} if batch_id else {}
        return self.pool.ledger.entry(
            route=route,
            status=status,
            model=model or item.model,
            usage=usage,
            tag=BACKGROUND_TAG,
            worker=item.worker,
            session_id=item.session_id,
            credential_fp=item.credential_fp,
            latency_ms=int((self.pool.wall() - item.enqueued_at).total_seconds() * 1000),
            **extra,
        )
