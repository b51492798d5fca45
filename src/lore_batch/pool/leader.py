"""The work of the process that leads one credential (BATCH.md 5, 6.1, 6.4), on rows instead of objects.

A leader flushes the credential's due groups (claims in one transaction, then a two-phase create), polls its
batches, applies their results to the item rows, resubmits or falls back, rescues items at their deadline and
runs the fallbacks. When it takes over (a start, a restart, a hand-over) it first settles what a previous
leader left: ``creating`` batch rows get the adoption check (or their items go back to the queue) and
``rescued`` items whose fallback died are answered again. Items are resubmitted only after a definite outcome,
so nothing is submitted twice; a result is stored before anyone is told.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

import anthropic
from anthropic.types.messages import MessageBatch

from lore_batch.engine.channels import DOWNLOAD_TOKENS, Channel, describe_api_error
from lore_batch.engine.flusher import (
    ADOPTION_LIST_LIMIT,
    CREATE_ATTEMPTS,
    CREATE_WAITS,
    MAX_CREATE_RETRY_AFTER,
    adoption_candidates,
)
from lore_batch.engine.items import new_ulid
from lore_batch.engine.poller import FIRST_POLL_GAP, MAX_POLL_RETRY_AFTER
from lore_batch.engine.results import DOWNLOAD_ATTEMPTS, DOWNLOAD_WAITS, stream_results
from lore_batch.limits import RETRYABLE_STATUSES, parse_retry_after
from lore_core.errors import StoreError
from lore_core.store.models import BatchRecord

from .outcomes import Outcomes
from .records import StoredBatch, StoredItem

if TYPE_CHECKING:
    from .pool import DurablePool

__all__ = ["Leader"]

logger = logging.getLogger(__name__)

_UNFINISHED: Final = ("in_progress", "canceling")
# Attempts (and the wait step, in seconds) to record a batch the provider made before leaving it to adoption.
RECORD_ATTEMPTS: Final = 5
RECORD_WAIT: Final = 2.0


class Leader:
    """What the leading process does for credential ``channel.credential``."""

    def __init__(self, pool: DurablePool, channel: Channel) -> None:
        self.pool = pool
        self.channel = channel
        self.fp = channel.credential.fingerprint
        self.outcomes = Outcomes(pool, self)
        self.polling: set[str] = set()
        self.polled: set[str] = set()  # batches polled since this process took the lead
        self.create_tasks: set[asyncio.Task[None]] = set()
        self.unfinished_batches = 0
        self.unfinished_requests = 0
        self.left_unsettled = False  # creating rows of a dead leader still to adopt or requeue
        self.next_settle = pool.clock.monotonic() + pool.pool_settings.stale_after  # resume() just settled
        self.seen_ids: set[str] = (
            set()
        )  # provider ids of creates that answered here (before their row says so)
        self.made: set[str] = set()  # submissions whose create the provider answered (never fall back)

    # -- taking over -----------------------------------------------------------------------------------------

    async def resume(self) -> None:
        """Settle what an earlier leader left: adopt or requeue its ``creating`` batches, rerun its dead
        fallbacks. Rows of a process that is still alive (a hand-over while it runs) are left to it."""
        await self.settle_left()
        logger.info("leading credential %s", self.fp)

    async def settle_left(self) -> None:
        """One pass of the takeover work; a failed batch list leaves ``creating`` rows for the next pass."""
        pool = self.pool
        live = await pool.live_process_ids()
        creating = [
            b
            for b in await pool.store.batches(self.fp, ("creating",))
            if b.submission_id not in pool.own_creates and b.process_id not in live
        ]
        self.left_unsettled = False
        for workspace in sorted({b.workspace or "" for b in creating}):
            rows = [b for b in creating if (b.workspace or "") == workspace]
            if not await self._adopt_left(rows, workspace or None):
                self.left_unsettled = True
        for item in await pool.store.items_in(self.fp, ("rescued",)):
            if item.id in pool.running_fallbacks or (
                item.rescued_by in live and item.rescued_by != pool.process_id
            ):
                continue
            logger.info("item %s was being answered synchronously by a process now gone: again", item.id)
            self.outcomes.start_fallback(item)

    async def _adopt_left(self, rows: list[StoredBatch], workspace: str | None) -> bool:
        """Adopt the batch each row made, or requeue its items; ``False`` when the list failed (nothing done:
        without the list, "nothing was made" cannot be told from "we could not look")."""
        store, now = self.pool.store, self.pool.wall()
        page = await self._list(workspace)
        if page is None:
            logger.warning("cannot check %d batch row(s) left in creating now; will look again", len(rows))
            return False
        tracked = {
            b.id for b in await store.batches(self.fp, ("in_progress", "canceling", "ended", "lost")) if b.id
        }
        tracked |= self.seen_ids
        for row in rows:
            found = adoption_candidates(
                page, tracked=tracked, since=row.created_at.timestamp(), count=row.request_count
            )
            if len(found) == 1:
                logger.warning("adopted batch %s left in creating by an earlier leader", found[0].id)
                tracked.add(found[0].id)
                await self._created(row.submission_id, found[0], workspace=workspace)
            else:
                logger.info(
                    "batch row %s left in creating made nothing: its items return to the queue",
                    row.submission_id,
                )
                await store.batch_failed(row.submission_id, error="left in creating", requeue=True, now=now)
        return True

    # -- one pass --------------------------------------------------------------------------------------------

    async def step(self) -> float | None:
        """Flush due groups, fire rescues and start due polls; returns seconds until this needs a pass."""
        pool = self.pool
        settings = pool.settings
        now = pool.wall()
        waits: list[float] = []
        tick = pool.clock.monotonic()
        if self.left_unsettled or tick >= self.next_settle:
            # Now and then (and while a takeover check is pending) look for rows nobody works on: creating
            # rows of dead processes, fallbacks whose process (or whose task here) is gone.
            self.next_settle = tick + pool.pool_settings.stale_after
            await self.settle_left()
            if self.left_unsettled:
                waits.append(FIRST_POLL_GAP)
        await self.outcomes.rescue_queued(now)
        for group in await pool.store.queued_groups(self.fp):
            due_in = (group.oldest + timedelta(seconds=settings.window) - now).total_seconds()
            if group.count >= settings.flush_now or due_in <= 0 or pool.flushing_all:
                claimed = await self.flush(group.workspace, now=now)
                more = claimed and group.count > settings.max_requests
                # Nothing claimed: the in-flight cap is full; look again after a poll pass, not in a spin.
                waits.append(0.0 if more else settings.window if claimed else FIRST_POLL_GAP)
            else:
                waits.append(due_in)
        rescue_in = await self.outcomes.rescue_in_batch(now)
        if rescue_in is not None:
            waits.append(rescue_in)
        unfinished = await pool.store.batches(self.fp, _UNFINISHED)
        self.unfinished_batches = len(unfinished)
        self.unfinished_requests = sum(batch.request_count for batch in unfinished)
        for batch in unfinished:
            if batch.submission_id in self.polling:
                continue
            poll_in = (batch.next_poll_at - now).total_seconds() if batch.next_poll_at is not None else 0.0
            if poll_in <= 0:
                self.polling.add(batch.submission_id)
                pool.spawn(self._poll(batch), name="lore_batch.pool.poll")
            else:
                waits.append(poll_in)
        return min(waits, default=None)

    async def flush(self, workspace: str | None, *, now: datetime) -> bool:
        """Claim up to one batch of (credential, workspace) and start its create; whether it claimed any."""
        pool = self.pool
        settings = pool.settings
        room = settings.max_inflight_requests - await pool.store.inflight_requests(self.fp)
        if room <= 0:
            logger.info("credential %s is at its in-flight cap: its queue waits", self.fp)
            return False
        submission_id = new_ulid(pool.clock.now())
        items = await pool.store.claim(
            self.fp,
            workspace,
            limit=min(settings.max_requests, room),
            max_bytes=settings.max_bytes,
            submission_id=submission_id,
            provider="anthropic",
            process_id=pool.process_id,
            now=now,
        )
        if items:
            pool.own_creates.add(submission_id)
            task = pool.spawn(
                self._create_guarded(submission_id, items, workspace), name="lore_batch.pool.create"
            )
            self.create_tasks.add(task)
            task.add_done_callback(self.create_tasks.discard)
        return bool(items)

    # -- create ----------------------------------------------------------------------------------------------

    async def _create_guarded(
        self, submission_id: str, items: list[StoredItem], workspace: str | None
    ) -> None:
        try:
            await self._create(submission_id, items, workspace)
        except Exception as exc:
            if submission_id in self.made:
                # The provider has the batch: never answer its items twice. The row stays "creating"; the
                # next takeover (or this leader's next settle pass) adopts it from the list.
                logger.exception("batch create %s answered but could not be recorded", submission_id)
                self.left_unsettled = True
            else:
                logger.exception("batch create %s failed unexpectedly; its items fall back", submission_id)
                await self._give_up_create(submission_id, items, exc)
        finally:
            self.made.discard(submission_id)
            self.pool.own_creates.discard(submission_id)
            self.pool.wake.set()

    async def _create(self, submission_id: str, items: list[StoredItem], workspace: str | None) -> None:
        pool, clock = self.pool, self.pool.clock
        last_error: BaseException | None = None
        for attempt in range(1, CREATE_ATTEMPTS + 1):
            started = clock.now()
            retry_after: float | None = None
            try:
                await self.channel.bucket.acquire(1)
                requests: Any = [{"custom_id": item.custom_id, "params": item.params} for item in items]
                created = await self.channel.client.messages.batches.create(
                    requests=requests, workspace_id=workspace or anthropic.omit
                )
            except anthropic.APIStatusError as exc:
                last_error = exc
                logger.warning(
                    "batch create failed: credential=%s requests=%d attempt=%d %s",
                    self.fp, len(items), attempt, describe_api_error(exc),
                )  # fmt: skip
                if exc.status_code == 413 and len(items) > 1:
                    await self._halve(submission_id, items, workspace)
                    return
                if exc.status_code in (401, 403):
                    pool.disable_items(items, status_code=exc.status_code, reason=str(exc.type or "refused"))
                if not (exc.status_code in RETRYABLE_STATUSES or exc.status_code >= 500):
                    await self._give_up_create(submission_id, items, exc)
                    return
                retry_after = parse_retry_after(exc.response.headers, now=clock.now())
            except anthropic.APIConnectionError as exc:
                last_error = exc
                logger.warning("batch create ambiguous: credential=%s %s", self.fp, describe_api_error(exc))
                adopted = await self._adopt(len(items), workspace, started=started)
                if adopted is not None:
                    await self._created(submission_id, adopted, workspace=workspace)
                    return
            else:
                await self._created(submission_id, created, workspace=workspace)
                return
            if attempt < CREATE_ATTEMPTS:
                asked = min(retry_after, MAX_CREATE_RETRY_AFTER) if retry_after is not None else 0.0
                await clock.sleep(max(CREATE_WAITS[attempt - 1], asked))
        await self._give_up_create(submission_id, items, last_error)

    async def _created(self, submission_id: str, batch: MessageBatch, *, workspace: str | None) -> None:
        """Record a batch the provider made. Store failures are retried (the items must not fall back now);
        a row another leader settled meanwhile makes this a stray batch: polled, its results only logged."""
        pool = self.pool
        self.made.add(submission_id)
        self.seen_ids.add(batch.id)
        for attempt in range(1, RECORD_ATTEMPTS + 1):
            now = pool.wall()
            try:
                recorded = await pool.store.batch_created(
                    submission_id,
                    batch.id,
                    expires_at=batch.expires_at,
                    next_poll_at=now + timedelta(seconds=FIRST_POLL_GAP),
                    now=now,
                )
                if not recorded:
                    logger.warning(
                        "batch %s answered after its row was settled by another leader: tracked as stray",
                        batch.id,
                    )
                    await pool.store.track_stray(
                        batch.id, fp=self.fp, workspace=workspace, process_id=pool.process_id, now=now
                    )
                break
            except StoreError:
                if attempt == RECORD_ATTEMPTS:
                    raise
                logger.warning("recording batch %s failed (attempt %d); retrying", batch.id, attempt)
                await pool.clock.sleep(RECORD_WAIT * attempt)
        pool.counters.batches_submitted += 1
        logger.info("batch %s created: credential=%s submission=%s", batch.id, self.fp, submission_id)
        pool.wake.set()

    async def _give_up_create(
        self, submission_id: str, items: list[StoredItem], error: BaseException | None
    ) -> None:
        await self.pool.store.batch_failed(
            submission_id,
            error=type(error).__name__ if error else "failed",
            requeue=False,
            now=self.pool.wall(),
        )
        for item in items:
            await self.outcomes.fallback(item, error, expect=("submitting",))

    async def _halve(self, submission_id: str, items: list[StoredItem], workspace: str | None) -> None:
        """413: requeue and resubmit as two batches (each item keeps its claim count)."""
        store, now = self.pool.store, self.pool.wall()
        await store.batch_failed(submission_id, error="request_too_large", requeue=True, now=now)
        middle = len(items) // 2
        logger.info(
            "batch of %d requests too large: retrying as %d + %d", len(items), middle, len(items) - middle
        )
        for half in (items[:middle], items[middle:]):
            await self.flush_ids(half, workspace, now=now)

    async def flush_ids(self, items: list[StoredItem], workspace: str | None, *, now: datetime) -> None:
        """Claim exactly these (requeued) items as one new batch and create it now."""
        submission_id = new_ulid(self.pool.clock.now())
        claimed = await self.pool.store.claim(
            self.fp, workspace, limit=len(items), max_bytes=self.pool.settings.max_bytes,
            submission_id=submission_id, provider="anthropic", process_id=self.pool.process_id, now=now,
            only=[item.id for item in items],
        )  # fmt: skip
        if claimed:
            self.pool.own_creates.add(submission_id)
            try:
                await self._create(submission_id, claimed, workspace)
            finally:
                self.pool.own_creates.discard(submission_id)

    async def _list(self, workspace: str | None) -> list[MessageBatch] | None:
        try:
            await self.channel.bucket.acquire(1)
            page = await self.channel.client.messages.batches.list(
                limit=ADOPTION_LIST_LIMIT, workspace_id=workspace or anthropic.omit
            )
        except anthropic.APIError as exc:
            logger.warning("adoption check failed: credential=%s %s", self.fp, describe_api_error(exc))
            return None
        return list(page.data)

    async def _adopt(self, count: int, workspace: str | None, *, started: float) -> MessageBatch | None:
        page = await self._list(workspace)
        if page is None:
            return None
        store = self.pool.store
        tracked = {
            b.id for b in await store.batches(self.fp, ("in_progress", "canceling", "ended", "lost")) if b.id
        }
        tracked |= self.seen_ids
        found = adoption_candidates(page, tracked=tracked, since=started, count=count)
        if len(found) != 1:
            logger.info("adoption check found %d candidate(s): retrying the create", len(found))
            return None
        logger.warning("adopted batch %s after an ambiguous create", found[0].id)
        return found[0]

    # -- poll and results ------------------------------------------------------------------------------------

    async def _poll(self, batch: StoredBatch) -> None:
        pool = self.pool
        assert batch.id is not None
        try:
            await self.channel.bucket.acquire(1)
            status = await self.channel.client.messages.batches.retrieve(
                batch.id, workspace_id=batch.workspace or anthropic.omit
            )
            if status.processing_status != "ended":
                await self._reschedule(batch)
            elif not await self._download(batch, archived=status.archived_at is not None):
                await self._reschedule(batch, failed=True)  # read again at the next poll
        except (anthropic.APIStatusError, anthropic.APIConnectionError) as exc:
            await self._poll_failed(batch, exc)
        except Exception:
            logger.exception("poll of batch %s failed unexpectedly; keeping it", batch.id)
            try:
                await self._reschedule(batch, failed=True)
            except Exception:
                logger.exception("could not reschedule batch %s", batch.id)
        finally:
            # An attempt counts: rescues wait for the first poll since the takeover (results that ended while
            # nobody led are used), not for a successful one (a poll failing for good must not block them).
            self.polled.add(batch.id)
            self.polling.discard(batch.submission_id)
            pool.wake.set()

    async def _reschedule(
        self, batch: StoredBatch, *, gap: float | None = None, failed: bool = False
    ) -> None:
        pool = self.pool
        polls = batch.polls + 1
        if gap is None:
            gap = pool.poll_gap(polls)
        now = pool.wall()
        values: dict[str, Any] = {
            "polls": polls,
            "last_polled_at": now,
            "next_poll_at": now + timedelta(seconds=gap),
        }
        if failed:
            values["poll_failures"] = BatchRecord.poll_failures + 1
        await pool.store.update_batch(batch.submission_id, **values)

    async def _poll_failed(self, batch: StoredBatch, exc: anthropic.APIError) -> None:
        status = exc.status_code if isinstance(exc, anthropic.APIStatusError) else None
        logger.info("poll of batch %s failed: %s", batch.id, describe_api_error(exc))
        if status == 404:
            logger.warning("batch %s is lost (404); its unsettled items are missing", batch.id)
            await self.outcomes.all_missing(batch, applied=set(), reason="lost")
            await self.pool.store.update_batch(batch.submission_id, status="lost", ended_at=self.pool.wall())
            return
        if isinstance(exc, anthropic.APIStatusError) and status == 429:
            asked = parse_retry_after(exc.response.headers, now=self.pool.clock.now())
            if asked:
                self.channel.bucket.pause(min(asked, MAX_POLL_RETRY_AFTER))
        cap = self.pool.settings.poll_cap if status in (401, 403) else None
        await self._reschedule(batch, gap=cap, failed=True)

    async def _download(self, batch: StoredBatch, *, archived: bool) -> bool:
        """Read and apply an ended batch's results; ``False`` when the download never completed (the batch
        stays in flight and is read again: paid results are never written off as missing)."""
        assert batch.id is not None
        applied: set[str] = set()
        if archived:
            logger.warning("results of batch %s are archived", batch.id)
        elif not await self._read_all(batch, applied):
            return False
        await self.outcomes.all_missing(batch, applied=applied, reason="archived" if archived else "missing")
        await self.pool.store.update_batch(
            batch.submission_id, status="ended", ended_at=self.pool.wall(), counts={"applied": len(applied)}
        )
        return True

    async def _read_all(self, batch: StoredBatch, applied: set[str]) -> bool:
        """Whether a whole pass over the results completed (or the results are gone, 404)."""
        assert batch.id is not None
        tolerant = False
        for attempt in range(1, DOWNLOAD_ATTEMPTS + 1):
            try:
                await self.channel.bucket.acquire(DOWNLOAD_TOKENS)
                await self._read(batch, applied, tolerant=tolerant)
            except anthropic.NotFoundError:
                logger.warning("results of batch %s are gone (404)", batch.id)
                return True
            except StoreError:
                raise  # the store failed, not the download: the batch stays in flight for the next poll
            except ValueError as exc:
                logger.warning(
                    "results of batch %s: unusable line (%s); retrying tolerantly",
                    batch.id,
                    type(exc).__name__,
                )
                tolerant = True
            except Exception as exc:  # noqa: BLE001 - any download failure is retried
                logger.warning("results of batch %s: download failed: %s", batch.id, describe_api_error(exc))
            else:
                return True
            if attempt < DOWNLOAD_ATTEMPTS:
                await self.pool.clock.sleep(DOWNLOAD_WAITS[attempt - 1])
        return False

    async def _read(self, batch: StoredBatch, applied: set[str], *, tolerant: bool) -> None:
        assert batch.id is not None
        apply = await self.outcomes.start(batch)  # this download's own buffers
        try:
            async for line in stream_results(
                self.channel.client, batch.id, batch.workspace, tolerant=tolerant
            ):
                await apply.line(line, applied)
        finally:
            await apply.flush(applied)

    async def cancel_upstream(self, batch_id: str, submission_id: str, workspace: str | None) -> None:
        """Ask the provider to cancel ``batch_id`` (nobody waits on it any more); results are still read."""
        pool = self.pool
        await pool.store.update_batch(submission_id, cancel_requested_at=pool.wall())
        try:
            await self.channel.bucket.acquire(1)
            await self.channel.client.messages.batches.cancel(
                batch_id, workspace_id=workspace or anthropic.omit
            )
        except anthropic.APIError as exc:
            logger.warning("cancel of batch %s failed: %s", batch_id, describe_api_error(exc))
        else:
            logger.info("batch %s cancelled upstream: no item waits on it", batch_id)

    def __repr__(self) -> str:
        return f"Leader(credential_fp={self.fp!r}, polling={len(self.polling)}, creating={len(self.create_tasks)})"
